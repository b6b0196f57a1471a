package options

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

func TestCredentialsValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "present")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		change  func(*Credentials)
		wantErr []string // each must appear in the error; none means valid
	}{
		{name: "defaults", change: func(*Credentials) {}},
		{name: "signer files", change: func(o *Credentials) { o.SignerCACertFile, o.SignerCAKeyFile = file, file }},
		{name: "signer secret", change: func(o *Credentials) { o.SignerCASecret = "kip-system/kip-signer" }},
		{name: "OIDC, webhook and an allowed group", change: func(o *Credentials) {
			o.AuthenticationConfigFile, o.WebhookConfigFile = file, file
			o.AllowedReservedGroups = []string{"system:monitoring"}
		}},
		{name: "certificate without key", change: func(o *Credentials) { o.SignerCACertFile = file },
			wantErr: []string{"--signer-ca-cert-file and --signer-ca-key-file go together"}},
		{name: "key without certificate", change: func(o *Credentials) { o.SignerCAKeyFile = file },
			wantErr: []string{"go together"}},
		{name: "files and secret", change: func(o *Credentials) {
			o.SignerCACertFile, o.SignerCAKeyFile, o.SignerCASecret = file, file, "ns/name"
		}, wantErr: []string{"exclude each other"}},
		{name: "missing signer files", change: func(o *Credentials) { o.SignerCACertFile, o.SignerCAKeyFile = missing, file },
			wantErr: []string{"signer CA", "no such file"}},
		{name: "secret without namespace", change: func(o *Credentials) { o.SignerCASecret = "kip-signer" },
			wantErr: []string{"--signer-ca-secret", "is not namespace/name"}},
		{name: "secret with two slashes", change: func(o *Credentials) { o.SignerCASecret = "a/b/c" },
			wantErr: []string{"is not namespace/name"}},
		{name: "secret with a bad namespace", change: func(o *Credentials) { o.SignerCASecret = "Kip_System/s" },
			wantErr: []string{`namespace "Kip_System"`}},
		{name: "secret with an empty name", change: func(o *Credentials) { o.SignerCASecret = "ns/" },
			wantErr: []string{`name ""`}},
		{name: "TTL too short", change: func(o *Credentials) { o.CredentialTTL = time.Second },
			wantErr: []string{"--credential-ttl must be between 1m and 24h, not 1s"}},
		{name: "TTL too long", change: func(o *Credentials) { o.CredentialTTL = 48 * time.Hour },
			wantErr: []string{"--credential-ttl"}},
		{name: "missing authentication config", change: func(o *Credentials) { o.AuthenticationConfigFile = missing },
			wantErr: []string{"--authentication-config:"}},
		{name: "missing webhook config", change: func(o *Credentials) { o.WebhookConfigFile = missing },
			wantErr: []string{"--authentication-token-webhook-config-file:"}},
		{name: "negative webhook cache", change: func(o *Credentials) { o.WebhookCacheTTL = -time.Second },
			wantErr: []string{"must not be negative"}},
		{name: "system:masters allowed", change: func(o *Credentials) { o.AllowedReservedGroups = []string{"system:masters"} },
			wantErr: []string{"system:masters bypasses all authorization"}},
		{name: "ordinary group allowed", change: func(o *Credentials) { o.AllowedReservedGroups = []string{"devs"} },
			wantErr: []string{`"devs" is not a system: group`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewCredentials()
			tt.change(o)
			err := utilerrors.NewAggregate(o.Validate())
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestCredentialsConfig(t *testing.T) {
	o := NewCredentials()
	o.SignerCASecret = "kip-system/kip-signer"
	o.AllowedReservedGroups = []string{"system:monitoring"}
	cfg := o.config()
	if cfg.SignerCASecret.Namespace != "kip-system" || cfg.SignerCASecret.Name != "kip-signer" {
		t.Errorf("SignerCASecret = %v", cfg.SignerCASecret)
	}
	if cfg.CredentialTTL != 5*time.Minute {
		t.Errorf("CredentialTTL = %v, want the 5m default", cfg.CredentialTTL)
	}
	if len(cfg.Tokens.AllowedReservedGroups) != 1 {
		t.Errorf("AllowedReservedGroups = %v", cfg.Tokens.AllowedReservedGroups)
	}
}
