module github.com/alkdev/alknet/bench/dnsbench

go 1.26.8

require (
	github.com/alkdev/alknet/dns v0.1.0
	github.com/miekg/dns v1.1.73
)

require (
	github.com/alkdev/alknet/core v0.1.0 // indirect
	github.com/mattn/go-sqlite3 v1.14.53 // indirect
	github.com/quic-go/quic-go v0.65.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)

replace (
	github.com/alkdev/alknet/core => ../../core
	github.com/alkdev/alknet/dns => ../../dns
)
