package headers

import (
	"net/http"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestIsImpersonation(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"Impersonate-User", true},
		{"Impersonate-Group", true},
		{"Impersonate-Uid", true},
		{"Impersonate-Extra-Scopes", true},
		{"Impersonate-Extra-", true},
		{"Impersonate-Anything", true},
		{"IMPERSONATE-USER", true},
		{"iMpErSoNaTe-UsEr", true},
		{"impersonate-uid", true},
		// Names that only look alike ask for nothing.
		{"Impersonate", false},
		{"Impersonated-User", false},
		{"X-Impersonate-User", false},
		{" Impersonate-User", false},
		{"Authorization", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsImpersonation(tt.name); got != tt.want {
			t.Errorf("IsImpersonation(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestFindImpersonation(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   string
	}{
		{"none", http.Header{"Accept": {"*/*"}, "X-Impersonate-User": {"root"}}, ""},
		{"nil", nil, ""},
		{"canonical", http.Header{"Accept": {"*/*"}, "Impersonate-User": {"root"}}, "Impersonate-User"},
		{"inserted without canonicalizing", http.Header{"impersonate-group": {"system:masters"}}, "impersonate-group"},
		{"empty value still counts", http.Header{"Impersonate-Uid": {""}}, "Impersonate-Uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := FindImpersonation(tt.header)
			if got != tt.want || found != (tt.want != "") {
				t.Errorf("FindImpersonation() = %q, %v, want %q", got, found, tt.want)
			}
		})
	}
}

func TestIsSpoofable(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"X-Remote-User", true},
		{"X-Remote-Group", true},
		{"x-remote-extra-scopes", true},
		{"X-Forwarded-For", true},
		{"X-FORWARDED-HOST", true},
		{"Forwarded", true},
		{"forwarded", true},
		{"X-Real-Ip", true},
		{"X-Real-IP", true},
		{"X-Remote", false},
		{"X-Forwardedfor", false},
		{"Forwarded-By", false},
		{"X-Request-Id", false},
		{"Accept", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsSpoofable(tt.name); got != tt.want {
			t.Errorf("IsSpoofable(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestReservedExtra(t *testing.T) {
	tests := []struct {
		name  string
		extra map[string][]string
		want  string
	}{
		{"no extras", nil, ""},
		{"other extras", map[string][]string{"scopes": {"a"}, user.CredentialIDKey: {"X509SHA256=ab"}}, ""},
		{"look-alike key", map[string][]string{"original-user-info.kip.dev.evil": {"x"}, "kip.dev/original-user-info": {"x"}}, ""},
		{"the key", map[string][]string{OriginalUserExtraKey: {`{"username":"admin"}`}}, OriginalUserExtraKey},
		{"the key in upper case", map[string][]string{"Original-User-Info.KIP.dev": {"x"}}, "Original-User-Info.KIP.dev"},
		{"the key without values", map[string][]string{OriginalUserExtraKey: nil}, OriginalUserExtraKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reserved := ReservedExtra(&user.DefaultInfo{Name: "alice", Extra: tt.extra})
			if got != tt.want || reserved != (tt.want != "") {
				t.Errorf("ReservedExtra() = %q, %v, want %q", got, reserved, tt.want)
			}
		})
	}
}
