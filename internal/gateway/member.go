package gateway

import (
	"context"
	"net/http"
	"sync"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/clusters"
)

// Backend is what kip holds for one cluster, each piece its own: nothing
// learned about a caller at one cluster (a verified certificate, a
// TokenReview's answer, an authorization) is ever used at another.
type Backend struct {
	// Proxy forwards to the cluster with kip's credentials for it.
	Proxy http.Handler
	// Authenticator accepts kip-wide identities and those only this
	// cluster vouches for: certificates of its own client CA, tokens its
	// TokenReview accepts.
	Authenticator authenticator.Request
	// Authorizer asks this cluster's SubjectAccessReview.
	Authorizer authorizer.Authorizer
	// Check contacts the cluster: it learns kip's own username there when
	// that is not known yet, and otherwise asks whether the cluster is
	// ready. Until it has succeeded once, no request is forwarded.
	Check func(context.Context) error
	// ReservedName says why a name may not be impersonated at this
	// cluster (it is kip's own username there), or returns "". Nil when
	// kip does not know its name there yet.
	ReservedName func(name string) string
}

// member is one registered cluster. Its context ends when the cluster is
// removed or its entry replaced, and with it every request still open to
// it (watches, exec), so that nothing keeps using credentials the registry
// no longer holds.
type member struct {
	cluster clusters.Cluster
	ctx     context.Context
	cancel  context.CancelFunc
	health  *Health

	once sync.Once
	mu   sync.RWMutex // guards b after once
	b    *Backend
	err  error
}

func newMember(c clusters.Cluster, observe Observer) *member {
	ctx, cancel := context.WithCancel(context.Background())
	return &member{cluster: c, ctx: ctx, cancel: cancel, health: newHealth(c.Name, observe)}
}

// backend builds the cluster's backend once, on first use.
func (m *member) backend(build Build) (*Backend, error) {
	m.once.Do(func() {
		b, err := build(m.ctx, m.cluster, m.health)
		if err != nil {
			klog.ErrorS(err, "Building the backend of a cluster", "cluster", m.cluster.Name, "origin", m.cluster.Origin)
		}
		m.mu.Lock()
		m.b, m.err = b, err
		m.mu.Unlock()
	})
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.b, m.err
}

// built is the backend if it has been built, or nil.
func (m *member) built() *Backend {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.b
}

// stop ends the member's requests and background work.
func (m *member) stop() { m.cancel() }

// routedFrom is the request's route once WithBackend has chosen its
// backend.
func routedFrom(ctx context.Context) (*route, bool) {
	rt, ok := ctx.Value(routeKey{}).(*route)
	return rt, ok && rt.b != nil
}
