package workload

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
)

const (
	watchNamespace = "bench-watch"
	watchedName    = "watched"
	// watchSteps is how many points the RSS curve has.
	watchSteps = 10
	// openers is how many watches are being opened at once.
	openers        = 64
	deliverTimeout = 60 * time.Second
)

// Watch opens many watches through each target, makes one change, and
// measures how long each watcher waits for it and how much memory the
// proxy holds per open watch. With every watch open through kip the first
// time, it also takes kip's heap profile.
func Watch(ctx context.Context, env Env) ([]results.Watch, *results.Profile, error) {
	if err := createWatched(ctx, env); err != nil {
		return nil, nil, err
	}
	var heap *results.Profile
	targets := env.Rig.Targets
	byTarget := make(map[*load.Target]*results.Watch, len(targets))
	for _, t := range targets {
		byTarget[t] = &results.Watch{Target: t.Name, Watchers: env.Sizes.Watchers}
	}
	for round := range env.Sizes.WatchRounds {
		for _, t := range rotated(targets, round) {
			env.logf("watch fan-out through %s: %d watches (round %d)", t.Name, env.Sizes.Watchers, round+1)
			var err error
			if heap, err = watchRound(ctx, env, t, byTarget[t], round == 0, heap); err != nil {
				return nil, nil, err
			}
		}
	}
	var out []results.Watch
	for _, t := range targets {
		out = append(out, *byTarget[t])
	}
	return out, heap, nil
}

func createWatched(ctx context.Context, env Env) error {
	if err := rig.CreateNamespace(ctx, env.Rig.Admin, watchNamespace); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: watchedName, Namespace: watchNamespace},
		Data:       map[string]string{"round": "0"},
	}
	if _, err := env.Rig.Admin.CoreV1().ConfigMaps(watchNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// watchRound runs the fan-out once through t and merges what it saw into
// res. The first round also draws the memory curve. It returns heap, or
// kip's heap profile if this round took it.
func watchRound(ctx context.Context, env Env, t *load.Target, res *results.Watch, first bool, heap *results.Profile) (*results.Profile, error) {
	cm, err := env.Rig.Admin.CoreV1().ConfigMaps(watchNamespace).Get(ctx, watchedName, metav1.GetOptions{})
	if err != nil {
		return heap, err
	}
	t.CloseIdle() // count the connections this round opens
	fan := newFanOut(ctx, t, watchPath(cm.ResourceVersion), env.Sizes.Watchers, env.Sizes.Settle)
	defer fan.close()
	m := fanMeasurement{proxyBase: rss(t.PID), upBase: rss(env.Rig.APIServerPID), dials: t.Dials()}
	m.open(fan, env, t, first)
	if fan.opened == 0 {
		res.FirstError = errString(fan.firstErr)
		return heap, nil
	}
	time.Sleep(env.Sizes.Settle)
	m.readMemory(env, t, fan.opened)
	if heap == nil && t.Name == "kip" && env.Sizes.ProfileSeconds > 0 {
		if heap, err = kipHeap(ctx, env, fan.opened); err != nil {
			return nil, err
		}
	}
	sent, err := touch(ctx, env, cm)
	if err != nil {
		return heap, err
	}
	delays := fan.waitDelivered(sent, deliverTimeout)
	m.merge(res, fan, delays, t.Dials()-m.dials)
	return heap, nil
}

// kipHeap saves kip's heap profile and goroutine count with n watches open.
func kipHeap(ctx context.Context, env Env, n int) (*results.Profile, error) {
	const file = "kip-heap-watch.pprof"
	count, err := goroutines(ctx, kipSource(env), env.raw("kip-goroutines-watch.txt"))
	if err != nil {
		return nil, err
	}
	if err := kipSource(env).save(ctx, "/debug/pprof/heap", env.raw(file)); err != nil {
		return nil, err
	}
	about := fmt.Sprintf("%d watches open through kip; %s", n, count)
	if stacks, heap, err := kipMemory(ctx, env); err == nil {
		about += fmt.Sprintf("; goroutine stacks %.1f MiB (%.1f KiB per watch), heap in use %.1f MiB (%.1f KiB per watch, the process's own baseline included)",
			stacks/(1<<20), stacks/1024/float64(n), heap/(1<<20), heap/1024/float64(n))
	} else {
		env.logf("reading kip's memory statistics: %v", err)
	}
	p, err := summarize(ctx, env, "kip heap in use, watch fan-out", about, file, "-sample_index=inuse_space")
	return &p, err
}

// touch changes the watched ConfigMap and returns when it sent the change.
func touch(ctx context.Context, env Env, cm *corev1.ConfigMap) (time.Time, error) {
	cm = cm.DeepCopy()
	cm.Data["round"] = time.Now().Format(time.RFC3339Nano)
	sent := time.Now()
	_, err := env.Rig.Admin.CoreV1().ConfigMaps(watchNamespace).Update(ctx, cm, metav1.UpdateOptions{})
	return sent, err
}

func watchPath(resourceVersion string) string {
	return "/api/v1/namespaces/" + watchNamespace + "/configmaps?watch=1&resourceVersion=" + resourceVersion
}

// fanMeasurement is what one round reads beside the watchers themselves.
type fanMeasurement struct {
	proxyBase, upBase    int64
	dials                int64
	openTime             time.Duration
	curve                []results.Point
	perWatch, upPerWatch float64
	// proxyMeasured says perWatch was read: a small fan-out can leave the
	// proxy's RSS exactly where it was, and zero is then a real figure.
	proxyMeasured bool
}

// open opens the watches in steps, reading the proxy's memory after each.
func (m *fanMeasurement) open(fan *fanOut, env Env, t *load.Target, curve bool) {
	n := env.Sizes.Watchers
	for step := 1; step <= watchSteps; step++ {
		start := time.Now()
		fan.openUpTo(n * step / watchSteps)
		m.openTime += time.Since(start) // not the pauses for reading memory
		if curve && t.PID != 0 {
			time.Sleep(env.Sizes.Settle / 5)
			growth := float64(rss(t.PID)-m.proxyBase) / (1 << 20)
			m.curve = append(m.curve, results.Point{X: float64(fan.opened), Y: growth})
		}
	}
}

func (m *fanMeasurement) readMemory(env Env, t *load.Target, opened int) {
	if t.PID != 0 {
		m.perWatch = float64(rss(t.PID)-m.proxyBase) / float64(opened)
		m.proxyMeasured = true
	}
	m.upPerWatch = float64(rss(env.Rig.APIServerPID)-m.upBase) / float64(opened)
}

// merge records a round; memory per watch keeps the largest over rounds,
// since later rounds reuse memory the first one made resident.
func (m *fanMeasurement) merge(res *results.Watch, fan *fanOut, delays []time.Duration, dials int64) {
	res.Opened, res.Delivered = fan.opened, len(delays)
	res.OpenSeconds = m.openTime.Seconds()
	res.Delivery = load.Summarize(delays)
	res.Connections, res.ConnectionsUsed = dials, fan.connsUsed()
	if m.curve != nil {
		res.Curve = m.curve
	}
	if res.FirstError == "" {
		res.FirstError = errString(fan.firstErr)
	}
	if m.proxyMeasured && (res.ProxyRSSPerWatch == nil || m.perWatch > *res.ProxyRSSPerWatch) {
		v := m.perWatch
		res.ProxyRSSPerWatch = &v
	}
	if res.UpstreamRSSPerWatch == nil || m.upPerWatch > *res.UpstreamRSSPerWatch {
		v := m.upPerWatch
		res.UpstreamRSSPerWatch = &v
	}
}
