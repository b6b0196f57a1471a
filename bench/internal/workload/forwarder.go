package workload

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"k8s.io/apimachinery/pkg/util/httpstream" //nolint:staticcheck // client-go v0.37's portforward still takes this Dialer
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/kip-proxy/kip/bench/internal/load"
)

// forwarder is a running port-forward through one target.
type forwarder struct {
	target *load.Target
	local  string
	stopCh chan struct{}
	done   chan error
}

func (f *forwarder) stop() {
	close(f.stopCh)
	<-f.done //nolint:errcheck // only waits for ForwardPorts to return; its error after a stop is of no interest (and staticcheck S1005 rejects `_ = <-f.done`)
}

// forwarders opens a port-forward to port through direct and through kip.
func forwarders(ctx context.Context, env Env, port int) ([]*forwarder, error) {
	var out []*forwarder
	for _, name := range []string{"direct", "kip"} {
		cfg := env.Rig.Stack.Cluster.AdminConfig
		if name == "kip" {
			cfg = env.Rig.UserConfig()
		}
		f, err := startForwarder(ctx, env.Rig.Target(name), spdyDialer, cfg, pfNamespace, pfPod, port)
		if err != nil {
			for _, started := range out {
				started.stop()
			}
			return nil, fmt.Errorf("port-forward through %s: %w", name, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// newDialer makes the port-forward dialer for one protocol.
type newDialer func(cfg *rest.Config, u *url.URL) (httpstream.Dialer, error)

// spdyDialer speaks SPDY, as kubectl did before v1.31 and still falls
// back to.
func spdyDialer(cfg *rest.Config, u *url.URL) (httpstream.Dialer, error) {
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	return spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u), nil
}

// websocketDialer tunnels SPDY through a WebSocket, as kubectl does by
// default since v1.31.
func websocketDialer(cfg *rest.Config, u *url.URL) (httpstream.Dialer, error) {
	return portforward.NewSPDYOverWebsocketDialer(u, cfg)
}

// startForwarder forwards a local port to port of Pod ns/pod, through t
// with cfg.
func startForwarder(ctx context.Context, t *load.Target, dial newDialer, cfg *rest.Config, ns, pod string, port int) (*forwarder, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	u := client.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource("portforward").URL()
	dialer, err := dial(cfg, u)
	if err != nil {
		return nil, err
	}
	f := &forwarder{target: t, stopCh: make(chan struct{}), done: make(chan error, 1)}
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, f.stopCh, ready, io.Discard, io.Discard)
	if err != nil {
		return nil, err
	}
	go func() { f.done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-f.done:
		return nil, err
	case <-ctx.Done():
		f.stop()
		return nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil {
		f.stop()
		return nil, err
	}
	f.local = "127.0.0.1:" + strconv.Itoa(int(ports[0].Local))
	return f, nil
}
