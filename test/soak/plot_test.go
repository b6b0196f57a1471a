package soak

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
)

// plotInput is what plot.svg shows: kip's memory and goroutines over the
// soak's minutes, the restarts and the end of the load.
type plotInput struct {
	title string
	// minutes are the samples' times from the start of the load; rssMiB
	// and goroutines their values, NaN where a sample could not be read.
	minutes, rssMiB, goroutines []float64
	baselineRSS, baselineG      float64
	// restarts are [stopped, ready again] in minutes; loadEnd is when the
	// traffic stopped.
	restarts [][2]float64
	loadEnd  float64
}

// The drawing's geometry, in SVG user units.
const (
	plotWidth   = 960.0
	plotLeft    = 80.0
	plotRight   = 30.0
	panelHeight = 220.0
	panelGap    = 70.0
	plotTop     = 84.0
)

// renderPlot draws the two panels, memory above goroutines, on one time
// axis, by hand: polylines, axes, ticks and labels, with no plotting
// library.
func renderPlot(in plotInput) []byte {
	var b bytes.Buffer
	height := plotTop + 2*panelHeight + panelGap + 70
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n",
		plotWidth, height, plotWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%g" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", plotLeft, esc(in.title))
	fmt.Fprintf(&b, `<text x="%g" y="46" fill="#555">red bands: kube-apiserver restarting (stopped until ready again); grey line: load stops; dotted: baseline before load</text>`+"\n", plotLeft)
	x := axisRange(in.minutes, in.loadEnd)
	panels := []struct {
		label    string
		ys       []float64
		baseline float64
		color    string
	}{
		{"kip RSS (MiB)", in.rssMiB, in.baselineRSS, "#1f77b4"},
		{"kip goroutines", in.goroutines, in.baselineG, "#2ca02c"},
	}
	for i, p := range panels {
		top := plotTop + float64(i)*(panelHeight+panelGap)
		drawPanel(&b, panelSpec{top: top, label: p.label, xs: in.minutes, ys: p.ys, baseline: p.baseline, color: p.color, x: x, restarts: in.restarts, loadEnd: in.loadEnd})
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">minutes since the load started</text>`+"\n",
		plotLeft+(plotWidth-plotLeft-plotRight)/2, height-16)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

type panelSpec struct {
	top      float64
	label    string
	xs, ys   []float64
	baseline float64
	color    string
	x        [2]float64
	restarts [][2]float64
	loadEnd  float64
}

func drawPanel(b *bytes.Buffer, p panelSpec) {
	left, right := plotLeft, plotWidth-plotRight
	bottom := p.top + panelHeight
	yMax := niceCeil(math.Max(maxOf(p.ys), p.baseline) * 1.1)
	sx := func(v float64) float64 { return left + (v-p.x[0])/(p.x[1]-p.x[0])*(right-left) }
	sy := func(v float64) float64 { return bottom - v/yMax*panelHeight }

	for _, r := range p.restarts {
		x0, x1 := sx(clamp(r[0], p.x)), sx(clamp(r[1], p.x))
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%g" fill="#d62728" fill-opacity="0.18"/>`+"\n", x0, p.top, math.Max(x1-x0, 2), panelHeight)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="4 3"/>`+"\n", x0, p.top, x0, bottom)
	}
	if p.loadEnd > p.x[0] && p.loadEnd <= p.x[1] {
		le := sx(p.loadEnd)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#777" stroke-width="1.5"/>`+"\n", le, p.top, le, bottom)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#777" text-anchor="end">load stops</text>`+"\n", le-4, p.top+14)
	}
	// Axes, ticks and grid.
	fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, p.top, left, bottom)
	fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, bottom, right, bottom)
	for _, v := range ticks(0, yMax) {
		y := sy(v)
		fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left+1, y, right, y)
		fmt.Fprintf(b, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, tickLabel(v))
	}
	for _, v := range ticks(p.x[0], p.x[1]) {
		x := sx(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="black"/>`+"\n", x, bottom, x, bottom+5)
		fmt.Fprintf(b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, bottom+18, tickLabel(v))
	}
	fmt.Fprintf(b, `<text x="%g" y="%g" font-weight="bold">%s</text>`+"\n", left, p.top-8, esc(p.label))
	if p.baseline > 0 {
		y := sy(p.baseline)
		fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="%s" stroke-dasharray="1 3"/>`+"\n", left, y, right, y, p.color)
	}
	for _, seg := range segments(p.xs, p.ys) {
		var pts strings.Builder
		for _, pt := range seg {
			fmt.Fprintf(&pts, "%.1f,%.1f ", sx(pt[0]), sy(pt[1]))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", p.color, strings.TrimSpace(pts.String()))
	}
}

