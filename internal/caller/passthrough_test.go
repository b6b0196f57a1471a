package caller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

func TestUpstreamVerified(t *testing.T) {
	sa := &user.DefaultInfo{
		Name:   "system:serviceaccount:ns:sa",
		UID:    "sa-uid",
		Groups: []string{"system:serviceaccounts", user.AllAuthenticated},
		Extra:  map[string][]string{"authentication.kubernetes.io/pod-name": {"p"}},
	}
	tests := []struct {
		name       string
		resp       *authenticator.Response
		ok         bool
		err        error
		wantOK     bool
		wantErr    bool
		wantMarked bool
	}{
		{
			name:       "accepted token is marked",
			resp:       &authenticator.Response{User: sa, Audiences: authenticator.Audiences{"https://kubernetes.default.svc"}},
			ok:         true,
			wantOK:     true,
			wantMarked: true,
		},
		{name: "rejected token", ok: false, wantOK: false},
		{name: "rejected token with a user anyway", resp: &authenticator.Response{User: sa}, ok: false, wantOK: false},
		{name: "TokenReview failed", err: errors.New("tokenreviews.authentication.k8s.io is forbidden"), wantErr: true},
		{name: "TokenReview failed but returned a user", resp: &authenticator.Response{User: sa}, ok: true, err: errors.New("timeout"), wantOK: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotToken string
			inner := authenticator.TokenFunc(func(_ context.Context, token string) (*authenticator.Response, bool, error) {
				gotToken = token
				return tt.resp, tt.ok, tt.err
			})
			resp, ok, err := UpstreamVerified(inner).AuthenticateToken(context.Background(), "the-token")
			if gotToken != "the-token" {
				t.Errorf("inner authenticator got %q", gotToken)
			}
			if ok != tt.wantOK || (err != nil) != tt.wantErr {
				t.Fatalf("got ok=%v err=%v, want ok=%v error=%v", ok, err, tt.wantOK, tt.wantErr)
			}
			var u user.Info
			if resp != nil {
				u = resp.User
			}
			token, marked := PassthroughToken(u)
			if marked != tt.wantMarked || (marked && token != "the-token") {
				t.Fatalf("PassthroughToken = %q, %v; want marked=%v", token, marked, tt.wantMarked)
			}
			if !tt.wantMarked {
				return
			}
			if u.GetName() != sa.Name || u.GetUID() != sa.UID || !reflect.DeepEqual(u.GetGroups(), sa.Groups) || !reflect.DeepEqual(u.GetExtra(), sa.Extra) {
				t.Errorf("marked user says %s/%s/%v/%v, want the upstream's answer unchanged", u.GetName(), u.GetUID(), u.GetGroups(), u.GetExtra())
			}
			if !reflect.DeepEqual(resp.Audiences, tt.resp.Audiences) {
				t.Errorf("audiences = %v, want %v", resp.Audiences, tt.resp.Audiences)
			}
			// The inner answer may be a cache entry shared by later
			// requests: it must stay as it was.
			if tt.resp.User != sa {
				t.Errorf("the inner authenticator's response was modified")
			}
		})
	}
}

func TestPassthroughToken(t *testing.T) {
	marked := &upstreamVerifiedUser{Info: &user.DefaultInfo{Name: "sa"}, token: "tok"}
	tests := []struct {
		name      string
		user      user.Info
		wantToken string
		wantOK    bool
	}{
		{name: "upstream-verified user", user: marked, wantToken: "tok", wantOK: true},
		{name: "nil user", user: nil},
		{name: "certificate user", user: &user.DefaultInfo{Name: "alice"}},
		{name: "verified user with an empty token", user: &upstreamVerifiedUser{Info: &user.DefaultInfo{Name: "sa"}}},
		{name: "a user wrapping a verified one (a later filter rewrote it)", user: struct{ user.Info }{marked}},
		{name: "same name, not verified", user: &user.DefaultInfo{Name: "sa"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, ok := PassthroughToken(tt.user)
			if token != tt.wantToken || ok != tt.wantOK {
				t.Errorf("PassthroughToken() = %q, %v; want %q, %v", token, ok, tt.wantToken, tt.wantOK)
			}
		})
	}
}

func TestUpstreamVerifiedUserHidesToken(t *testing.T) {
	const token = "s3cr3t-t0ken"
	resp, _, _ := UpstreamVerified(authenticator.TokenFunc(func(context.Context, string) (*authenticator.Response, bool, error) {
		return &authenticator.Response{User: &user.DefaultInfo{Name: "system:serviceaccount:ns:sa", Groups: []string{"g"}}}, true, nil
	})).AuthenticateToken(context.Background(), token)
	u := resp.User

	jsonUser, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%s", "%q", "%#v"} {
		for what, arg := range map[string]any{"user": u, "response": resp, "*response": *resp} {
			if got := fmt.Sprintf(format, arg); strings.Contains(got, token) {
				t.Errorf("fmt %s of the %s shows the token: %s", format, what, got)
			}
		}
	}
	if got := fmt.Sprint(u); got != "system:serviceaccount:ns:sa" {
		t.Errorf("String() = %q, want the user name", got)
	}
	if strings.Contains(string(jsonUser), token) {
		t.Errorf("JSON of the user shows the token: %s", jsonUser)
	}
}
