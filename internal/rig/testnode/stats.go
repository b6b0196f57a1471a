package testnode

import (
	"net/http"
	"sync"

	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// Stats counts the streaming requests that reached the node for one Pod,
// whatever became of them.
type Stats struct {
	Exec, Attach, PortForward, Logs int
	// WebSocket counts the exec, attach and port-forward requests that
	// arrived as WebSocket upgrades. kube-apiserver sends those only to a
	// node that declared WebSocketFeature; to any other it sends SPDY.
	WebSocket int
	// Active counts the requests still being served.
	Active int
}

type requestKind int

const (
	kindExec requestKind = iota
	kindAttach
	kindPortForward
	kindLogs
)

func (k requestKind) String() string {
	return [...]string{"exec", "attach", "port-forward", "logs"}[k]
}

type statsRecorder struct {
	mu    sync.Mutex
	byPod map[string]*Stats
}

func newStatsRecorder() *statsRecorder { return &statsRecorder{byPod: map[string]*Stats{}} }

// Stats returns the counts for Pod namespace/name so far.
func (n *Node) Stats(namespace, name string) Stats {
	n.stats.mu.Lock()
	defer n.stats.mu.Unlock()
	if s := n.stats.byPod[podKey(namespace, name)]; s != nil {
		return *s
	}
	return Stats{}
}

// track counts a request while h serves it.
func (n *Node) track(kind requestKind, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := podKey(r.PathValue("namespace"), r.PathValue("pod"))
		websocket := wsstream.IsWebSocketRequest(r)
		n.stats.begin(key, kind, websocket)
		defer n.stats.end(key)
		transport := "SPDY"
		switch {
		case kind == kindLogs:
			transport = "HTTP"
		case websocket:
			transport = "WebSocket"
		}
		n.logf("%s %s over %s", kind, key, transport)
		h(w, r)
	})
}

func (s *statsRecorder) begin(key string, kind requestKind, websocket bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.byPod[key]
	if st == nil {
		st = &Stats{}
		s.byPod[key] = st
	}
	switch kind {
	case kindExec:
		st.Exec++
	case kindAttach:
		st.Attach++
	case kindPortForward:
		st.PortForward++
	case kindLogs:
		st.Logs++
	}
	if websocket && kind != kindLogs {
		st.WebSocket++
	}
	st.Active++
}

func (s *statsRecorder) end(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byPod[key].Active--
}
