module github.com/alkdev/alknet/dns

go 1.26.8

require (
	github.com/alkdev/alknet/core v0.1.0
	github.com/miekg/dns v1.1.73
	github.com/quic-go/quic-go v0.65.0
	github.com/stretchr/testify v1.12.1
)
