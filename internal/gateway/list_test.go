package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/clusters"
	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// listPolicies are the clusters of the list tests and who may reach them.
func listPolicies(t *testing.T) map[string]*clusters.Policy {
	t.Helper()
	must := func(p *clusters.Policy, err error) *clusters.Policy {
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return map[string]*clusters.Policy{
		"prod":    must(clusters.CompilePolicy("", []string{"prod-admins"})),
		"staging": must(clusters.CompilePolicy("'dev' in user.groups", nil)),
		"shared":  must(clusters.CompilePolicy("", nil)),
		"secret":  must(clusters.CompilePolicy("user.username == 'root'", nil)),
		"broken":  must(clusters.CompilePolicy("user.extra['team'][0] == 'x'", nil)), // fails for users without it: refused
	}
}

// reachableUnder lists the clusters whose policy allows u, as the server does.
func reachableUnder(policies map[string]*clusters.Policy) func(user.Info) []string {
	return func(u user.Info) []string {
		var names []string
		for name, p := range policies {
			if ok, _ := p.Allows(u); ok {
				names = append(names, name)
			}
		}
		return names
	}
}

// tokenUsers is a bearer token authenticator; "explode" is an
// authenticator error, as a failing webhook would give.
func tokenUsers() authenticator.Request {
	users := map[string]user.Info{
		"alice": &user.DefaultInfo{Name: "alice", Groups: []string{"prod-admins", "dev"}},
		"bob":   &user.DefaultInfo{Name: "bob", Groups: []string{"dev"}},
		"eve":   &user.DefaultInfo{Name: "eve"},
	}
	return bearertoken.New(authenticator.TokenFunc(func(_ context.Context, tok string) (*authenticator.Response, bool, error) {
		if tok == "explode" {
			return nil, false, errors.New("the webhook is down")
		}
		u, ok := users[tok]
		if !ok {
			return nil, false, nil
		}
		return &authenticator.Response{User: u}, true, nil
	}))
}

// behindAuthentication is the list as kip serves it: behind an
// authentication filter, whose refusal is kube-apiserver's 401.
func behindAuthentication(list http.Handler, auth authenticator.Request) http.Handler {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	failed := genericapifilters.Unauthorized(serializer.NewCodecFactory(scheme))
	h := genericapifilters.WithAuthentication(list, auth, failed, nil, nil)
	return genericapifilters.WithRequestInfo(h, &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")})
}

func TestClusterList(t *testing.T) {
	srv := httptest.NewServer(behindAuthentication(NewClusterList(reachableUnder(listPolicies(t))), tokenUsers()))
	t.Cleanup(srv.Close)

	tests := []struct {
		name, method, path, token string
		wantCode                  int
		wantReason                metav1.StatusReason
		wantNames                 []string
	}{
		{name: "a user in every group sees what the policies allow, sorted", token: "alice", wantCode: 200, wantNames: []string{"prod", "shared", "staging"}},
		{name: "a user allowed only some clusters sees only those", token: "bob", wantCode: 200, wantNames: []string{"shared", "staging"}},
		{name: "a user in no group sees the open clusters only", token: "eve", wantCode: 200, wantNames: []string{"shared"}},
		{name: "no credentials", wantCode: 401, wantReason: metav1.StatusReasonUnauthorized},
		{name: "a token nobody issued", token: "mallory", wantCode: 401, wantReason: metav1.StatusReasonUnauthorized},
		{name: "the authenticator fails", token: "explode", wantCode: 401, wantReason: metav1.StatusReasonUnauthorized},
		{name: "POST with a valid token", method: http.MethodPost, token: "alice", wantCode: 405, wantReason: metav1.StatusReasonMethodNotAllowed},
		{name: "DELETE with a valid token", method: http.MethodDelete, token: "alice", wantCode: 405, wantReason: metav1.StatusReasonMethodNotAllowed},
		{name: "POST without credentials learns nothing", method: http.MethodPost, wantCode: 401, wantReason: metav1.StatusReasonUnauthorized},
		{name: "a path below the list", path: ListPath + "/prod", token: "alice", wantCode: 404, wantReason: metav1.StatusReasonNotFound},
		{name: "the list path behind a cluster prefix", path: "/clusters/prod" + ListPath, token: "alice", wantCode: 404, wantReason: metav1.StatusReasonNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodGet
			}
			if path == "" {
				path = ListPath
			}
			req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantCode, body)
			}
			if tt.wantCode != http.StatusOK {
				checkStatus(t, body, tt.wantCode, tt.wantReason)
				if tt.wantCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodGet {
					t.Errorf("Allow %q, want GET", resp.Header.Get("Allow"))
				}
				return
			}
			if got := resp.Header.Get("Cache-Control"); !strings.Contains(got, "private") {
				t.Errorf("Cache-Control %q: a per-user answer must not be shared", got)
			}
			var list loginv1alpha1.ClusterList
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatalf("not a ClusterList: %v: %s", err, body)
			}
			if list.Kind != "ClusterList" || list.APIVersion != "login.kip.dev/v1alpha1" {
				t.Errorf("kind %q apiVersion %q", list.Kind, list.APIVersion)
			}
			var names []string
			for _, c := range list.Items {
				names = append(names, c.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("clusters %v, want %v", names, tt.wantNames)
			}
		})
	}
}

// TestClusterListWithoutAuthenticationFailsClosed: a list that a wiring
// mistake put in front of no authentication refuses everyone.
func TestClusterListWithoutAuthenticationFailsClosed(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, ListPath, nil)
	r.Header.Set("Authorization", "Bearer alice")
	NewClusterList(reachableUnder(listPolicies(t))).ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("code %d, want 401: %s", w.Code, w.Body)
	}
	checkStatus(t, w.Body.Bytes(), http.StatusUnauthorized, metav1.StatusReasonUnauthorized)
}

func checkStatus(t *testing.T, body []byte, code int, reason metav1.StatusReason) {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("not a Status: %v: %s", err, body)
	}
	if st.Kind != "Status" || st.Status != metav1.StatusFailure || st.Code != int32(code) || st.Reason != reason {
		t.Errorf("Status %+v, want code %d reason %s", st, code, reason)
	}
	if strings.Contains(string(body), "webhook is down") {
		t.Errorf("the Status tells the caller why its credential failed: %s", body)
	}
}

func TestClusterListItems(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		want  string
	}{
		{name: "none is an empty array, not null", names: nil, want: `"items":[]`},
		{name: "sorted and without duplicates", names: []string{"b", "a", "b"}, want: `"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(clusterList(tt.names))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tt.want) {
				t.Errorf("%s, want it to contain %s", b, tt.want)
			}
		})
	}
}

func TestNewClusterListNeedsAPolicy(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("built a cluster list without a policy")
		}
	}()
	NewClusterList(nil)
}
