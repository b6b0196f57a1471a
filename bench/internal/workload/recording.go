package workload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/bench/internal/load"
	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
	"github.com/kip-proxy/kip/internal/rig/testnode"
)

const (
	recNamespace = "bench-rec"
	recNode      = "kip-bench-rec-node"
	// recShell idles; exec runs commands beside it.
	recShell = "shell"
	// recSource's port leads to a server that sends RecordingBytes.
	recSource = "source"
)

// The protocols a client speaks to kip, as kubectl does: WebSocket by
// default since v1.31 (v1.30 for exec), SPDY as the fallback.
const (
	protoWebSocket = "websocket"
	protoSPDY      = "spdy"
)

var recordingProtocols = []string{protoWebSocket, protoSPDY}

// recordingRules let the bench user exec into and forward to its Pods.
var recordingRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
	{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/portforward"}, Verbs: []string{"create", "get"}},
}

// Recording measures what recording sessions costs kip, with a kip that
// records (--recording-dir) beside one that does not, both fresh and
// otherwise alike, and direct access for scale. First memory: for each
// protocol a fresh pair, each holding RecordingSessions idle exec
// sessions. Then throughput through another fresh pair: exec sessions
// that write RecordingBytes to stdout, and port-forward copies of the
// same size, over WebSocket and SPDY, taking turns round by round. When
// the sizes ask for profiles, it then profiles the recorded kip relaying
// exec output.
func Recording(ctx context.Context, env Env) (_ *results.Recording, setup []string, _ []results.Profile, err error) {
	src, err := startSource(env.Sizes.RecordingBytes)
	if err != nil {
		return nil, nil, nil, err
	}
	defer func() { _ = src.Close() }()
	node, err := testnode.Start(ctx, testnode.Options{Client: env.Rig.Admin, Name: recNode})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("starting the test node: %w", err)
	}
	defer node.Stop()
	if err := runRecordingPods(ctx, env, node.Name(), src.Addr().(*net.TCPAddr).Port); err != nil {
		return nil, nil, nil, err
	}
	defer func() { err = errors.Join(err, deleteRecordingPods(env)) }()

	out := &results.Recording{}
	for _, protocol := range recordingProtocols {
		mem, line, err := recordingMemory(ctx, env, protocol)
		out.Memory = append(out.Memory, mem...)
		setup = append(setup, line)
		if err != nil {
			return out, setup, nil, err
		}
	}
	line, profile, err := recordingThroughput(ctx, env, src.Addr().(*net.TCPAddr).Port, out)
	var profiles []results.Profile
	if profile != nil {
		profiles = append(profiles, *profile)
	}
	return out, append(setup, line), profiles, err
}

// profileRecordedExec profiles the recorded kip while WebSocket exec
// streams run through it back to back: where recording's CPU goes.
func profileRecordedExec(ctx context.Context, env Env, pair *rig.KipPair, stream transfer) (*results.Profile, error) {
	about := "WebSocket exec stdout streams through kip-recorded, one after another"
	env.logf("profiling kip-recorded for %ds under %s", env.Sizes.ProfileSeconds, about)
	source := profileSource{who: rig.RecordedName, client: http.DefaultClient, base: pair.RecordedProbe}
	profiles, err := whileLoaded(ctx, env, env.Sizes.ProfileSeconds, func(ctx context.Context) {
		for ctx.Err() == nil {
			_ = stream.run(ctx)
		}
	}, []cpuCapture{{source: source, name: "kip-recorded CPU, exec stdout", about: about, file: "kip-recorded-cpu-exec.pprof"}})
	if err != nil || len(profiles) == 0 {
		return nil, err
	}
	return &profiles[0], nil
}

func runRecordingPods(ctx context.Context, env Env, node string, port int) error {
	if err := prepareNamespace(ctx, env.Rig.Admin, recNamespace, "kip-bench-recording", recordingRules); err != nil {
		return err
	}
	shell := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: recShell},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "main", Image: "testnode.invalid/ignored",
		}}},
	}
	return errors.Join(runPod(ctx, env.Rig.Admin, recNamespace, shell), runPod(ctx, env.Rig.Admin, recNamespace, sourcePod(recSource, node, port)))
}

