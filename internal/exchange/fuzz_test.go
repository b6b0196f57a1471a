package exchange

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loginv1alpha1 "github.com/kip-proxy/kip/pkg/apis/login/v1alpha1"
)

// FuzzTokenCredentialRequestDecode posts arbitrary bodies (seeds in
// testdata/fuzz). Whatever the body, the exchange answers with a Status or
// a TokenCredentialRequest, never panics, never echoes a token, and never
// issues a credential unless the authenticator accepted the token.
func FuzzTokenCredentialRequestDecode(f *testing.F) {
	quietKlog(f)
	fx := newFixture(f, func(c *Config) {
		// The fuzzer fails often from one address; it must keep reaching
		// the decoder, not the rate limit.
		c.FailureBurst = 1 << 30
	})
	f.Fuzz(func(t *testing.T, body []byte) {
		_, acceptedBefore := fx.tokens.stats()
		issuedBefore := len(fx.ca.calls())

		w := fx.post(body, nil)

		_, acceptedAfter := fx.tokens.stats()
		accepted := acceptedAfter > acceptedBefore
		issued := len(fx.ca.calls()) > issuedBefore
		if issued && !accepted {
			t.Fatalf("the issuer was asked for a certificate without an accepted token; body %q", body)
		}
		if !slices.Contains([]int{http.StatusCreated, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity}, w.Code) {
			t.Fatalf("code %d for body %q:\n%s", w.Code, body, w.Body)
		}
		var kind metav1.TypeMeta
		if err := json.Unmarshal(w.Body.Bytes(), &kind); err != nil {
			t.Fatalf("the answer is not JSON: %v\n%s", err, w.Body)
		}
		if w.Code != http.StatusCreated {
			if kind.Kind != "Status" {
				t.Fatalf("a %d answer of kind %q", w.Code, kind.Kind)
			}
			return
		}
		var answer loginv1alpha1.TokenCredentialRequest
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatal(err)
		}
		checkFuzzedAnswer(t, answer, accepted, w.Body.Bytes())
	})
}

func checkFuzzedAnswer(t *testing.T, answer loginv1alpha1.TokenCredentialRequest, accepted bool, raw []byte) {
	t.Helper()
	if answer.Spec.Token != "" {
		t.Fatalf("the answer echoes a token:\n%s", raw)
	}
	switch cred := answer.Status.Credential; {
	case cred != nil && !accepted:
		t.Fatalf("a credential without an accepted token:\n%s", raw)
	case cred != nil && (cred.ClientCertificateData == "" || answer.Status.Message != nil):
		t.Fatalf("an incomplete credential:\n%s", raw)
	case cred == nil && (answer.Status.Message == nil || *answer.Status.Message != authenticationFailed):
		t.Fatalf("no credential and no \"authentication failed\":\n%s", raw)
	}
}
