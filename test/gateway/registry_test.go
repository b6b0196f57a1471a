package gateway

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/kip-proxy/kip/internal/rig/harness"
)

// registryTimeout bounds how long kip may take to apply a change of its
// clusters directory: it settles for a moment after the last event, and
// resyncs in case it missed one.
const registryTimeout = 30 * time.Second

// TestLiveRegistry changes kip's clusters directory while kip runs, each
// time with entries of their own, so the three clusters' own entries stay
// as they are.
func TestLiveRegistry(t *testing.T) {
	t.Run("add", testAddCluster)
	t.Run("rotate credentials", testRotateCredentials)
	t.Run("remove while watched", testRemoveWhileWatched)
	t.Run("malformed entries", testMalformedEntries)
}

// testAddCluster writes a new entry for gamma and reaches it.
func testAddCluster(t *testing.T) {
	user := harness.UniqueName("newcomer")
	ns := probeEverywhere(t, userSubject(user))
	name := harness.UniqueName("added")
	client := gw.httpClient(userTLS(t, user), "h2")
	path := "/clusters/" + name + configMapPath(ns, "probe")
	wantStatus(t, mustGet(t, client, path, ""), http.StatusNotFound)

	putEntryFor(t, name, gw.members[gamma], gw.members[gamma].kipCred)
	start := time.Now()
	harness.Eventually(t, registryTimeout, func() error {
		if a, err := get(client, path, ""); err != nil || a.code != http.StatusOK {
			return errorf("the added cluster: %v %v", a, err)
		}
		return nil
	})
	t.Logf("cluster %s reachable %s after its entry was written", name, time.Since(start).Round(time.Millisecond))
	wantFrom(t, mustGet(t, client, path, ""), gamma)
}

