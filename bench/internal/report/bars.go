package report

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/kip-proxy/kip/bench/internal/results"
)

// barWidth is one bar; a group holds one bar per target.
const barWidth vg.Length = 18 // points

// throughputPlot draws requests per second: a group per concurrency, a bar
// per target.
func throughputPlot(role string, loads []results.Load) (*plot.Plot, error) {
	cs := concurrencies(loads)
	if len(cs) == 0 {
		return nil, nil
	}
	var groups []string
	for _, c := range cs {
		groups = append(groups, fmt.Sprintf("concurrency %d", c))
	}
	title := map[string]string{"small-get-throughput": "Small GET throughput", "proxy-only-throughput": "Proxy-only GET throughput"}[role]
	p := newPlot(title, "", "requests per second")
	bars := map[string]plotter.Values{}
	var names []string
	for _, c := range cs {
		for _, l := range loadsAt(loads, c) {
			if _, ok := bars[l.Target]; !ok {
				names = append(names, l.Target)
			}
			bars[l.Target] = append(bars[l.Target], l.RPS)
		}
	}
	return p, addBars(p, names, bars, groups)
}

// listPlot draws the median LIST time: a group per encoding, a bar per
// target.
func listPlot(lists []results.List) (*plot.Plot, error) {
	encs := encodings(lists)
	if len(encs) == 0 {
		return nil, nil
	}
	var groups []string
	bars := map[string]plotter.Values{}
	var names []string
	for _, enc := range encs {
		groups = append(groups, "Accept-Encoding "+encodingName(enc))
		for _, l := range lists {
			if l.Encoding != enc {
				continue
			}
			if _, ok := bars[l.Target]; !ok {
				names = append(names, l.Target)
			}
			bars[l.Target] = append(bars[l.Target], l.Median)
		}
	}
	p := newPlot(fmt.Sprintf("Large LIST, %d ConfigMaps: time to last byte", lists[0].Objects), "", "median seconds")
	return p, addBars(p, names, bars, groups)
}

// addBars puts one bar chart per name side by side in each group. Every
// name must have a value for every group.
func addBars(p *plot.Plot, names []string, bars map[string]plotter.Values, groups []string) error {
	for i, name := range names {
		vs := bars[name]
		if len(vs) != len(groups) {
			return fmt.Errorf("%s has %d values for %d groups", name, len(vs), len(groups))
		}
		b, err := plotter.NewBarChart(vs, barWidth)
		if err != nil {
			return fmt.Errorf("plotting %s: %w", name, err)
		}
		b.Color = plotutil.Color(styleIndex(name))
		b.LineStyle.Width = 0
		b.Offset = barWidth * vg.Length(float64(i)-float64(len(names)-1)/2)
		p.Add(b)
		p.Legend.Add(name, b)
	}
	p.NominalX(groups...)
	// Room on both sides for the outer bars, and above them for the legend.
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	p.Y.Min, p.Y.Max = 0, highest(bars)*1.35
	p.Legend.Top = true
	return nil
}

func highest(bars map[string]plotter.Values) float64 {
	var m float64
	for _, vs := range bars {
		for _, v := range vs {
			m = max(m, v)
		}
	}
	return m
}
