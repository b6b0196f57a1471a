package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kip-proxy/kip/internal/rig/childproc"
	"github.com/kip-proxy/kip/internal/rig/devstack"
	"github.com/kip-proxy/kip/internal/rig/localcluster"
)

// KipOptions describes a `kip serve` process.
type KipOptions struct {
	// Name names the process in errors and its log file; "kip" if empty.
	Name string
	// Binary is the kip to run; StartKip and PrepareKip default to
	// KipBinary.
	Binary string
	// Stack, when set, gives kip the flags the stack's own kip has (its
	// serving certificate, upstream, profiling), on ports of its own.
	// Without a stack Args must say everything but the addresses.
	Stack *devstack.Stack
	// Kubeconfig is kip's upstream; the stack's when empty.
	Kubeconfig string
	// Args are `kip serve` flags (without "serve"). With a stack they come
	// after the stack's, so they can override them; without one, before the
	// addresses, which override theirs.
	Args []string
	// Env is added to kip's environment.
	Env []string
	// Dir receives the log; a test's TempDir when empty.
	Dir string
	// CAPEM verifies kip's serving certificate when there is no stack.
	CAPEM []byte
	// Ready says when Start may return; ReadyzOK when nil.
	Ready Readiness
	// ReadyTimeout bounds the wait; a minute when zero.
	ReadyTimeout time.Duration
}

// Readiness is a probe Start polls until it succeeds.
type Readiness func(ctx context.Context, k *Kip) error

// ReadyzOK is ready once /readyz answers 200, as a load balancer sees it.
func ReadyzOK(ctx context.Context, k *Kip) error {
	return childproc.GetOK(ctx, http.DefaultClient, k.ProbeURL+"/readyz")
}

// Started does not wait: for tests that watch kip become ready themselves.
func Started(context.Context, *Kip) error { return nil }

// Kip is a `kip serve` process on loopback ports of its own. It can be
// stopped and started again on the same ports, as a restarted container
// keeps its pod's address.
type Kip struct {
	Name string
	// Addr is the secure port's host:port, URL its https address and
	// ProbeURL the plain-HTTP probe server's.
	Addr, URL, ProbeURL string
	// CAPEM verifies kip's serving certificate.
	CAPEM []byte
	// Args are the whole command line after the binary; add to them
	// before Start.
	Args []string
	// LogPath is where kip's output goes, across restarts.
	LogPath string

	bin          string
	env          []string
	ready        Readiness
	readyTimeout time.Duration
	proc         *childproc.Process
}

// NewKip picks the ports and writes the command line; Start runs it.
func NewKip(opts KipOptions) (*Kip, error) {
	if opts.Binary == "" {
		return nil, errors.New("harness: KipOptions.Binary is empty; BuildKip builds one")
	}
	if opts.Dir == "" {
		return nil, errors.New("harness: KipOptions.Dir is empty")
	}
	ports, err := localcluster.FreePorts(2)
	if err != nil {
		return nil, err
	}
	k := &Kip{
		Name:         opts.Name,
		Addr:         "127.0.0.1:" + strconv.Itoa(ports[0]),
		ProbeURL:     "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		CAPEM:        opts.CAPEM,
		bin:          opts.Binary,
		env:          opts.Env,
		ready:        opts.Ready,
		readyTimeout: opts.ReadyTimeout,
	}
	k.URL = "https://" + k.Addr
	if k.Name == "" {
		k.Name = "kip"
	}
	if k.ready == nil {
		k.ready = ReadyzOK
	}
	if k.readyTimeout == 0 {
		k.readyTimeout = time.Minute
	}
	k.LogPath = filepath.Join(opts.Dir, k.Name+".log")
	k.Args = []string{"serve"}
	if s := opts.Stack; s != nil {
		kubeconfig := opts.Kubeconfig
		if kubeconfig == "" {
			kubeconfig = s.UpstreamKubeconfig
		}
		k.CAPEM = s.KipCAPEM
		k.Args = append(k.Args, s.ServeArgs(kubeconfig, ports[0], ports[1])...)
		k.Args = append(k.Args, opts.Args...)
		return k, nil
	}
	// Without a stack the flags come from elsewhere (a chart), and the
	// addresses must win over theirs: they come last.
	k.Args = append(k.Args, opts.Args...)
	k.Args = append(k.Args, "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[0]),
		"--probe-bind-address=127.0.0.1", "--probe-port="+strconv.Itoa(ports[1]))
	if opts.Kubeconfig != "" {
		k.Args = append(k.Args, "--kubeconfig="+opts.Kubeconfig)
	}
	return k, nil
}

// Start runs kip and returns once it is ready, or with an error that
// carries the end of its log. Start again after it has exited restarts it.
func (k *Kip) Start(ctx context.Context) error {
	if k.proc != nil && !k.proc.HasExited() {
		return fmt.Errorf("%s is already running (pid %d)", k.Name, k.proc.Pid())
	}
	p, err := childproc.Start(k.Name, k.bin, k.Args, k.env, k.LogPath)
	if err != nil {
		return err
	}
	k.proc = p
	return p.WaitReady(ctx, k.readyTimeout, func(ctx context.Context) error { return k.ready(ctx, k) })
}

// Pid is the running process.
func (k *Kip) Pid() int { return k.proc.Pid() }

// Signal sends sig to kip alone, as the kubelet signals a container.
func (k *Kip) Signal(sig syscall.Signal) error { return syscall.Kill(k.proc.Pid(), sig) }

// Exited is closed once the running process has exited; Err then says how.
func (k *Kip) Exited() <-chan struct{} { return k.proc.Exited() }

// Err is how the process ended, nil for exit status 0.
func (k *Kip) Err() error { return k.proc.Err() }

// HasExited reports whether the process has exited.
func (k *Kip) HasExited() bool { return k.proc.HasExited() }

// Stop sends SIGTERM, then SIGKILL after grace.
func (k *Kip) Stop(grace time.Duration) error {
	if k.proc == nil {
		return nil
	}
	return k.proc.Stop(grace)
}

// LogTail is the last 16 KiB of kip's output, across restarts.
func (k *Kip) LogTail() string {
	data, err := os.ReadFile(k.LogPath)
	if err != nil {
		return err.Error()
	}
	return string(data[max(0, len(data)-16<<10):])
}

// Config reaches the cluster through kip with no credential yet.
func (k *Kip) Config() *rest.Config {
	return &rest.Config{Host: k.URL, TLSClientConfig: rest.TLSClientConfig{CAData: k.CAPEM}}
}

// PrepareKip is NewKip for a test: the log goes to the test's TempDir,
// and when the test ends kip is stopped and, if the test failed, its log
// printed.
func PrepareKip(t testing.TB, opts KipOptions) *Kip {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = KipBinary(t)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	k, err := NewKip(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("%s's log, %s:\n%s", k.Name, k.LogPath, k.LogTail())
		}
	})
	return k
}

// StartKip starts a kip for a test and returns it once it is ready.
func StartKip(t testing.TB, opts KipOptions) *Kip {
	t.Helper()
	k := PrepareKip(t, opts)
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return k
}

// StartReplicas starts prepared kips at once, as a Deployment's replicas
// start, and returns once every one is ready.
func StartReplicas(t testing.TB, kips []*Kip) {
	t.Helper()
	started := make(chan error, len(kips))
	for _, k := range kips {
		go func() { started <- k.Start(context.Background()) }()
	}
	var errs []error
	for range kips {
		errs = append(errs, <-started)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
