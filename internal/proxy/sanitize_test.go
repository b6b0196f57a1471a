package proxy

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestForbiddenInbound(t *testing.T) {
	tests := []struct {
		name    string
		header  http.Header
		wantErr string // the header name the error must name; "" means no error
	}{
		{name: "no headers", header: http.Header{}},
		{name: "nil header", header: nil},
		{
			name: "clean request",
			header: header(
				"Accept", "application/json",
				"User-Agent", "kubectl/v1.37.2",
				"Content-Type", "application/json",
				"Sec-WebSocket-Protocol", "v5.channel.k8s.io",
			),
		},
		{name: "names that only look alike", header: header("Authorizations", "x", "X-Impersonate-User", "root", "Impersonate", "root", "Impersonated-User", "root")},
		{name: "Authorization", header: header("Authorization", "Bearer stolen"), wantErr: "Authorization"},
		{name: "Authorization with any scheme", header: header("Authorization", "Basic YWRtaW46YWRtaW4="), wantErr: "Authorization"},
		{name: "empty Authorization", header: http.Header{"Authorization": {""}}, wantErr: "Authorization"},
		{name: "Authorization without values", header: http.Header{"Authorization": nil}, wantErr: "Authorization"},
		{name: "lower-case authorization inserted directly", header: http.Header{"authorization": {"Bearer stolen"}}, wantErr: "authorization"},
		{name: "Impersonate-User", header: header("IMPERSONATE-USER", "system:admin"), wantErr: "Impersonate-User"},
		{name: "Impersonate-Group", header: header("impersonate-group", "system:masters"), wantErr: "Impersonate-Group"},
		{name: "Impersonate-Uid", header: header("Impersonate-Uid", "0"), wantErr: "Impersonate-Uid"},
		{name: "Impersonate-Extra-*", header: header("impersonate-extra-foo", "bar"), wantErr: "Impersonate-Extra-Foo"},
		{name: "empty extra key", header: header("Impersonate-Extra-", "bar"), wantErr: "Impersonate-Extra-"},
		{name: "unknown Impersonate-* header", header: header("Impersonate-Anything", "some-value"), wantErr: "Impersonate-Anything"},
		{name: "non-canonical impersonate-uid inserted directly", header: http.Header{"impersonate-uid": {"0"}}, wantErr: "impersonate-uid"},
		{name: "mixed case inserted directly", header: http.Header{"iMpErSoNaTe-UsEr": {"root"}}, wantErr: "iMpErSoNaTe-UsEr"},
		{
			name:    "hidden among clean headers",
			header:  header("Accept", "*/*", "User-Agent", "kubectl", "X-Request-Id", "1", "Impersonate-User", "root", "Content-Type", "application/json"),
			wantErr: "Impersonate-User",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := forbiddenInbound(tt.header)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("forbiddenInbound() = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("forbiddenInbound() = nil, want an error naming %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("forbiddenInbound() = %v, want it to name %q", err, tt.wantErr)
			}
			if err != nil {
				// The value may be a credential: it must never reach a log line.
				for _, values := range tt.header {
					for _, v := range values {
						if v != "" && strings.Contains(err.Error(), v) {
							t.Errorf("forbiddenInbound() = %v, which repeats the value %q", err, v)
						}
					}
				}
			}
		})
	}
}

