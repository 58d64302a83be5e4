module github.com/alkdev/alknet/soak

go 1.26.8

require (
	github.com/alkdev/alknet/call v0.1.0
	github.com/alkdev/alknet/core v0.1.0
	github.com/alkdev/alknet/sftp v0.1.0
	github.com/alkdev/alknet/ssh v0.1.0
	github.com/alkdev/alknet/vault v0.1.0
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/pkg/sftp v1.13.12
	github.com/quic-go/quic-go v0.65.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/crypto v0.59.0
)

require (
	github.com/creack/pty v1.1.24 // indirect
	github.com/google/jsonschema-go v0.4.3 // indirect
	github.com/kr/fs v0.1.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
