package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/clusters"
)

// Upstreams is the proxy of every registered cluster. A cluster's proxy,
// and so its connections, is built on the first request to it, not at
// registration: a thousand idle clusters cost no connection.
type Upstreams struct {
	// newProxy builds the proxy of one cluster; proxy.New in kip.
	newProxy func(*rest.Config) (http.Handler, error)

	mu     sync.RWMutex
	byName map[string]*upstream
}

// upstream is one registered cluster. Its context ends when the cluster
// is removed or its entry replaced, and with it every request still open
// to it (watches, exec), so that nothing keeps using credentials the
// registry no longer holds.
type upstream struct {
	cluster clusters.Cluster
	ctx     context.Context
	cancel  context.CancelFunc

	once    sync.Once
	handler http.Handler
	err     error
}

// NewUpstreams returns an empty set whose proxies newProxy builds.
func NewUpstreams(newProxy func(*rest.Config) (http.Handler, error)) *Upstreams {
	return &Upstreams{newProxy: newProxy, byName: map[string]*upstream{}}
}

// Apply makes the set the snapshot's clusters. A cluster whose entry is
// the same keeps its proxy and connections; one that changed gets a new
// proxy, and the requests open on the old one end, as they do for a
// removed cluster. It returns the names added, changed and removed.
func (u *Upstreams) Apply(s clusters.Snapshot) (added, changed, removed []string) {
	next := make(map[string]*upstream, len(s.Clusters))
	u.mu.Lock()
	old := u.byName
	for _, c := range s.Clusters {
		prev, ok := old[c.Name]
		switch {
		case ok && prev.cluster.Same(c):
			next[c.Name] = prev
			continue
		case ok:
			changed = append(changed, c.Name)
		default:
			added = append(added, c.Name)
		}
		ctx, cancel := context.WithCancel(context.Background())
		next[c.Name] = &upstream{cluster: c, ctx: ctx, cancel: cancel}
	}
	u.byName = next
	u.mu.Unlock()
	for name, prev := range old {
		if cur, ok := next[name]; !ok || cur != prev {
			if !ok {
				removed = append(removed, name)
			}
			prev.cancel()
		}
	}
	return added, changed, removed
}

// Known reports whether name is registered.
func (u *Upstreams) Known(name string) bool {
	u.mu.RLock()
	defer u.mu.RUnlock()
	_, ok := u.byName[name]
	return ok
}

// ServeHTTP forwards the request to the cluster WithRouting recorded. It
// ends the request when the cluster is removed or replaced meanwhile.
func (u *Upstreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := ClusterFrom(r.Context())
	if !ok {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "the request reached the gateway's proxy step without a cluster")
		return
	}
	u.mu.RLock()
	up := u.byName[name]
	u.mu.RUnlock()
	if up == nil {
		notFound(w, fmt.Sprintf("kip fronts no cluster %q", name))
		return
	}
	h, err := up.proxy(u.newProxy)
	if err != nil {
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			fmt.Sprintf("kip cannot reach cluster %q: its entry is unusable; ask kip's operator, whose log has the cause", name))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(up.ctx, cancel)
	defer stop()
	h.ServeHTTP(w, r.WithContext(ctx))
}

// proxy builds the cluster's proxy once, on first use.
func (up *upstream) proxy(newProxy func(*rest.Config) (http.Handler, error)) (http.Handler, error) {
	up.once.Do(func() {
		up.handler, up.err = newProxy(up.cluster.Config)
		if up.err != nil {
			klog.ErrorS(up.err, "Building the proxy of a cluster", "cluster", up.cluster.Name, "origin", up.cluster.Origin)
		}
	})
	return up.handler, up.err
}
