package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kip-proxy/kip/internal/rig/binaries"
)

// chartNamespace is the namespace deploy/manifests/kip.yaml is rendered for.
const chartNamespace = "kip-system"

// valueSets are the values the chart is rendered and checked with: the
// defaults, and one set for each feature an operator turns on.
var valueSets = []struct {
	name   string
	values string
}{
	{name: "defaults"},
	{name: "load balancer", values: `
service:
  type: LoadBalancer
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout: "3600"
    service.beta.kubernetes.io/azure-load-balancer-tcp-idle-timeout: "30"
  loadBalancerSourceRanges: [203.0.113.0/24]
  externalTrafficPolicy: Local
`},
	{name: "network policy", values: `
networkPolicy:
  enabled: true
  clientsFrom:
  - namespaceSelector: {matchLabels: {kip.dev/clients: "true"}}
  metricsFrom:
  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
`},
	{name: "three replicas", values: `
replicas: 3
image: {repository: registry.example.com/kip, tag: v1.2.3}
podDisruptionBudget: {maxUnavailable: 1}
resources: {requests: {cpu: 500m, memory: 512Mi}}
extraEnv:
- {name: GOMAXPROCS, value: "1"}
- name: GOMEMLIMIT
  valueFrom: {resourceFieldRef: {containerName: kip, resource: requests.memory}}
`},
	{name: "identity providers and a config file", values: `
config:
  apiVersion: kip.dev/v1alpha1
  kind: KipConfiguration
  limits: {maxRequestsInFlight: 800}
authentication:
  config:
    apiVersion: apiserver.config.k8s.io/v1
    kind: AuthenticationConfiguration
    jwt:
    - issuer: {url: "https://login.example.com", audiences: [kip]}
      claimMappings:
        username: {claim: sub, prefix: "oidc:"}
        groups: {claim: groups, prefix: "oidc:"}
  allowedReservedGroups: ["system:authenticated"]
tokenWebhook:
  kubeconfig: |
    apiVersion: v1
    kind: Config
    clusters: [{name: webhook, cluster: {server: "https://tokens.example.com/review"}}]
    users: [{name: kip, user: {}}]
    contexts: [{name: webhook, context: {cluster: webhook, user: kip}}]
    current-context: webhook
extraArgs: [--token-cache-ttl=30s]
`},
	{name: "existing secrets", values: `
servingCert: {existingSecret: corp-kip-tls}
tokenWebhook: {existingSecret: corp-token-webhook}
trustClusterClientCA: false
`},
	{name: "gateway with cluster Secrets", values: gatewayValues},
	{name: "recording on a volume", values: recordingOnAVolume},
	{name: "recording to a bucket", values: recordingToABucket},
	{name: "cert-manager and prometheus", values: `
servingCert:
  certManager:
    enabled: true
    issuerRef: {name: corp-ca, kind: ClusterIssuer, group: cert-manager.io}
    dnsNames: [kip.example.com]
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
`},
}