// testRotateCredentials registers alpha under a new name with one
// ServiceAccount's token, rewrites the entry with another's, deletes the
// first ServiceAccount, and finds that requests keep working, made with
// the new token: alpha's audit log names the ServiceAccount kip used.
func testRotateCredentials(t *testing.T) {
	ctx := context.Background()
	m := gw.members[alpha]
	user := harness.UniqueName("steady")
	ns := probeEverywhere(t, userSubject(user))
	name := harness.UniqueName("rotating")
	client := gw.httpClient(userTLS(t, user), "h2")
	path := "/clusters/" + name + configMapPath(ns, "probe")

	creds := make([]credential, 2)
	for i := range creds {
		var err error
		if creds[i], err = serviceAccountCredential(ctx, m.admin, harness.UniqueName("kip-rotated")); err != nil {
			t.Fatal(err)
		}
		if err := bindKipRole(ctx, m.admin, creds[i].user); err != nil {
			t.Fatal(err)
		}
	}
	// forwardedBy makes a request through the entry and returns whom
	// alpha saw forward it.
	forwardedBy := func() (string, error) {
		marker := harness.UniqueName("rotation")
		a, err := get(client, path+"?marker="+marker, "")
		if err != nil || a.code != http.StatusOK {
			return "", errorf("through %s: %v %v", name, a, err)
		}
		var by string
		harness.Eventually(t, 30*time.Second, func() error {
			evs := auditEvents(t, alpha, marker)
			if len(evs) == 0 {
				return errorf("alpha's audit log does not show %s yet", marker)
			}
			by = evs[0].User.Username
			if evs[0].ImpersonatedUser == nil || evs[0].ImpersonatedUser.Username != user {
				t.Fatalf("alpha saw %s as %+v, want %s impersonated", marker, evs[0].ImpersonatedUser, user)
			}
			return nil
		})
		return by, nil
	}
	waitForwardedBy := func(want string) {
		t.Helper()
		harness.Eventually(t, registryTimeout, func() error {
			by, err := forwardedBy()
			if err != nil {
				return err
			}
			if by != want {
				return errorf("alpha saw kip as %s, want %s", by, want)
			}
			return nil
		})
	}

	putEntryFor(t, name, m, creds[0])
	waitForwardedBy(creds[0].user)
	putEntryFor(t, name, m, creds[1])
	start := time.Now()
	waitForwardedBy(creds[1].user)
	t.Logf("new credentials in use %s after the entry was rewritten", time.Since(start).Round(time.Millisecond))

	old := strings.TrimPrefix(creds[0].user, "system:serviceaccount:"+kipNamespace+":")
	if err := m.admin.CoreV1().ServiceAccounts(kipNamespace).Delete(ctx, old, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	oldToken := rest.AnonymousClientConfig(m.cluster.AdminConfig)
	oldToken.BearerToken = creds[0].token
	harness.Eventually(t, 30*time.Second, func() error {
		_, err := kubernetes.NewForConfigOrDie(oldToken).Discovery().ServerVersion()
		if !apierrors.IsUnauthorized(err) {
			return errorf("the old token still works at alpha: %v", err)
		}
		return nil
	})
	for i := range 10 {
		by, err := forwardedBy()
		if err != nil {
			t.Fatalf("request %d after the old ServiceAccount was deleted: %v", i, err)
		}
		if by != creds[1].user {
			t.Fatalf("request %d reached alpha as %s, want %s", i, by, creds[1].user)
		}
	}
}

// testRemoveWhileWatched removes an entry while a watch through it is
// open: that watch ends, and a watch on another cluster goes on.
func testRemoveWhileWatched(t *testing.T) {
	user := harness.UniqueName("watcher")
	ns := probeEverywhere(t, userSubject(user))
	name := harness.UniqueName("doomed")
	putEntryFor(t, name, gw.members[gamma], gw.members[gamma].kipCred)
	harness.Eventually(t, registryTimeout, func() error {
		if a, err := get(gw.httpClient(userTLS(t, user), "h2"), "/clusters/"+name+configMapPath(ns, "probe"), ""); err != nil || a.code != http.StatusOK {
			return errorf("the doomed cluster: %v %v", a, err)
		}
		return nil
	})

	doomed := openWatch(t, name, user, ns)
	other := openWatch(t, alpha, user, ns)
	configMap(t, gamma, ns, "before")
	doomed.waitFor(t, "before")
	configMap(t, alpha, ns, "before")
	other.waitFor(t, "before")

	removedEnded := func() float64 {
		return scrapeKip(t).Sample("kip_longrunning_ended_total", map[string]string{"reason": "cluster-removed"})
	}
	endedBefore := removedEnded()
	if err := os.Remove(filepath.Join(gw.clustersDir, name+".kubeconfig")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	doomed.waitForEnd(t, registryTimeout)
	t.Logf("the watch through %s ended %s after its entry was removed", name, time.Since(start).Round(time.Millisecond))
	if n := removedEnded() - endedBefore; n < 1 {
		t.Errorf("kip counted %v requests ended by a cluster's removal, want the watch", n)
	}
	configMap(t, alpha, ns, "after")
	other.waitFor(t, "after")
	wantStatus(t, mustGet(t, gw.httpClient(userTLS(t, user), "h2"), "/clusters/"+name+configMapPath(ns, "probe"), ""), http.StatusNotFound)
}

// openedWatch is a client-go watch on ConfigMaps through kip.
type openedWatch struct {
	cluster string
	w       watch.Interface
}

func openWatch(t *testing.T, cluster, user, ns string) *openedWatch {
	t.Helper()
	w, err := kubernetes.NewForConfigOrDie(userConfig(t, cluster, user)).CoreV1().ConfigMaps(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &openedWatch{cluster: cluster, w: w}
}

// waitFor waits for ConfigMap name to be added.
func (o *openedWatch) waitFor(t *testing.T, name string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-o.w.ResultChan():
			if !ok {
				t.Fatalf("the watch through /clusters/%s ended before it showed %s", o.cluster, name)
			}
			if cm, isCM := ev.Object.(*corev1.ConfigMap); isCM && ev.Type == watch.Added && cm.Name == name {
				return
			}
		case <-timeout:
			t.Fatalf("the watch through /clusters/%s never showed %s", o.cluster, name)
		}
	}
}

// waitForEnd waits for the watch's stream to end, cleanly: client-go
// closes the result channel without an error event.
func (o *openedWatch) waitForEnd(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-o.w.ResultChan():
			if !ok {
				return
			}
			if status, isStatus := ev.Object.(*metav1.Status); isStatus {
				// kip ends a removed cluster's watch as a finished
				// response; an error event means the stream was cut.
				t.Errorf("the watch through /clusters/%s sent %s before it ended: %d %s", o.cluster, ev.Type, status.Code, status.Message)
				continue
			}
			t.Logf("the watch through /clusters/%s sent %s before it ended", o.cluster, ev.Type)
		case <-deadline:
			t.Fatalf("the watch through /clusters/%s is still open %s after its entry was removed", o.cluster, timeout)
		}
	}
}

