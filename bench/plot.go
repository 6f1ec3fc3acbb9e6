package bench

import (
	"errors"
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Series is one line of a plot.
type Series struct {
	Name string    `json:"name"`
	X    []float64 `json:"x"`
	Y    []float64 `json:"y"`
}

// plotColors tells series apart (Kestrel first, baselines after).
var plotColors = []color.RGBA{
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

// LinePlot draws series as lines with point marks into a PNG at path.
func LinePlot(path, title, xLabel, yLabel string, series []Series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	drawn := 0
	for i, s := range series {
		if len(s.X) == 0 {
			continue
		}
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot %s: series %s has %d x and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		pts := make(plotter.XYs, len(s.X))
		for k := range s.X {
			pts[k].X, pts[k].Y = s.X[k], s.Y[k]
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		c := plotColors[i%len(plotColors)]
		line.Color, points.Color = c, c
		line.Width = vg.Points(1.5)
		points.Radius = vg.Points(2)
		if len(pts) > 60 {
			points.Radius = 0
		}
		p.Add(line, points)
		p.Legend.Add(s.Name, line)
		drawn++
	}
	if drawn == 0 {
		return errors.New("plot " + path + ": no data")
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// CDF turns latency samples (milliseconds) into a cumulative distribution:
// x the latency, y the share of samples at or below it (0..1), at most 500
// points.
func CDF(name string, samplesMs []float64) Series {
	xs := slices.Clone(samplesMs)
	slices.Sort(xs)
	s := Series{Name: name}
	n := len(xs)
	step := max(1, n/500)
	for i := 0; i < n; i += step {
		s.X = append(s.X, xs[i])
		s.Y = append(s.Y, float64(i+1)/float64(n))
	}
	if n > 0 && s.Y[len(s.Y)-1] != 1 {
		s.X = append(s.X, xs[n-1])
		s.Y = append(s.Y, 1)
	}
	return s
}
