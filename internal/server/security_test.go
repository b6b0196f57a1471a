package server

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kip-proxy/kip/internal/authn"
)

// testCerts are self-signed certificates for the tests of this file,
// made once: an RSA key costs a tenth of a second.
type testCerts struct{ clientCA, signerCA, serving, servingKey []byte }

func newTestCerts(t *testing.T) testCerts {
	t.Helper()
	clientCA, _ := selfSigned(t, "client-ca")
	signerCA, _ := selfSigned(t, "signer-ca")
	serving, servingKey := selfSigned(t, "localhost")
	return testCerts{clientCA: clientCA, signerCA: signerCA, serving: serving, servingKey: servingKey}
}

func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// staticCA is a CA source that holds certPEM.
func staticCA(t *testing.T, name string, certPEM []byte) dynamiccertificates.CAContentProvider {
	t.Helper()
	ca, err := dynamiccertificates.NewStaticCAContent(name, certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// builtSecurity is what newSecurity returns, without an upstream to ask:
// a client CA, a signer CA, an authenticator that knows nobody and an
// authorizer that denies everything.
func builtSecurity(t *testing.T, certs testCerts) *security {
	t.Helper()
	clientCA := staticCA(t, "client-ca", certs.clientCA)
	signerCA := staticCA(t, "signer-ca", certs.signerCA)
	nobody := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) { return nil, false, nil })
	cas := clientCAs{subject: []dynamiccertificates.CAContentProvider{clientCA}, subjectUnion: authn.UnionOf(clientCA), signer: signerCA}
	cas.handshake = authn.UnionOf(cas.all()...)
	return &security{
		authenticator: &kipAuthenticator{nobody},
		authorizer:    &kipAuthorizer{authorizerfactory.NewAlwaysDenyAuthorizer()},
		cas:           cas,
		credentials:   &kipCredentials{},
	}
}

