package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot size, and the PNG resolution.
const (
	plotW  = 16 * vg.Centimeter
	plotH  = 10 * vg.Centimeter
	pngDPI = 110
)

var (
	blue   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	grey   = color.RGBA{R: 150, G: 150, B: 150, A: 255}
)

type namedPlot struct {
	name  string
	title string
	plot  *plot.Plot
}

func plots(run Run, full Full) []namedPlot {
	return []namedPlot{
		{"latency_cdf", "Latency CDF", latencyPlot(full)},
		{"delivery", "Delivery over time", deliveryPlot(full)},
		{"mesh_degree", "Mesh degree histogram", meshPlot(run)},
		{"scores", "Scores of honest and sybil peers", scorePlot(full)},
	}
}

func render(p *plot.Plot, ext string) ([]byte, error) {
	var buf bytes.Buffer
	switch ext {
	case "svg":
		cv := vgsvg.New(plotW, plotH)
		p.Draw(draw.New(cv))
		if _, err := cv.WriteTo(&buf); err != nil {
			return nil, err
		}
	case "png":
		cv := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(plotW, plotH), vgimg.UseDPI(pngDPI))}
		p.Draw(draw.New(cv))
		if _, err := cv.WriteTo(&buf); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown format %q", ext)
	}
	return buf.Bytes(), nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

func line(p *plot.Plot, label string, xys plotter.XYs, c color.Color, dashed bool) {
	if len(xys) == 0 {
		return
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return // only NaN or infinite values, which the inputs never hold
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	p.Add(l)
	if label != "" {
		p.Legend.Add(label, l)
	}
}

// latencyPlot: the fraction of honest deliveries within x milliseconds.
func latencyPlot(full Full) *plot.Plot {
	p := newPlot("Latency CDF (honest deliveries)", "latency (ms)", "fraction of deliveries")
	xys := make(plotter.XYs, 0, len(full.Latency))
	for _, q := range full.Latency {
		xys = append(xys, plotter.XY{X: q.Ms, Y: q.Q})
	}
	line(p, "", xys, blue, false)
	s := full.Summary
	if s.LatencyP99Ms > 0 {
		line(p, fmt.Sprintf("p50 %.0f ms", s.LatencyP50Ms), plotter.XYs{{X: s.LatencyP50Ms, Y: 0}, {X: s.LatencyP50Ms, Y: 0.5}}, grey, true)
		line(p, fmt.Sprintf("p99 %.0f ms", s.LatencyP99Ms), plotter.XYs{{X: s.LatencyP99Ms, Y: 0}, {X: s.LatencyP99Ms, Y: 0.99}}, orange, true)
	}
	p.Y.Min, p.Y.Max = 0, 1.02
	p.X.Min = 0
	p.Legend.Left = true
	p.Legend.Top = true
	p.Legend.XOffs = vg.Points(10)
	return p
}

// deliveryPlot: the delivered share of each second's messages, by publication time.
func deliveryPlot(full Full) *plot.Plot {
	p := newPlot("Delivery over time", "publication time (s)", "delivered share")
	xys := make(plotter.XYs, 0, len(full.Delivery))
	lo := 1.0
	for _, b := range full.Delivery {
		xys = append(xys, plotter.XY{X: float64(b.Second), Y: b.Ratio})
		lo = min(lo, b.Ratio)
	}
	line(p, "", xys, blue, false)
	p.Y.Min = math.Max(0, math.Min(lo, 0.9)-0.05)
	p.Y.Max = 1 + 0.05*(1-p.Y.Min)
	return p
}

// meshPlot: how many honest nodes have each mesh degree at the end.
func meshPlot(run Run) *plot.Plot {
	p := newPlot("Mesh degree at the end (honest nodes)", "mesh peers", "nodes")
	vs := make(plotter.Values, len(run.Results.MeshDegree))
	for i, n := range run.Results.MeshDegree {
		vs[i] = float64(n)
	}
	if len(vs) == 0 {
		vs = plotter.Values{0}
	}
	b, err := plotter.NewBarChart(vs, vg.Points(12))
	if err == nil {
		b.Color = blue
		b.LineStyle.Width = 0
		p.Add(b)
	}
	p.NominalX(nominal(len(vs))...)
	return p
}

func nominal(n int) []string {
	out := make([]string, n)
	for i := range out {
		if n <= 25 || i%5 == 0 {
			out[i] = fmt.Sprint(i)
		}
	}
	return out
}

// symlog maps a score to sign(x)·log10(1+|x|), so that +3 and −10,000 share one axis.
func symlog(x float64) float64 {
	if x < 0 {
		return -math.Log10(1 - x)
	}
	return math.Log10(1 + x)
}

// scoreTicks labels a symlog axis with the scores themselves.
func scoreTicks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for _, v := range []float64{-100000, -10000, -1000, -100, -10, -1, 0, 1, 10, 100, 1000} {
		y := symlog(v)
		if y >= lo-1e-9 && y <= hi+1e-9 {
			ts = append(ts, plot.Tick{Value: y, Label: fmt.Sprint(v)})
		}
	}
	return ts
}

// scorePlot: the median score the sampled honest nodes give the honest and the sybil peers
// in their meshes over time, with the 10th and 90th percentiles dashed.
func scorePlot(full Full) *plot.Plot {
	p := newPlot("Scores of mesh peers, seen by honest nodes", "time (s)", "score (symmetric log scale)")
	var h50, h10, h90, s50, s10, s90 plotter.XYs
	for _, s := range full.Samples {
		t := s.At.Seconds()
		if q := s.HonestMeshScores; q.N > 0 {
			h50 = append(h50, plotter.XY{X: t, Y: symlog(q.P50)})
			h10 = append(h10, plotter.XY{X: t, Y: symlog(q.P10)})
			h90 = append(h90, plotter.XY{X: t, Y: symlog(q.P90)})
		}
		if q := s.SybilMeshScores; q.N > 0 {
			s50 = append(s50, plotter.XY{X: t, Y: symlog(q.P50)})
			s10 = append(s10, plotter.XY{X: t, Y: symlog(q.P10)})
			s90 = append(s90, plotter.XY{X: t, Y: symlog(q.P90)})
		}
	}
	line(p, "sybil mesh peers: median", s50, orange, false)
	line(p, "sybil mesh peers: 10th, 90th pct", s10, orange, true)
	line(p, "", s90, orange, true)
	line(p, "honest mesh peers: median", h50, blue, false)
	line(p, "honest mesh peers: 10th, 90th pct", h10, blue, true)
	line(p, "", h90, blue, true)
	p.Legend.Left = true
	p.Y.Tick.Marker = plot.TickerFunc(scoreTicks)
	lo, hi := 0.0, 0.0
	for _, xys := range []plotter.XYs{h10, h90, s10, s90} {
		for _, xy := range xys {
			lo, hi = min(lo, xy.Y), max(hi, xy.Y)
		}
	}
	p.Y.Min, p.Y.Max = math.Floor(lo)-0.1, math.Ceil(hi)+0.1
	return p
}