func TestDropSpoofable(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   http.Header
	}{
		{name: "nothing to drop", header: header("Accept", "application/json", "User-Agent", "kubectl"), want: header("Accept", "application/json", "User-Agent", "kubectl")},
		{name: "empty", header: http.Header{}, want: http.Header{}},
		{
			name: "front-proxy identity headers in any case",
			header: header(
				"X-Remote-User", "system:admin",
				"x-remote-group", "system:masters",
				"X-Remote-Extra-Foo", "bar",
				"X-REMOTE-UID", "0",
				"Accept", "application/json",
			),
			want: header("Accept", "application/json"),
		},
		{
			name: "non-canonical names inserted directly",
			header: http.Header{
				"x-remote-user":   {"system:admin"},
				"X-REMOTE-GROUP":  {"system:masters"},
				"x-forwarded-for": {"10.0.0.1"},
				"X-REAL-IP":       {"10.0.0.1"},
				"forwarded":       {"for=10.0.0.1"},
				"accept":          {"*/*"},
			},
			want: http.Header{"accept": {"*/*"}},
		},
		{
			name: "forwarding headers",
			header: header(
				"X-Forwarded-For", "10.0.0.1",
				"x-forwarded-host", "kube.internal",
				"X-Forwarded-Proto", "https",
				"X-Forwarded-Port", "443",
				"X-Forwarded-Client-Cert", "Hash=abc;Subject=\"CN=admin\"",
				"Forwarded", "for=10.0.0.1;proto=https",
				"X-Real-Ip", "10.0.0.1",
				"User-Agent", "kubectl",
			),
			want: header("User-Agent", "kubectl"),
		},
		{
			name: "names that merely contain a spoofable word stay",
			header: header(
				"X-Remote", "x",
				"Remote-User", "x",
				"X-Forwarded", "x",
				"X-Real-Ip-Hint", "x",
				"Forwarded-For", "x",
			),
			want: header(
				"X-Remote", "x",
				"Remote-User", "x",
				"X-Forwarded", "x",
				"X-Real-Ip-Hint", "x",
				"Forwarded-For", "x",
			),
		},
		{
			name:   "WebSocket subprotocols keep everything but the bearer token",
			header: header("Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io.dG9rZW4, v5.channel.k8s.io"),
			want:   header("Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
		},
		{
			name:   "bearer token in the middle, in upper case",
			header: header("Sec-WebSocket-Protocol", "v5.channel.k8s.io,BASE64URL.BEARER.AUTHORIZATION.K8S.IO.dG9rZW4 , v4.channel.k8s.io"),
			want:   header("Sec-WebSocket-Protocol", "v5.channel.k8s.io, v4.channel.k8s.io"),
		},
		{
			name:   "bearer token last",
			header: header("Sec-WebSocket-Protocol", "v4.channel.k8s.io, Base64Url.Bearer.Authorization.K8s.Io.dG9rZW4"),
			want:   header("Sec-WebSocket-Protocol", "v4.channel.k8s.io"),
		},
		{
			name: "subprotocols split over several header lines",
			header: header(
				"Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io.dG9rZW4",
				"Sec-WebSocket-Protocol", "v5.channel.k8s.io",
				"sec-websocket-protocol", "base64url.bearer.authorization.k8s.io.b3RoZXI, channel.k8s.io",
			),
			want: header("Sec-WebSocket-Protocol", "v5.channel.k8s.io, channel.k8s.io"),
		},
		{
			name:   "only a bearer token: the header goes",
			header: header("Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io.dG9rZW4", "Accept", "*/*"),
			want:   header("Accept", "*/*"),
		},
		{
			name:   "only a bearer token under a non-canonical name",
			header: http.Header{"sec-websocket-protocol": {"base64url.bearer.authorization.k8s.io.dG9rZW4"}},
			want:   http.Header{},
		},
		{
			name:   "bare prefix without a token is still dropped",
			header: header("Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io., v5.channel.k8s.io"),
			want:   header("Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
		},
		{
			name:   "empty list entries are dropped",
			header: header("Sec-WebSocket-Protocol", " , v5.channel.k8s.io,,"),
			want:   header("Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
		},
		{
			name:   "a protocol that only resembles the bearer prefix stays",
			header: header("Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io, bearer.v5.channel.k8s.io"),
			want:   header("Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io, bearer.v5.channel.k8s.io"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.header.Clone()
			if got == nil {
				got = http.Header{}
			}
			dropSpoofable(got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("dropSpoofable() left\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}
