package gateway

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"

	"github.com/kip-proxy/kip/internal/clusters"
	"github.com/kip-proxy/kip/internal/proxy"
)

// Upstreams is every registered cluster and what kip holds for each. A
// cluster's backend (its proxy, clients and caches) is built on the first
// request to it, not at registration, so a thousand idle clusters cost no
// connection; Eager builds it at registration instead, for the pieces
// that must load before a first request (a cluster's own client CA, which
// the TLS handshake names).
type Upstreams struct {
	build Build
	eager bool
	// longRunning says which requests outlive a cluster's removal only if
	// they are ended for it: watches, exec, attach, logs -f. Nil treats
	// every request as long-running.
	longRunning func(*http.Request) bool
	// removedEnded counts the requests a removal ended; nil counts none.
	removedEnded func()
	// observe hears of registrations and of each cluster's health; never nil.
	observe Observer

	mu     sync.RWMutex
	byName map[string]*member
}

// Build makes the backend of one cluster. ctx ends when the cluster is
// removed or its entry replaced: everything the backend started in the
// background must stop with it.
type Build func(ctx context.Context, c clusters.Cluster, health *Health) (*Backend, error)

// Observer hears what the registry does, for metrics and log lines. Its
// methods must not block.
type Observer interface {
	Up(cluster string, up bool)
	Forget(cluster string)
}

// Changes is what one Apply did.
type Changes struct {
	Added, Changed, Removed []string
}

// Options tune a registry; the zero value is lazy, unobserved, and ends
// every open request of a removed cluster.
type Options struct {
	// Eager builds a cluster's backend as soon as it is registered.
	Eager bool
	// Observe hears of each cluster's health and removal.
	Observe Observer
	// LongRunning says which requests are long-running; only those are
	// ended by their cluster's removal, the others end on their own
	// deadline. Nil treats every request as long-running.
	LongRunning func(*http.Request) bool
	// Ended hears of each long-running request a cluster's removal ended,
	// with proxy.EndClusterRemoved; nil when nobody counts them.
	Ended func(reason string)
}

// NewUpstreams returns an empty registry whose backends build makes.
func NewUpstreams(build Build, opts Options) *Upstreams {
	if opts.Observe == nil {
		opts.Observe = noObserver{}
	}
	u := &Upstreams{build: build, eager: opts.Eager, observe: opts.Observe, longRunning: opts.LongRunning, byName: map[string]*member{}}
	if ended := opts.Ended; ended != nil {
		u.removedEnded = func() { ended(proxy.EndClusterRemoved) }
	}
	return u
}

// Apply makes the registry the snapshot's clusters. A cluster whose entry
// is the same keeps its backend and connections; one that changed gets a
// new backend, and the requests open on the old one end, as they do for a
// removed cluster.
func (u *Upstreams) Apply(s clusters.Snapshot) Changes {
	var ch Changes
	next := make(map[string]*member, len(s.Clusters))
	u.mu.Lock()
	old := u.byName
	for _, c := range s.Clusters {
		prev, ok := old[c.Name]
		switch {
		case ok && prev.cluster.Same(c):
			next[c.Name] = prev
			continue
		case ok:
			ch.Changed = append(ch.Changed, c.Name)
		default:
			ch.Added = append(ch.Added, c.Name)
		}
		next[c.Name] = newMember(c, u.observe)
	}
	u.byName = next
	u.mu.Unlock()
	for name, prev := range old {
		if cur, ok := next[name]; !ok || cur != prev {
			if !ok {
				ch.Removed = append(ch.Removed, name)
				u.observe.Forget(name)
			}
			prev.stop()
		}
	}
	if u.eager {
		u.buildNew(next, ch)
	}
	logChanges(ch, s.Refused)
	return ch
}

// buildNew builds the backends of the clusters just added or changed, in
// the background: a cluster that cannot be reached must not hold up the
// others, or the registry.
func (u *Upstreams) buildNew(byName map[string]*member, ch Changes) {
	for _, name := range slices.Concat(ch.Added, ch.Changed) {
		m := byName[name]
		go func() { _, _ = m.backend(u.build) }()
	}
}

func logChanges(ch Changes, refused []clusters.Refusal) {
	if len(ch.Added)+len(ch.Changed)+len(ch.Removed) > 0 {
		klog.InfoS("The cluster registry changed", "added", ch.Added, "changed", ch.Changed, "removed", ch.Removed)
	}
	for _, r := range refused {
		klog.ErrorS(nil, "Refused a cluster entry; the other clusters are served", "cluster", r.Name, "origin", r.Origin, "reason", r.Reason)
	}
}

// Known reports whether name is registered.
func (u *Upstreams) Known(name string) bool {
	return u.get(name) != nil
}

func (u *Upstreams) get(name string) *member {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.byName[name]
}

// Reachable returns, sorted, the clusters whose access policy lets usr in.
func (u *Upstreams) Reachable(usr user.Info) []string {
	u.mu.RLock()
	members := make([]*member, 0, len(u.byName))
	for _, m := range u.byName {
		members = append(members, m)
	}
	u.mu.RUnlock()
	var names []string
	for _, m := range members {
		if ok, _ := m.cluster.Policy.Allows(usr); ok {
			names = append(names, m.cluster.Name)
		}
	}
	slices.Sort(names)
	return names
}

// Status is one cluster's state, as /readyz?verbose shows it.
type Status struct {
	Name string
	// State is "idle" before any request, "up" or "down".
	State string
	// Err says why the cluster is down.
	Err error
}

// Statuses returns every registered cluster's state, sorted by name.
func (u *Upstreams) Statuses() []Status {
	u.mu.RLock()
	out := make([]Status, 0, len(u.byName))
	for _, m := range u.byName {
		out = append(out, m.health.status(m.cluster.Name))
	}
	u.mu.RUnlock()
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ReservedName says why name may not be impersonated at any cluster kip
// has contacted, because it is kip's own username there, or returns "".
// Each cluster also refuses its own kip name on every request; this lets
// the credential exchange refuse such a name before it signs anything.
func (u *Upstreams) ReservedName(name string) string {
	u.mu.RLock()
	defer u.mu.RUnlock()
	for _, m := range u.byName {
		if b := m.built(); b != nil && b.ReservedName != nil {
			if why := b.ReservedName(name); why != "" {
				return why
			}
		}
	}
	return ""
}

type noObserver struct{}

func (noObserver) Up(string, bool) {}
func (noObserver) Forget(string)   {}
