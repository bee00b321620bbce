package bench

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var (
	oursColor     = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	baselineColor = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// WriteSettingChart draws the whole bill per million events and the p99
// end-to-end latency against a batch size or window sweep, ours and the
// baseline, side by side, as a PNG.
func WriteSettingChart(path string, runs []Comparison, sweepOf string, mode Mode, subtitle string) error {
	if len(runs) == 0 {
		return fmt.Errorf("no runs to chart")
	}
	x := axis{label: "Lambda batch size", value: func(r *Result) float64 { return float64(r.BatchSize) },
		tick: func(r *Result) string { return fmt.Sprint(r.BatchSize) }}
	if sweepOf == "window" {
		x.label = "Lambda maximum batching window (ms)"
		if mode == Worker {
			x.label = "worker COALESCE_WINDOW (ms)"
		}
		x.value = func(r *Result) float64 { return r.WindowMs }
		x.tick = func(r *Result) string { return fmt.Sprintf("%g", r.WindowMs) }
	}
	cost, err := comparisonPanel(runs, x, "Whole bill (DynamoDB + SQS + Lambda)", "USD per million events", func(r *Result) float64 { return r.TotalUSDPerMillionEvents })
	if err != nil {
		return err
	}
	lat, err := comparisonPanel(runs, x, "p99 end-to-end latency (arrival to done)", "ms", func(r *Result) float64 { return r.EndToEndP99Ms })
	if err != nil {
		return err
	}
	cost.Legend.Left = true
	lat.Legend.Top, lat.Legend.Left = true, true
	return writePanels(path, subtitle, cost, lat)
}

// axis is a chart's x axis: what it is, each run's place on it and the
// run's tick label.
type axis struct {
	label string
	value func(*Result) float64
	tick  func(*Result) string
}

// comparisonPanel plots y against x for ours and the baseline, one point
// per run, with a tick at each run's setting.
func comparisonPanel(runs []Comparison, x axis, title, ylabel string, y func(*Result) float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x.label
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	var ticks []plot.Tick
	for _, c := range runs {
		ticks = append(ticks, plot.Tick{Value: x.value(c.Ours), Label: x.tick(c.Ours)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	for _, s := range []struct {
		name  string
		pick  func(Comparison) *Result
		color color.Color
		shape draw.GlyphDrawer
	}{{"ours", func(c Comparison) *Result { return c.Ours }, oursColor, draw.CircleGlyph{}},
		{"naive baseline", func(c Comparison) *Result { return c.Baseline }, baselineColor, draw.SquareGlyph{}}} {
		xy := make(plotter.XYs, len(runs))
		for i, c := range runs {
			xy[i].X, xy[i].Y = x.value(s.pick(c)), y(s.pick(c))
		}
		line, points, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, err
		}
		line.Color, line.Width = s.color, vg.Points(2)
		points.Color, points.Shape, points.Radius = s.color, s.shape, vg.Points(3)
		p.Add(line, points)
		p.Legend.Add(s.name, line, points)
	}
	return p, nil
}

// writePanels draws two plots side by side under a subtitle as a PNG.
func writePanels(path, subtitle string, left, right *plot.Plot) error {
	const w, h = 12 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	top := draw.Crop(dc, 0, 0, 0, -0.4*vg.Inch)
	title := draw.Crop(dc, 0, 0, h-0.4*vg.Inch, 0)
	title.FillText(draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 12), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YCenter}, vg.Point{X: w / 2, Y: title.Center().Y}, subtitle)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, top)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteChart draws events/s and p99 batch latency against concurrency for
// ours and the baseline, side by side, as a PNG.
func WriteChart(path string, runs []Comparison, subtitle string) error {
	if len(runs) == 0 {
		return fmt.Errorf("no runs to chart")
	}
	x := axis{label: fmt.Sprintf("concurrent invocations (batches of %d)", runs[0].Ours.BatchSize), value: func(r *Result) float64 { return float64(r.Concurrency) },
		tick: func(r *Result) string { return fmt.Sprint(r.Concurrency) }}
	thr, err := comparisonPanel(runs, x, "Throughput", "events/s", func(r *Result) float64 { return r.EventsPerSecond })
	if err != nil {
		return err
	}
	lat, err := comparisonPanel(runs, x, "p99 batch latency", "ms", func(r *Result) float64 { return r.P99Ms })
	if err != nil {
		return err
	}
	// Throughput curves sit high: legend at the bottom right; latency
	// curves start near zero: legend at the top left.
	lat.Legend.Top, lat.Legend.Left = true, true
	thr.Legend.XOffs, lat.Legend.YOffs = -vg.Points(6), -vg.Points(4)
	thr.Legend.YOffs = vg.Points(6)

	return writePanels(path, subtitle, thr, lat)
}
