package workload

import (
	"strings"
	"testing"
)

func TestCredentialIn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  string
		wantKey bool
		wantErr string
	}{
		{name: "certificate for the CSR's key", answer: `{"status":{"credential":{"clientCertificateData":"CERT"}}}`},
		{name: "certificate and generated key", answer: `{"status":{"credential":{"clientCertificateData":"CERT","clientKeyData":"KEY"}}}`, wantKey: true},
		{name: "refused token", answer: `{"status":{"message":"authentication failed"}}`, wantErr: "message: authentication failed"},
		{name: "empty status", answer: `{"status":{}}`, wantErr: "message: none"},
		{name: "no certificate", answer: `{"status":{"credential":{"clientKeyData":"KEY"}}}`, wantKey: true, wantErr: "no certificate"},
		{name: "key sent back for a CSR", answer: `{"status":{"credential":{"clientCertificateData":"CERT","clientKeyData":"KEY"}}}`, wantErr: "private key: true, want false"},
		{name: "generated key missing", answer: `{"status":{"credential":{"clientCertificateData":"CERT"}}}`, wantKey: true, wantErr: "private key: false, want true"},
		{name: "not JSON", answer: `<html>`, wantErr: "decoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred, err := credentialIn([]byte(tc.answer), tc.wantKey)
			switch {
			case tc.wantErr == "" && (err != nil || cred == nil):
				t.Errorf("credential %v, err %v", cred, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err %v, want it to say %q", err, tc.wantErr)
			}
		})
	}
}
