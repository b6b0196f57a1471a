package options

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	configv1alpha1 "github.com/kip-proxy/kip/pkg/apis/config/v1alpha1"
)

// exampleConfig is a realistic file; everyField sets every field to
// something other than its default, some of them mutually exclusive, so it
// is decoded but not validated.
const (
	exampleConfig = "testdata/kipconfiguration.yaml"
	everyField    = "testdata/every-field.yaml"
)

func TestExampleConfigLoads(t *testing.T) {
	c, err := LoadConfigFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.Logging.Format != "json" || c.Authentication.SignerCA.Secret != "kip-system/kip-signer-ca" || *c.Observability.ProbePort != 8081 {
		t.Errorf("unexpected example: %+v", c)
	}
}

func decodeFile(t *testing.T, path string) *configv1alpha1.KipConfiguration {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// alphaLoggingFlags need component-base's LoggingAlphaOptions feature
// gate, which kip leaves off, so the example cannot set them.
var alphaLoggingFlags = map[string]bool{
	"log-text-split-stream": true, "log-text-info-buffer-size": true,
	"log-json-split-stream": true, "log-json-info-buffer-size": true,
}

func TestEveryFieldRoundTrips(t *testing.T) {
	c := decodeFile(t, everyField)
	if zero := zeroFields(reflect.ValueOf(*c), ""); len(zero) > 0 {
		t.Errorf("the example leaves fields at their zero value; give each a value other than its default: %v", zero)
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := decodeConfig(data)
	if err != nil {
		t.Fatalf("decoding the re-encoded example: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(c, again) {
		t.Errorf("round trip changed the configuration:\nbefore %+v\nafter  %+v", c, again)
	}
}

// zeroFields lists the leaves of v that hold their zero value.
func zeroFields(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		// A pointer is set even when it points at false or 0.
		if v.Elem().Kind() != reflect.Struct {
			return nil
		}
		return zeroFields(v.Elem(), path)
	case reflect.Struct:
		if path == ".Logging.Options" || path == ".TypeMeta" {
			return nil
		}
		var zero []string
		for i := range v.NumField() {
			zero = append(zero, zeroFields(v.Field(i), path+"."+v.Type().Field(i).Name)...)
		}
		return zero
	default:
		if v.IsZero() {
			return []string{path}
		}
		return nil
	}
}

func TestConfigCoversEveryFlag(t *testing.T) {
	o := NewServe()
	fields := map[string]bool{}
	for _, f := range o.configFields(&configv1alpha1.KipConfiguration{}) {
		if fields[f.flag] {
			t.Errorf("flag --%s is mapped twice", f.flag)
		}
		fields[f.flag] = true
	}
	flags := allFlags(o)
	for _, old := range deprecatedFlags {
		fields[old] = true
	}
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" && !fields[f.Name] {
			t.Errorf("flag --%s has no field in KipConfiguration", f.Name)
		}
		delete(fields, f.Name)
	})
	for name := range fields {
		t.Errorf("KipConfiguration maps to --%s, which kip serve does not have", name)
	}
}

// TestConfigSetsEveryFlag applies a file that sets everything to a
// non-default value, and expects every flag's value to have moved.
func TestConfigSetsEveryFlag(t *testing.T) {
	c := decodeFile(t, everyField)
	o := NewServe()
	flags := allFlags(o)
	o.applyConfig(c, func(string) bool { return false })
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" && f.Deprecated == "" && !alphaLoggingFlags[f.Name] && f.Value.String() == f.DefValue {
			t.Errorf("--%s is still %s after applying the example", f.Name, f.DefValue)
		}
	})
}

// TestConfigDefaultsAreTheFlagDefaults keeps the API's defaulting and the
// flags' defaults from drifting apart: an empty file changes nothing.
func TestConfigDefaultsAreTheFlagDefaults(t *testing.T) {
	c, err := decodeConfig([]byte("apiVersion: kip.dev/v1alpha1\nkind: KipConfiguration\n"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := validateConfig(c); len(errs) > 0 {
		t.Fatalf("the defaults are invalid: %v", errs)
	}
	o := NewServe()
	flags := allFlags(o)
	o.applyConfig(c, func(string) bool { return false })
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Value.String() != f.DefValue {
			t.Errorf("--%s: the file's default is %s, the flag's %s", f.Name, f.Value, f.DefValue)
		}
	})
}

