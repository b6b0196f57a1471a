package tokenauth

import (
	"bytes"
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"
)

func TestRefuseReserved(t *testing.T) {
	allowed := sets.New("system:monitoring")
	tests := []struct {
		name    string
		user    *user.DefaultInfo
		wantOK  bool
		wantErr bool
	}{
		{name: "ordinary user", user: &user.DefaultInfo{Name: "alice", Groups: []string{"devs"}}, wantOK: true},
		{name: "allowed system: group", user: &user.DefaultInfo{Name: "alice", Groups: []string{"system:monitoring"}}, wantOK: true},
		{name: "name merely containing system:", user: &user.DefaultInfo{Name: "alice-system:x", Groups: []string{"ops:system:"}}, wantOK: true},
		{name: "system:masters group", user: &user.DefaultInfo{Name: "alice", Groups: []string{"devs", "system:masters"}}, wantErr: true},
		{name: "system:masters in other letter case", user: &user.DefaultInfo{Name: "alice", Groups: []string{"SYSTEM:masters"}}, wantErr: true},
		{name: "system:authenticated claimed", user: &user.DefaultInfo{Name: "alice", Groups: []string{"system:authenticated"}}, wantErr: true},
		{name: "node user", user: &user.DefaultInfo{Name: "system:node:x"}, wantErr: true},
		{name: "service account user", user: &user.DefaultInfo{Name: "system:serviceaccount:kube-system:default"}, wantErr: true},
		{name: "kube-scheduler", user: &user.DefaultInfo{Name: "System:kube-scheduler"}, wantErr: true},
		{name: "empty username", user: &user.DefaultInfo{Name: ""}, wantErr: true},
		{name: "forged original caller", user: &user.DefaultInfo{Name: "alice", Extra: map[string][]string{"Original-User-Info.kip.dev": {"{}"}}}, wantErr: true},
		{name: "ordinary extra", user: &user.DefaultInfo{Name: "alice", Extra: map[string][]string{"example.com/team": {"a"}}}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := authenticator.TokenFunc(func(context.Context, string) (*authenticator.Response, bool, error) {
				return &authenticator.Response{User: tt.user}, true, nil
			})
			resp, ok, err := refuseReserved("test", inner, identityRules{allowed: allowed}).AuthenticateToken(context.Background(), "t")
			if ok != tt.wantOK || (err != nil) != tt.wantErr {
				t.Fatalf("got ok=%v err=%v, want ok=%v error=%v", ok, err, tt.wantOK, tt.wantErr)
			}
			if tt.wantErr && (resp != nil || !errors.Is(err, errRefused)) {
				t.Errorf("refusal returned %v, %v; want no user and errRefused", resp, err)
			}
		})
	}
}

func TestRefuseReservedPassesFailuresThrough(t *testing.T) {
	boom := errors.New("issuer unreachable")
	for _, tt := range []struct {
		name string
		ok   bool
		err  error
	}{{"not recognised", false, nil}, {"error", false, boom}} {
		t.Run(tt.name, func(t *testing.T) {
			inner := authenticator.TokenFunc(func(context.Context, string) (*authenticator.Response, bool, error) {
				return nil, tt.ok, tt.err
			})
			_, ok, err := refuseReserved("test", inner, identityRules{refusedName: func(string) string { return "no name is accepted" }}).AuthenticateToken(context.Background(), "t")
			if ok || !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Errorf("got ok=%v err=%v, want false, %v", ok, err, tt.err)
			}
		})
	}
}

