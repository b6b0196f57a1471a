package revocation

import (
	"errors"
	"sync/atomic"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/utils/clock"
)

// errNotLoaded is why a replica that has not read the list yet refuses.
var errNotLoaded = errors.New("the revocation list has not been read yet")

// List is the revocation list as a replica last read it. It is safe for
// concurrent use: a read is one atomic load, and each update replaces the
// whole index.
type List struct {
	index atomic.Pointer[index]
	clock clock.PassiveClock
	// running, when set, are ended as entries for their subjects arrive.
	running *Running
}

// index finds entries by kind and value.
type index struct {
	byKind map[Kind]map[string]Entry
	// problems are the entries kip could not read as written.
	problems []error
}

// NewList returns a list that has not been loaded: it refuses every
// credential it is asked about until Set is called. running, if not nil,
// are the requests in flight that a new entry ends.
func NewList(running *Running) *List { return &List{clock: clock.RealClock{}, running: running} }

// Set replaces the list with entries, the data of the ConfigMap; nil is
// an empty list (no ConfigMap), and ends the running requests of the
// subjects whose entries are new or wider. It returns the problems with
// entries it could not read as written, which it enforces as strictly as
// it can.
func (l *List) Set(data map[string]string) []error {
	ix := &index{byKind: map[Kind]map[string]Entry{}}
	for key, value := range data {
		e, err := decode(key, value)
		if err != nil {
			ix.problems = append(ix.problems, err)
		}
		if e.Kind == "" {
			continue
		}
		ix.add(e)
	}
	old := l.index.Swap(ix)
	l.running.end(ix.widened(old, l.clock.Now()))
	return ix.problems
}

// widened are the entries in force in ix that old had not, or covered
// less of.
func (ix *index) widened(old *index, now time.Time) []Entry {
	var out []Entry
	for kind, m := range ix.byKind {
		for value, e := range m {
			if !e.InForce(now) {
				continue
			}
			if old != nil {
				if was, ok := old.byKind[kind][value]; ok && !e.Before.After(was.Before) && was.InForce(now) {
					continue
				}
			}
			out = append(out, e)
		}
	}
	return out
}

func (ix *index) add(e Entry) {
	m := ix.byKind[e.Kind]
	if m == nil {
		m = map[string]Entry{}
		ix.byKind[e.Kind] = m
	}
	// Two entries for one subject (written by hand under two keys): the
	// one that covers more wins.
	if old, ok := m[e.Value]; ok {
		e.Before = later(old.Before, e.Before)
		e.Expires = later(old.Expires, e.Expires)
	}
	m[e.Value] = e
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Loaded reports whether the list has been read at least once.
func (l *List) Loaded() bool { return l.index.Load() != nil }

// InForce counts the entries that apply now.
func (l *List) InForce() int {
	ix := l.index.Load()
	if ix == nil {
		return 0
	}
	now, n := l.clock.Now(), 0
	for _, m := range ix.byKind {
		for _, e := range m {
			if e.InForce(now) {
				n++
			}
		}
	}
	return n
}

// Credential is what kip knows of a credential besides its user: when it
// was issued (zero when kip cannot tell) and its credential-id, if any.
type Credential struct {
	Issued time.Time
	ID     string
}

// Check returns the entry that refuses u's credential c, if one does, or
// errNotLoaded before the list has been read.
func (l *List) Check(u user.Info, c Credential) (*Entry, error) {
	ix := l.index.Load()
	if ix == nil {
		return nil, errNotLoaded
	}
	now := l.clock.Now()
	for _, s := range subjects(u, c) {
		e, ok := ix.byKind[s.kind][s.value]
		if ok && e.InForce(now) && e.Covers(c.Issued) {
			return &e, nil
		}
	}
	return nil, nil
}

// match is the first entry that names u or its credential, whatever the
// times.
func (ix *index) match(u user.Info, c Credential) *Entry {
	for _, s := range subjects(u, c) {
		if e, ok := ix.byKind[s.kind][s.value]; ok {
			return &e
		}
	}
	return nil
}

type subject struct {
	kind  Kind
	value string
}

// subjects are the names under which u's credential c may be revoked.
func subjects(u user.Info, c Credential) []subject {
	s := []subject{{KindUser, u.GetName()}}
	if uid := u.GetUID(); uid != "" {
		s = append(s, subject{KindUID, uid})
	}
	for _, g := range u.GetGroups() {
		s = append(s, subject{KindGroup, g})
	}
	id := c.ID
	if id == "" {
		if ids := u.GetExtra()[user.CredentialIDKey]; len(ids) > 0 {
			id = ids[0]
		}
	}
	if id != "" {
		s = append(s, subject{KindCredential, id})
	}
	return s
}
