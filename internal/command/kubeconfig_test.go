package command

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kip-proxy/kip/internal/gateway"
	"github.com/kip-proxy/kip/internal/login/execcredential"
	"github.com/kip-proxy/kip/internal/rig/logintest"
)

// fakeGateway is a kip gateway as kip kubeconfig sees it: the credential
// exchange (a fake kip's) and the real cluster list, which accepts that
// kip's certificates and the bearer tokens in tokens. Requests to a
// cluster are counted: listing must not touch any.
type fakeGateway struct {
	srv        *httptest.Server
	kip        *logintest.Kip
	caFile     string
	toClusters atomic.Int32
}

func newFakeGateway(t *testing.T, tokens map[string]string, reachable map[string][]string) *fakeGateway {
	g := &fakeGateway{kip: logintest.NewKip(t, func(tok string) bool { return tok == "exchange-me" })}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(g.kip.ClientCA())
	certs := x509request.New(x509.VerifyOptions{Roots: clientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		x509request.CommonNameUserConversion)
	bearer := bearertoken.New(authenticator.TokenFunc(func(_ context.Context, tok string) (*authenticator.Response, bool, error) {
		name, ok := tokens[tok]
		if !ok {
			return nil, false, nil
		}
		return &authenticator.Response{User: &user.DefaultInfo{Name: name}}, true, nil
	}))
	exchange := httputil.NewSingleHostReverseProxy(mustParse(t, g.kip.Server.URL))
	exchange.Transport = g.kip.Server.Client().Transport

	mux := http.NewServeMux()
	// kip puts the list behind an authentication filter; this one is as
	// small as a fake can have it.
	auth := union.New(certs, bearer)
	list := gateway.NewClusterList(func(u user.Info) []string { return reachable[u.GetName()] })
	mux.HandleFunc(gateway.ListPath, func(w http.ResponseWriter, r *http.Request) {
		if resp, ok, _ := auth.AuthenticateRequest(r); ok {
			r = r.WithContext(request.WithUser(r.Context(), resp.User))
		}
		list.ServeHTTP(w, r)
	})
	mux.Handle(logintest.ExchangePath, exchange)
	mux.HandleFunc("/clusters/", func(w http.ResponseWriter, _ *http.Request) {
		g.toClusters.Add(1)
		http.Error(w, "a cluster", http.StatusTeapot)
	})
	g.srv = httptest.NewUnstartedServer(mux)
	g.srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12}
	g.srv.StartTLS()
	t.Cleanup(g.srv.Close)
	g.caFile = filepath.Join(t.TempDir(), "kip-ca.pem")
	if err := os.WriteFile(g.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// execute runs kip with args and returns stdout, stderr and the error.
func execute(args ...string) (string, string, error) {
	root := NewRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestKubeconfigAllClusters(t *testing.T) {
	tokens := map[string]string{"bob-token": "bob", "nobody-token": "nobody"}
	reachable := map[string][]string{"alice": {"staging", "prod"}, "bob": {"dev"}}
	tests := []struct {
		name      string
		token     string
		mode      string
		server    func(*fakeGateway) string
		want      []string
		wantErr   string
		wantIssue int32
	}{
		{name: "a certificate from the exchange lists alice's clusters", token: "exchange-me", mode: "certificate",
			want: []string{"prod", "staging"}, wantIssue: 1},
		{name: "a token in token mode lists bob's", token: "bob-token", mode: "token", want: []string{"dev"}},
		{name: "a token kip does not know", token: "mallory", mode: "token", wantErr: "did not accept your credential"},
		{name: "a token the exchange refuses", token: "mallory", mode: "certificate", wantErr: "did not accept the token"},
		{name: "a user who may reach no cluster", token: "nobody-token", mode: "token", wantErr: "lists no cluster you may reach"},
		{name: "a kip that is not a gateway", token: "exchange-me", mode: "certificate",
			server: func(g *fakeGateway) string { return g.kip.Server.URL }, wantErr: "it is not a gateway"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGateway(t, tokens, reachable)
			server, caFile := g.srv.URL, g.caFile
			if tc.server != nil {
				server = tc.server(g)
				caFile = filepath.Join(t.TempDir(), "ca.pem")
				if err := os.WriteFile(caFile, g.kip.ServingCAPEM(), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("KIP_TEST_TOKEN", tc.token)
			cacheDir := t.TempDir()
			out, stderr, err := execute("kubeconfig", "--server="+server+"/", "--ca-file="+caFile, "--token-env=KIP_TEST_TOKEN",
				"--mode="+tc.mode, "--cache-dir="+cacheDir, "--kip-command=/usr/local/bin/kip", "--all-clusters")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error with %q, got %v\n%s", tc.wantErr, err, out)
				}
				if out != "" {
					t.Errorf("wrote a kubeconfig despite the error:\n%s", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			if !strings.Contains(stderr, strings.Join(tc.want, ", ")) {
				t.Errorf("stderr does not name the clusters: %s", stderr)
			}
			cfg, err := clientcmd.Load([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Contexts) != len(tc.want) || len(cfg.AuthInfos) != 1 || cfg.CurrentContext != "kip-"+tc.want[0] {
				t.Fatalf("contexts %v, users %v, current %q", cfg.Contexts, cfg.AuthInfos, cfg.CurrentContext)
			}
			exec := cfg.AuthInfos["kip"].Exec
			for _, name := range tc.want {
				cluster := cfg.Clusters[cfg.Contexts["kip-"+name].Cluster]
				if cluster.Server != g.srv.URL+"/clusters/"+name {
					t.Errorf("server of %s: %s", name, cluster.Server)
				}
				// kubectl runs the shared user's kip login for this
				// cluster: the sign-in made by kip kubeconfig serves it.
				t.Setenv(execcredential.EnvVar, logintest.ExecInfo(t, cluster.Server, cluster.CertificateAuthorityData))
				credOut, credErr, err := execute(exec.Args...)
				if err != nil || !strings.Contains(credOut, `"kind":"ExecCredential"`) {
					t.Fatalf("kip login for %s: %v\n%s%s", name, err, credOut, credErr)
				}
			}
			if g.kip.Issued() != tc.wantIssue {
				t.Errorf("kip issued %d certificates for %d clusters, want %d: one sign-in serves them all", g.kip.Issued(), len(tc.want), tc.wantIssue)
			}
			if g.toClusters.Load() != 0 {
				t.Errorf("signing in and listing reached a cluster %d times", g.toClusters.Load())
			}
		})
	}
}
