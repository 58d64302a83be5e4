module github.com/alkdev/alknet/fs

go 1.26.8

require (
	github.com/klauspost/cpuid/v2 v2.0.9 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sys v0.50.0 // indirect
	lukechampine.com/blake3 v1.4.1 // indirect
)
