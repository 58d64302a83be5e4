module github.com/alkdev/alknet/msg

go 1.26.8

require (
	github.com/alkdev/alknet/core v0.1.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/crypto v0.59.0
)
