package signer

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestAuthenticatorRoundTrip(t *testing.T) {
	clk := newClock()
	ca := staticCA(t, clk, Options{})
	tests := []struct {
		name string
		in   *user.DefaultInfo
		want *user.DefaultInfo // before system:authenticated and credential-id
	}{
		{
			name: "name, ordered groups, UID and extras",
			in: &user.DefaultInfo{Name: "alice@example.com", UID: "8e1d-42", Groups: []string{"zeta", "alpha", "mid"},
				Extra: map[string][]string{"example.com/team": {"b", "a"}, "scopes": {"openid"}}},
			want: &user.DefaultInfo{Name: "alice@example.com", UID: "8e1d-42", Groups: []string{"zeta", "alpha", "mid"},
				Extra: map[string][]string{"example.com/team": {"b", "a"}, "scopes": {"openid"}}},
		},
		{
			name: "name only",
			in:   &user.DefaultInfo{Name: "bob"},
			want: &user.DefaultInfo{Name: "bob", Extra: map[string][]string{}},
		},
		{
			name: "characters Go would not put in a PrintableString",
			in:   &user.DefaultInfo{Name: "o'brien*&@x", UID: "ü", Groups: []string{"ops & dev", "日本"}},
			want: &user.DefaultInfo{Name: "o'brien*&@x", UID: "ü", Groups: []string{"ops & dev", "日本"}, Extra: map[string][]string{}},
		},
		{
			name: "the exchanged token's credential-id is replaced by the certificate's",
			in:   &user.DefaultInfo{Name: "carol", Groups: []string{user.AllAuthenticated}, Extra: map[string][]string{user.CredentialIDKey: {"JTI=token"}}},
			want: &user.DefaultInfo{Name: "carol", Extra: map[string][]string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, _, err := ca.Issue(tt.in, clientKey(t).Public(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			leaf := mustParse(t, certPEM)
			resp, ok, err := authenticate(ca, leaf)
			if err != nil || !ok {
				t.Fatalf("refused: ok=%v err=%v", ok, err)
			}
			fp := sha256.Sum256(leaf.Raw)
			want := *tt.want
			want.Groups = append(append([]string(nil), want.Groups...), user.AllAuthenticated)
			want.Extra = withCredentialID(want.Extra, leaf)
			if got := want.Extra[user.CredentialIDKey][0]; got != "X509SHA256="+hex.EncodeToString(fp[:]) {
				t.Fatalf("credential-id %q", got)
			}
			if !reflect.DeepEqual(resp.User, &want) {
				t.Fatalf("got %#v\nwant %#v", resp.User, &want)
			}
		})
	}
}

// signRaw signs a leaf with the given subject and extensions straight with
// s's key, for certificates Issue would never produce.
func signRaw(t *testing.T, s *signingCA, now time.Time, subject []byte, exts ...pkix.Extension) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(now.UnixNano()),
		RawSubject:      subject,
		NotBefore:       now.Add(-time.Minute),
		NotAfter:        now.Add(time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.cert, clientKey(t).Public(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func subject(t *testing.T, attrs ...pkix.AttributeTypeAndValue) []byte {
	t.Helper()
	var rdns pkix.RDNSequence
	for _, a := range attrs {
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{a})
	}
	der, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func cn(s string) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oidCommonName, Value: s}
}
func uid(s string) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oidUID, Value: s}
}
func extrasExt(der []byte) pkix.Extension { return pkix.Extension{Id: extrasOID, Value: der} }

