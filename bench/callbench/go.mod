module github.com/alkdev/alknet/bench/callbench

go 1.26.8

require (
	github.com/alkdev/alknet/call v0.1.0
	github.com/alkdev/alknet/core v0.1.0
	google.golang.org/grpc v1.85.0
)

require (
	github.com/google/jsonschema-go v0.4.3 // indirect
	github.com/quic-go/quic-go v0.65.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace (
	github.com/alkdev/alknet/call => ../../call
	github.com/alkdev/alknet/core => ../../core
)
