package load

import (
	"math"
	"slices"
	"time"

	"github.com/kip-proxy/kip/bench/internal/results"
)

// Summarize returns the mean and percentiles of lat, which it sorts.
func Summarize(lat []time.Duration) results.Latency {
	if len(lat) == 0 {
		return results.Latency{}
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return results.Latency{
		Mean: ms(sum / time.Duration(len(lat))),
		P50:  ms(Percentile(lat, 50)),
		P90:  ms(Percentile(lat, 90)),
		P99:  ms(Percentile(lat, 99)),
		Max:  ms(lat[len(lat)-1]),
	}
}

// Percentile returns the p-th percentile of sorted by the nearest-rank
// method: the smallest value with at least p% of values at or below it.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// CDF returns at most points points of the distribution of sorted: X in
// milliseconds, Y the fraction at or below X. The last point is the maximum.
func CDF(sorted []time.Duration, points int) []results.Point {
	n := len(sorted)
	if n == 0 || points < 2 {
		return nil
	}
	step := max(n/points, 1)
	var cdf []results.Point
	for i := step - 1; i < n; i += step {
		cdf = append(cdf, results.Point{X: round(ms(sorted[i]), 3), Y: round(float64(i+1)/float64(n), 4)})
	}
	if cdf[len(cdf)-1].Y < 1 {
		cdf = append(cdf, results.Point{X: round(ms(sorted[n-1]), 3), Y: 1})
	}
	return cdf
}

// round keeps digits decimals: microseconds and basis points are plenty
// for a plot, and keep results.json small.
func round(v float64, digits int) float64 {
	scale := math.Pow(10, float64(digits))
	return math.Round(v*scale) / scale
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
