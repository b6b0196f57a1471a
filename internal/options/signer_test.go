package options

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kip-proxy/kip/internal/server"
)

func TestSignerLeaseValidate(t *testing.T) {
	const secret = "kip-system/kip-signer-ca"
	tests := []struct {
		name    string
		secret  string
		change  func(*SignerLease)
		wantErr []string // each must appear in the error; none means valid
	}{
		{name: "defaults without a Secret", change: func(*SignerLease) {}},
		{name: "defaults with a Secret", secret: secret, change: func(*SignerLease) {}},
		{name: "fast election", secret: secret, change: func(o *SignerLease) {
			o.Identity, o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = "kip-0", 4*time.Second, 3*time.Second, 500*time.Millisecond
		}},
		{name: "lease flags without a Secret", change: func(o *SignerLease) { o.Identity = "kip-0" },
			wantErr: []string{"apply only with --signer-ca-secret"}},
		{name: "bad lease name", secret: secret, change: func(o *SignerLease) { o.Name = "Kip_Lease" },
			wantErr: []string{`--signer-ca-lease "Kip_Lease"`}},
		{name: "identity with spaces", secret: secret, change: func(o *SignerLease) { o.Identity = " kip-0" },
			wantErr: []string{"--signer-ca-lease-identity", "spaces"}},
		{name: "sub-second lease", secret: secret, change: func(o *SignerLease) { o.LeaseDuration = 500 * time.Millisecond },
			wantErr: []string{"--signer-ca-lease-duration must be at least 1s, not 500ms"}},
		{name: "renew deadline as long as the lease", secret: secret, change: func(o *SignerLease) { o.RenewDeadline = o.LeaseDuration },
			wantErr: []string{"--signer-ca-lease-renew-deadline must be positive and shorter than --signer-ca-lease-duration (15s), not 15s"}},
		{name: "zero renew deadline", secret: secret, change: func(o *SignerLease) { o.RenewDeadline = 0 },
			wantErr: []string{"--signer-ca-lease-renew-deadline must be positive"}},
		{name: "zero retry period", secret: secret, change: func(o *SignerLease) { o.RetryPeriod = 0 },
			wantErr: []string{"--signer-ca-lease-retry-period must be positive, not 0s"}},
		{name: "retry period too close to the renew deadline", secret: secret, change: func(o *SignerLease) { o.RetryPeriod = 9 * time.Second },
			wantErr: []string{"--signer-ca-lease-retry-period", "times its retry period"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewSignerLease()
			tt.change(o)
			errs := o.Validate(tt.secret)
			if len(tt.wantErr) == 0 {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			var msgs []string
			for _, err := range errs {
				msgs = append(msgs, err.Error())
			}
			all := strings.Join(msgs, "\n")
			for _, want := range tt.wantErr {
				if !strings.Contains(all, want) {
					t.Errorf("errors %q do not mention %q", all, want)
				}
			}
		})
	}
}

func TestSignerLeaseFlags(t *testing.T) {
	o := NewSignerLease()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	err := fs.Parse([]string{"--signer-ca-lease=kip-ca-lease", "--signer-ca-lease-identity=kip-0_127.0.0.1:8443",
		"--signer-ca-lease-duration=4s", "--signer-ca-lease-renew-deadline=3s", "--signer-ca-lease-retry-period=500ms"})
	if err != nil {
		t.Fatal(err)
	}
	if errs := o.Validate("kip-system/kip-signer-ca"); len(errs) > 0 {
		t.Fatal(errs)
	}
	var cfg server.CredentialsConfig
	o.ApplyTo(&cfg)
	le := cfg.SignerCALeaderElection
	if le.LeaseName != "kip-ca-lease" || le.Identity != "kip-0_127.0.0.1:8443" || le.LeaseDuration != 4*time.Second ||
		le.RenewDeadline != 3*time.Second || le.RetryPeriod != 500*time.Millisecond {
		t.Fatalf("applied %+v", le)
	}
}
