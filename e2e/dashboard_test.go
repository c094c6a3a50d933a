//go:build linux

package e2e

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// DashboardPlotEnv names the PNG TestDashboardPlot writes; unset, the test
// is skipped (`make dashboard-plot` writes docs/dashboard.png).
const DashboardPlotEnv = "USHER_DASHBOARD_PLOT"

// dashboardSample is one scrape of every agent's /metrics, at t seconds
// into the run.
type dashboardSample struct {
	t       float64
	metrics map[string]map[string]float64 // agent name → series → value
}

// TestDashboardPlot plots, over a leader's death and its return, the
// series the Grafana dashboard (contrib/grafana/usher.json) shows, each
// from the agents' own /metrics scraped every 250 ms: which agent holds
// the balancer address, the probes it answers per second, each node's
// sessions, and the leader's view staleness. Three agents of the fast
// profile on loopback, a prober and 30 sessions; the leader is killed 8 s
// in and started again 8 s later.
func TestDashboardPlot(t *testing.T) {
	out := os.Getenv(DashboardPlotEnv)
	if out == "" {
		t.Skipf("set %s to the PNG to write", DashboardPlotEnv)
	}
	c := startChaosCluster(t, chaosTopology(t, false, 3), false, "fast")
	pr := startProber(c, probeEvery)
	defer pr.close()
	openSessions(c, 30)
	l := c.waitHealthy(30 * time.Second)

	var mu sync.Mutex
	var samples []dashboardSample
	stop := make(chan struct{})
	done := make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			s := dashboardSample{t: time.Since(t0).Seconds(), metrics: map[string]map[string]float64{}}
			for _, a := range c.agents {
				if m, err := scrape(a); err == nil {
					s.metrics[a.name] = m
				}
			}
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	time.Sleep(8 * time.Second)
	killedAt := time.Since(t0).Seconds()
	l.kill()
	time.Sleep(8 * time.Second)
	l.start()
	restartedAt := time.Since(t0).Seconds()
	time.Sleep(10 * time.Second)
	close(stop)
	<-done
	if err := saveDashboardPlot(out, c, samples, killedAt, restartedAt); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d scrapes; %s killed at %.1f s, started again at %.1f s", out, len(samples), l.name, killedAt, restartedAt)
}

// saveDashboardPlot draws the samples as four panels, one above another.
func saveDashboardPlot(path string, c *chaosCluster, samples []dashboardSample, killedAt, restartedAt float64) error {
	var names []string
	for _, a := range c.agents {
		names = append(names, a.name)
	}
	title := fmt.Sprintf("leader killed at %.1f s, started again at %.1f s", killedAt, restartedAt)
	panels := []*plot.Plot{
		perAgentPanel("holds the balancer address (usher_vip_holder)", names, samples, func(s map[string]float64, i int) float64 {
			return s["usher_vip_holder"] * (1 + 0.05*float64(i)) // offset so overlapping lines show
		}),
		perAgentPanel("probes answered per second (rate of usher_probes_answered_total)", names, samples, nil),
		perAgentPanel("sessions (usher_sessions)", names, samples, func(s map[string]float64, _ int) float64 {
			return s["usher_sessions"]
		}),
		perAgentPanel("view staleness, s (usher_view_staleness_seconds)", names, samples, func(s map[string]float64, _ int) float64 {
			return s["usher_view_staleness_seconds"]
		}),
	}
	panels[0].Title.Text = title + "\n" + panels[0].Title.Text
	for _, p := range panels {
		p.X.Label.Text = "seconds"
		p.Legend.Top = true
	}
	const w, h = 8 * vg.Inch, 10 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadY: vg.Points(6)}
	canvases := plot.Align([][]*plot.Plot{{panels[0]}, {panels[1]}, {panels[2]}, {panels[3]}}, tiles, dc)
	for i, p := range panels {
		p.Draw(canvases[i][0])
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

// perAgentPanel plots one line per agent: value(series, i) of each
// sample, or, when value is nil, the per-second rate of
// usher_probes_answered_total between consecutive samples. An agent's
// line breaks where it was not running.
func perAgentPanel(title string, names []string, samples []dashboardSample, value func(s map[string]float64, i int) float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	top := 0.0
	for i, name := range names {
		var segments []plotter.XYs
		var cur plotter.XYs
		for k, s := range samples {
			y, ok := sampleValue(samples, k, name, i, value)
			if !ok {
				if len(cur) > 0 {
					segments, cur = append(segments, cur), nil
				}
				continue
			}
			cur = append(cur, plotter.XY{X: s.t, Y: y})
			top = max(top, y)
		}
		if len(cur) > 0 {
			segments = append(segments, cur)
		}
		for j, seg := range segments {
			line, err := plotter.NewLine(seg)
			if err != nil {
				continue
			}
			line.Color = plotutil.Color(i)
			line.Width = vg.Points(1.5)
			p.Add(line)
			if j == 0 {
				p.Legend.Add(name, line)
			}
		}
	}
	p.Y.Min, p.Y.Max = 0, 1.4*max(top, 1e-3) // room for the legend
	return p
}

// sampleValue returns the value samples[k] gives the agent name (the i-th),
// or false if it was not running then.
func sampleValue(samples []dashboardSample, k int, name string, i int, value func(map[string]float64, int) float64) (float64, bool) {
	m, ok := samples[k].metrics[name]
	if !ok {
		return 0, false
	}
	if value != nil {
		return value(m, i), true
	}
	if k == 0 {
		return 0, false
	}
	prev, ok := samples[k-1].metrics[name]
	if !ok {
		return 0, false
	}
	d := m["usher_probes_answered_total"] - prev["usher_probes_answered_total"]
	return max(d, 0) / (samples[k].t - samples[k-1].t), true
}
