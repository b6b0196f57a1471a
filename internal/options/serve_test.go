package options

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

func TestServeFlagSections(t *testing.T) {
	fss := NewServe().Flags()
	want := []string{"serving", "authentication", "upstream", "clusters", "audit", "observability", "limits", "logging", "misc"}
	if !reflect.DeepEqual(fss.Order, want) {
		t.Errorf("sections = %v, want %v", fss.Order, want)
	}
	for flag, section := range map[string]string{
		"secure-port": "serving", "tls-cert-file": "serving",
		"client-ca-file": "authentication", "signer-ca-secret": "authentication", "authentication-config": "authentication",
		"kubeconfig": "upstream", "in-cluster-token-file": "upstream",
		"audit-log-path": "audit", "probe-port": "observability", "profiling": "observability",
		"max-requests-inflight": "limits", "request-timeout": "limits",
		"logging-format": "logging", "v": "logging", "config": "misc",
	} {
		if fss.FlagSets[section].Lookup(flag) == nil {
			t.Errorf("--%s is not in the %s section", flag, section)
		}
	}
}

func TestServeValidateLogging(t *testing.T) {
	o := NewServe()
	fs := allFlags(o)
	if err := fs.Parse([]string{"--logging-format=xml"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), `logging.format: Invalid value: "xml"`) {
		t.Errorf("Validate() = %v, want the logging format named", err)
	}
}

// TestLoggingFormatJSON applies --logging-format=json and expects a
// refusal logged afterwards to come out as a JSON object.
func TestLoggingFormatJSON(t *testing.T) {
	t.Cleanup(func() {
		if err := logsapi.ResetForTest(nil); err != nil {
			t.Error(err)
		}
	})
	o := NewServe()
	fs := allFlags(o)
	if err := fs.Parse([]string{"--logging-format=json"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := o.applyLogging(&logsapi.LoggingOptions{ErrorStream: &out, InfoStream: &out}); err != nil {
		t.Fatal(err)
	}
	klog.ErrorS(errors.New("--probe-port 70000 must be between 0 and 65535"), "command failed")
	klog.Flush()
	line := strings.TrimSpace(out.String())
	var entry map[string]any
	if err := json.Unmarshal([]byte(line), &entry); err != nil {
		t.Fatalf("log line %q is not JSON: %v", line, err)
	}
	if entry["msg"] != "command failed" || !strings.Contains(entry["err"].(string), "--probe-port") {
		t.Errorf("log entry = %v", entry)
	}
}

func TestInClusterConfig(t *testing.T) {
	dir := t.TempDir()
	token, ca := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
	for _, f := range []string{token, ca} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		host, port string
		token, ca  string
		wantErr    string
	}{
		{name: "in a cluster", host: "10.0.0.1", port: "443", token: token, ca: ca},
		{name: "IPv6 service address", host: "fd00::1", port: "443", token: token, ca: ca},
		{name: "outside a cluster", token: token, ca: ca, wantErr: "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset"},
		{name: "no token", host: "10.0.0.1", port: "443", token: filepath.Join(dir, "missing"), ca: ca, wantErr: "--in-cluster-token-file"},
		{name: "no CA", host: "10.0.0.1", port: "443", token: token, ca: filepath.Join(dir, "missing"), wantErr: "--in-cluster-ca-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", tt.host)
			t.Setenv("KUBERNETES_SERVICE_PORT", tt.port)
			o := NewServe()
			o.InClusterTokenFile, o.InClusterCAFile = tt.token, tt.ca
			cfg, err := o.upstreamConfig()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("upstreamConfig() = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The token is only a file name, so that every transport
			// client-go builds re-reads it as the kubelet rotates it.
			if cfg.BearerToken != "" || cfg.BearerTokenFile != token || cfg.CAFile != ca {
				t.Errorf("config: token %q, token file %q, CA file %q", cfg.BearerToken, cfg.BearerTokenFile, cfg.CAFile)
			}
			if !strings.HasPrefix(cfg.Host, "https://") || !strings.HasSuffix(cfg.Host, ":443") {
				t.Errorf("host = %q", cfg.Host)
			}
		})
	}
}

func TestInClusterDefaults(t *testing.T) {
	o := NewServe()
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	o.AddFlags(fs)
	if o.InClusterTokenFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" ||
		o.InClusterCAFile != "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt" {
		t.Errorf("in-cluster files = %q, %q", o.InClusterTokenFile, o.InClusterCAFile)
	}
}

func TestServeValidateRefusesNoSecurePort(t *testing.T) {
	for _, tt := range []struct {
		port    int
		wantErr bool
	}{{port: 0, wantErr: true}, {port: 8443}} {
		o := NewServe()
		o.SecureServing.BindPort = tt.port
		err := o.Validate()
		if got := err != nil && strings.Contains(err.Error(), "--secure-port 0"); got != tt.wantErr {
			t.Errorf("port %d: Validate() = %v, want the --secure-port error: %v", tt.port, err, tt.wantErr)
		}
	}
}

func TestUpstreamKubeconfigMayNotImpersonate(t *testing.T) {
	const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t%s}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	tests := []struct {
		name, user, wantErr string
	}{
		{name: "plain", user: ""},
		{name: "as", user: ", as: alice", wantErr: `impersonates "alice"`},
		{name: "as-groups", user: ", as: alice, as-groups: [admins]", wantErr: "impersonates"},
		{name: "as-groups without as", user: ", as-groups: [admins]", wantErr: "without impersonating a user"},
		{name: "as-uid", user: ", as: alice, as-uid: u1", wantErr: "impersonates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kubeconfig")
			if err := os.WriteFile(path, []byte(fmt.Sprintf(kubeconfig, tt.user)), 0o600); err != nil {
				t.Fatal(err)
			}
			o := NewServe()
			o.Kubeconfig = path
			_, err := o.upstreamConfig()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("upstreamConfig() = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("upstreamConfig() = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// TestStreamWriteTimeout: 0 turns the bound off, anything from a second
// on is a bound, and less would end streams whose client only paused.
func TestStreamWriteTimeout(t *testing.T) {
	if got := NewServe().StreamWriteTimeout; got != time.Minute {
		t.Errorf("default --stream-write-timeout = %v, want 1m", got)
	}
	for value, wantErr := range map[string]bool{"0": false, "1s": false, "5m": false, "500ms": true, "-1s": true} {
		o := NewServe()
		if err := allFlags(o).Parse([]string{"--stream-write-timeout=" + value}); err != nil {
			t.Fatal(err)
		}
		err := o.Validate()
		if got := err != nil && strings.Contains(err.Error(), "--stream-write-timeout"); got != wantErr {
			t.Errorf("--stream-write-timeout=%s: Validate() = %v, want an error: %v", value, err, wantErr)
		}
	}
}
