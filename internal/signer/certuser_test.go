package signer

import (
	"encoding/asn1"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func userInfo(name string, groups ...string) *user.DefaultInfo {
	return &user.DefaultInfo{Name: name, Groups: groups}
}

// rawExtras builds an extension value by hand, for encodings kip would
// never write.
func rawExtras(t *testing.T, entries ...extraEntry) []byte {
	t.Helper()
	der, err := asn1.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func entry(key asn1.RawValue, values ...asn1.RawValue) extraEntry {
	return extraEntry{Key: key, Values: values}
}

func printable(s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagPrintableString, Bytes: []byte(s)}
}

func TestExtrasRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		extras map[string][]string
	}{
		{"none", map[string][]string{}},
		{"one", map[string][]string{"example.com/team": {"platform"}}},
		{"several keys and values", map[string][]string{"b": {"2", "1"}, "a": {"x"}, "scopes": {"openid", "email"}}},
		{"empty value string", map[string][]string{"k": {""}}},
		{"unicode", map[string][]string{"équipe": {"crème brûlée", "日本"}}},
		{"printable-looking value", map[string][]string{"k": {"plain ASCII"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := encodeExtras(tt.extras)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeExtras(der)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.extras) {
				t.Fatalf("got %v, want %v", got, tt.extras)
			}
		})
	}
}

func TestEncodeExtrasIsDeterministic(t *testing.T) {
	extras := map[string][]string{}
	for _, k := range strings.Fields("q w e r t y u i o p a s d f g h j k l") {
		extras[k] = []string{k + "1", k + "2"}
	}
	first, err := encodeExtras(extras)
	if err != nil {
		t.Fatal(err)
	}
	// Map iteration order differs between runs; the bytes must not.
	for range 20 {
		again, _ := encodeExtras(extras)
		if string(again) != string(first) {
			t.Fatal("two encodings of the same extras differ")
		}
	}
	empty, _ := encodeExtras(map[string][]string{"gone": {}, "kept": {"v"}})
	kept, _ := encodeExtras(map[string][]string{"kept": {"v"}})
	if string(empty) != string(kept) {
		t.Fatal("an extra without values was encoded")
	}
}

func TestDecodeExtrasRefusesHostileEncodings(t *testing.T) {
	valid := rawExtras(t, entry(utf8Value("a"), utf8Value("1")))
	asSet := append([]byte{0x31}, valid[1:]...)
	tests := []struct {
		name string
		der  []byte
		want string
	}{
		{"not DER", []byte("hello"), "not valid DER"},
		{"empty input", nil, "not valid DER"},
		{"trailing data", append(append([]byte{}, valid...), 0x00), "trailing data"},
		{"SET in place of SEQUENCE", asSet, ""},
		{"key not a UTF8String", rawExtras(t, entry(printable("a"), utf8Value("1"))), "want a UTF8String"},
		{"value not a UTF8String", rawExtras(t, entry(utf8Value("a"), printable("1"))), "want a UTF8String"},
		{"empty key", rawExtras(t, entry(utf8Value(""), utf8Value("1"))), "empty key"},
		{"duplicate key", rawExtras(t, entry(utf8Value("a"), utf8Value("1")), entry(utf8Value("a"), utf8Value("2"))), "duplicated or out of order"},
		{"keys out of order", rawExtras(t, entry(utf8Value("b"), utf8Value("1")), entry(utf8Value("a"), utf8Value("2"))), "duplicated or out of order"},
		{"key without values", rawExtras(t, entry(utf8Value("a"))), "no values"},
		{"invalid UTF-8", rawExtras(t, entry(utf8Value("a"), utf8Value("\xff"))), "not valid UTF-8"},
		{"constructed string", rawExtras(t, entry(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, IsCompound: true, Bytes: []byte{}}, utf8Value("1"))), "want a UTF8String"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeExtras(tt.der)
			if err == nil {
				t.Fatalf("accepted %x as %v", tt.der, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestCertificateUser(t *testing.T) {
	tests := []struct {
		name    string
		in      user.Info
		want    *user.DefaultInfo
		wantErr string
	}{
		{
			name: "full identity",
			in:   &user.DefaultInfo{Name: "alice", UID: "u-1", Groups: []string{"dev", "ops"}, Extra: map[string][]string{"k": {"v"}}},
			want: &user.DefaultInfo{Name: "alice", UID: "u-1", Groups: []string{"dev", "ops"}, Extra: map[string][]string{"k": {"v"}}},
		},
		{
			name: "system:authenticated and credential-id are left out",
			in: &user.DefaultInfo{Name: "alice", Groups: []string{user.AllAuthenticated, "dev"},
				Extra: map[string][]string{user.CredentialIDKey: {"JTI=abc"}, "empty": {}}},
			want: &user.DefaultInfo{Name: "alice", Groups: []string{"dev"}, Extra: map[string][]string{}},
		},
		{name: "no user", in: nil, wantErr: "no user"},
		{name: "empty user name", in: userInfo(""), wantErr: "user name is empty"},
		{name: "anonymous", in: userInfo(user.Anonymous), wantErr: "reserved"},
		{name: "unauthenticated group", in: userInfo("alice", user.AllUnauthenticated), wantErr: "reserved"},
		{name: "empty group", in: userInfo("alice", "dev", ""), wantErr: "group name is empty"},
		{name: "newline in name", in: userInfo("alice\r\nImpersonate-User: admin"), wantErr: "control characters"},
		{name: "NUL in group", in: userInfo("alice", "dev\x00"), wantErr: "control characters"},
		{name: "invalid UTF-8 UID", in: &user.DefaultInfo{Name: "alice", UID: "\xc3"}, wantErr: "not valid UTF-8"},
		{name: "empty extra key", in: &user.DefaultInfo{Name: "alice", Extra: map[string][]string{"": {"v"}}}, wantErr: "empty key"},
		{name: "control character in extra value", in: &user.DefaultInfo{Name: "alice", Extra: map[string][]string{"k": {"a\nb"}}}, wantErr: "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := certificateUser(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}