// testMalformedEntries writes entries kip must refuse, each on its own,
// beside one good one: once the good one answers, kip has read them all,
// and none of the bad ones may answer, nor may the clusters registered
// before stop answering.
func testMalformedEntries(t *testing.T) {
	user := harness.UniqueName("bystander")
	ns := probeEverywhere(t, userSubject(user))
	m := gw.members[gamma]
	id := harness.UniqueName("x")
	spoiled := func(spoil func(*clientcmdv1.Config)) []byte {
		cfg := entryConfig(m, m.kipCred, nil)
		spoil(cfg)
		data, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	good, err := gw.entry(m, m.kipCred, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string // the cluster name each file would give, if any
		file string
		data []byte
	}{
		{"Upper-" + id, "Upper-" + id + ".kubeconfig", good},
		{"dotted." + id, "dotted." + id + ".kubeconfig", good},
		{"garbage-" + id, "garbage-" + id + ".kubeconfig", []byte("clusters: [this is not {a kubeconfig")},
		{"plain-http-" + id, "plain-http-" + id + ".kubeconfig", spoiled(func(c *clientcmdv1.Config) {
			c.Clusters[0].Cluster.Server = strings.Replace(c.Clusters[0].Cluster.Server, "https://", "http://", 1)
		})},
		{"insecure-" + id, "insecure-" + id + ".kubeconfig", spoiled(func(c *clientcmdv1.Config) {
			c.Clusters[0].Cluster.CertificateAuthorityData = nil
			c.Clusters[0].Cluster.InsecureSkipTLSVerify = true
		})},
		{"no-credentials-" + id, "no-credentials-" + id + ".kubeconfig", spoiled(func(c *clientcmdv1.Config) {
			c.AuthInfos[0].AuthInfo = clientcmdv1.AuthInfo{}
		})},
		{"exec-plugin-" + id, "exec-plugin-" + id + ".kubeconfig", spoiled(func(c *clientcmdv1.Config) {
			c.AuthInfos[0].AuthInfo = clientcmdv1.AuthInfo{Exec: &clientcmdv1.ExecConfig{Command: "/bin/sh", APIVersion: "client.authentication.k8s.io/v1", InteractiveMode: clientcmdv1.NeverExecInteractiveMode}}
		})},
		{"no-context-" + id, "no-context-" + id + ".kubeconfig", spoiled(func(c *clientcmdv1.Config) {
			c.CurrentContext = "elsewhere"
		})},
		{"bad-policy-" + id, "bad-policy-" + id + ".kubeconfig", func() []byte {
			data, err := gw.entry(m, m.kipCred, &access{Expression: "user.groups +"})
			if err != nil {
				t.Fatal(err)
			}
			return data
		}()},
		{"twice-" + id, "twice-" + id + ".yaml", good},
		{"twice-" + id, "twice-" + id + ".kubeconfig", good},
	}
	refusedBefore := scrapeKip(t).Sample("kip_cluster_entries_refused_total", map[string]string{"source": "dir"})
	for _, c := range cases {
		removeEntryAfter(t, c.file)
		if err := gw.putEntry(c.file, c.data); err != nil {
			t.Fatal(err)
		}
	}
	fine := "fine-" + id
	putEntryFor(t, fine, m, m.kipCred)

	client := gw.httpClient(userTLS(t, user), "h2")
	harness.Eventually(t, registryTimeout, func() error {
		if a, err := get(client, "/clusters/"+fine+configMapPath(ns, "probe"), ""); err != nil || a.code != http.StatusOK {
			return errorf("the good entry beside the bad ones: %v %v", a, err)
		}
		return nil
	})
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			wantStatus(t, mustGet(t, client, "/clusters/"+c.name+configMapPath(ns, "probe"), ""), http.StatusNotFound)
			if log := readKipLog(t); !strings.Contains(log, c.file) {
				t.Errorf("kip's log never names %s, which it refused", c.file)
			}
		})
	}
	t.Run("metrics", func(t *testing.T) {
		m := scrapeKip(t)
		if got := m.Sample("kip_clusters", map[string]string{"state": "refused"}); got != float64(len(cases)) {
			t.Errorf("kip_clusters{state=\"refused\"} = %v, want %d", got, len(cases))
		}
		if got := m.Sample("kip_cluster_entries_refused_total", map[string]string{"source": "dir"}); got < refusedBefore+float64(len(cases)) {
			t.Errorf("kip_cluster_entries_refused_total{source=\"dir\"} went from %v to %v, want at least %d more", refusedBefore, got, len(cases))
		}
	})
	t.Run("the clusters registered before", func(t *testing.T) {
		for _, name := range clusterNames {
			wantFrom(t, mustGet(t, client, "/clusters/"+name+configMapPath(ns, "probe"), ""), name)
		}
	})
}

// putEntryFor writes entry name for m with cred, removed when the test
// ends.
func putEntryFor(t *testing.T, name string, m *member, cred credential) {
	t.Helper()
	data, err := gw.entry(m, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	removeEntryAfter(t, name+".kubeconfig")
	if err := gw.putEntry(name+".kubeconfig", data); err != nil {
		t.Fatal(err)
	}
}

// scrapeKip reads kip's /metrics.
func scrapeKip(t *testing.T) harness.Metrics {
	t.Helper()
	m, err := harness.ScrapeMetrics(context.Background(), http.DefaultClient, gw.kip.ProbeURL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readKipLog is kip's whole output so far.
func readKipLog(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(gw.kip.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
