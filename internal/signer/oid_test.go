package signer

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"
)

const extrasUUID = "592d1209-ce8e-4e19-9e4f-8ad48838cc5f"

// The arcs after Microsoft's GUID prefix are the UUID's hex groups, split
// at 4,4,4,4,4,6,6 digits.
func TestExtrasOIDIsTheUUID(t *testing.T) {
	hex := strings.ReplaceAll(extrasUUID, "-", "")
	want := asn1.ObjectIdentifier{1, 2, 840, 113556, 1, 8000, 2554}
	for _, part := range []string{hex[0:4], hex[4:8], hex[8:12], hex[12:16], hex[16:20], hex[20:26], hex[26:32]} {
		n, err := strconv.ParseInt(part, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, int(n))
	}
	if !extrasOID.Equal(want) {
		t.Fatalf("extrasOID %v, want %v", extrasOID, want)
	}
	u, _ := new(big.Int).SetString(hex, 16)
	if u.String() != "118535310843843856596913486293938785375" {
		t.Fatalf("the X.667 form in the comment is wrong: 2.25.%s", u)
	}
}

// TestUUIDArcIsUnparseable records why kip does not use the 2.25 form: a
// certificate whose extension OID has a 128-bit arc does not parse in Go,
// so a TLS handshake presenting it would fail. If this test starts
// failing, Go has lifted the limit.
func TestUUIDArcIsUnparseable(t *testing.T) {
	// Sign with a placeholder OID of the same encoded length, then put
	// the 2.25 form's bytes in its place; ParseCertificate does not check
	// signatures.
	placeholder := asn1.ObjectIdentifier{2, 25}
	for range 19 {
		placeholder = append(placeholder, 1)
	}
	key := clientKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: start, NotAfter: start.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: placeholder, Value: []byte{0x05, 0x00}}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	oldOID, _ := asn1.Marshal(placeholder)
	u, _ := new(big.Int).SetString(strings.ReplaceAll(extrasUUID, "-", ""), 16)
	newOID := append([]byte{0x06, 20, 0x69}, base128(u)...)
	if len(newOID) != len(oldOID) {
		t.Fatalf("encoded lengths differ: %d and %d", len(newOID), len(oldOID))
	}
	_, err = x509.ParseCertificate(bytes.Replace(der, oldOID, newOID, 1))
	if err == nil {
		t.Fatal("Go now parses 2.25 UUID OIDs; extrasOID could use the X.667 form")
	}
	if !strings.Contains(err.Error(), "extension OID") {
		t.Fatalf("the certificate failed to parse for another reason: %v", err)
	}
}

func base128(n *big.Int) []byte {
	var out []byte
	for x := new(big.Int).Set(n); x.Sign() > 0; x.Rsh(x, 7) {
		out = append([]byte{byte(x.Uint64() & 0x7f)}, out...)
	}
	for i := range len(out) - 1 {
		out[i] |= 0x80
	}
	return out
}
