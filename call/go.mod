module github.com/alkdev/alknet/call

go 1.26.8

require (
	github.com/alkdev/alknet/core v0.0.0
	github.com/google/jsonschema-go v0.4.3 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
)

replace github.com/alkdev/alknet/core => ../core
