module github.com/alkdev/alknet/ssh

go 1.26.8

require (
	github.com/alkdev/alknet/core v0.0.0
	github.com/creack/pty v1.1.24 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/crypto v0.59.0 // indirect
)

replace github.com/alkdev/alknet/core => ../core
