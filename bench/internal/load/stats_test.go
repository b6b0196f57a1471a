package load

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var sorted []time.Duration
	for i := 1; i <= 100; i++ {
		sorted = append(sorted, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{50, 50 * time.Millisecond},
		{99, 99 * time.Millisecond},
		{100, 100 * time.Millisecond},
		{0, time.Millisecond},
	} {
		if got := Percentile(sorted, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
	if got := Percentile(sorted[:1], 99); got != time.Millisecond {
		t.Errorf("one value: %v", got)
	}
}

func TestSummarizeAndCDF(t *testing.T) {
	lat := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}
	s := Summarize(lat)
	if s.P50 != 2 || s.Max != 3 || s.Mean != 2 {
		t.Errorf("summary %+v", s)
	}
	cdf := CDF(lat, 2)
	if last := cdf[len(cdf)-1]; last.X != 3 || last.Y != 1 {
		t.Errorf("CDF ends at %+v, want the maximum at 1", last)
	}
	for i := 1; i < len(cdf); i++ {
		if cdf[i].X < cdf[i-1].X || cdf[i].Y <= cdf[i-1].Y {
			t.Errorf("CDF not increasing at %d: %+v", i, cdf)
		}
	}
	if CDF(nil, 10) != nil {
		t.Error("CDF of nothing should be empty")
	}
}
