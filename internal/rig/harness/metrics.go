package harness

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one reading of kip's /metrics, by family name.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics reads Prometheus' text format, as kip's probe port serves it.
func ParseMetrics(r io.Reader) (Metrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	return families, nil
}

// ScrapeMetrics reads url, a /metrics, through client.
func ScrapeMetrics(ctx context.Context, client *http.Client, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	// A bound, in case kip ever answered with something endless.
	return ParseMetrics(io.LimitReader(resp.Body, 16<<20))
}

// Sample sums the series of name whose labels include labels; 0 when
// there are none. A name with _count names a histogram's count of
// observations.
func (m Metrics) Sample(name string, labels map[string]string) float64 {
	base, count := strings.CutSuffix(name, "_count")
	f := m[base]
	if f == nil {
		return 0
	}
	var sum float64
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case count && s.GetHistogram() != nil:
			sum += float64(s.GetHistogram().GetSampleCount())
		case s.GetCounter() != nil:
			sum += s.GetCounter().GetValue()
		case s.GetGauge() != nil:
			sum += s.GetGauge().GetValue()
		case s.GetUntyped() != nil:
			sum += s.GetUntyped().GetValue()
		}
	}
	return sum
}

// Has reports whether kip exports a series of name whose labels include
// labels, so that a Sample of 0 can be told from none at all.
func (m Metrics) Has(name string, labels map[string]string) bool {
	for _, s := range m[name].GetMetric() {
		if hasLabels(s, labels) {
			return true
		}
	}
	return false
}

// Value is the one value of name, an error when kip does not export it.
func (m Metrics) Value(name string) (float64, error) {
	if m[name] == nil {
		return 0, fmt.Errorf("no %s in /metrics", name)
	}
	return m.Sample(name, nil), nil
}

// Count is name's value as a count, such as go_goroutines: an error unless
// it is a whole number a process could have.
func (m Metrics) Count(name string) (int64, error) {
	v, err := m.Value(name)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || v < 0 || v > 1e9 || v != math.Trunc(v) {
		return 0, fmt.Errorf("%s %v is not a count", name, v)
	}
	return int64(v), nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
