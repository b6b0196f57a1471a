package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kip-proxy/kip/bench/internal/results"
	"github.com/kip-proxy/kip/bench/internal/rig"
	"github.com/kip-proxy/kip/internal/rig/testnode"
)

const (
	pfNamespace = "bench-pf"
	pfPod       = "source"
	pfRounds    = 3
	pfTimeout   = 2 * time.Minute
)

// PortForward sends PortForwardBytes from a server behind a pod port of a
// test node to the benchmark, through a port-forward opened directly and
// through kip (SPDY, as kubectl falls back to), and measures the rate.
// When the sizes ask for profiles, it then profiles kip copying.
func PortForward(ctx context.Context, env Env) (_ []results.PortForward, _ []results.Profile, err error) {
	src, err := startSource(env.Sizes.PortForwardBytes)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = src.Close() }()
	node, err := testnode.Start(ctx, testnode.Options{Client: env.Rig.Admin, Name: "kip-bench-node"})
	if err != nil {
		return nil, nil, fmt.Errorf("starting the test node: %w", err)
	}
	defer node.Stop()
	if err := runSourcePod(ctx, env.Rig.Admin, node.Name(), src.Addr().(*net.TCPAddr).Port); err != nil {
		return nil, nil, err
	}
	defer func() {
		err = errors.Join(err, env.Rig.Admin.CoreV1().Pods(pfNamespace).Delete(context.Background(), pfPod, metav1.DeleteOptions{}))
	}()
	targets, err := forwarders(ctx, env, src.Addr().(*net.TCPAddr).Port)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		for _, f := range targets {
			f.stop()
		}
	}()
	out := pfRoundsRun(ctx, env, targets)
	if env.Sizes.ProfileSeconds == 0 {
		return out, nil, nil
	}
	profiles, err := profilePortForward(ctx, env, targets, env.Sizes.PortForwardBytes)
	return out, profiles, err
}

// profilePortForward profiles kip while port-forward copies run through it
// back to back.
func profilePortForward(ctx context.Context, env Env, fs []*forwarder, size int64) ([]results.Profile, error) {
	var kip *forwarder
	for _, f := range fs {
		if f.target.Name == "kip" {
			kip = f
		}
	}
	if kip == nil {
		return nil, nil
	}
	about := "port-forward copies through kip, one after another"
	env.logf("profiling kip for %ds under %s", env.Sizes.ProfileSeconds, about)
	return whileLoaded(ctx, env, env.Sizes.ProfileSeconds, func(ctx context.Context) {
		for ctx.Err() == nil {
			_, _ = copyThrough(ctx, kip.local, size)
		}
	}, []cpuCapture{{source: kipSource(env), name: "kip CPU, port-forward", about: about, file: "kip-cpu-port-forward.pprof"}})
}

// startSource listens on a loopback port and sends size bytes to each
// connection, then closes it.
func startSource(size int64) (net.Listener, error) {
	chunk := []byte(payload(1 << 20))
	return testnode.ServePort(func(conn net.Conn) {
		for left := size; left > 0; left -= int64(len(chunk)) {
			if _, err := conn.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
				return
			}
		}
	})
}

// runSourcePod creates the Pod whose port leads to the source, lets the
// bench user forward to it, and waits until the node runs it.
func runSourcePod(ctx context.Context, admin kubernetes.Interface, node string, port int) error {
	if err := prepareNamespace(ctx, admin, pfNamespace, "kip-bench-portforward", portForwardRules); err != nil {
		return err
	}
	return runPod(ctx, admin, pfNamespace, sourcePod(pfPod, node, port))
}

// sourcePod runs on node and names port, which the test node forwards to
// the same port on loopback.
func sourcePod(name, node string, port int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "main", Image: "testnode.invalid/ignored",
			Ports: []corev1.ContainerPort{{ContainerPort: int32(port), Protocol: corev1.ProtocolTCP}},
		}}},
	}
}

