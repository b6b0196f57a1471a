package clusterlist

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
	"k8s.io/client-go/rest"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

const listPath = "/apis/login.kip.dev/v1alpha1/clusters"

// listServer is a kip gateway's list endpoint that accepts the token
// "good" and lists names to it; it records the Authorization it saw.
func listServer(t *testing.T, code int, names ...string) (*rest.Config, *[]string) {
	var seen []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != listPath {
			code = http.StatusNotFound
		} else if r.Header.Get("Authorization") != "Bearer good" {
			code = http.StatusUnauthorized
		}
		if code != http.StatusOK {
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(metav1.Status{
				TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Code: int32(code),
				Reason: metav1.StatusReason(http.StatusText(code)),
			})
			return
		}
		list := loginv1alpha1.ClusterList{TypeMeta: metav1.TypeMeta{Kind: "ClusterList", APIVersion: "login.kip.dev/v1alpha1"}}
		for _, n := range names {
			list.Items = append(list.Items, loginv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: n}})
		}
		_ = json.NewEncoder(w).Encode(list)
	}))
	t.Cleanup(srv.Close)
	cfg := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: serverCA(t, srv)}}
	return cfg, &seen
}

func serverCA(t *testing.T, srv *httptest.Server) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func TestGet(t *testing.T) {
	tests := []struct {
		name    string
		code    int
		names   []string
		token   string
		host    string
		want    []string
		wantErr string
	}{
		{name: "sorted, without duplicates", code: 200, names: []string{"prod", "dev", "prod"}, token: "good", want: []string{"dev", "prod"}},
		{name: "none reachable", code: 200, token: "good", want: []string{}},
		{name: "a credential kip refuses", code: 200, names: []string{"prod"}, token: "bad", wantErr: "did not accept your credential"},
		{name: "not a gateway", code: 404, token: "good", wantErr: "it is not a gateway"},
		{name: "a failing kip", code: 500, token: "good", wantErr: "listing the clusters of kip"},
		{name: "a name that would leave its path segment", code: 200, names: []string{"prod", "../other"}, token: "good", wantErr: "cannot be used"},
		{name: "a name with a slash", code: 200, names: []string{"a/b"}, token: "good", wantErr: "cannot be used"},
		{name: "an empty name", code: 200, names: []string{""}, token: "good", wantErr: "cannot be used"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kip, seen := listServer(t, tc.code, tc.names...)
			got, err := Get(context.Background(), kip, &clientauthv1.ExecCredentialStatus{Token: tc.token})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error with %q, got %v (%v)", tc.wantErr, err, got)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if len(*seen) != 1 || (*seen)[0] != "GET "+listPath+" Bearer "+tc.token {
				t.Errorf("kip saw %q, want one GET of the list with the credential", *seen)
			}
		})
	}
}

func TestGetDropsKipConfigCredentials(t *testing.T) {
	kip, seen := listServer(t, 200, "prod")
	kip.BearerToken = "someone-elses"
	kip.Username, kip.Password = "admin", "secret"
	if _, err := Get(context.Background(), kip, &clientauthv1.ExecCredentialStatus{Token: "good"}); err != nil {
		t.Fatal(err)
	}
	if (*seen)[0] != "GET "+listPath+" Bearer good" {
		t.Errorf("kip saw %q: only the signed-in user's credential may be sent", *seen)
	}
	if _, err := Get(context.Background(), kip, nil); err == nil {
		t.Error("listed clusters without a credential")
	}
}
