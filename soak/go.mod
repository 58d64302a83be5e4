module github.com/alkdev/alknet/soak

go 1.26.8

require github.com/stretchr/testify v1.12.1

require go.yaml.in/yaml/v3 v3.0.5 // indirect

replace github.com/alkdev/alknet/core => ../core

replace github.com/alkdev/alknet/vault => ../vault

replace github.com/alkdev/alknet/call => ../call

replace github.com/alkdev/alknet/ssh => ../ssh

replace github.com/alkdev/alknet/sftp => ../sftp