// prepareNamespace creates ns with its default ServiceAccount, and a Role
// with rules bound to the bench user.
func prepareNamespace(ctx context.Context, admin kubernetes.Interface, ns, role string, rules []rbacv1.PolicyRule) error {
	if err := rig.CreateNamespace(ctx, admin, ns); err != nil {
		return err
	}
	if err := createIfMissing(func() error {
		// No kube-controller-manager: nobody else makes it, and Pods need it.
		_, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	return grant(ctx, admin, ns, role, rules)
}

// runPod creates pod in ns and waits until its node runs it.
func runPod(ctx context.Context, admin kubernetes.Interface, ns string, pod *corev1.Pod) error {
	if _, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Pod %s/%s: %w", ns, pod.Name, err)
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := admin.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
}

var portForwardRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
	{APIGroups: []string{""}, Resources: []string{"pods/portforward"}, Verbs: []string{"create", "get"}},
}

// grant binds a Role of rules in ns to the bench user.
func grant(ctx context.Context, admin kubernetes.Interface, ns, name string, rules []rbacv1.PolicyRule) error {
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: rig.User}},
	}
	return errors.Join(
		createIfMissing(func() error {
			_, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{})
			return err
		}),
		createIfMissing(func() error {
			_, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{})
			return err
		}),
	)
}

func createIfMissing(create func() error) error {
	if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// pfRoundsRun copies through each forwarder in turn, pfRounds times.
func pfRoundsRun(ctx context.Context, env Env, fs []*forwarder) []results.PortForward {
	type tally struct{ proxyCPU, upCPU float64 }
	byTarget := map[*forwarder]*results.PortForward{}
	cpu := map[*forwarder]*tally{}
	for _, f := range fs {
		byTarget[f] = &results.PortForward{Target: f.target.Name, Bytes: env.Sizes.PortForwardBytes}
		cpu[f] = &tally{}
	}
	for round := range pfRounds {
		for i := range fs {
			f := fs[(i+round)%len(fs)]
			p0, u0 := cpuSeconds(f.target.PID), cpuSeconds(env.Rig.APIServerPID)
			secs, err := copyThrough(ctx, f.local, env.Sizes.PortForwardBytes)
			cpu[f].proxyCPU += cpuSeconds(f.target.PID) - p0
			cpu[f].upCPU += cpuSeconds(env.Rig.APIServerPID) - u0
			recordTransfer(byTarget[f], secs, err)
		}
	}
	var out []results.PortForward
	for _, f := range fs {
		r := byTarget[f]
		r.MBps = medianRate(r.Bytes, r.Seconds)
		gib := float64(r.Bytes) * float64(len(r.Seconds)) / (1 << 30)
		if gib > 0 {
			up := cpu[f].upCPU / gib
			r.UpstreamCPUPerGiB = &up
			if f.target.PID != 0 {
				proxy := cpu[f].proxyCPU / gib
				r.ProxyCPUPerGiB = &proxy
			}
		}
		out = append(out, *r)
	}
	return out
}

// copyThrough reads everything the source sends through a new connection
// to local and returns how long it took.
func copyThrough(ctx context.Context, local string, want int64) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, pfTimeout)
	defer cancel()
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", local)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	n, err := io.Copy(io.Discard, conn)
	if err == nil && n != want {
		err = fmt.Errorf("got %d bytes through the port-forward, want %d", n, want)
	}
	return time.Since(start).Seconds(), err
}

// recordTransfer adds one round's outcome to r.
func recordTransfer(r *results.PortForward, secs float64, err error) {
	if err != nil {
		r.Errors++
		if r.FirstError == "" {
			r.FirstError = err.Error()
		}
		return
	}
	r.Seconds = append(r.Seconds, secs)
}

func medianRate(bytes int64, seconds []float64) float64 {
	if len(seconds) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(seconds))
	return float64(bytes) / sorted[len(sorted)/2] / 1e6
}
