package core

import (
	"crypto/tls"
	"testing"
)

// BenchCert exposes the endpoint certificate to the external benchmarks.
func BenchCert(tb testing.TB, k SecretKey) tls.Certificate {
	c, err := selfSignedCert(k)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
