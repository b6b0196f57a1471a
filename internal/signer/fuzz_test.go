package signer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	clocktesting "k8s.io/utils/clock/testing"
)

// groupSeparator splits the fuzzed groups string; it is a control
// character, which no group may contain, so splitting loses nothing.
const groupSeparator = "\x1f"

// FuzzCertificateUserRoundTrip checks that decoding arbitrary extension bytes
// never panics and accepts only the canonical encoding, and that every
// identity Issue accepts comes back unchanged through a real certificate.
func FuzzCertificateUserRoundTrip(f *testing.F) {
	ext, _ := encodeExtras(map[string][]string{"example.com/team": {"b", "a"}, "scopes": {"openid", ""}})
	f.Add("alice", "uid-1", "dev"+groupSeparator+"ops", ext)
	f.Add("bob", "", "", []byte{})
	f.Add("o'brien*&@x", "ü", "日本"+groupSeparator+"ops & dev", []byte{0x30, 0x00})
	f.Add("", "", "", []byte{0x30, 0x80, 0x00, 0x00})

	now := time.Now()
	signer, err := generateSigningCA(now, 24*time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	ca := &CA{name: "fuzz", opts: Options{Clock: clocktesting.NewFakeClock(now), MaxCertificateTTL: time.Hour}}
	ca.state.Store(newTrust(signer, nil, now))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, name, uid, groups string, extrasDER []byte) {
		extras, err := decodeExtras(extrasDER)
		if err != nil {
			extras = nil
		} else if again, _ := encodeExtras(extras); !bytes.Equal(again, extrasDER) {
			t.Fatalf("accepted a non-canonical encoding %x", extrasDER)
		}
		in := &user.DefaultInfo{Name: name, UID: uid, Extra: extras}
		if groups != "" {
			in.Groups = strings.Split(groups, groupSeparator)
		}
		want, err := certificateUser(in)
		if err != nil {
			return // Issue refuses it too; TestCertificateUser covers why.
		}
		certPEM, _, err := ca.Issue(in, key.Public(), time.Hour)
		if err != nil {
			t.Fatalf("Issue refused an identity that validates: %v", err)
		}
		leaf := mustParse(t, certPEM)
		resp, ok, err := userFromChain([]*x509.Certificate{leaf, signer.cert})
		if err != nil || !ok {
			t.Fatalf("the identity did not come back: %v", err)
		}
		want.Extra = withCredentialID(want.Extra, leaf)
		if !reflect.DeepEqual(resp.User, want) {
			t.Fatalf("got %#v\nwant %#v", resp.User, want)
		}
	})
}