func TestAuthenticatorRefuses(t *testing.T) {
	clk := newClock()
	ca := staticCA(t, clk, Options{})
	signer := ca.state.Load().signing
	other := mustSigner(t, clk.Now(), 24*time.Hour)
	now := clk.Now()
	goodExtras, _ := encodeExtras(map[string][]string{"k": {"v"}})
	credID, _ := encodeExtras(map[string][]string{user.CredentialIDKey: {"X509SHA256=forged"}})

	tests := []struct {
		name    string
		cert    func(t *testing.T) *x509.Certificate
		advance time.Duration
		wantErr string
	}{
		{"another CA's certificate with kip's extension", func(t *testing.T) *x509.Certificate {
			return signRaw(t, other, now, subject(t, cn("mallory")), extrasExt(goodExtras))
		}, 0, "unknown authority"},
		{"expired certificate", func(t *testing.T) *x509.Certificate {
			return issue(t, ca, "alice")
		}, 2 * time.Hour, "expired"},
		{"malformed extension", func(t *testing.T) *x509.Certificate {
			return signRaw(t, signer, now, subject(t, cn("alice")), extrasExt([]byte{0x30, 0x03, 0x0c, 0x01}))
		}, 0, "extras extension is malformed"},
		{"extension with an empty key", func(t *testing.T) *x509.Certificate {
			return signRaw(t, signer, now, subject(t, cn("alice")), extrasExt(rawExtras(t, entry(utf8Value(""), utf8Value("v")))))
		}, 0, "empty key"},
		{"extension claiming a credential-id", func(t *testing.T) *x509.Certificate {
			return signRaw(t, signer, now, subject(t, cn("alice")), extrasExt(credID))
		}, 0, "derived from the certificate"},
		{"empty common name", func(t *testing.T) *x509.Certificate {
			return signRaw(t, signer, now, subject(t, cn("")))
		}, 0, "empty common name"},
		{"no common name", func(t *testing.T) *x509.Certificate {
			return signRaw(t, signer, now, subject(t, uid("u")))
		}, 0, "empty common name"},
		{"two common names", func(t *testing.T) *x509.Certificate {
			return signRaw(t, signer, now, subject(t, cn("alice"), cn("admin")))
		}, 0, "names 2 users"},
		{"two UIDs", func(t *testing.T) *x509.Certificate {
			return signRaw(t, signer, now, subject(t, cn("alice"), uid("1"), uid("2")))
		}, 0, "2 UIDs"},
		{"empty UID", func(t *testing.T) *x509.Certificate {
			return signRaw(t, signer, now, subject(t, cn("alice"), uid("")))
		}, 0, "UID is empty"},
		{"anonymous user", func(t *testing.T) *x509.Certificate {
			return signRaw(t, signer, now, subject(t, cn(user.Anonymous)))
		}, 0, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.SetTime(now)
			cert := tt.cert(t)
			clk.Step(tt.advance)
			resp, ok, err := authenticate(ca, cert)
			if ok || resp != nil {
				t.Fatalf("accepted as %#v", resp.User)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// Checks that cannot be reached through a verified chain, so they are
// exercised on the conversion directly.
func TestUserFromChainRefusesUnverifiableShapes(t *testing.T) {
	clk := newClock()
	ca := staticCA(t, clk, Options{})
	signer := ca.state.Load().signing
	leaf := issue(t, ca, "alice")
	ext, _ := encodeExtras(map[string][]string{"k": {"v"}})
	twice := *leaf
	twice.Extensions = append(append([]pkix.Extension(nil), leaf.Extensions...), extrasExt(ext), extrasExt(ext))

	tests := []struct {
		name    string
		chain   []*x509.Certificate
		wantErr string
	}{
		{"leaf and signer", []*x509.Certificate{leaf, signer.cert}, ""},
		{"leaf alone", []*x509.Certificate{leaf}, "chain has 1"},
		{"intermediate in the chain", []*x509.Certificate{leaf, signer.cert, signer.cert}, "chain has 3"},
		{"extension present twice", []*x509.Certificate{&twice, signer.cert}, "2 times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, ok, err := userFromChain(tt.chain)
			if tt.wantErr == "" {
				if err != nil || !ok || resp.User.GetName() != "alice" {
					t.Fatalf("ok=%v err=%v", ok, err)
				}
				return
			}
			if ok || err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ok=%v err=%v, want an error mentioning %q", ok, err, tt.wantErr)
			}
		})
	}
}
