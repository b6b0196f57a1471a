package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestDeploymentDefaults checks what the default values promise an
// operator: two replicas spread over nodes, a disruption budget, probes on
// the probe port, a grace period that covers the drain, and a locked-down
// container.
func TestDeploymentDefaults(t *testing.T) {
	objs := mustRender(t, "", chartNamespace)
	d := deployment(t, objs)
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	if a := spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("affinity %+v, want one preferred pod anti-affinity term", a)
	} else {
		term := a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
		if term.TopologyKey != corev1.LabelHostname || !reflect.DeepEqual(term.LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
			t.Errorf("anti-affinity term %+v, want the Deployment's own pods by %s", term, corev1.LabelHostname)
		}
	}

	var pdb policyv1.PodDisruptionBudget
	fromUnstructured(t, find(t, objs, "PodDisruptionBudget", "kip"), &pdb)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || !reflect.DeepEqual(pdb.Spec.Selector, d.Spec.Selector) {
		t.Errorf("PodDisruptionBudget %+v, want maxUnavailable 1 over the Deployment's pods", pdb.Spec)
	}

	args := flagValues(c.Args)
	probePort := port(t, c, "probes")
	if args["--probe-port"] != probePort {
		t.Errorf("--probe-port=%s, but the container's probes port is %s", args["--probe-port"], probePort)
	}
	for name, probe := range map[string]*corev1.Probe{"/livez": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || probe.HTTPGet.Port.String() != "probes" {
			t.Errorf("probe %s is %+v, want an HTTP GET on the probes port", name, probe)
		}
	}
	if args["--secure-port"] != port(t, c, "https") {
		t.Errorf("--secure-port=%s, but the container's https port is %s", args["--secure-port"], port(t, c, "https"))
	}

	drain := duration(t, args["--shutdown-delay-duration"]) + duration(t, args["--request-timeout"])
	if grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second; grace <= drain {
		t.Errorf("terminationGracePeriodSeconds %s does not cover the drain: shutdown delay plus request timeout is %s", grace, drain)
	}

	if got, want := args["--signer-ca-secret"], chartNamespace+"/kip-signer-ca"; got != want {
		t.Errorf("--signer-ca-secret=%s, want %s", got, want)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("resource requests %v, want cpu and memory", c.Resources.Requests)
	}

	psc, sc := spec.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532:
		t.Errorf("pod securityContext %+v, want runAsNonRoot as user 65532, the image's", psc)
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("container securityContext %+v, want a read-only root filesystem", sc)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("container securityContext %+v, want allowPrivilegeEscalation false", sc)
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities %+v, want all dropped and none added", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("seccomp %+v, want RuntimeDefault", sc.SeccompProfile)
	}
}

// TestGoRuntimeFollowsTheResources: GOMEMLIMIT is the memory limit, and,
// without a CPU limit, GOMAXPROCS is the CPU request in whole CPUs. With a
// CPU limit Go sizes GOMAXPROCS to it by itself, and without a memory limit
// the downward API would hand over the node's memory, so the chart leaves
// those out.
func TestGoRuntimeFollowsTheResources(t *testing.T) {
	tests := []struct {
		name, values     string
		memory, maxProcs bool
	}{
		{name: "defaults", memory: true, maxProcs: true},
		{name: "another memory limit", values: "resources: {limits: {memory: 2Gi}}", memory: true, maxProcs: true},
		{name: "another CPU request", values: "resources: {requests: {cpu: 1500m}}", memory: true, maxProcs: true},
		{name: "no memory limit", values: "resources: {limits: {memory: null}}", maxProcs: true},
		{name: "no limits", values: "resources: {limits: null}", maxProcs: true},
		{name: "a CPU limit", values: "resources: {limits: {cpu: 2}}", memory: true},
		{name: "no CPU request", values: "resources: {requests: {cpu: null}}", memory: true},
		{name: "no resources", values: "resources: null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := deployment(t, mustRender(t, tt.values, chartNamespace)).Spec.Template.Spec.Containers[0]
			for _, want := range []struct {
				env corev1.EnvVar
				set bool
			}{{goMemLimit, tt.memory}, {goMaxProcs, tt.maxProcs}} {
				got := envNamed(c.Env, want.env.Name)
				switch {
				case !want.set && got != nil:
					t.Errorf("%s %+v with resources %v, want none", want.env.Name, got, c.Resources)
				case want.set && (got == nil || got.Value != "" || !apiequality.Semantic.DeepEqual(got.ValueFrom, want.env.ValueFrom)):
					t.Errorf("%s %+v, want %+v", want.env.Name, got, want.env.ValueFrom)
				}
			}
		})
	}
}

func envNamed(env []corev1.EnvVar, name string) *corev1.EnvVar {
	for i := range env {
		if env[i].Name == name {
			return &env[i]
		}
	}
	return nil
}