// TestRefuseReservedExtras: extra keys reach kip's users lower-cased, as
// the upstream reads them, and an identity whose keys would not reach the
// upstream as the provider asserted them is refused whole, with a log line
// saying why.
func TestRefuseReservedExtras(t *testing.T) {
	tests := []struct {
		name      string
		extra     map[string][]string
		want      map[string][]string // nil with wantWhy
		wantWhy   string              // the reason kip logs
		untouched bool                // the provider's user is passed on as it is
	}{
		{name: "no extras", untouched: true},
		{name: "lower-case keys are kept", extra: map[string][]string{"example.com/team": {"a", "b"}, "scopes": {"x"}},
			want: map[string][]string{"example.com/team": {"a", "b"}, "scopes": {"x"}}, untouched: true},
		{name: "upper-case key is lower-cased", extra: map[string][]string{"Example.COM/Team": {"a"}},
			want: map[string][]string{"example.com/team": {"a"}}},
		{name: "only ASCII letters are lower-cased", extra: map[string][]string{"Ärger/İ/\u212a/ÖL": {"v"}},
			want: map[string][]string{"Ärger/İ/\u212a/Öl": {"v"}}},
		{name: "other bytes are kept", extra: map[string][]string{"A%2F bä": {"v"}},
			want: map[string][]string{"a%2f bä": {"v"}}},
		{name: "control character in a key", extra: map[string][]string{"example.com/a\nb": {"v"}}, wantWhy: "contains control characters"},
		{name: "control character in a value", extra: map[string][]string{"example.com/a": {"blue\r\nImpersonate-Group: system:masters"}}, wantWhy: "contains control characters"},
		{name: "NUL in a key", extra: map[string][]string{"a\x00": {"v"}}, wantWhy: "contains control characters"},
		{name: "invalid UTF-8 in a key", extra: map[string][]string{"a\xff": {"v"}}, wantWhy: "not valid UTF-8"},
		{name: "empty key", extra: map[string][]string{"": {"v"}}, wantWhy: "an extra key is empty"},
		{name: "empty key beside good ones", extra: map[string][]string{"team": {"a"}, "": {}}, wantWhy: "an extra key is empty"},
		{name: "keys that differ only in case", extra: map[string][]string{"team": {"a"}, "Team": {"system:masters"}},
			wantWhy: `the extra keys \"Team\" and \"team\" are the same key upstream`},
		{name: "three spellings of one key", extra: map[string][]string{"TEAM": {"a"}, "Team": {"b"}, "team": {"c"}},
			wantWhy: `the extra keys \"TEAM\" and \"Team\" are the same key upstream`},
		{name: "collision on credential-id", extra: map[string][]string{
			"authentication.kubernetes.io/credential-id": {"JTI=a"}, "Authentication.Kubernetes.IO/Credential-ID": {"JTI=b"}},
			wantWhy: `are the same key upstream`},
		{name: "non-ASCII letters that differ only in case stay apart", extra: map[string][]string{"ä": {"a"}, "Ä": {"b"}},
			want: map[string][]string{"ä": {"a"}, "Ä": {"b"}}, untouched: true},
		{name: "forged original caller in upper case", extra: map[string][]string{"ORIGINAL-USER-INFO.KIP.DEV": {"{}"}},
			wantWhy: "reserved for kip's record of the original caller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := captureLogs(t)
			in := &user.DefaultInfo{Name: "alice", UID: "u-1", Groups: []string{"devs"}, Extra: tt.extra}
			inner := authenticator.TokenFunc(func(context.Context, string) (*authenticator.Response, bool, error) {
				return &authenticator.Response{User: in, Audiences: authenticator.Audiences{"kip"}}, true, nil
			})
			resp, ok, err := refuseReserved("webhook", inner, identityRules{}).AuthenticateToken(context.Background(), "t")
			klog.Flush()
			if tt.wantWhy != "" {
				if ok || resp != nil || !errors.Is(err, errRefused) {
					t.Fatalf("got %v, %v, %v; want a refusal", resp, ok, err)
				}
				if !strings.Contains(logs.String(), tt.wantWhy) || !strings.Contains(logs.String(), `source="webhook"`) {
					t.Errorf("the log does not say %q for the webhook:\n%s", tt.wantWhy, logs)
				}
				return
			}
			if !ok || err != nil {
				t.Fatalf("got ok=%v err=%v, want the user", ok, err)
			}
			got := resp.User
			if got.GetName() != "alice" || got.GetUID() != "u-1" || !reflect.DeepEqual(got.GetGroups(), []string{"devs"}) {
				t.Errorf("user = %#v, want alice's name, UID and groups", got)
			}
			if len(tt.want) > 0 || len(got.GetExtra()) > 0 {
				if !reflect.DeepEqual(got.GetExtra(), tt.want) {
					t.Errorf("extra = %q, want %q", got.GetExtra(), tt.want)
				}
			}
			if (got == user.Info(in)) != tt.untouched {
				t.Errorf("user passed on unchanged: %v, want %v", got == user.Info(in), tt.untouched)
			}
			if !reflect.DeepEqual(resp.Audiences, authenticator.Audiences{"kip"}) {
				t.Errorf("audiences = %v, want them kept", resp.Audiences)
			}
		})
	}
}

// TestRefuseRefusedUsername: a username the configured check refuses
// (kip's own upstream name) fails the whole token with the check's reason
// in the log; the check sees the name as the provider asserted it.
func TestRefuseRefusedUsername(t *testing.T) {
	ownName := func(name string) string {
		if name == "kip-proxy" {
			return `the username "kip-proxy" is kip's own upstream username`
		}
		return ""
	}
	tests := []struct {
		name    string
		check   func(string) string
		user    string
		wantWhy string
	}{
		{name: "another user", check: ownName, user: "alice"},
		{name: "check turned off", user: "kip-proxy"},
		{name: "kip's own name", check: ownName, user: "kip-proxy", wantWhy: `the username \"kip-proxy\" is kip's own upstream username`},
		{name: "a reserved name is refused before the check", check: ownName, user: "system:kube-proxy", wantWhy: "reserved system: namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := captureLogs(t)
			inner := authenticator.TokenFunc(func(context.Context, string) (*authenticator.Response, bool, error) {
				return &authenticator.Response{User: &user.DefaultInfo{Name: tt.user}}, true, nil
			})
			resp, ok, err := refuseReserved("oidc", inner, identityRules{refusedName: tt.check}).AuthenticateToken(context.Background(), "t")
			klog.Flush()
			if tt.wantWhy == "" {
				if !ok || err != nil || resp.User.GetName() != tt.user {
					t.Fatalf("got %v, %v, %v; want %s accepted", resp, ok, err, tt.user)
				}
				return
			}
			if ok || resp != nil || !errors.Is(err, errRefused) {
				t.Fatalf("got %v, %v, %v; want a refusal", resp, ok, err)
			}
			if !strings.Contains(logs.String(), tt.wantWhy) || !strings.Contains(logs.String(), `source="oidc"`) {
				t.Errorf("the log does not say %q for oidc:\n%s", tt.wantWhy, logs)
			}
		})
	}
}

// captureLogs sends klog's output to a buffer for the rest of the test.
func captureLogs(t *testing.T) *bytes.Buffer {
	t.Helper()
	var out bytes.Buffer
	klog.LogToStderr(false)
	klog.SetOutput(&out)
	t.Cleanup(func() {
		klog.SetOutput(os.Stderr)
		klog.LogToStderr(true)
	})
	return &out
}
