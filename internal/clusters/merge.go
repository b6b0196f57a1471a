package clusters

import "sync"

// Merged joins the snapshots of several sources into one registry: a
// cluster named by two sources is refused in both, as one named twice in
// a directory is. Each source calls Update from its own goroutine.
type Merged struct {
	// OnChange receives the joined snapshot after every update, one at a
	// time.
	OnChange func(Snapshot)

	mu       sync.Mutex
	bySource map[string]Snapshot
}

// Update records source's latest snapshot and hands over the join.
func (m *Merged) Update(source string, s Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bySource == nil {
		m.bySource = map[string]Snapshot{}
	}
	m.bySource[source] = s
	byName := map[string][]Cluster{}
	var refused []Refusal
	for _, snap := range m.bySource {
		for _, c := range snap.Clusters {
			byName[c.Name] = append(byName[c.Name], c)
		}
		refused = append(refused, snap.Refused...)
	}
	clusters, refused := unique(byName, refused)
	m.OnChange(Snapshot{Clusters: clusters, Refused: refused})
}