var (
	goMemLimit = corev1.EnvVar{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
		ContainerName: "kip", Resource: "limits.memory", Divisor: resource.MustParse("1"),
	}}}
	goMaxProcs = corev1.EnvVar{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
		ContainerName: "kip", Resource: "requests.cpu", Divisor: resource.MustParse("1"),
	}}}
)

// TestExtraEnvReachesKip: extraEnv's variables follow the chart's own
// GOMEMLIMIT and GOMAXPROCS in their given order; one of the same name
// replaces the chart's, since two of one name would leave it unclear which
// the runtime reads.
func TestExtraEnvReachesKip(t *testing.T) {
	proxy := corev1.EnvVar{Name: "HTTPS_PROXY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "proxy"}, Key: "url",
	}}}
	tests := []struct {
		name, values string
		want         []corev1.EnvVar
	}{
		{name: "defaults", want: []corev1.EnvVar{goMemLimit, goMaxProcs}},
		{name: "empty", values: "extraEnv: []", want: []corev1.EnvVar{goMemLimit, goMaxProcs}},
		{
			name:   "after the chart's in order",
			values: "extraEnv: [{name: HTTPS_PROXY, valueFrom: {secretKeyRef: {name: proxy, key: url}}}, {name: GOGC, value: \"50\"}]",
			want:   []corev1.EnvVar{goMemLimit, goMaxProcs, proxy, {Name: "GOGC", Value: "50"}},
		},
		{
			name:   "GOMEMLIMIT of the operator",
			values: "extraEnv: [{name: GOGC, value: \"50\"}, {name: GOMEMLIMIT, value: 900MiB}]",
			want:   []corev1.EnvVar{goMaxProcs, {Name: "GOGC", Value: "50"}, {Name: "GOMEMLIMIT", Value: "900MiB"}},
		},
		{
			name:   "GOMAXPROCS of the operator",
			values: "extraEnv: [{name: GOMAXPROCS, value: \"4\"}]",
			want:   []corev1.EnvVar{goMemLimit, {Name: "GOMAXPROCS", Value: "4"}},
		},
		{
			name:   "without resources",
			values: "resources: null\nextraEnv: [{name: GOMAXPROCS, value: \"1\"}]",
			want:   []corev1.EnvVar{{Name: "GOMAXPROCS", Value: "1"}},
		},
		{name: "neither", values: "resources: null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := deployment(t, mustRender(t, tt.values, chartNamespace)).Spec.Template.Spec.Containers[0]
			if !apiequality.Semantic.DeepEqual(c.Env, tt.want) {
				t.Errorf("env %+v, want %+v", c.Env, tt.want)
			}
		})
	}
}

// TestSchemaRefusesBadExtraEnv: an extraEnv entry the API server would
// refuse is stopped at render time, with a message that names extraEnv.
func TestSchemaRefusesBadExtraEnv(t *testing.T) {
	tests := []struct {
		name, values string
		refused      bool
	}{
		{name: "a value", values: "extraEnv: [{name: GOMAXPROCS, value: \"1\"}]"},
		{name: "a value from a Secret", values: "extraEnv: [{name: HTTPS_PROXY, valueFrom: {secretKeyRef: {name: proxy, key: url}}}]"},
		{name: "no name", values: "extraEnv: [{value: \"1\"}]", refused: true},
		{name: "an empty name", values: "extraEnv: [{name: \"\", value: \"1\"}]", refused: true},
		{name: "a number as the value", values: "extraEnv: [{name: GOMAXPROCS, value: 1}]", refused: true},
		{name: "a misspelt key", values: "extraEnv: [{name: GOGC, vaule: \"50\"}]", refused: true},
		{name: "a string, not an entry", values: "extraEnv: [GOGC=50]", refused: true},
		{name: "both a value and a valueFrom", values: "extraEnv: [{name: GOGC, value: \"50\", valueFrom: {secretKeyRef: {name: s, key: k}}}]", refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderChart(t, tt.values, chartNamespace)
			switch {
			case !tt.refused && err != nil:
				t.Errorf("values %q refused: %v", tt.values, err)
			case tt.refused && err == nil:
				t.Errorf("values %q accepted, want them refused", tt.values)
			case tt.refused && !strings.Contains(err.Error(), "extraEnv"):
				t.Errorf("values %q refused with %q, which does not name extraEnv", tt.values, err)
			}
		})
	}
}

