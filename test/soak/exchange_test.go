package soak

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/harness"
	"github.com/kip-proxy/kip/internal/rig/hydra"
)

// exchangeLoop signs in at Hydra, exchanges the ID token at kip for a
// certificate, with and without a CSR in turn, and reads a ConfigMap with
// each certificate as a fresh client would: a new connection, closed
// after.
func (tr *traffic) exchangeLoop(ctx context.Context) {
	rc, transport, err := tr.r.exchangeClient()
	if err != nil {
		tr.record(ctx, kindExchange, err)
		return
	}
	defer transport.CloseIdleConnections()
	token, uses := "", 0
	for turn := 0; ctx.Err() == nil; turn++ {
		if token == "" || uses >= tr.mix.tokenUses {
			opCtx, cancel := context.WithTimeout(ctx, opTimeout)
			token, err = tr.r.idToken(opCtx)
			cancel()
			tr.record(ctx, kindSignIn, err)
			if err != nil {
				pause(ctx, tr.mix.exchangeEvery)
				continue
			}
			uses = 0
		}
		uses++
		if err := tr.exchangeOnce(ctx, rc, token, turn%2 == 1); isUnauthorized(err) {
			token = "" // sign in again
		}
		pause(ctx, tr.mix.exchangeEvery)
	}
}

// exchangeOnce records under ctx, the soak's context, and bounds its
// requests with a timeout of their own.
func (tr *traffic) exchangeOnce(ctx context.Context, rc rest.Interface, token string, withCSR bool) error {
	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var csrPEM, keyPEM []byte
	if withCSR {
		var err error
		if keyPEM, csrPEM, err = newCSR(); err != nil {
			return err
		}
	}
	out, err := harness.Exchange(opCtx, rc, token, csrPEM)
	if err == nil && out.Status.Credential == nil {
		err = fmt.Errorf("the exchange gave no credential: %s", ptr(out.Status.Message))
	}
	tr.record(ctx, kindExchange, err)
	if err != nil {
		return err
	}
	cred := out.Status.Credential
	if !withCSR {
		keyPEM = []byte(cred.ClientKeyData)
	}
	tr.record(ctx, kindExchangedGet, tr.getWithCert(opCtx, []byte(cred.ClientCertificateData), keyPEM))
	return nil
}

// getWithCert reads a ConfigMap as the certificate's user.
func (tr *traffic) getWithCert(ctx context.Context, certPEM, keyPEM []byte) error {
	c, err := newClient(tr.r.certConfig(certPEM, keyPEM))
	if err != nil {
		return err
	}
	defer c.close()
	_, err = c.cs.CoreV1().ConfigMaps(namespace).Get(ctx, configMapName(0), metav1.GetOptions{})
	return err
}

// idToken signs in at Hydra as the soak's OIDC user through the
// authorization code flow with PKCE, as `kip login oidc` does with a
// browser, and returns the ID token.
func (r *rig) idToken(ctx context.Context) (string, error) {
	who := hydra.Person{Subject: "kip-soak-sub", Claims: map[string]any{"email": oidcEmail, "groups": []string{oidcGroup}}}
	return r.idp.Hydra.IDToken(ctx, oidcClientID, oidcCallback, who, "email", "groups")
}

// newCSR makes a P-256 key and a certificate signing request for it, both
// PEM.
func newCSR() (keyPEM, csrPEM []byte, err error) {
	key, csrPEM, err := harness.NewCSR()
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = harness.KeyPEM(key)
	return keyPEM, csrPEM, err
}

func isUnauthorized(err error) bool {
	type statusError interface{ Status() metav1.Status }
	var se statusError
	return errors.As(err, &se) && se.Status().Code == http.StatusUnauthorized
}

func ptr(s *string) string {
	if s == nil {
		return "<no message>"
	}
	return *s
}
