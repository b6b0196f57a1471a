package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/caller"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a client certificate; change adjusts the template first.
func (ca *testCA) issue(t *testing.T, cn string, orgs []string, change func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if change != nil {
		change(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func credentialID(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return "X509SHA256=" + hex.EncodeToString(sum[:])
}

// fakeTokenReviewServer answers TokenReviews the way the upstream API
// server would, for a fixed set of valid tokens.
type fakeTokenReviewServer struct {
	valid map[string]authenticationv1.UserInfo

	mu   sync.Mutex
	seen []string
}

func (s *fakeTokenReviewServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	var review authenticationv1.TokenReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.seen = append(s.seen, review.Spec.Token)
	s.mu.Unlock()
	if u, ok := s.valid[review.Spec.Token]; ok {
		review.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: u}
	} else {
		review.Status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(&review)
}

func (s *fakeTokenReviewServer) tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func TestNew(t *testing.T) {
	ca, err := dynamiccertificates.NewStaticCAContent("test-ca", newTestCA(t, "test-ca").pem)
	if err != nil {
		t.Fatal(err)
	}
	reviews, err := authenticationv1client.NewForConfig(&rest.Config{Host: "https://upstream.test"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{name: "no method at all", cfg: Config{}, wantErr: true},
		{name: "no method, only tuning", cfg: Config{TokenCacheTTL: time.Minute, TokenReviewTimeout: time.Second}, wantErr: true},
		{name: "client certificates", cfg: Config{ClientCA: ca}},
		{name: "TokenReview", cfg: Config{TokenReview: reviews}},
		{name: "both", cfg: Config{ClientCA: ca, TokenReview: reviews, TokenCacheTTL: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg)
			if (err != nil) != tt.wantErr || (a == nil) != tt.wantErr {
				t.Errorf("New() = %v, %v; want error %v", a, err, tt.wantErr)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	ca := newTestCA(t, "kip-signer")
	otherCA := newTestCA(t, "someone-else")
	caContent, err := dynamiccertificates.NewStaticCAContent("kip-signer", ca.pem)
	if err != nil {
		t.Fatal(err)
	}

	alice := ca.issue(t, "alice", []string{"devs", "ops"}, nil)
	// The certificate's own order of O values, then the group every
	// authenticated user gets.
	aliceGroups := append(append([]string(nil), alice.Subject.Organization...), user.AllAuthenticated)
	if len(aliceGroups) != 3 {
		t.Fatalf("alice's certificate has organizations %q, want devs and ops", alice.Subject.Organization)
	}
	foreign := otherCA.issue(t, "alice", []string{"system:masters"}, nil)
	expired := ca.issue(t, "alice", nil, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	})
	notYet := ca.issue(t, "alice", nil, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	})
	serving := ca.issue(t, "alice", nil, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	nameless := ca.issue(t, "", []string{"system:masters"}, nil)

	saInfo := authenticationv1.UserInfo{
		Username: "system:serviceaccount:ns:sa",
		UID:      "sa-uid",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:ns", user.AllAuthenticated},
		Extra:    map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"p"}},
	}
	sa := &user.DefaultInfo{
		Name:   saInfo.Username,
		UID:    saInfo.UID,
		Groups: saInfo.Groups,
		Extra:  map[string][]string{"authentication.kubernetes.io/pod-name": {"p"}},
	}
	wsToken := func(token string) string {
		return "base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(token))
	}
	webSocket := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}
	with := func(h http.Header, pairs ...string) http.Header {
		h = h.Clone()
		if h == nil {
			h = http.Header{}
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			h.Add(pairs[i], pairs[i+1])
		}
		return h
	}

	tests := []struct {
		name    string
		certs   []*x509.Certificate
		header  http.Header
		noCA    bool // configure TokenReview only
		wantErr bool
		// wantUser nil means not authenticated.
		wantUser *user.DefaultInfo
		// wantToken is the token passed through for the user, if any.
		wantToken string
		// wantReviews are the tokens the upstream is asked about.
		wantReviews []string
		// wantHeader is the request's header after authentication.
		wantHeader http.Header
	}{
		{
			name:  "certificate from kip's CA",
			certs: []*x509.Certificate{alice, ca.cert},
			wantUser: &user.DefaultInfo{
				Name:   "alice",
				Groups: aliceGroups,
				Extra:  map[string][]string{user.CredentialIDKey: {credentialID(alice)}},
			},
		},
		{name: "certificate from another CA", certs: []*x509.Certificate{foreign, otherCA.cert}, wantErr: true},
		{name: "expired certificate", certs: []*x509.Certificate{expired}, wantErr: true},
		{name: "certificate not valid yet", certs: []*x509.Certificate{notYet}, wantErr: true},
		{name: "serving certificate used as a client certificate", certs: []*x509.Certificate{serving}, wantErr: true},
		{name: "certificate without a common name is nobody", certs: []*x509.Certificate{nameless}},
		{name: "certificate while only TokenReview is configured", noCA: true, certs: []*x509.Certificate{alice}},
		{name: "no credentials at all", header: http.Header{"Accept": {"*/*"}}, wantHeader: http.Header{"Accept": {"*/*"}}},
		{
			name:        "bearer token the upstream accepts",
			header:      http.Header{"Authorization": {"Bearer sa-token"}, "Accept": {"*/*"}},
			wantUser:    sa,
			wantToken:   "sa-token",
			wantReviews: []string{"sa-token"},
			wantHeader:  http.Header{"Accept": {"*/*"}},
		},
		{
			name:        "bearer token the upstream rejects",
			header:      http.Header{"Authorization": {"Bearer forged"}},
			wantErr:     true,
			wantReviews: []string{"forged"},
			wantHeader:  http.Header{"Authorization": {"Bearer forged"}},
		},
		{
			name:       "basic credentials are not a bearer token",
			header:     http.Header{"Authorization": {"Basic YWRtaW46YWRtaW4="}},
			wantHeader: http.Header{"Authorization": {"Basic YWRtaW46YWRtaW4="}},
		},
		{
			name:   "certificate wins over a bearer token, which is never sent upstream",
			certs:  []*x509.Certificate{alice},
			header: http.Header{"Authorization": {"Bearer sa-token"}},
			wantUser: &user.DefaultInfo{
				Name:   "alice",
				Groups: aliceGroups,
				Extra:  map[string][]string{user.CredentialIDKey: {credentialID(alice)}},
			},
			wantHeader: http.Header{"Authorization": {"Bearer sa-token"}},
		},
		{
			name:        "foreign certificate with a valid token is the token's user",
			certs:       []*x509.Certificate{foreign},
			header:      http.Header{"Authorization": {"Bearer sa-token"}},
			wantUser:    sa,
			wantToken:   "sa-token",
			wantReviews: []string{"sa-token"},
			wantHeader:  http.Header{},
		},
		{
			name:        "WebSocket bearer subprotocol",
			header:      with(webSocket, "Sec-WebSocket-Protocol", wsToken("sa-token")+", v5.channel.k8s.io"),
			wantUser:    sa,
			wantToken:   "sa-token",
			wantReviews: []string{"sa-token"},
			wantHeader:  with(webSocket, "Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
		},
		{
			name:        "WebSocket bearer subprotocol after others, over two lines",
			header:      with(webSocket, "Sec-WebSocket-Protocol", "v5.channel.k8s.io, v4.channel.k8s.io", "Sec-WebSocket-Protocol", wsToken("sa-token")),
			wantUser:    sa,
			wantToken:   "sa-token",
			wantReviews: []string{"sa-token"},
			wantHeader:  with(webSocket, "Sec-WebSocket-Protocol", "v5.channel.k8s.io,v4.channel.k8s.io"),
		},
		{
			name:        "WebSocket bearer subprotocol the upstream rejects",
			header:      with(webSocket, "Sec-WebSocket-Protocol", wsToken("forged")+", v5.channel.k8s.io"),
			wantErr:     true,
			wantReviews: []string{"forged"},
			wantHeader:  with(webSocket, "Sec-WebSocket-Protocol", wsToken("forged")+", v5.channel.k8s.io"),
		},
		{
			name:       "WebSocket token-only subprotocol list",
			header:     with(webSocket, "Sec-WebSocket-Protocol", wsToken("sa-token")),
			wantErr:    true,
			wantHeader: with(webSocket, "Sec-WebSocket-Protocol", wsToken("sa-token")),
		},
		{
			name:       "WebSocket with two tokens",
			header:     with(webSocket, "Sec-WebSocket-Protocol", wsToken("sa-token")+", "+wsToken("sa-token")+", v5.channel.k8s.io"),
			wantErr:    true,
			wantHeader: with(webSocket, "Sec-WebSocket-Protocol", wsToken("sa-token")+", "+wsToken("sa-token")+", v5.channel.k8s.io"),
		},
		{
			name:       "WebSocket with two different tokens on two lines",
			header:     with(webSocket, "Sec-WebSocket-Protocol", wsToken("sa-token")+", v5.channel.k8s.io", "Sec-WebSocket-Protocol", wsToken("forged")),
			wantErr:    true,
			wantHeader: with(webSocket, "Sec-WebSocket-Protocol", wsToken("sa-token")+", v5.channel.k8s.io", "Sec-WebSocket-Protocol", wsToken("forged")),
		},
		{
			name:       "WebSocket token with bad base64",
			header:     with(webSocket, "Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io.not*base64!, v5.channel.k8s.io"),
			wantErr:    true,
			wantHeader: with(webSocket, "Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io.not*base64!, v5.channel.k8s.io"),
		},
		{
			name:       "WebSocket token in padded standard base64",
			header:     with(webSocket, "Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io."+base64.StdEncoding.EncodeToString([]byte("sa-token?>")), "Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
			wantErr:    true,
			wantHeader: with(webSocket, "Sec-WebSocket-Protocol", "base64url.bearer.authorization.k8s.io."+base64.StdEncoding.EncodeToString([]byte("sa-token?>")), "Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
		},
		{
			name:       "bearer subprotocol on a request that is not a WebSocket",
			header:     http.Header{"Sec-Websocket-Protocol": {wsToken("sa-token") + ", v5.channel.k8s.io"}},
			wantHeader: http.Header{"Sec-Websocket-Protocol": {wsToken("sa-token") + ", v5.channel.k8s.io"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reviews := &fakeTokenReviewServer{valid: map[string]authenticationv1.UserInfo{"sa-token": saInfo}}
			srv := httptest.NewServer(reviews)
			t.Cleanup(srv.Close)
			client, err := authenticationv1client.NewForConfig(&rest.Config{Host: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{ClientCA: caContent, TokenReview: client, TokenCacheTTL: time.Minute, TokenReviewTimeout: 10 * time.Second}
			if tt.noCA {
				cfg.ClientCA = nil
			}
			a, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}

			req := httptest.NewRequest(http.MethodGet, "https://kip.test/api/v1/pods", nil)
			req.Header = tt.header.Clone()
			if req.Header == nil {
				req.Header = http.Header{}
			}
			if len(tt.certs) > 0 {
				req.TLS = &tls.ConnectionState{PeerCertificates: tt.certs, VerifiedChains: [][]*x509.Certificate{tt.certs}}
			}
			resp, ok, err := a.AuthenticateRequest(req)

			if (err != nil) != tt.wantErr {
				t.Errorf("error = %v, want error: %v", err, tt.wantErr)
			}
			if ok != (tt.wantUser != nil) {
				t.Fatalf("ok = %v, want %v (error %v)", ok, tt.wantUser != nil, err)
			}
			if ok {
				u := resp.User
				got := &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: u.GetExtra()}
				if !reflect.DeepEqual(got, tt.wantUser) {
					t.Errorf("user = %#v, want %#v", got, tt.wantUser)
				}
				token, passthrough := caller.PassthroughToken(u)
				if token != tt.wantToken || passthrough != (tt.wantToken != "") {
					t.Errorf("PassthroughToken = %q, %v; want %q", token, passthrough, tt.wantToken)
				}
			}
			if got := reviews.tokens(); !reflect.DeepEqual(got, tt.wantReviews) {
				t.Errorf("the upstream reviewed %q, want %q", got, tt.wantReviews)
			}
			if tt.wantHeader != nil && !reflect.DeepEqual(req.Header, tt.wantHeader) {
				t.Errorf("header after authentication = %v, want %v", req.Header, tt.wantHeader)
			}
		})
	}
}