// genericConfig is a generic config as kip's options make it: a secure
// port on loopback with a self-signed certificate.
func genericConfig(t *testing.T, certs testCerts) *genericapiserver.Config {
	t.Helper()
	serving, err := dynamiccertificates.NewStaticCertKeyContent("serving", certs.serving, certs.servingKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	c := NewGenericConfig()
	c.SecureServing = &genericapiserver.SecureServingInfo{Listener: ln, Cert: serving}
	return c
}

// TestNewGenericServerFailsClosed hands kip's security to a real generic
// server and checks that construction fails when a piece is missing, or
// when anything between the wiring and the finished server (a default, a
// wrapper, a filter's setup) swapped one: kip then refuses to serve
// rather than serve with a security it did not build.
func TestNewGenericServerFailsClosed(t *testing.T) {
	certs := newTestCerts(t)
	anonymous := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
		return &authenticator.Response{User: &user.DefaultInfo{Name: user.Anonymous}}, true, nil
	})
	tests := []struct {
		name string
		// before spoils what newSecurity returned or the config it is
		// wired into; during runs while the generic server is built.
		before  func(*genericapiserver.Config, *security)
		during  func(*genericapiserver.Config, *security)
		wantErr string
	}{
		{name: "every piece built and kept"},
		{
			name:    "nil authenticator",
			before:  func(_ *genericapiserver.Config, s *security) { s.authenticator = nil },
			wantErr: "no request authenticator",
		},
		{
			name:    "empty authenticator",
			before:  func(_ *genericapiserver.Config, s *security) { s.authenticator = &kipAuthenticator{} },
			wantErr: "no request authenticator",
		},
		{
			name:    "nil authorizer",
			before:  func(_ *genericapiserver.Config, s *security) { s.authorizer = nil },
			wantErr: "no authorizer",
		},
		{
			name:    "no client-CA union while client certificates are trusted",
			before:  func(_ *genericapiserver.Config, s *security) { s.cas.handshake = nil },
			wantErr: "no client CAs for the TLS handshake",
		},
		{
			name:    "no secure port",
			before:  func(c *genericapiserver.Config, _ *security) { c.SecureServing = nil },
			wantErr: "only over TLS",
		},
		{
			name: "a loopback token makes Complete wrap the authenticator",
			before: func(c *genericapiserver.Config, _ *security) {
				c.LoopbackClientConfig = &rest.Config{BearerToken: "privileged-loopback-token"}
			},
			wantErr: "not kip's authenticator",
		},
		{
			name:    "authenticator replaced by one that lets anonymous in",
			during:  func(c *genericapiserver.Config, _ *security) { c.Authentication.Authenticator = anonymous },
			wantErr: "not kip's authenticator",
		},
		{
			name: "authenticator wrapped",
			during: func(c *genericapiserver.Config, _ *security) {
				c.Authentication.Authenticator = union.New(c.Authentication.Authenticator, anonymous)
			},
			wantErr: "not kip's authenticator",
		},
		{
			name: "authorizer swapped for allow-all",
			during: func(c *genericapiserver.Config, _ *security) {
				c.Authorization.Authorizer = authorizerfactory.NewAlwaysAllowAuthorizer()
			},
			wantErr: "not kip's authorizer",
		},
		{
			name:    "authorizer removed",
			during:  func(c *genericapiserver.Config, _ *security) { c.Authorization.Authorizer = nil },
			wantErr: "not kip's authorizer",
		},
		{
			name:    "handshake asks for no client certificate",
			during:  func(c *genericapiserver.Config, _ *security) { c.SecureServing.ClientCA = nil },
			wantErr: "client certificates from kip's client CAs",
		},
		{
			name: "handshake CAs without kip's signer",
			during: func(c *genericapiserver.Config, s *security) {
				c.SecureServing.ClientCA = s.cas.subjectUnion
			},
			wantErr: "client certificates from kip's client CAs",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, sec := genericConfig(t, certs), builtSecurity(t, certs)
			if tt.before != nil {
				tt.before(c, sec)
			}
			_, err := newGenericServer(c, sec, func(c *genericapiserver.Config) http.Handler {
				if tt.during != nil {
					tt.during(c, sec)
				}
				return http.NotFoundHandler()
			})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("newGenericServer: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("newGenericServer: %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// TestClientCAs checks that the client-CA union the handshake names holds
// kip's signer beside the subject CAs, while the authenticator's subject
// union and the readiness sources leave the signer out.
func TestClientCAs(t *testing.T) {
	certs := newTestCerts(t)
	clientPEM, signerPEM := certs.clientCA, certs.signerCA
	file := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(file, clientPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	signerCA := staticCA(t, "signer-ca", signerPEM)
	for _, tt := range []struct {
		name          string
		signer        dynamiccertificates.CAContentProvider
		wantHandshake [][]byte
		wantAll       int
	}{
		{"with a signer", signerCA, [][]byte{clientPEM, signerPEM}, 2},
		{"without a signer", nil, [][]byte{clientPEM}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cas, err := newClientCAs(Config{ClientCAFile: file}, nil, tt.signer)
			if err != nil {
				t.Fatal(err)
			}
			handshake := cas.handshake.CurrentCABundleContent()
			for _, want := range tt.wantHandshake {
				if !bytes.Contains(handshake, bytes.TrimSpace(want)) {
					t.Errorf("the handshake's CAs lack\n%s", want)
				}
			}
			if len(cas.subject) != 1 || bytes.Contains(cas.subjectUnion.CurrentCABundleContent(), bytes.TrimSpace(signerPEM)) {
				t.Errorf("the subject CAs hold the signer, or not the client CA file alone: %d sources", len(cas.subject))
			}
			if got := len(cas.all()); got != tt.wantAll {
				t.Errorf("%d sources are checked for having loaded, want %d", got, tt.wantAll)
			}
		})
	}
}