// axisRange spans every sample and the end of the load; a degenerate
// range gets a width, so nothing divides by zero.
func axisRange(xs []float64, loadEnd float64) [2]float64 {
	lo, hi := 0.0, 0.0
	for _, v := range append([]float64{loadEnd}, xs...) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if hi-lo < 1e-9 {
		hi = lo + 1
	}
	return [2]float64{lo, hi}
}

// segments splits the points into runs without a missing value, each
// drawn as its own polyline.
func segments(xs, ys []float64) [][][2]float64 {
	var out [][][2]float64
	var cur [][2]float64
	for i := range min(len(xs), len(ys)) {
		if math.IsNaN(xs[i]) || math.IsNaN(ys[i]) || math.IsInf(ys[i], 0) || math.IsInf(xs[i], 0) {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, [2]float64{xs[i], ys[i]})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			m = math.Max(m, v)
		}
	}
	return m
}

func clamp(v float64, r [2]float64) float64 { return math.Min(math.Max(v, r[0]), r[1]) }

// niceStep is 1, 2 or 5 times a power of ten, near span/5.
func niceStep(span float64) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

// niceCeil rounds v up to a multiple of its nice step, at least 1.
func niceCeil(v float64) float64 {
	if v <= 1 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	step := niceStep(v)
	return math.Ceil(v/step) * step
}

func ticks(lo, hi float64) []float64 {
	step := niceStep(hi - lo)
	var out []float64
	for k := math.Ceil(lo / step); k*step <= hi+step/1e6 && len(out) < 50; k++ {
		// Rounded, so 3×0.2 is labelled 0.6; +0 rather than -0.
		v := math.Round(k*step*1e9) / 1e9
		if v == 0 {
			v = 0
		}
		out = append(out, v)
	}
	return out
}

func tickLabel(v float64) string {
	if math.Abs(v-math.Round(v)) < 1e-9 {
		return fmt.Sprintf("%d", int64(math.Round(v)))
	}
	return fmt.Sprintf("%.1f", v)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func TestPlotIsValidSVG(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name      string
		in        plotInput
		polylines int
	}{
		{name: "a soak", polylines: 2, in: plotInput{
			title:   "kip soak <4m> & restarts",
			minutes: []float64{-0.5, 0, 1, 2, 3, 4, 4.5}, rssMiB: []float64{30, 31, 45, 50, 48, 49, 40},
			goroutines: []float64{80, 80, 300, 310, 305, 300, 85}, baselineRSS: 30, baselineG: 80,
			restarts: [][2]float64{{1.5, 1.6}, {3, 3.1}}, loadEnd: 4,
		}},
		{name: "a missing sample splits the line", polylines: 4, in: plotInput{
			minutes: []float64{0, 1, 2, 3}, rssMiB: []float64{1, nan, 3, 4}, goroutines: []float64{1, 2, nan, 4},
		}},
		{name: "no samples", polylines: 0, in: plotInput{title: "empty"}},
		{name: "one sample", polylines: 2, in: plotInput{minutes: []float64{0}, rssMiB: []float64{5}, goroutines: []float64{9}}},
		{name: "hostile values", polylines: 3, in: plotInput{
			title:   `"><script>alert(1)</script>`,
			minutes: []float64{0, math.Inf(1), 2}, rssMiB: []float64{1e12, 0, -5}, goroutines: []float64{math.Inf(-1), 3, 4},
			restarts: [][2]float64{{-10, 1e9}}, loadEnd: nan,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svg := renderPlot(tc.in)
			if bytes.Contains(svg, []byte("NaN")) || bytes.Contains(svg, []byte("Inf")) || bytes.Contains(svg, []byte("<script")) {
				t.Fatalf("the SVG carries NaN, Inf or markup from its input:\n%s", svg)
			}
			dec := xml.NewDecoder(bytes.NewReader(svg))
			polylines, root := 0, ""
			for {
				tok, err := dec.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("not well-formed XML: %v\n%s", err, svg)
				}
				if se, ok := tok.(xml.StartElement); ok {
					if root == "" {
						root = se.Name.Local
					}
					if se.Name.Local == "polyline" {
						polylines++
					}
				}
			}
			if root != "svg" || polylines != tc.polylines {
				t.Fatalf("root <%s> with %d polylines, want <svg> with %d", root, polylines, tc.polylines)
			}
		})
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   string
	}{
		{0, 60, "[0 20 40 60]"},
		{0, 4.5, "[0 1 2 3 4]"},
		{-0.5, 4.5, "[0 1 2 3 4]"},
		{0, 1, "[0 0.2 0.4 0.6 0.8 1]"},
		{0, 0, "[0]"},
		{0, math.NaN(), "[]"},
	} {
		if got := fmt.Sprint(ticks(tc.lo, tc.hi)); got != tc.want {
			t.Errorf("ticks(%g, %g) = %s, want %s", tc.lo, tc.hi, got, tc.want)
		}
	}
}