// renderChart renders deploy/helm/kip with values into namespace, as
// `make manifests` does. It returns the manifest or the renderer's error.
func renderChart(t *testing.T, values, namespace string) (string, error) {
	t.Helper()
	args := chartArgs(t, values, namespace)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(renderer(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", errors.New(strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// chartArgs are the renderer's arguments for the chart with values in
// namespace.
func chartArgs(t *testing.T, values, namespace string) []string {
	t.Helper()
	args := []string{"--chart", filepath.Join(env.root, "deploy", "helm", "kip"), "--namespace", namespace}
	if values != "" {
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", f)
	}
	return args
}

// mustRender is renderChart that fails the test on an error.
func mustRender(t *testing.T, values, namespace string) []*unstructured.Unstructured {
	t.Helper()
	manifest, err := renderChart(t, values, namespace)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	return decodeObjects(t, manifest)
}

// decodeObjects splits a multi-document manifest into objects.
func decodeObjects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decoding the rendered manifest: %v", err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// find returns the one object of kind named name.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("the chart rendered no %s %s", kind, name)
	return nil
}

// ofKind returns the objects of kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// deployment returns the chart's Deployment, typed.
func deployment(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(find(t, objs, "Deployment", "kip").Object, &d, true); err != nil {
		t.Fatal(err)
	}
	return &d
}

// TestManifestsAreTheChartsRender: deploy/manifests/kip.yaml is what the
// chart renders with its default values, so the two never drift apart.
func TestManifestsAreTheChartsRender(t *testing.T) {
	want, err := renderChart(t, "", chartNamespace)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(env.root, "deploy", "manifests", "kip.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(want, "\n")
		i := 0
		for i < min(len(gotLines), len(wantLines)) && gotLines[i] == wantLines[i] {
			i++
		}
		t.Errorf("deploy/manifests/kip.yaml differs from a fresh render of deploy/helm/kip from line %d on; run make manifests", i+1)
	}
}

// TestSchemaRefusesBadValues: values.schema.json stops a wrong value at
// render time, before anything reaches the cluster.
func TestSchemaRefusesBadValues(t *testing.T) {
	tests := []struct {
		name    string
		values  string
		wantErr string // "" means accepted
	}{
		{name: "replicas as a number", values: "replicas: 3"},
		{name: "replicas as a word", values: "replicas: two", wantErr: "replicas"},
		{name: "no replicas", values: "replicas: 0", wantErr: "replicas"},
		{name: "a misspelt key", values: "replica: 3", wantErr: "replica"},
		{name: "an unknown Service type", values: "service: {type: Ingress}", wantErr: "/service/type"},
		{name: "a port out of range", values: "service: {port: 70000}", wantErr: "/service/port"},
		{name: "system:masters for identity providers", values: "authentication: {allowedReservedGroups: [system:masters]}", wantErr: "allowedReservedGroups"},
		{name: "a group that is not system:", values: "authentication: {allowedReservedGroups: [admins]}", wantErr: "allowedReservedGroups"},
		{name: "an extra argument that is not a flag", values: "extraArgs: [serve]", wantErr: "extraArgs"},
		{name: "a signer Secret name with capitals", values: "signer: {secretName: Kip-CA}", wantErr: "secretName"},
		{name: "a credential lifetime without a unit", values: "signer: {credentialTTL: 300}", wantErr: "credentialTTL"},
		{name: "cert-manager without an issuer", values: "servingCert: {certManager: {enabled: true}}", wantErr: "issuerRef"},
		{name: "authentication config as a string", values: "authentication: {config: \"apiVersion: apiserver.config.k8s.io/v1\\nkind: AuthenticationConfiguration\\n\"}"},
		{name: "authentication config as a list", values: "authentication: {config: [a]}", wantErr: "/authentication/config"},
		{name: "config file as a number", values: "config: 3", wantErr: "/config"},
		{name: "gateway mode", values: "clusters: {secrets: {enabled: true}, secretLabel: example.com/kip-cluster}"},
		{name: "a cluster label that is no label key", values: "clusters: {secrets: {enabled: true}, secretLabel: \"kip cluster\"}", wantErr: "secretLabel"},
		{name: "a cluster name that is no DNS label", values: "clusters: {secrets: {enabled: true}, list: [{name: Prod_EU, kubeconfig: x}]}", wantErr: "/clusters/list/0/name"},
		{name: "a cluster without a kubeconfig", values: "clusters: {secrets: {enabled: true}, list: [{name: prod}]}", wantErr: "kubeconfig"},
		{name: "a misspelt cluster key", values: "clusters: {secrets: {enabled: true}, list: [{name: prod, kubeConfig: x}]}", wantErr: "kubeConfig"},
		{name: "clusters without gateway mode", values: "clusters: {list: [{name: prod, kubeconfig: x}]}", wantErr: "needs clusters.secrets.enabled"},
		{name: "a cluster named twice", values: "clusters: {secrets: {enabled: true}, list: [{name: prod, kubeconfig: x}, {name: prod, kubeconfig: z}]}", wantErr: "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkRender(t, tt.values, tt.wantErr) })
	}
}

// checkRender renders the chart with values and checks that it is refused
// with a message holding wantErr, or accepted when wantErr is "".
func checkRender(t *testing.T, values, wantErr string) {
	t.Helper()
	_, err := renderChart(t, values, chartNamespace)
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("values %q refused: %v", values, err)
	case wantErr != "" && err == nil:
		t.Errorf("values %q accepted, want them refused", values)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Errorf("values %q refused with %q, which does not name %q", values, err, wantErr)
	}
}

// TestChartNamesTheImage: the Deployment runs repository:tag from the
// values, the chart's appVersion when no tag is given.
func TestChartNamesTheImage(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name, values, want string
	}{
		{name: "defaults", want: "ghcr.io/kip-proxy/kip:" + appVersion(t)},
		{name: "repository and tag", values: "image: {repository: registry.example.com/team/kip, tag: v9.8.7}", want: "registry.example.com/team/kip:v9.8.7"},
		{name: "digest", values: "image: {tag: v9.8.7, digest: " + digest + "}", want: "ghcr.io/kip-proxy/kip@" + digest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := deployment(t, mustRender(t, tt.values, chartNamespace)).Spec.Template.Spec.Containers
			if len(c) != 1 || c[0].Image != tt.want {
				t.Fatalf("containers %+v, want one running %s", c, tt.want)
			}
			if len(c[0].Command) != 0 || len(c[0].Args) == 0 || c[0].Args[0] != "serve" {
				t.Errorf("command %q args %q: want the image's entrypoint with arguments serve …", c[0].Command, c[0].Args)
			}
		})
	}
}

func appVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(env.root, "deploy", "helm", "kip", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	return chart.AppVersion
}

// TestMakeRendersWithTheTestedHelm: `make manifests` builds the renderer
// with the Helm version the tests pin, into the folder they use.
func TestMakeRendersWithTheTestedHelm(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(env.root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	want := "HELM_VERSION := " + binaries.HelmVersion
	if !slices.Contains(strings.Split(string(data), "\n"), want) {
		t.Errorf("the Makefile does not say %q", want)
	}
}

// TestChartLints: `helm lint --strict` finds nothing to warn about, with
// any of the value sets.
func TestChartLints(t *testing.T) {
	for _, set := range valueSets {
		t.Run(set.name, func(t *testing.T) {
			args := append(chartArgs(t, set.values, chartNamespace), "--lint")
			if out, err := exec.Command(renderer(t), args...).CombinedOutput(); err != nil {
				t.Errorf("helm lint: %v\n%s", err, out)
			}
		})
	}
}
