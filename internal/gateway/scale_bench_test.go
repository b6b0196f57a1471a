package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kip-proxy/kip/internal/clusters"
)

// writeIdleEntries writes n kubeconfigs that all point at one server, as
// a registry of many names for few real clusters would.
func writeIdleEntries(b *testing.B, dir string, n int, salt string) {
	b.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443", CertificateAuthorityData: make([]byte, 1200)}
	kc.AuthInfos["kip"] = &clientcmdapi.AuthInfo{Token: string(make([]byte, 900))}
	kc.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "kip"}
	kc.CurrentContext = "ctx"
	for i := range n {
		kc.AuthInfos["kip"].Token = salt + fmt.Sprintf("%0900d", i)
		if err := clientcmd.WriteToFile(*kc, filepath.Join(dir, fmt.Sprintf("c%04d", i))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRegistry1000 registers 1,000 idle clusters and reports the
// time to read them from a directory, the heap each one holds once
// registered (no connection is opened before a first request), and, per
// op, the time to apply a snapshot in which one of them changed.
func BenchmarkRegistry1000(b *testing.B) {
	const n = 1000
	dir := b.TempDir()
	writeIdleEntries(b, dir, n, "")
	noBackend := func(context.Context, clusters.Cluster, *Health) (*Backend, error) { return &Backend{}, nil }

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	loadStart := time.Now()
	cs, refused, err := clusters.LoadDir(dir)
	loadTime := time.Since(loadStart)
	if err != nil || len(refused) > 0 || len(cs) != n {
		b.Fatalf("LoadDir: %d clusters, %v, %v", len(cs), refused, err)
	}
	ups := NewUpstreams(noBackend, false, nil)
	ups.Apply(clusters.Snapshot{Clusters: cs})
	runtime.GC()
	runtime.ReadMemStats(&after)
	perCluster := float64(after.HeapAlloc-before.HeapAlloc) / n
	runtime.KeepAlive(ups)

	// The same registry with c0000's credentials rotated.
	other := b.TempDir()
	writeIdleEntries(b, other, 1, "rotated-")
	rotated, _, err := clusters.LoadDir(other)
	if err != nil || len(rotated) != 1 {
		b.Fatal(err)
	}
	rotated[0].Origin = cs[0].Origin
	snaps := [2]clusters.Snapshot{{Clusters: cs}, {Clusters: append([]clusters.Cluster{rotated[0]}, cs[1:]...)}}
	for i := 0; b.Loop(); i++ {
		if ch := ups.Apply(snaps[(i+1)%2]); len(ch.Changed) != 1 {
			b.Fatalf("applying one rotated entry changed %v", ch.Changed)
		}
	}
	b.ReportMetric(perCluster, "heap-B/cluster")
	b.ReportMetric(float64(loadTime.Milliseconds()), "load-1000-ms")
}