// TestChartGrantsTheDeployedRights: in every value set, the chart grants
// exactly deploy/rbac.yaml's rights (the signer CA Secret and Lease, and
// reading the revocation list, in kip's own namespace), and nothing else
// cluster-wide. The revokers' Role is deploy/rbac.yaml's too, bound to no
// one unless the values name revokers. In gateway mode it
// grants only the namespaced ones, and reading the Secrets of kip's
// namespace.
func TestChartGrantsTheDeployedRights(t *testing.T) {
	deployed := decodeObjectsFile(t, filepath.Join(env.root, "deploy", "rbac.yaml"))
	wantClusterRules := rules(t, find(t, deployed, "ClusterRole", "kip-proxy"))
	wantSignerRules := rules(t, find(t, deployed, "Role", "kip-signer-ca"))
	wantRevocationRules := rules(t, find(t, deployed, "Role", "kip-revocations"))
	wantRevokerRules := rules(t, find(t, deployed, "Role", "kip-revoker"))
	const ns = "kip-rights"
	for _, set := range valueSets {
		t.Run(set.name, func(t *testing.T) {
			objs := mustRender(t, set.values, ns)
			gateway := set.values == gatewayValues
			// The session viewers' role is for auditors to be bound to;
			// no binding of the chart's names it (checkBinding).
			crs := slices.DeleteFunc(ofKind(objs, "ClusterRole"), func(o *unstructured.Unstructured) bool { return o.GetName() == "kip-session-viewer" })
			switch {
			case gateway && len(crs) != 0:
				// kip serves only the clusters of its Secrets, with their
				// credentials: where it runs it impersonates no one.
				t.Errorf("ClusterRoles %v in gateway mode, want none", names(crs))
			case !gateway && (len(crs) != 1 || !reflect.DeepEqual(rules(t, crs[0]), wantClusterRules)):
				t.Errorf("ClusterRoles %v, want one with deploy/rbac.yaml's rules", names(crs))
			}
			for _, b := range append(ofKind(objs, "ClusterRoleBinding"), ofKind(objs, "RoleBinding")...) {
				checkBinding(t, b, ns)
			}
			for _, r := range ofKind(objs, "Role") {
				if r.GetNamespace() != ns {
					t.Errorf("Role %s/%s is outside kip's namespace", r.GetNamespace(), r.GetName())
				}
				got := rules(t, r)
				switch {
				case gateway && r.GetName() == "kip-clusters":
					if !reflect.DeepEqual(got, clusterSecretsRules) {
						t.Errorf("Role kip-clusters has rules %+v, want %+v", got, clusterSecretsRules)
					}
				case r.GetName() == "kip-revocations":
					if !reflect.DeepEqual(got, wantRevocationRules) {
						t.Errorf("Role kip-revocations has rules %+v, want deploy/rbac.yaml's %+v", got, wantRevocationRules)
					}
				case r.GetName() == "kip-revoker":
					if !reflect.DeepEqual(got, wantRevokerRules) {
						t.Errorf("Role kip-revoker has rules %+v, want deploy/rbac.yaml's %+v", got, wantRevokerRules)
					}
				case r.GetName() != "kip-signer-ca" || !reflect.DeepEqual(got, wantSignerRules):
					t.Errorf("Role %s has rules %+v, want only Roles kip-signer-ca, kip-revocations and kip-revoker with deploy/rbac.yaml's rules (and kip-clusters in gateway mode)", r.GetName(), got)
				}
			}
			// kip creates its signer CA; a CA rendered by the chart would be
			// the same for every install and sit in the release history.
			for _, s := range ofKind(objs, "Secret") {
				if s.GetName() == "kip-signer-ca" {
					t.Error("the chart renders the signer CA Secret, which kip must create itself")
				}
			}
		})
	}
}

// checkBinding fails unless b binds one of the chart's roles, or the
// client-CA reader in kube-system, to kip's ServiceAccount alone.
func checkBinding(t *testing.T, b *unstructured.Unstructured, ns string) {
	t.Helper()
	var rb rbacv1.RoleBinding // a ClusterRoleBinding has the same fields
	fromUnstructured(t, b, &rb)
	want := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "kip", Namespace: ns}}
	if !reflect.DeepEqual(rb.Subjects, want) {
		t.Errorf("%s %s binds %+v, want only kip's ServiceAccount", b.GetKind(), b.GetName(), rb.Subjects)
	}
	ok := false
	switch {
	case b.GetKind() == "ClusterRoleBinding":
		ok = rb.RoleRef.Kind == "ClusterRole" && rb.RoleRef.Name == "kip-proxy"
	case b.GetNamespace() == "kube-system":
		ok = rb.RoleRef.Kind == "Role" && rb.RoleRef.Name == "extension-apiserver-authentication-reader"
	case b.GetNamespace() == ns:
		ok = rb.RoleRef.Kind == "Role"
	}
	if !ok {
		t.Errorf("%s %s/%s refers to %s %s, which the chart does not own", b.GetKind(), b.GetNamespace(), b.GetName(), rb.RoleRef.Kind, rb.RoleRef.Name)
	}
}

func decodeObjectsFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, string(data))
}

func rules(t *testing.T, o *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	var r rbacv1.ClusterRole // a Role has the same fields
	fromUnstructured(t, o, &r)
	return r.Rules
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	return out
}

func fromUnstructured(t *testing.T, o *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
}

// flagValues maps each --flag=value argument to its value; a later one wins,
// as with kip's own flag parsing.
func flagValues(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			m[k] = v
		}
	}
	return m
}

// port is the number of the container's port called name.
func port(t *testing.T, c corev1.Container, name string) string {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return strconv.Itoa(int(p.ContainerPort))
		}
	}
	t.Fatalf("container %s has no port %s", c.Name, name)
	return ""
}

func duration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}
