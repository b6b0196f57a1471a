package testnode

import (
	"fmt"
	"net/http"
	"net/url"

	"k8s.io/apimachinery/pkg/util/proxy"
	translator "k8s.io/apiserver/pkg/util/proxy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// router answers kube-apiserver on the paths it uses for a Pod's streaming
// subresources, as the kubelet's server does (pkg/kubelet/server in
// k8s.io/kubernetes): exec, attach and port-forward are handed to the CRI
// streaming server, logs are read here.
func (n *Node) router() http.Handler {
	mux := http.NewServeMux()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		mux.Handle(method+" /exec/{namespace}/{pod}/{container}", n.track(kindExec, n.serveExec))
		mux.Handle(method+" /attach/{namespace}/{pod}/{container}", n.track(kindAttach, n.serveAttach))
		mux.Handle(method+" /portForward/{namespace}/{pod}", n.track(kindPortForward, n.servePortForward))
	}
	mux.Handle("GET /containerLogs/{namespace}/{pod}/{container}", n.track(kindLogs, n.serveLogs))
	return mux
}

func (n *Node) serveExec(w http.ResponseWriter, r *http.Request) {
	n.serveRemoteCommand(w, r, func(c *container, opts *remotecommandserver.Options) (string, error) {
		resp, err := n.stream.GetExec(&runtimeapi.ExecRequest{
			ContainerId: c.id, Cmd: r.URL.Query()["command"],
			Tty: opts.TTY, Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
		})
		if err != nil {
			return "", err
		}
		return resp.Url, nil
	})
}

func (n *Node) serveAttach(w http.ResponseWriter, r *http.Request) {
	n.serveRemoteCommand(w, r, func(c *container, opts *remotecommandserver.Options) (string, error) {
		resp, err := n.stream.GetAttach(&runtimeapi.AttachRequest{
			ContainerId: c.id, Tty: opts.TTY, Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
		})
		if err != nil {
			return "", err
		}
		return resp.Url, nil
	})
}

// serveRemoteCommand reads an exec or attach request's streams, finds its
// container, asks the streaming server for a session with open, and passes
// the upgrade to that session.
func (n *Node) serveRemoteCommand(w http.ResponseWriter, r *http.Request, open func(*container, *remotecommandserver.Options) (string, error)) {
	opts, err := remotecommandserver.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c, ok := n.containerFor(w, r)
	if !ok {
		return
	}
	target, err := open(c, opts)
	if err != nil {
		_ = streaming.WriteError(err, w)
		return
	}
	n.proxyRemoteCommand(w, r, target, opts)
}

// proxyRemoteCommand passes an exec or attach upgrade to the streaming
// server. That server speaks SPDY and the older WebSocket protocols only,
// so a node that declared WebSocketFeature converts v5 WebSocket sessions
// to SPDY itself, as the kubelet does.
func (n *Node) proxyRemoteCommand(w http.ResponseWriter, r *http.Request, target string, opts *remotecommandserver.Options) {
	u, err := url.Parse(target)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var h http.Handler = proxy.NewUpgradeAwareHandler(u, nil, false, true, responder{n})
	if n.websocket && wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		h = translator.NewStreamTranslatorHandler(u, nil, 0, translator.Options{
			Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Tty: opts.TTY,
		})
	}
	h.ServeHTTP(w, r)
}

// servePortForward passes a port-forward upgrade to the streaming server.
// A WebSocket tunnel, which carries SPDY inside WebSocket frames, is
// unwrapped here when the node declared WebSocketFeature.
func (n *Node) servePortForward(w http.ResponseWriter, r *http.Request) {
	tunnel := n.websocket && wsstream.IsWebSocketRequestWithTunnelingProtocol(r)
	opts := &portforward.V4Options{}
	if !tunnel {
		var err error
		if opts, err = portforward.NewV4Options(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	p, ok := n.pods.get(r.PathValue("namespace"), r.PathValue("pod"))
	if !ok {
		http.Error(w, fmt.Sprintf("pod %s/%s is not running on this node", r.PathValue("namespace"), r.PathValue("pod")), http.StatusNotFound)
		return
	}
	resp, err := n.stream.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: podKey(p.namespace, p.name), Port: opts.Ports})
	if err != nil {
		_ = streaming.WriteError(err, w)
		return
	}
	u, err := url.Parse(resp.Url)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var h http.Handler = proxy.NewUpgradeAwareHandler(u, nil, false, true, responder{n})
	if tunnel {
		h = translator.NewTunnelingHandler(h)
	}
	h.ServeHTTP(w, r)
}

// containerFor finds the container a request names, or answers 404.
func (n *Node) containerFor(w http.ResponseWriter, r *http.Request) (*container, bool) {
	ns, pod, name := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	c, ok := n.pods.container(ns, pod, name)
	if !ok {
		http.Error(w, fmt.Sprintf("container %s of pod %s/%s is not running on this node", name, ns, pod), http.StatusNotFound)
	}
	return c, ok
}

// responder answers a failure to reach the streaming server.
type responder struct{ node *Node }

func (r responder) Error(w http.ResponseWriter, req *http.Request, err error) {
	r.node.logf("proxying %s to the streaming server: %v", req.URL.Path, err)
	http.Error(w, err.Error(), http.StatusInternalServerError)
}