func allFlags(o *Serve) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kip serve", pflag.ContinueOnError)
	o.AddFlags(fs)
	return fs
}

func TestLoadConfigFileRefuses(t *testing.T) {
	const header = "apiVersion: kip.dev/v1alpha1\nkind: KipConfiguration\n"
	tests := []struct {
		name    string
		file    string
		wantErr []string
	}{
		{"unknown field", header + "serving:\n  prot: 8443\n", []string{`unknown field "serving.prot"`}},
		{"unknown section", header + "tracing: {}\n", []string{`unknown field "tracing"`}},
		{"duplicate field", header + "limits:\n  requestTimeout: 1m\n  requestTimeout: 2m\n", []string{"requestTimeout", "already set"}},
		{"wrong version", "apiVersion: kip.dev/v1\nkind: KipConfiguration\n", []string{"kip.dev/v1", "KipConfiguration"}},
		{"wrong kind", "apiVersion: kip.dev/v1alpha1\nkind: KubeletConfiguration\n", []string{"KubeletConfiguration"}},
		{"no kind", "apiVersion: kip.dev/v1alpha1\n", []string{"Kind"}},
		{"not YAML", "{", []string{"config file"}},
		{"bind address", header + "serving: {bindAddress: everywhere}\n", []string{`serving.bindAddress: Invalid value: "everywhere": not an IP address`}},
		{"port", header + "serving: {port: 70000}\n", []string{"serving.port: Invalid value: 70000: must be between 1 and 65535"}},
		{"certificate without key", header + "serving: {tlsCertFile: /c}\n", []string{"serving.tlsPrivateKeyFile: Required value"}},
		{"SNI without key", header + "serving: {sniCertKeys: [{certFile: /c, keyFile: ''}]}\n", []string{"serving.sniCertKeys[0]: Required value"}},
		{"cipher", header + "serving: {tlsCipherSuites: [TLS_NOPE]}\n", []string{"serving.tlsCipherSuites: Invalid value"}},
		{"TLS version", header + "serving: {tlsMinVersion: TLS1.3}\n", []string{`serving.tlsMinVersion: Unsupported value: "TLS1.3"`}},
		{"HTTP/2 streams", header + "serving: {http2MaxStreamsPerConnection: -1}\n", []string{"serving.http2MaxStreamsPerConnection: Invalid value: -1"}},
		{"token cache", header + "authentication: {tokenCacheTTL: -1s}\n", []string{`authentication.tokenCacheTTL: Invalid value: "-1s": must be positive`}},
		{"signer cert without key", header + "authentication: {signerCA: {certFile: /c}}\n", []string{"authentication.signerCA.keyFile: Required value"}},
		{"signer files and secret", header + "authentication: {signerCA: {certFile: /c, keyFile: /k, secret: ns/s}}\n", []string{"authentication.signerCA.secret: Forbidden"}},
		{"signer secret", header + "authentication: {signerCA: {secret: kip-signer}}\n", []string{`authentication.signerCA.secret: Invalid value: "kip-signer": "kip-signer" is not namespace/name`}},
		{"credential TTL", header + "authentication: {credentialTTL: 48h}\n", []string{`authentication.credentialTTL: Invalid value: "48h0m0s": must be between 1m and 24h`}},
		{"webhook cache", header + "authentication: {tokenWebhook: {cacheTTL: -1m}}\n", []string{"authentication.tokenWebhook.cacheTTL: Invalid value"}},
		{"system:masters", header + "authentication: {allowedReservedGroups: [system:nodes, system:masters]}\n", []string{"authentication.allowedReservedGroups[1]: Forbidden: system:masters bypasses"}},
		{"ordinary group", header + "authentication: {allowedReservedGroups: [devs]}\n", []string{`authentication.allowedReservedGroups[0]: Invalid value: "devs"`}},
		{"audit format", header + "audit: {log: {format: xml}}\n", []string{`audit.log.format: Unsupported value: "xml"`}},
		{"audit age", header + "audit: {log: {maxAge: -1}}\n", []string{"audit.log.maxAge: Invalid value: -1"}},
		{"audit mode", header + "audit: {webhook: {batch: {mode: eventually}}}\n", []string{`audit.webhook.batch.mode: Unsupported value: "eventually"`}},
		{"audit batch size", header + "audit: {log: {batch: {bufferSize: 0}}}\n", []string{"audit.log.batch.bufferSize: Invalid value: 0: must be positive"}},
		{"audit throttle", header + "audit: {webhook: {batch: {throttleQPS: -1}}}\n", []string{"audit.webhook.batch: Invalid value", "must not be negative"}},
		{"audit truncate", header + "audit: {webhook: {truncate: {maxEventSize: -5}}}\n", []string{"audit.webhook.truncate.maxEventSize: Invalid value: -5"}},
		{"audit backoff", header + "audit: {webhook: {initialBackoff: -1s}}\n", []string{"audit.webhook.initialBackoff: Invalid value"}},
		{"probe port", header + "observability: {probePort: -1}\n", []string{"observability.probePort: Invalid value: -1: must be between 0 and 65535"}},
		{"probe address", header + "observability: {probeBindAddress: localhost}\n", []string{`observability.probeBindAddress: Invalid value: "localhost"`}},
		{"in flight", header + "limits: {maxMutatingRequestsInFlight: -1}\n", []string{"limits.maxMutatingRequestsInFlight: Invalid value: -1"}},
		{"request timeout", header + "limits: {requestTimeout: -1s}\n", []string{"limits.requestTimeout: Invalid value"}},
		{"shutdown delay", header + "limits: {shutdownDelayDuration: -1s}\n", []string{"limits.shutdownDelayDuration: Invalid value"}},
		{"stream write timeout", header + "limits: {streamWriteTimeout: 10ms}\n", []string{"limits.streamWriteTimeout: Invalid value", "0s (no limit) or at least 1s"}},
		{"logging format", header + "logging: {format: xml}\n", []string{"logging.format: Invalid value: \"xml\""}},
		{"two errors at once", header + "serving: {port: 0}\nobservability: {probePort: 70000}\n", []string{"serving.port", "observability.probePort"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kip.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfigFile(path)
			if err == nil {
				t.Fatalf("LoadConfigFile() = nil, want an error with %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("LoadConfigFile() = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestFlagsOverrideTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kip.yaml")
	file := `apiVersion: kip.dev/v1alpha1
kind: KipConfiguration
serving: {port: 9443}
authentication: {trustClusterClientCA: false, allowedReservedGroups: [system:monitoring]}
observability: {probePort: 9081}
limits: {requestTimeout: 2m}
`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	o := NewServe()
	fs := allFlags(o)
	// --trust-cluster-client-ca=true is the default, yet given on the
	// command line it still wins over the file.
	args := []string{"--config=" + path, "--probe-port=7000", "--trust-cluster-client-ca=true", "--allowed-reserved-groups=system:nodes"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := o.Complete(fs); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"--probe-port (flag)", o.ProbePort, 7000},
		{"--trust-cluster-client-ca (flag)", o.TrustClusterClientCA, true},
		{"--allowed-reserved-groups (flag)", o.Credentials.AllowedReservedGroups, []string{"system:nodes"}},
		{"--secure-port (file)", o.SecureServing.BindPort, 9443},
		{"--request-timeout (file)", o.RequestTimeout.String(), "2m0s"},
		{"--max-requests-inflight (default)", o.MaxRequestsInFlight, 400},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestCompleteWithoutConfigChangesNothing(t *testing.T) {
	o := NewServe()
	fs := allFlags(o)
	if err := fs.Parse([]string{"--probe-port=7000"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Complete(fs); err != nil || o.ProbePort != 7000 {
		t.Errorf("Complete() = %v, probe port %d; want nil and 7000", err, o.ProbePort)
	}
	o.ConfigFile = filepath.Join(t.TempDir(), "missing.yaml")
	if err := o.Complete(fs); err == nil || !strings.Contains(err.Error(), "reading the config file") {
		t.Errorf("Complete() with a missing file = %v", err)
	}
}
