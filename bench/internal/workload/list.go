package workload

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
	"github.com/kip-proxy/kip/internal/rig/procstat"
)

const (
	listNamespace = "bench-list"
	listPath      = "/api/v1/namespaces/" + listNamespace + "/configmaps"
	// createWorkers is how many ConfigMaps are created at once.
	createWorkers = 16
	// rssInterval is how often memory is sampled during a LIST.
	rssInterval = 10 * time.Millisecond
	listTimeout = 3 * time.Minute
)

// ListEncodings are the Accept-Encodings the LIST is sent with: none, as
// client-go sends with compression disabled, and gzip, as kubectl sends.
// kube-apiserver compresses responses over 128 KiB when asked.
var ListEncodings = []string{"", "gzip"}

// LargeList creates the ConfigMaps once, then lists them all through every
// target: time to the last byte, and how far the proxy's memory rises.
// Then it profiles kip and kube-apiserver during more LISTs through kip.
func LargeList(ctx context.Context, env Env) ([]results.List, []results.Profile, error) {
	if err := createListObjects(ctx, env); err != nil {
		return nil, nil, err
	}
	direct := env.Rig.Target("direct")
	if _, err := load.Get(ctx, direct, listPath, nil); err != nil { // warm kube-apiserver up
		return nil, nil, err
	}
	var out []results.List
	for _, enc := range ListEncodings {
		env.logf("large LIST of %d ConfigMaps, Accept-Encoding %q, %d rounds", env.Sizes.ListObjects, enc, env.Sizes.ListRounds)
		out = append(out, listRounds(ctx, env, enc)...)
	}
	if env.Sizes.ProfileSeconds == 0 {
		return out, nil, nil
	}
	profiles, err := profileList(ctx, env)
	return out, profiles, err
}

// profileList takes CPU profiles while kip serves the LIST without
// Accept-Encoding back to back.
func profileList(ctx context.Context, env Env) ([]results.Profile, error) {
	seconds := env.Sizes.ProfileSeconds
	env.logf("profiling kip and kube-apiserver for %ds under the large LIST through kip, no Accept-Encoding", seconds)
	kip := env.Rig.Target("kip")
	about := "large LISTs through kip, one after another, without Accept-Encoding"
	return whileLoaded(ctx, env, seconds, func(ctx context.Context) {
		for ctx.Err() == nil {
			_, _ = load.Get(ctx, kip, listPath, nil)
		}
	}, []cpuCapture{
		{source: kipSource(env), name: "kip CPU, large LIST without Accept-Encoding", about: about, file: "kip-cpu-large-list.pprof"},
		{source: apiServerSource(env), name: "kube-apiserver CPU, large LIST through kip without Accept-Encoding", about: about, file: "kube-apiserver-cpu-large-list-kip.pprof"},
	})
}

func listRounds(ctx context.Context, env Env, encoding string) []results.List {
	targets := env.Rig.Targets
	byTarget := make(map[*load.Target]*results.List, len(targets))
	for _, t := range targets {
		byTarget[t] = &results.List{Target: t.Name, Encoding: encoding, Objects: env.Sizes.ListObjects}
	}
	for round := range env.Sizes.ListRounds {
		for _, t := range rotated(targets, round) {
			listOnce(ctx, env, t, encoding, byTarget[t])
			// Let the previous response's garbage settle before the next.
			time.Sleep(300 * time.Millisecond)
		}
	}
	var out []results.List
	for _, t := range targets {
		r := byTarget[t]
		if len(r.Seconds) > 0 {
			sorted := slices.Sorted(slices.Values(r.Seconds))
			r.Median = sorted[len(sorted)/2]
		}
		out = append(out, *r)
	}
	return out
}

// listOnce sends one LIST and records its time and the rise in memory of
// the proxy and of kube-apiserver while it ran.
func listOnce(ctx context.Context, env Env, t *load.Target, encoding string, into *results.List) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	var header http.Header
	if encoding != "" {
		header = http.Header{"Accept-Encoding": {encoding}}
	}
	proxyBase, upBase := rss(t.PID), rss(env.Rig.APIServerPID)
	proxy := procstat.StartSampler(t.PID, rssInterval)
	up := procstat.StartSampler(env.Rig.APIServerPID, rssInterval)
	start := time.Now()
	resp, err := load.Get(ctx, t, listPath, header)
	elapsed := time.Since(start)
	proxyPeak, upPeak := proxy.Stop(), up.Stop()
	if err != nil {
		into.Errors++
		if into.FirstError == "" {
			into.FirstError = err.Error()
		}
		return
	}
	into.Seconds = append(into.Seconds, elapsed.Seconds())
	into.Bytes, into.ContentEncoding = resp.Bytes, resp.ContentEncoding
	if t.PID != 0 {
		into.ProxyRSSGrowth = maxOf(into.ProxyRSSGrowth, proxyPeak-proxyBase)
	}
	into.UpstreamRSSGrowth = maxOf(into.UpstreamRSSGrowth, upPeak-upBase)
}

func maxOf(cur *int64, v int64) *int64 {
	if cur != nil && *cur >= v {
		return cur
	}
	return &v
}

// createListObjects creates the ConfigMaps that LargeList reads, several at
// a time, as the admin.
func createListObjects(ctx context.Context, env Env) error {
	cfg := rest.CopyConfig(env.Rig.Stack.Cluster.AdminConfig)
	cfg.QPS, cfg.Burst = -1, 0 // set-up, not measurement: no client-side throttling
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := rig.CreateNamespace(ctx, admin, listNamespace); err != nil {
		return err
	}
	env.logf("creating %d ConfigMaps of %d bytes", env.Sizes.ListObjects, env.Sizes.ListObjectBytes)
	start := time.Now()
	var next atomic.Int64
	errs := make(chan error, createWorkers)
	var wg sync.WaitGroup
	for range createWorkers {
		wg.Go(func() { errs <- createSome(ctx, admin, &next, env.Sizes) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	env.logf("created them in %s", time.Since(start).Round(time.Millisecond))
	return nil
}

func createSome(ctx context.Context, admin kubernetes.Interface, next *atomic.Int64, sizes Sizes) error {
	for i := next.Add(1) - 1; i < int64(sizes.ListObjects); i = next.Add(1) - 1 {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i), Labels: map[string]string{"app": "kip-bench"}},
			Data:       map[string]string{"payload": payload(sizes.ListObjectBytes)},
		}
		_, err := admin.CoreV1().ConfigMaps(listNamespace).Create(ctx, cm, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ConfigMap %s: %w", cm.Name, err)
		}
	}
	return nil
}

// payload is n bytes of base64 text from random bytes: it compresses about
// as well as real configuration data with keys and certificates in it.
func payload(n int) string {
	raw := make([]byte, n*3/4+3)
	_, _ = rand.Read(raw)
	return base64.StdEncoding.EncodeToString(raw)[:n]
}
