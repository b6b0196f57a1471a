package server

import (
	"fmt"
	"net/http"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/kip-proxy/kip/internal/gateway"
)

// withMaxInFlight bounds the short requests kip serves at once, read-only
// (get, list, watch) and mutating apart, with the rules of k8s.io/apiserver's
// WithMaxInFlightLimit: long-running requests and system:masters are never
// turned away, and a limit of 0 means none. Unlike that filter, the refusal
// is a metav1.Status with Retry-After, so kubectl and client-go show it and
// retry, as they do for kube-apiserver's priority-and-fairness 429s.
func withMaxInFlight(h http.Handler, readOnly, mutating int, longRunning apirequest.LongRunningRequestCheck, s runtime.NegotiatedSerializer) http.Handler {
	if readOnly <= 0 && mutating <= 0 {
		return h
	}
	return &inFlight{next: h, readOnly: slots(readOnly), mutating: slots(mutating), longRunning: longRunning, serializer: s,
		refusal: func(limit int, kind string) string {
			return fmt.Sprintf("kip is serving its limit of %d %s requests at once (--max-requests-inflight, --max-mutating-requests-inflight); try again", limit, kind)
		}}
}

// withClusterShare gives each cluster of a gateway half of kip's limits of
// short requests, so that a slow cluster, whose requests pile up, can take
// no more than half of kip's slots, and the other clusters keep being
// served. It sits inside withMaxInFlight, which still bounds kip as a
// whole.
func withClusterShare(h http.Handler, readOnly, mutating int, longRunning apirequest.LongRunningRequestCheck, s runtime.NegotiatedSerializer) http.Handler {
	if readOnly <= 0 && mutating <= 0 {
		return h
	}
	var mu sync.Mutex
	// One entry per cluster that was ever routed: routing lets only
	// registered names through, so this is bounded by the registry.
	byCluster := map[string]*inFlight{}
	share := func(n int) chan struct{} { return slots(max(n/2, min(n, 1))) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _ := gateway.ClusterFrom(r.Context())
		mu.Lock()
		l := byCluster[name]
		if l == nil {
			l = &inFlight{next: h, readOnly: share(readOnly), mutating: share(mutating), longRunning: longRunning, serializer: s,
				refusal: func(limit int, kind string) string {
					return fmt.Sprintf("cluster %q has its share of %d %s requests at kip at once (half of kip's limit, so that one slow cluster cannot hold up the others); try again", name, limit, kind)
				}}
			byCluster[name] = l
		}
		mu.Unlock()
		l.ServeHTTP(w, r)
	})
}

// slots is a semaphore of n places, or nil for no limit.
func slots(n int) chan struct{} {
	if n <= 0 {
		return nil
	}
	return make(chan struct{}, n)
}

type inFlight struct {
	next               http.Handler
	readOnly, mutating chan struct{}
	longRunning        apirequest.LongRunningRequestCheck
	serializer         runtime.NegotiatedSerializer
	// refusal says which limit was reached.
	refusal func(limit int, kind string) string
}

func (l *inFlight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, ok := apirequest.RequestInfoFrom(r.Context())
	if !ok {
		responsewriters.InternalError(w, r, fmt.Errorf("no RequestInfo found in the context: kip's handler chain is wrong"))
		return
	}
	if l.longRunning != nil && l.longRunning(r, info) {
		l.next.ServeHTTP(w, r)
		return
	}
	sem, kind := l.mutating, "mutating"
	if info.Verb == "get" || info.Verb == "list" || info.Verb == "watch" {
		sem, kind = l.readOnly, "read-only"
	}
	if sem == nil {
		l.next.ServeHTTP(w, r)
		return
	}
	select {
	case sem <- struct{}{}:
		defer func() { <-sem }()
		l.next.ServeHTTP(w, r)
	default:
		if privileged(r) {
			l.next.ServeHTTP(w, r)
			return
		}
		err := apierrors.NewTooManyRequests(l.refusal(cap(sem), kind), 1)
		responsewriters.ErrorNegotiated(err, l.serializer, schema.GroupVersion{}, w, r)
	}
}

// privileged says whether the caller is in system:masters, whom
// kube-apiserver always answers so that an administrator can fix an
// overloaded cluster.
func privileged(r *http.Request) bool {
	u, ok := apirequest.UserFrom(r.Context())
	return ok && slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup)
}
