package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/commands/outage"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
)

// ChartSpan is how far back a draft page's charts go.
const ChartSpan = 24 * time.Hour

// Mount names one watched mount whose fill a draft page charts: its check
// name in the watcher's samples (alerting.CheckName(watch.KindShared, host,
// mount)) and how it is labelled.
type Mount struct {
	Check, Label string
}

// chart is a fill chart's geometry and points, in SVG user units.
type chart struct {
	ID, Label, Last, From, To, Polyline string

	Width, Height, Left, Right, Top, PlotW, PlotH, LabelX, AxisY float64
	Grid                                                         []gridLine
	Points                                                       []chartPoint
}

// gridLine is a horizontal line at a fill percentage.
type gridLine struct {
	Y     float64
	Label string
}

// chartPoint is one reading.
type chartPoint struct {
	X, Y  float64
	Title string
}

// newChart lays out samples taken between from and to (oldest first) on a
// chart: one point per sample, time across, 0–100 % up.
func newChart(id, label string, samples []trend.Sample, from, to time.Time) chart {
	c := chart{ID: id, Label: label, Width: 600, Height: 220, Left: 40, Top: 10,
		LabelX: 4, From: from.UTC().Format("01-02 15:04"), To: to.UTC().Format("01-02 15:04 UTC")}
	c.Right = c.Width - 10
	c.PlotW, c.PlotH = c.Right-c.Left, c.Height-30-c.Top
	c.AxisY = c.Top + c.PlotH + 14
	y := func(pct float64) float64 {
		pct = min(max(pct, 0), 100)
		return round1(c.Top + c.PlotH*(1-pct/100))
	}
	for _, pct := range []float64{0, 50, 100} {
		c.Grid = append(c.Grid, gridLine{Y: y(pct), Label: fmt.Sprintf("%.0f%%", pct)})
	}
	span := to.Sub(from).Seconds()
	var poly []string
	for _, s := range samples {
		x := c.Left
		if span > 0 {
			x = round1(c.Left + c.PlotW*min(max(s.At.Sub(from).Seconds()/span, 0), 1))
		}
		p := chartPoint{X: x, Y: y(s.Percent), Title: fmt.Sprintf("%s: %.1f%%", s.At.UTC().Format("2006-01-02 15:04 UTC"), s.Percent)}
		c.Points = append(c.Points, p)
		poly = append(poly, strconv.FormatFloat(p.X, 'f', -1, 64)+","+strconv.FormatFloat(p.Y, 'f', -1, 64))
	}
	c.Polyline = strings.Join(poly, " ")
	if n := len(samples); n > 0 {
		c.Last = fmt.Sprintf("%.1f%% full at %s", samples[n-1].Percent, samples[n-1].At.UTC().Format("15:04 UTC"))
	}
	return c
}

func round1(f float64) float64 { return float64(int(f*10+0.5)) / 10 }

// draftPage is what draft.html shows.
type draftPage struct {
	ID, Subject, Body string
	Charts            []chart
}

// draftHTML serves d's HTML page: its subject and body ready to copy, and
// a chart of each of Options.ChartMounts over the last ChartSpan.
func (s *Server) draftHTML(w http.ResponseWriter, d outage.Draft, subject, body string) {
	now := s.opts.Now()
	page := draftPage{ID: d.ID, Subject: subject, Body: body}
	if s.opts.Samples != nil {
		for i, m := range s.opts.ChartMounts {
			page.Charts = append(page.Charts, newChart("chart"+strconv.Itoa(i+1), m.Label,
				s.opts.Samples.Recent(m.Check, now.Add(-ChartSpan)), now.Add(-ChartSpan), now))
		}
	}
	s.writeHTML(w, "draft.html", page)
}
