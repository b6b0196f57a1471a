package exchange

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"math/big"
	"strings"
	"testing"
)

// TestCheckKey covers the key sizes too slow to generate in a test.
func TestCheckKey(t *testing.T) {
	rsaOf := func(bits int) *rsa.PublicKey {
		return &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), uint(bits-1)), E: 65537}
	}
	x25519, err := ecdh.X25519().GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		key     crypto.PublicKey
		wantErr string
	}{
		{name: "P-256", key: &ecdsa.PublicKey{Curve: elliptic.P256()}},
		{name: "P-384", key: &ecdsa.PublicKey{Curve: elliptic.P384()}},
		{name: "Ed25519", key: make(ed25519.PublicKey, ed25519.PublicKeySize)},
		{name: "RSA-2048", key: rsaOf(2048)},
		{name: "RSA-4096", key: rsaOf(4096)},
		{name: "RSA-8192", key: rsaOf(8192)},
		{name: "RSA-2047", key: rsaOf(2047), wantErr: "2047-bit RSA key"},
		{name: "RSA-8193", key: rsaOf(8193), wantErr: "8193-bit RSA key"},
		{name: "RSA-16384", key: rsaOf(16384), wantErr: "use 2048 to 8192 bits"},
		{name: "P-224", key: &ecdsa.PublicKey{Curve: elliptic.P224()}, wantErr: "P-224"},
		{name: "P-521", key: &ecdsa.PublicKey{Curve: elliptic.P521()}, wantErr: "P-521"},
		{name: "X25519", key: x25519.PublicKey(), wantErr: "unsupported key type *ecdh.PublicKey"},
		{name: "none", key: nil, wantErr: "unsupported key type <nil>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkKey(tc.key)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
