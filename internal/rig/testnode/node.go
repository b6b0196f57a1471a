package testnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
)

// Options configures Start.
type Options struct {
	// Client registers the Node and runs its Pods; it needs the rights of a
	// cluster admin.
	Client kubernetes.Interface
	// Name is the Node's name. Pods run here when their spec.nodeName is
	// Name, as if a scheduler had bound them.
	Name string
	// DeclareWebSocketFeature declares ExtendWebSocketsToKubelet on the Node,
	// so that kube-apiserver passes WebSocket exec, attach and port-forward
	// through to it instead of converting them to SPDY.
	DeclareWebSocketFeature bool
	// Log receives a line for each Pod started or stopped and each
	// streaming request. Nil discards them.
	Log io.Writer
}

// Node is a running test kubelet.
type Node struct {
	name      string
	websocket bool
	client    kubernetes.Interface
	log       io.Writer
	dir       string
	url       string

	// ctx ends when the node stops; every process and loop it runs ends
	// with it.
	ctx    context.Context
	cancel context.CancelFunc

	kubelet   *http.Server // kube-apiserver's side: the router
	streaming *http.Server // the CRI streaming server, for the router only
	listeners []*trackingListener
	stream    streamer
	pods      *pods
	stats     *statsRecorder
	serving   sync.WaitGroup
}

// Start registers the Node, starts its servers and runs its Pods until Stop.
// ctx bounds the start-up only.
func Start(ctx context.Context, opts Options) (_ *Node, err error) {
	if opts.Client == nil || opts.Name == "" {
		return nil, errors.New("a test node needs a client and a name")
	}
	n := &Node{
		name:      opts.Name,
		websocket: opts.DeclareWebSocketFeature,
		client:    opts.Client,
		log:       opts.Log,
		stats:     newStatsRecorder(),
	}
	if n.log == nil {
		n.log = io.Discard
	}
	if n.dir, err = os.MkdirTemp("", "kip-testnode-"+opts.Name+"-"); err != nil {
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	n.pods = newPods(n)
	kubeletLn, err := n.startServers()
	if err != nil {
		return nil, err
	}
	port := kubeletLn.Addr().(*net.TCPAddr).Port
	if err := n.register(ctx, port); err != nil {
		return nil, err
	}
	if err := n.pods.run(ctx); err != nil {
		return nil, err
	}
	_, _ = fmt.Fprintf(n.log, "test node %s serving on 127.0.0.1:%d (WebSocket feature declared: %t)\n", n.name, port, n.websocket)
	return n, nil
}

// startServers starts the CRI streaming server on loopback plain HTTP and
// the router, which kube-apiserver calls, on loopback HTTPS.
func (n *Node) startServers() (kubelet net.Listener, err error) {
	streamLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if n.stream, err = newStreamer(streamLn.Addr().String(), &runtime{node: n}); err != nil {
		_ = streamLn.Close()
		return nil, err
	}
	n.streaming = &http.Server{Handler: n.stream, ReadHeaderTimeout: 10 * time.Second}
	n.serve(n.streaming, streamLn, nil)

	tlsConfig, err := n.servingTLS()
	if err != nil {
		return nil, err
	}
	if kubelet, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	n.url = "https://" + kubelet.Addr().String()
	n.kubelet = &http.Server{Handler: n.router(), ReadHeaderTimeout: 10 * time.Second}
	n.serve(n.kubelet, kubelet, tlsConfig)
	return kubelet, nil
}

// serve runs srv on ln, with TLS when tlsConfig is set, until Stop.
func (n *Node) serve(srv *http.Server, ln net.Listener, tlsConfig *tls.Config) {
	tracked := trackConns(ln)
	n.listeners = append(n.listeners, tracked)
	var l net.Listener = tracked
	if tlsConfig != nil {
		l = tls.NewListener(tracked, tlsConfig)
	}
	n.serving.Add(1)
	go func() {
		defer n.serving.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_, _ = fmt.Fprintf(n.log, "test node %s: %v\n", n.name, err)
		}
	}()
}

// Name is the Node's name.
func (n *Node) Name() string { return n.name }

// URL is the node's kubelet endpoint, for clients that want to reach it
// without kube-apiserver, as a baseline. Its certificate is self-signed.
func (n *Node) URL() string { return n.url }

// Stop kills every container and exec process, closes every connection,
// stream or not, and deletes the Node object. The Pods stay in the API;
// delete them first to leave nothing behind. Stop may be called more than
// once.
func (n *Node) Stop() {
	n.cancel()
	if n.pods != nil {
		n.pods.stopAll()
	}
	// Close, not Shutdown: streams are hijacked connections that Shutdown
	// would wait for in vain, and that only the listener still knows.
	for _, srv := range []*http.Server{n.kubelet, n.streaming} {
		if srv != nil {
			_ = srv.Close()
		}
	}
	for _, ln := range n.listeners {
		ln.closeAll()
	}
	n.serving.Wait()
	n.unregister()
	_ = os.RemoveAll(n.dir)
}

func (n *Node) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(n.log, "test node %s: %s\n", n.name, fmt.Sprintf(format, args...))
}
