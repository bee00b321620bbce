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

// WriteChart draws events/s and p99 batch latency against concurrency for
// ours and the baseline, side by side, as a PNG.
func WriteChart(path string, runs []Comparison, subtitle string) error {
	if len(runs) == 0 {
		return fmt.Errorf("no runs to chart")
	}
	series := func(f func(*Result) float64, pick func(Comparison) *Result) plotter.XYs {
		xy := make(plotter.XYs, len(runs))
		for i, c := range runs {
			xy[i].X = float64(c.Ours.Concurrency)
			xy[i].Y = f(pick(c))
		}
		return xy
	}
	ours := func(c Comparison) *Result { return c.Ours }
	base := func(c Comparison) *Result { return c.Baseline }

	panel := func(title, ylabel string, f func(*Result) float64) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "concurrent invocations (batches of 20)"
		p.Y.Label.Text = ylabel
		p.Y.Min = 0
		p.Add(plotter.NewGrid())
		var ticks []plot.Tick
		for _, c := range runs {
			ticks = append(ticks, plot.Tick{Value: float64(c.Ours.Concurrency), Label: fmt.Sprint(c.Ours.Concurrency)})
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		for _, s := range []struct {
			name  string
			pick  func(Comparison) *Result
			color color.Color
			shape draw.GlyphDrawer
		}{{"ours", ours, oursColor, draw.CircleGlyph{}}, {"naive baseline", base, baselineColor, draw.SquareGlyph{}}} {
			line, points, err := plotter.NewLinePoints(series(f, s.pick))
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
	thr, err := panel("Throughput", "events/s", func(r *Result) float64 { return r.EventsPerSecond })
	if err != nil {
		return err
	}
	lat, err := panel("p99 batch latency", "ms", func(r *Result) float64 { return r.P99Ms })
	if err != nil {
		return err
	}
	// Throughput curves sit high: legend at the bottom right; latency
	// curves start near zero: legend at the top left.
	lat.Legend.Top, lat.Legend.Left = true, true
	thr.Legend.XOffs, lat.Legend.YOffs = -vg.Points(6), -vg.Points(4)
	thr.Legend.YOffs = vg.Points(6)

	const w, h = 12 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	top := draw.Crop(dc, 0, 0, 0, -0.4*vg.Inch)
	title := draw.Crop(dc, 0, 0, h-0.4*vg.Inch, 0)
	title.FillText(draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 12), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YCenter}, vg.Point{X: w / 2, Y: title.Center().Y}, subtitle)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{{thr, lat}}, tiles, top)
	thr.Draw(canvases[0][0])
	lat.Draw(canvases[0][1])

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
