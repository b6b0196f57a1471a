package caller

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// knownKipName is an KipName that has learned name.
func knownKipName(name string) *KipName {
	o := &KipName{}
	o.set(name, nil)
	return o
}

func TestRefuseKipName(t *testing.T) {
	kipNamed := &upstreamVerifiedUser{Info: &user.DefaultInfo{Name: "kip-proxy"}, token: "kip's-own-token"}
	boom := errors.New("certificate verification failed")
	tests := []struct {
		name    string
		own     *KipName
		user    user.Info
		ok      bool
		err     error
		wantOK  bool
		wantErr error // nil: no error; errKipName for kip's refusal
	}{
		{name: "another user", own: knownKipName("kip-proxy"), user: &user.DefaultInfo{Name: "alice"}, ok: true, wantOK: true},
		{name: "a name that only starts like kip's", own: knownKipName("kip-proxy"), user: &user.DefaultInfo{Name: "kip-proxy-2"}, ok: true, wantOK: true},
		{name: "certificate for kip's own name", own: knownKipName("kip-proxy"), user: &user.DefaultInfo{Name: "kip-proxy", Groups: []string{"system:authenticated"}}, ok: true, wantErr: errKipName},
		{name: "kip's name in other letter case", own: knownKipName("kip-proxy"), user: &user.DefaultInfo{Name: "Kip-Proxy"}, ok: true, wantErr: errKipName},
		{name: "kip's ServiceAccount name", own: knownKipName("system:serviceaccount:kip-system:kip"), user: &user.DefaultInfo{Name: "system:serviceaccount:kip-system:kip"}, ok: true, wantErr: errKipName},
		{name: "own name not learned yet", own: &KipName{}, user: &user.DefaultInfo{Name: "alice"}, ok: true, wantErr: errKipName},
		{name: "upstream-verified token is passed through, even named like kip", own: knownKipName("kip-proxy"), user: kipNamed, ok: true, wantOK: true},
		{name: "upstream-verified token before the name is known", own: &KipName{}, user: kipNamed, ok: true, wantOK: true},
		{name: "refusal passes through", own: knownKipName("kip-proxy"), wantOK: false},
		{name: "error passes through", own: knownKipName("kip-proxy"), err: boom, wantErr: boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
				if tt.user == nil {
					return nil, tt.ok, tt.err
				}
				return &authenticator.Response{User: tt.user}, tt.ok, tt.err
			})
			resp, ok, err := RefuseKipName(tt.own, inner).AuthenticateRequest(httptest.NewRequest(http.MethodGet, "/api", nil))
			if ok != tt.wantOK || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("got ok=%v err=%v, want ok=%v err=%v", ok, err, tt.wantOK, tt.wantErr)
			}
			if tt.wantOK && resp.User != tt.user {
				t.Errorf("user = %v, want %v unchanged", resp.User, tt.user)
			}
			if errors.Is(tt.wantErr, errKipName) && resp != nil {
				t.Errorf("a refusal returned %v", resp)
			}
		})
	}
}

func TestKipNameReason(t *testing.T) {
	tests := []struct {
		name, own, user, want string
		unknown               bool
	}{
		{name: "another user", own: "kip-proxy", user: "alice"},
		{name: "empty name is not kip's", own: "kip-proxy", user: ""},
		{name: "kip's name", own: "kip-proxy", user: "kip-proxy", want: `the username "kip-proxy" is kip's own upstream username`},
		{name: "kip's name shouted", own: "kip-proxy", user: "KIP-PROXY", want: "kip's own upstream username"},
		{name: "unknown", unknown: true, user: "alice", want: "not learned its own upstream username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &KipName{}
			if !tt.unknown {
				o.set(tt.own, nil)
			}
			got := o.Reason(tt.user)
			if (got == "") != (tt.want == "") || !strings.Contains(got, tt.want) {
				t.Errorf("Reason(%q) = %q, want %q", tt.user, got, tt.want)
			}
		})
	}
}

// TestKipNameLearn: kip asks the upstream with a SelfSubjectReview until
// it answers with a user; until then the readiness check fails and says
// why, and every identity is refused.
func TestKipNameLearn(t *testing.T) {
	tests := []struct {
		name     string
		answers  []error // one per question before the name: the error, or nil for an empty answer
		wantName string  // "" when kip must stay without a name
	}{
		{name: "first answer", wantName: "kip-proxy"},
		{name: "after failures", answers: []error{errors.New("connection refused"), errors.New("503")}, wantName: "kip-proxy"},
		{name: "an answer with no user is no answer", answers: []error{nil}, wantName: "kip-proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked atomic.Int32
			client := fake.NewClientset()
			client.PrependReactor("create", "selfsubjectreviews", func(clienttesting.Action) (bool, runtime.Object, error) {
				n := int(asked.Add(1)) - 1
				if n < len(tt.answers) {
					if tt.answers[n] != nil {
						return true, nil, tt.answers[n]
					}
					return true, &authenticationv1.SelfSubjectReview{}, nil
				}
				return true, &authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{
					UserInfo: authenticationv1.UserInfo{Username: tt.wantName}}}, nil
			})
			o := &KipName{}
			if err := o.Check(nil); err == nil {
				t.Fatal("ready before learning the name")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			o.Learn(ctx, client.AuthenticationV1(), time.Millisecond, 4*time.Millisecond)
			got, known := o.Get()
			if !known || got != tt.wantName || o.Check(nil) != nil {
				t.Fatalf("Get() = %q, %v; Check() = %v; want %q and ready", got, known, o.Check(nil), tt.wantName)
			}
			if int(asked.Load()) != len(tt.answers)+1 {
				t.Errorf("asked %d times, want %d", asked.Load(), len(tt.answers)+1)
			}
		})
	}
}

// TestKipNameLearnFailsClosed: while the upstream does not answer, kip
// stays unready, the check names the error, and Learn ends with ctx.
func TestKipNameLearnFailsClosed(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("create", "selfsubjectreviews", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("selfsubjectreviews.authentication.k8s.io is forbidden")
	})
	o := &KipName{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	o.Learn(ctx, client.AuthenticationV1(), time.Millisecond, 5*time.Millisecond) // returns once ctx ends
	if _, known := o.Get(); known {
		t.Fatal("a name was learned from failures")
	}
	if err := o.Check(nil); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("Check() = %v, want the upstream's error", err)
	}
	if why := o.Reason("alice"); why == "" {
		t.Error("an identity was accepted without kip knowing its own name")
	}
}
