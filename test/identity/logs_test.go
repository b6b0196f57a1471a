package identity

import (
	"encoding/pem"
	"strings"
	"testing"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// TestLogsHoldNoSecrets runs the credentials kip handles through it with
// its access log on, an ID token and a webhook token as bearer tokens and
// in exchanges, and the certificates and keys that come back, then reads
// the whole log kip wrote meanwhile: none of them may be in it.
func TestLogsHoldNoSecrets(t *testing.T) {
	logs := captureKlog(t)
	name := harness.UniqueName("logged")
	token := idToken(t, clientID, person(name, "loggers"))

	secrets := map[string]string{"the ID token": token, "the webhook token": webhookToken}
	if _, sig, ok := strings.Cut(token[strings.Index(token, ".")+1:], "."); ok {
		secrets["the ID token's signature"] = sig
	}
	for what, tok := range map[string]string{"ID token": token, "webhook token": webhookToken} {
		if _, err := whoami(t, bearerConfig(tok)); err != nil {
			t.Fatalf("bearer %s: %v", what, err)
		}
		generated := mustExchange(t, tok, nil)
		key, csr := newCSR(t)
		proven := mustExchange(t, tok, csr)
		for _, cred := range []struct {
			what          string
			certPEM, keys []byte
		}{
			{"certificate with a key kip generated", []byte(generated.ClientCertificateData), []byte(generated.ClientKeyData)},
			{"certificate for a CSR", []byte(proven.ClientCertificateData), keyPEM(t, key)},
		} {
			if _, err := whoami(t, certConfig(cred.certPEM, cred.keys)); err != nil {
				t.Fatalf("%s, %s: %v", what, cred.what, err)
			}
			for _, block := range []struct {
				kind string
				data []byte
			}{{"certificate", cred.certPEM}, {"private key", cred.keys}, {"CSR", csr}} {
				if body := pemBody(block.data); body != "" {
					secrets["the "+block.kind+" of the "+what+" "+cred.what] = body
				}
			}
		}
	}

	got := logs.String()
	if !strings.Contains(got, `"Access"`) || !strings.Contains(got, name) {
		t.Fatalf("kip's access log has no line for %s; is it on?\n%s", name, got)
	}
	for what, secret := range secrets {
		if strings.Contains(got, secret) {
			t.Errorf("kip's log contains %s", what)
		}
	}
}

// pemBody is the first line of base64 inside a PEM block: a line no log
// should contain, whatever framing it was logged with.
func pemBody(data []byte) string {
	block, _ := pem.Decode(data)
	if block == nil {
		return ""
	}
	lines := strings.Split(string(pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes})), "\n")
	if len(lines) < 2 {
		return ""
	}
	return lines[1]
}
