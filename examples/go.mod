module github.com/alkdev/alknet/examples

go 1.26.8
