package exchange

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// newLoginClient is what a client such as kip login builds: a REST client
// for login.kip.dev/v1alpha1 from a scheme holding the importable types.
func newLoginClient(t *testing.T, host string) *rest.RESTClient {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := loginv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	client, err := rest.RESTClientFor(&rest.Config{
		Host:    host,
		APIPath: "/apis",
		ContentConfig: rest.ContentConfig{
			GroupVersion:         &loginv1alpha1.SchemeGroupVersion,
			NegotiatedSerializer: serializer.NewCodecFactory(scheme).WithoutConversion(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func TestClientGoRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	notHere := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	srv := httptest.NewServer(WithExchange(notHere, f.handler))
	t.Cleanup(srv.Close)
	client := newLoginClient(t, srv.URL)

	cases := []struct {
		name    string
		spec    loginv1alpha1.TokenCredentialRequestSpec
		wantErr func(error) bool
		wantKey bool
		wantMsg string
	}{
		{name: "generated key", spec: loginv1alpha1.TokenCredentialRequestSpec{Token: goodToken}, wantKey: true},
		{name: "CSR", spec: loginv1alpha1.TokenCredentialRequestSpec{Token: goodToken, CertificateSigningRequest: csrFor(t, newP256(t))}},
		{name: "refused token", spec: loginv1alpha1.TokenCredentialRequestSpec{Token: badToken}, wantMsg: "authentication failed"},
		{name: "empty token", spec: loginv1alpha1.TokenCredentialRequestSpec{}, wantErr: apierrors.IsInvalid},
		{name: "bad CSR", spec: loginv1alpha1.TokenCredentialRequestSpec{Token: goodToken, CertificateSigningRequest: []byte("junk")}, wantErr: apierrors.IsInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got loginv1alpha1.TokenCredentialRequest
			err := client.Post().Resource(loginv1alpha1.Resource).
				Body(&loginv1alpha1.TokenCredentialRequest{Spec: tc.spec}).
				Do(context.Background()).Into(&got)
			if tc.wantErr != nil {
				if !tc.wantErr(err) {
					t.Fatalf("error %v is not the Status expected", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantMsg != "" {
				if got.Status.Message == nil || *got.Status.Message != tc.wantMsg || got.Status.Credential != nil {
					t.Fatalf("status %+v, want message %q and no credential", got.Status, tc.wantMsg)
				}
				return
			}
			cred := got.Status.Credential
			if cred == nil || cred.ClientCertificateData == "" || (cred.ClientKeyData != "") != tc.wantKey || cred.ExpirationTimestamp.IsZero() {
				t.Fatalf("credential %+v, want a certificate, an expiry, and a key: %v", cred, tc.wantKey)
			}
			if tc.wantKey {
				checkSameKey(t, parseCert(t, cred.ClientCertificateData).PublicKey, parseKey(t, cred.ClientKeyData).Public())
			}
		})
	}
}
