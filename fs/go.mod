module github.com/alkdev/alknet/fs

go 1.26.8

require (
	github.com/alkdev/alknet/core v0.1.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/sys v0.50.0
	lukechampine.com/blake3 v1.4.1
)

require (
	github.com/klauspost/cpuid/v2 v2.0.9 // indirect
	github.com/mattn/go-sqlite3 v1.14.53 // indirect
	github.com/quic-go/quic-go v0.65.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
