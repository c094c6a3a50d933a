//go:build linux

package main

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// barSeries is one series of a bar chart: a spread per category.
type barSeries struct {
	name   string
	values []spread
}

// barChart draws grouped bars at the median of each spread with min–max
// error bars, and saves the chart as a PNG at path.
func barChart(path, title, ylabel string, categories []string, series []barSeries) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	m := len(series)
	width := vg.Points(float64(200 / (m * len(categories))))
	for j, s := range series {
		off := (float64(j) - float64(m-1)/2) * 0.8 / float64(m)
		vals := make(plotter.Values, len(categories))
		xys := make(plotter.XYs, len(categories))
		errs := make(plotter.YErrors, len(categories))
		for i := range categories {
			sp := s.values[i]
			vals[i] = sp.median()
			xys[i] = plotter.XY{X: float64(i) + off, Y: sp.median()}
			errs[i].Low, errs[i].High = sp.median()-sp.min(), sp.max()-sp.median()
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.XMin = off
		bars.Color = plotutil.Color(j)
		bars.LineStyle.Width = 0
		eb := &plotter.YErrorBars{XYs: xys, YErrors: errs, LineStyle: plotter.DefaultLineStyle, CapWidth: vg.Points(4)}
		eb.LineStyle.Color = color.Black
		p.Add(bars, eb)
		if m > 1 {
			p.Legend.Add(s.name, bars)
		}
	}
	p.Legend.Top = true
	p.NominalX(categories...)
	if err := p.Save(7*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("save %s: %w", filepath.Base(path), err)
	}
	return nil
}
