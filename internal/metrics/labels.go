package metrics

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
)

// snapshotMap is a map that is read on every request and written only when
// a label combination is seen for the first time: readers load an immutable
// snapshot without locking, writers copy it.
type snapshotMap[K comparable, V any] struct {
	current atomic.Pointer[map[K]V]
	mu      sync.Mutex // serializes writers
}

func (m *snapshotMap[K, V]) get(k K) (V, bool) {
	if p := m.current.Load(); p != nil {
		v, ok := (*p)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// getOrAdd returns the value for k, adding newValue() unless full says the map
// may not grow. ok is false when k is absent and was not added.
func (m *snapshotMap[K, V]) getOrAdd(k K, newValue func() V, full func(n int) bool) (v V, ok bool) {
	if v, ok := m.get(k); ok {
		return v, true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.current.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v, true
		}
	}
	n := 0
	if old != nil {
		n = len(*old)
	}
	if full != nil && full(n) {
		return v, false
	}
	next := make(map[K]V, n+1)
	if old != nil {
		maps.Copy(next, *old)
	}
	v = newValue()
	next[k] = v
	m.current.Store(&next)
	return v, true
}

// removeIf drops every key match selects, calling removed for each while
// writers are still held off.
func (m *snapshotMap[K, V]) removeIf(match func(K) bool, removed func(K)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.current.Load()
	if old == nil {
		return
	}
	next := make(map[K]V, len(*old))
	for k, v := range *old {
		if match(k) {
			removed(k)
			continue
		}
		next[k] = v
	}
	m.current.Store(&next)
}

// codeLabels holds the label value of every HTTP status code, computed once
// so that recording a code never formats it.
var codeLabels = func() (labels [600]string) {
	for code := 100; code < len(labels); code++ {
		labels[code] = strconv.Itoa(code)
	}
	return labels
}()

func codeLabel(code int) string {
	if code < 100 || code >= len(codeLabels) {
		return "other"
	}
	return codeLabels[code]
}

// verbLabel bounds the verb: for a non-resource request it is the request
// method, which a caller may spell however it likes.
func verbLabel(verb string) string {
	switch verb {
	case "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
		"proxy", "post", "put", "head", "options":
		return verb
	}
	return "other"
}
