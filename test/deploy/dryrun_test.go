package deploy

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
)

// fieldManager is the server-side apply manager of the tests' objects.
const fieldManager = "kip-chart-test"

// TestChartIsValidOnTheAPIServer renders the chart with every value set and
// applies each object to the real kube-apiserver with server-side dry run,
// so each is checked against the real schema and admission. Kinds whose CRD
// is not installed are skipped (and logged), and their shape is checked
// here instead.
func TestChartIsValidOnTheAPIServer(t *testing.T) {
	a := newApplier(t)
	for i, set := range valueSets {
		t.Run(set.name, func(t *testing.T) {
			ns := createNamespace(t, fmt.Sprintf("kip-dry-run-%d", i))
			objs := mustRender(t, set.values, ns)
			for _, o := range objs {
				applied, err := a.apply(t, o, true)
				switch {
				case meta.IsNoMatchError(err):
					t.Logf("not applied: %s %s is a %s, whose CRD this API server does not have; checked its structure instead", o.GetKind(), o.GetName(), o.GetAPIVersion())
					checkCustomResource(t, o, objs)
				case err != nil:
					t.Errorf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				case !applied.namespaced && o.GetNamespace() != "":
					t.Errorf("%s %s is cluster-scoped but rendered with namespace %s", o.GetKind(), o.GetName(), o.GetNamespace())
				case applied.namespaced && o.GetNamespace() == "":
					// Plain manifests are applied without a namespace flag.
					t.Errorf("%s %s is rendered without a namespace", o.GetKind(), o.GetName())
				}
			}
		})
	}
}

// applier applies unstructured objects with server-side apply, finding
// their resources through discovery.
type applier struct {
	client dynamic.Interface
	mapper meta.RESTMapper
}

type applied struct{ namespaced bool }

func newApplier(t *testing.T) *applier {
	t.Helper()
	c := cluster(t)
	client, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{client: client, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// apply server-side applies o, for real or as a dry run.
func (a *applier) apply(t *testing.T, o *unstructured.Unstructured, dryRun bool) (applied, error) {
	t.Helper()
	gvk := o.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return applied{}, err
	}
	namespaced := mapping.Scope.Name() == meta.RESTScopeNameNamespace
	var ri dynamic.ResourceInterface = a.client.Resource(mapping.Resource)
	if namespaced {
		ri = a.client.Resource(mapping.Resource).Namespace(o.GetNamespace())
	}
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = ri.Apply(ctx, o.GetName(), o, opts)
	return applied{namespaced: namespaced}, err
}

// checkCustomResource checks the custom resources the chart renders, which
// the test API server cannot: what each refers to must be in the render.
func checkCustomResource(t *testing.T, o *unstructured.Unstructured, objs []*unstructured.Unstructured) {
	t.Helper()
	switch o.GetAPIVersion() + "/" + o.GetKind() {
	case "monitoring.coreos.com/v1/ServiceMonitor":
		checkServiceMonitor(t, o, objs)
	case "cert-manager.io/v1/Certificate":
		checkCertificate(t, o, objs)
	default:
		t.Errorf("%s %s: an unexpected kind, and the API server does not know it", o.GetKind(), o.GetName())
	}
}

// checkServiceMonitor: the ServiceMonitor selects a Service of the chart
// whose port it names leads to the probe port, where /metrics is.
func checkServiceMonitor(t *testing.T, o *unstructured.Unstructured, objs []*unstructured.Unstructured) {
	t.Helper()
	selector, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels")
	namespaces, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "namespaceSelector", "matchNames")
	endpoints, _, _ := unstructured.NestedSlice(o.Object, "spec", "endpoints")
	if len(selector) == 0 || len(endpoints) == 0 || !slices.Equal(namespaces, []string{o.GetNamespace()}) {
		t.Fatalf("ServiceMonitor %s: selector %v, endpoints %v, namespaces %v; want all three, in its own namespace", o.GetName(), selector, endpoints, namespaces)
	}
	var svc *corev1.Service
	for _, s := range ofKind(objs, "Service") {
		if labelsMatch(s.GetLabels(), selector) {
			if svc != nil {
				t.Fatalf("ServiceMonitor %s selects more than one Service", o.GetName())
			}
			svc = &corev1.Service{}
			fromUnstructured(t, s, svc)
		}
	}
	if svc == nil {
		t.Fatalf("ServiceMonitor %s selects no Service of the chart", o.GetName())
	}
	for _, e := range endpoints {
		ep, _ := e.(map[string]any)
		found := false
		for _, p := range svc.Spec.Ports {
			found = found || (p.Name == ep["port"] && p.TargetPort.String() == "probes")
		}
		if !found || ep["path"] != "/metrics" {
			t.Errorf("ServiceMonitor endpoint %v: want /metrics on a port of Service %s that leads to the probe port", ep, svc.Name)
		}
	}
}

// checkCertificate: cert-manager writes the Secret the Deployment serves
// from, for the Service's names.
func checkCertificate(t *testing.T, o *unstructured.Unstructured, objs []*unstructured.Unstructured) {
	t.Helper()
	secret, _, _ := unstructured.NestedString(o.Object, "spec", "secretName")
	issuer, _, _ := unstructured.NestedString(o.Object, "spec", "issuerRef", "name")
	dnsNames, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "dnsNames")
	if issuer == "" {
		t.Errorf("Certificate %s names no issuer", o.GetName())
	}
	if got := servingSecret(t, objs); secret != got {
		t.Errorf("Certificate %s writes Secret %q, but the Deployment serves from %q", o.GetName(), secret, got)
	}
	svc := find(t, objs, "Service", "kip")
	if want := svc.GetName() + "." + svc.GetNamespace() + ".svc"; !slices.Contains(dnsNames, want) {
		t.Errorf("Certificate %s is for %v, which lacks the Service's name %s", o.GetName(), dnsNames, want)
	}
}

// servingSecret is the Secret the Deployment mounts its serving certificate from.
func servingSecret(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	for _, v := range deployment(t, objs).Spec.Template.Spec.Volumes {
		if v.Name == "serving-cert" && v.Secret != nil {
			return v.Secret.SecretName
		}
	}
	t.Fatal("the Deployment has no serving-cert Secret volume")
	return ""
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// createNamespace creates namespace name for one test.
func createNamespace(t *testing.T, name string) string {
	t.Helper()
	admin := adminClient(t)
	ctx := context.Background()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return name
}

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cluster(t).AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