func deleteRecordingPods(env Env) error {
	var errs []error
	for _, name := range []string{recShell, recSource} {
		errs = append(errs, env.Rig.Admin.CoreV1().Pods(recNamespace).Delete(context.Background(), name, metav1.DeleteOptions{}))
	}
	return errors.Join(errs...)
}

// recordingMemory holds RecordingSessions idle sessions open through each
// kip of a fresh pair in turn.
func recordingMemory(ctx context.Context, env Env, protocol string) (_ []results.SessionMemory, setup string, err error) {
	pair, err := env.Rig.StartKipPair(ctx)
	if err != nil {
		return nil, "", err
	}
	defer func() { err = errors.Join(err, pair.Stop()) }()
	setup = fmt.Sprintf("recording memory, %s: %s", protocol, pair.Setup())
	kips := []*load.Target{pair.Plain, pair.Recorded}
	if protocol == protoSPDY {
		// Neither kip always goes first.
		slices.Reverse(kips)
	}
	var out []results.SessionMemory
	for _, t := range kips {
		env.logf("recording memory: %d idle %s exec sessions through %s", env.Sizes.RecordingSessions, protocol, t.Name)
		m, err := holdSessions(ctx, env, t, pair.Probe(t), protocol)
		if t == pair.Recorded {
			// Proof that the sessions measured were recorded.
			var rerr error
			m.RecordingFiles, _, rerr = pair.Recordings()
			err = errors.Join(err, rerr)
		}
		out = append(out, m)
		if err != nil {
			return out, setup, fmt.Errorf("%s sessions through %s: %w", protocol, t.Name, err)
		}
	}
	return out, setup, nil
}

