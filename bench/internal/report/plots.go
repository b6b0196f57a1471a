package report

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/kip-proxy/kip/bench/internal/results"
)

// plotWidth and plotHeight are the size of every PNG.
const plotWidth, plotHeight = 7 * vg.Inch, 4.5 * vg.Inch

// series is one named line or set of bars.
type series struct {
	name   string
	points []results.Point
}

// writePlots draws every plot the run has data for and returns their
// files by role.
func writePlots(dir string, run *results.Run) (map[string]string, error) {
	files := map[string]string{}
	save := func(role string, p *plot.Plot) error {
		if p == nil {
			return nil
		}
		file := role + ".png"
		files[role] = file
		return p.Save(plotWidth, plotHeight, filepath.Join(dir, file))
	}
	for _, c := range concurrencies(run.SmallGet) {
		p, err := cdfPlot(fmt.Sprintf("Small GET latency, concurrency %d", c), loadsAt(run.SmallGet, c))
		if err := firstErr(err, save(fmt.Sprintf("small-get-cdf-%d", c), p)); err != nil {
			return nil, err
		}
	}
	p, err := cdfPlot("Proxy-only GET latency, concurrency 32", loadsAt(run.ProxyOnly, 32))
	if err := firstErr(err, save("proxy-only-cdf-32", p)); err != nil {
		return nil, err
	}
	for role, loads := range map[string][]results.Load{"small-get-throughput": run.SmallGet, "proxy-only-throughput": run.ProxyOnly} {
		p, err := throughputPlot(role, loads)
		if err := firstErr(err, save(role, p)); err != nil {
			return nil, err
		}
	}
	p, err = listPlot(run.List)
	if err := firstErr(err, save("list-time", p)); err != nil {
		return nil, err
	}
	p, err = watchPlot(run.Watch)
	if err := firstErr(err, save("watch-rss", p)); err != nil {
		return nil, err
	}
	throughput, memory, err := recordingPlots(run.Recording)
	return files, firstErr(err, save("recording-throughput", throughput), save("recording-memory", memory))
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func loadsAt(loads []results.Load, c int) []results.Load {
	var out []results.Load
	for _, l := range loads {
		if l.Concurrency == c {
			out = append(out, l)
		}
	}
	return out
}

// cdfPlot draws each target's latency distribution on a logarithmic axis,
// where the tails of slow and fast targets both stay readable.
func cdfPlot(title string, loads []results.Load) (*plot.Plot, error) {
	var ss []series
	for _, l := range loads {
		if len(l.CDF) > 0 {
			ss = append(ss, series{l.Target, l.CDF})
		}
	}
	if len(ss) == 0 {
		return nil, nil
	}
	p := newPlot(title, "latency (ms, log scale)", "fraction of requests at or below")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Left = false
	p.Legend.Top = false
	return p, addLines(p, ss)
}

func watchPlot(watches []results.Watch) (*plot.Plot, error) {
	var ss []series
	for _, w := range watches {
		if len(w.Curve) > 0 {
			ss = append(ss, series{w.Target, append([]results.Point{{}}, w.Curve...)})
		}
	}
	if len(ss) == 0 {
		return nil, nil
	}
	p := newPlot("Proxy memory against open watches", "open watches", "proxy RSS growth (MiB)")
	p.Legend.Left, p.Legend.Top = true, true
	return p, addLines(p, ss)
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	return p
}

func addLines(p *plot.Plot, ss []series) error {
	for _, s := range ss {
		i := styleIndex(s.name)
		xys := make(plotter.XYs, len(s.points))
		for j, pt := range s.points {
			xys[j].X, xys[j].Y = pt.X, pt.Y
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("plotting %s: %w", s.name, err)
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(s.name, line)
	}
	return nil
}

// knownTargets fixes each built-in target's colour and dashes, so that kip
// looks the same in every plot. The sixth colour is close to kip's, so it
// goes to kip with recording on, which only ever stands beside kip.
var knownTargets = []string{"kip", "kubectl-proxy", "direct", "reverse-proxy", "direct-user", "kip-recorded", "direct-impersonating"}

// styleIndex is the plotutil colour and dash index of target.
func styleIndex(target string) int {
	for i, name := range knownTargets {
		if name == target && name != "" {
			return i
		}
	}
	sum := 0
	for _, c := range target {
		sum += int(c)
	}
	return len(knownTargets) + sum%7
}
