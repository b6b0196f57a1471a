package tokenauth

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
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
			resp, ok, err := refuseReserved("test", inner, allowed).AuthenticateToken(context.Background(), "t")
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
			_, ok, err := refuseReserved("test", inner, nil).AuthenticateToken(context.Background(), "t")
			if ok || !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Errorf("got ok=%v err=%v, want false, %v", ok, err, tt.err)
			}
		})
	}
}