// recordingThroughput measures exec and port-forward throughput through a
// fresh pair and direct, and counts what the recorded kip wrote.
func recordingThroughput(ctx context.Context, env Env, port int, out *results.Recording) (setup string, profile *results.Profile, err error) {
	pair, err := env.Rig.StartKipPair(ctx)
	if err != nil {
		return "", nil, err
	}
	defer func() { err = errors.Join(err, pair.Stop()) }()
	setup = "recording throughput: " + pair.Setup()
	// The recorded kip comes last: profileRecordedExec takes its stream.
	targets := []*load.Target{env.Rig.Target("direct"), pair.Plain, pair.Recorded}
	configs := map[*load.Target]*rest.Config{
		targets[0]: env.Rig.Stack.Cluster.AdminConfig,
		pair.Plain: env.Rig.UserConfigFor(pair.Plain), pair.Recorded: env.Rig.UserConfigFor(pair.Recorded),
	}
	size := env.Sizes.RecordingBytes
	var groups [][]transfer
	for _, protocol := range recordingProtocols {
		var g []transfer
		for _, t := range targets {
			x, err := execTransfer(t, configs[t], protocol, size)
			if err != nil {
				return setup, nil, err
			}
			g = append(g, x)
		}
		groups = append(groups, g)
	}
	for _, protocol := range recordingProtocols {
		g, stop, err := forwardTransfers(ctx, targets, configs, protocol, port, size)
		if err != nil {
			return setup, nil, err
		}
		defer stop()
		groups = append(groups, g)
	}
	env.logf("recording throughput: %s per transfer, %d rounds, exec and port-forward over %v", mib(size), env.Sizes.Rounds, recordingProtocols)
	out.Transfers = runTransfers(ctx, env, groups, size, func() error {
		// Counted before every round and cleared, so that a long run
		// does not fill the disk.
		files, bytes, err := pair.Recordings()
		out.RecordedFiles += files
		out.RecordedBytes += bytes
		return errors.Join(err, pair.ClearRecordings())
	})
	files, bytes, err := pair.Recordings()
	out.RecordedFiles += files
	out.RecordedBytes += bytes
	if err == nil && env.Sizes.ProfileSeconds > 0 {
		if err = pair.ClearRecordings(); err == nil {
			profile, err = profileRecordedExec(ctx, env, pair, groups[0][len(targets)-1])
		}
	}
	for _, t := range out.Transfers {
		if t.Target == rig.RecordedName && t.Kind == kindExec {
			out.ExecStdoutBytes += t.Bytes * int64(len(t.Seconds))
		}
	}
	return setup, profile, err
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

const (
	kindExec        = "exec"
	kindPortForward = "port-forward"
)

// transfer is one kind of transfer through one target: run moves the
// size of the workload once.
type transfer struct {
	target         *load.Target
	kind, protocol string
	run            func(ctx context.Context) error
}

// transferTimeout bounds one transfer.
const transferTimeout = 2 * time.Minute

// runTransfers runs every transfer once per round. A group is the same
// transfer through each target; its targets take turns in a different
// order each round, and groups follow each other, so that what is
// compared ran close together. between runs before each round.
func runTransfers(ctx context.Context, env Env, groups [][]transfer, size int64, between func() error) []results.Transfer {
	type tally struct{ proxyCPU, upCPU float64 }
	var order []*results.Transfer
	byKey := map[*transfer]*results.Transfer{}
	cpu := map[*transfer]*tally{}
	for _, g := range groups {
		for i := range g {
			x := &g[i]
			r := &results.Transfer{Target: x.target.Name, Kind: x.kind, Protocol: x.protocol, Bytes: size}
			byKey[x], cpu[x] = r, &tally{}
			order = append(order, r)
		}
	}
	for round := range env.Sizes.Rounds {
		if err := between(); err != nil {
			env.logf("between rounds: %v", err)
		}
		for _, g := range groups {
			for i := range g {
				x := &g[(i+round)%len(g)]
				p0, u0 := cpuSeconds(x.target.PID), cpuSeconds(env.Rig.APIServerPID)
				start := time.Now()
				tctx, cancel := context.WithTimeout(ctx, transferTimeout)
				err := x.run(tctx)
				cancel()
				secs := time.Since(start).Seconds()
				cpu[x].proxyCPU += cpuSeconds(x.target.PID) - p0
				cpu[x].upCPU += cpuSeconds(env.Rig.APIServerPID) - u0
				recordTransferResult(byKey[x], secs, err)
			}
		}
	}
	for x, r := range byKey {
		r.MBps = medianRate(r.Bytes, r.Seconds)
		moved := float64(r.Bytes) * float64(len(r.Seconds)) / (1 << 20)
		if moved == 0 {
			continue
		}
		up := cpu[x].upCPU / moved
		r.UpstreamCPUPerMiB = &up
		if x.target.PID != 0 {
			proxy := cpu[x].proxyCPU / moved
			r.ProxyCPUPerMiB = &proxy
		}
	}
	out := make([]results.Transfer, len(order))
	for i, r := range order {
		out[i] = *r
	}
	return out
}

func recordTransferResult(r *results.Transfer, secs float64, err error) {
	if err != nil {
		r.Errors++
		if r.FirstError == "" {
			r.FirstError = err.Error()
		}
		return
	}
	r.Seconds = append(r.Seconds, secs)
}

// forwardTransfers opens a port-forward to the source through each target
// over protocol; stop closes them.
func forwardTransfers(ctx context.Context, targets []*load.Target, configs map[*load.Target]*rest.Config, protocol string, port int, size int64) (_ []transfer, stop func(), err error) {
	dial := spdyDialer
	if protocol == protoWebSocket {
		dial = websocketDialer
	}
	var fs []*forwarder
	stop = func() {
		for _, f := range fs {
			f.stop()
		}
	}
	var out []transfer
	for _, t := range targets {
		f, err := startForwarder(ctx, t, dial, configs[t], recNamespace, recSource, port)
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("%s port-forward through %s: %w", protocol, t.Name, err)
		}
		fs = append(fs, f)
		out = append(out, transfer{target: t, kind: kindPortForward, protocol: protocol, run: func(ctx context.Context) error {
			_, err := copyThrough(ctx, f.local, size)
			return err
		}})
	}
	return out, stop, nil
}
