module github.com/alkdev/alknet/sftp

go 1.26.8

require (
	github.com/alkdev/alknet/core v0.0.0
	github.com/kr/fs v0.1.0 // indirect
	github.com/pkg/sftp v1.13.12 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/alkdev/alknet/core => ../core
