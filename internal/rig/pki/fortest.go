package pki

import (
	"testing"
	"time"
)

// NewCAForTest is NewCA for a test, which it fails when the CA cannot be
// made.
func NewCAForTest(t testing.TB, commonName string, validity time.Duration) *CA {
	t.Helper()
	ca, err := NewCA(commonName, validity)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
