package options

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kip-proxy/kip/internal/server"
)

func TestRecordingOptions(t *testing.T) {
	tmp := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(tmp, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pkcs8 := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ed := write("ed.pem", pkcs8(edKey))
	ec := write("ec.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	rsaFile := write("rsa.pem", pkcs8(rsaKey))
	notPEM := write("not.pem", []byte("not a key"))
	cert := write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}))
	aFile := write("a-file", nil)
	caPEM, _, err := certutil.GenerateSelfSignedCertKey("s3.example.com", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca := write("ca.pem", caPEM)
	dir := "--recording-dir=" + filepath.Join(tmp, "rec-refused")
	dirOf := func(name string) string { return "--recording-dir=" + filepath.Join(tmp, name) }

	tests := []struct {
		name    string
		args    []string
		wantOn  bool
		wantErr string // must appear in Validate's error; empty means none
		// wantRequired is what ApplyTo sets beside the recorder.
		wantRequired bool
	}{
		{name: "off by default", args: nil},
		{name: "a directory, a generated key", args: []string{"--recording-dir=" + filepath.Join(tmp, "rec-gen")}, wantOn: true},
		{name: "an Ed25519 key", args: []string{"--recording-dir=" + filepath.Join(tmp, "rec-ed"), "--recording-key-file=" + ed}, wantOn: true},
		{name: "an ECDSA key in SEC 1 form", args: []string{"--recording-dir=" + filepath.Join(tmp, "rec-ec"), "--recording-key-file=" + ec}, wantOn: true},
		{name: "a key without a directory", args: []string{"--recording-key-file=" + ed}, wantErr: "--recording-dir is empty"},
		{name: "a directory that is a file", args: []string{"--recording-dir=" + aFile}, wantErr: "is a file, not a directory"},
		{name: "a missing key file", args: []string{"--recording-dir=" + tmp, "--recording-key-file=" + filepath.Join(tmp, "missing.pem")}, wantErr: "no such file"},
		{name: "a key file that is not PEM", args: []string{"--recording-dir=" + tmp, "--recording-key-file=" + notPEM}, wantErr: "holds no PEM block"},
		{name: "a certificate, not a key", args: []string{"--recording-dir=" + tmp, "--recording-key-file=" + cert}, wantErr: `"CERTIFICATE" PEM block`},
		{name: "an RSA key", args: []string{"--recording-dir=" + tmp, "--recording-key-file=" + rsaFile}, wantErr: "sealed with Ed25519 or ECDSA keys"},

		{name: "required", args: []string{dirOf("rec-required"), "--recording-required"}, wantOn: true, wantRequired: true},
		{name: "a bucket on AWS", args: []string{dirOf("rec-aws"), "--recording-bucket=s3://audit/kip/recordings", "--recording-bucket-region=eu-west-1"}, wantOn: true},
		{name: "a bucket over https with its own CA", args: []string{dirOf("rec-ca"), "--recording-bucket=s3://audit",
			"--recording-bucket-endpoint=https://s3.example.com:9000", "--recording-bucket-ca-file=" + ca}, wantOn: true},
		{name: "a bucket over plain HTTP on loopback", args: []string{dirOf("rec-http"), "--recording-bucket=s3://audit",
			"--recording-bucket-endpoint=http://127.0.0.1:7070"}, wantOn: true},
		{name: "required without a directory", args: []string{"--recording-required"}, wantErr: "--recording-required refuses sessions that cannot be recorded, and --recording-dir is empty"},
		{name: "a bucket without a directory", args: []string{"--recording-bucket=s3://audit"}, wantErr: "--recording-bucket uploads recordings from the directory, and --recording-dir is empty"},
		{name: "an endpoint without a bucket", args: []string{dir, "--recording-bucket-endpoint=https://s3.example.com"},
			wantErr: "--recording-bucket-endpoint describes the bucket, and --recording-bucket is empty"},
		{name: "a region without a bucket", args: []string{dir, "--recording-bucket-region=eu-west-1"},
			wantErr: "--recording-bucket-region describes the bucket, and --recording-bucket is empty"},
		{name: "a CA file without a bucket", args: []string{dir, "--recording-bucket-ca-file=" + ca},
			wantErr: "--recording-bucket-ca-file describes the bucket, and --recording-bucket is empty"},
		{name: "a bucket that is no s3:// URL", args: []string{dir, "--recording-bucket=https://audit.s3.amazonaws.com"},
			wantErr: "is not of the form s3://BUCKET[/PREFIX]"},
		{name: "a bucket without a name", args: []string{dir, "--recording-bucket=s3:///kip"},
			wantErr: "is not of the form s3://BUCKET[/PREFIX]"},
		{name: "a prefix that climbs", args: []string{dir, "--recording-bucket=s3://audit/kip/../other"},
			wantErr: "empty, . or .. segment"},
		{name: "a bucket URL with credentials", args: []string{dir, "--recording-bucket=s3://key:secret@audit"},
			wantErr: "is not of the form s3://BUCKET[/PREFIX]"},
		{name: "an endpoint with a path", args: []string{dir, "--recording-bucket=s3://audit", "--recording-bucket-endpoint=https://s3.example.com/audit"},
			wantErr: "is not of the form https://host[:port]"},
		{name: "an endpoint that is no URL", args: []string{dir, "--recording-bucket=s3://audit", "--recording-bucket-endpoint=s3.example.com"},
			wantErr: "is not of the form https://host[:port]"},
		{name: "plain HTTP across the network", args: []string{dir, "--recording-bucket=s3://audit", "--recording-bucket-endpoint=http://s3.example.com"},
			wantErr: "would send recordings across the network unencrypted"},
		{name: "a CA file for plain HTTP", args: []string{dir, "--recording-bucket=s3://audit", "--recording-bucket-endpoint=http://127.0.0.1:7070",
			"--recording-bucket-ca-file=" + ca}, wantErr: "verifies an https:// endpoint"},
		{name: "a missing CA file", args: []string{dir, "--recording-bucket=s3://audit", "--recording-bucket-ca-file=" + filepath.Join(tmp, "missing.pem")},
			wantErr: "no such file"},
		{name: "a CA file without certificates", args: []string{dir, "--recording-bucket=s3://audit", "--recording-bucket-ca-file=" + notPEM},
			wantErr: "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Recording
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			errs := o.Validate()
			if tt.wantErr != "" {
				if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.wantErr) {
					t.Fatalf("Validate = %v, want one error containing %q", errs, tt.wantErr)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("Validate: %v", errs)
			}
			var cfg server.Config
			if err := o.ApplyTo(&cfg); err != nil {
				t.Fatal(err)
			}
			if (cfg.Recorder != nil) != tt.wantOn {
				t.Fatalf("recorder = %v, want on: %v", cfg.Recorder, tt.wantOn)
			}
			if (cfg.Sessions != nil) != tt.wantOn {
				t.Fatalf("sessions store = %v, want one: %v", cfg.Sessions, tt.wantOn)
			}
			if cfg.RecordingRequired != tt.wantRequired {
				t.Errorf("recording required = %v, want %v", cfg.RecordingRequired, tt.wantRequired)
			}
			if tt.wantOn && (len(cfg.Background) != 1 || cfg.Metrics == nil) {
				t.Errorf("the recorder's work (%d) or its metrics (%v) were not handed to the server", len(cfg.Background), cfg.Metrics)
			}
			if tt.wantOn {
				keys, err := filepath.Glob(filepath.Join(o.Dir, "keys", "*.pub"))
				if err != nil || len(keys) != 1 {
					t.Fatalf("public keys in %s/keys: %v, %v; want one", o.Dir, keys, err)
				}
			}
		})
	}
}
