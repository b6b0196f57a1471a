package metricstest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kip-proxy/kip/internal/metrics"
)

// Value reads one series, name and labels as /metrics writes them, from
// m's /metrics; "absent" when m does not expose it.
func Value(t testing.TB, m *metrics.Recorder, series string) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler(metrics.Expiry{}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(w.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return "absent"
}
