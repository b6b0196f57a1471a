package workload

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/rig"
	"github.com/kip-proxy/kip/internal/rig/procstat"
)

// Sizes says how much each workload does.
type Sizes struct {
	// Rounds is how many turns the GET workloads take.
	Rounds int
	// GetRequests and ProxyRequests are requests per target at concurrency
	// 32; concurrency 1 sends a fifth as many.
	GetRequests, ProxyRequests int
	// ListObjects ConfigMaps of ListObjectBytes each are listed ListRounds
	// times per target and encoding.
	ListObjects, ListObjectBytes, ListRounds int
	// Watchers watches are opened WatchRounds times per target.
	Watchers, WatchRounds int
	// Settle is how long memory gets to settle before the watch workload
	// reads it.
	Settle time.Duration
	// PortForwardBytes are copied through each target.
	PortForwardBytes int64
	// ProfileSeconds is how long kip's CPU is profiled; 0 skips it.
	ProfileSeconds int
	// ExchangeRequests are credential exchanges per kind at concurrency 8;
	// concurrency 1 sends a fifth as many.
	ExchangeRequests int
	// GatewayClusters are the entries of the large gateway registry.
	GatewayClusters int
	// RecordingBytes are written to stdout by each exec, and sent through
	// each port-forward, of the recording workload; RecordingSessions idle
	// exec sessions are held open through each kip there.
	RecordingBytes    int64
	RecordingSessions int
}

// Env is what every workload runs against.
type Env struct {
	Rig   *rig.Rig
	Sizes Sizes
	Log   io.Writer
	// RawDir receives bulky artefacts: profiles, logs.
	RawDir string
}

func (e Env) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(e.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (e Env) raw(name string) string { return filepath.Join(e.RawDir, name) }

// rotated returns targets starting at the round-th, so that no target is
// always first or always last.
func rotated(targets []*load.Target, round int) []*load.Target {
	k := round % len(targets)
	return append(append([]*load.Target{}, targets[k:]...), targets[:k]...)
}

// cpuSeconds reads pid's CPU time in seconds; pid 0, or a failed read,
// gives 0.
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	d, err := procstat.CPU(pid)
	if err != nil {
		return 0
	}
	return d.Seconds()
}

// rss reads pid's resident memory; 0 when pid is 0 or gone.
func rss(pid int) int64 {
	if pid == 0 {
		return 0
	}
	n, _ := procstat.RSS(pid)
	return n
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
