package trend

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// series gives one sample every step, with the percentages given.
func series(step time.Duration, pcts ...float64) []Sample {
	s := make([]Sample, len(pcts))
	for i, p := range pcts {
		s[i] = Sample{At: t0.Add(time.Duration(i) * step), Percent: p, Size: 1000}
	}
	return s
}

func TestEstimate(t *testing.T) {
	tests := []struct {
		name    string
		samples []Sample
		ok      bool
		rate    float64 // %/h
		filling bool
		fullIn  time.Duration
		fitted  int
	}{
		{name: "none", samples: nil},
		{name: "too few", samples: series(time.Hour, 10, 20), fitted: 2},
		{name: "steady", samples: series(time.Hour, 90, 92, 94, 96), ok: true, rate: 2, filling: true, fullIn: 2 * time.Hour, fitted: 4},
		{name: "flat", samples: series(time.Hour, 50, 50, 50, 50), ok: true, rate: 0, fitted: 4},
		{name: "emptying", samples: series(time.Hour, 60, 59, 58, 57), ok: true, rate: -1, fitted: 4},
		{name: "noise does not move it", samples: series(time.Hour, 50, 52, 60, 56, 58, 60, 62), ok: true, rate: 2, filling: true, fullIn: 19 * time.Hour, fitted: 7},
		{name: "clean-up in the middle: new trend", samples: series(time.Hour, 80, 85, 90, 95, 40, 41, 42, 43), ok: true, rate: 1, filling: true, fullIn: 57 * time.Hour, fitted: 4},
		{name: "clean-up just now: too few since", samples: series(time.Hour, 80, 85, 90, 95, 40, 41), fitted: 2},
		{name: "at 100%", samples: series(time.Hour, 98, 99, 100), ok: true, rate: 1, filling: true, fullIn: 0, fitted: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Estimate(tt.samples)
			if p.OK != tt.ok || p.Filling != tt.filling || p.Samples != tt.fitted {
				t.Fatalf("got %+v, want ok %v filling %v samples %d", p, tt.ok, tt.filling, tt.fitted)
			}
			if math.Abs(p.PercentPerHour-tt.rate) > 1e-9 {
				t.Errorf("rate %v, want %v", p.PercentPerHour, tt.rate)
			}
			if p.FullIn != tt.fullIn {
				t.Errorf("full in %v, want %v", p.FullIn, tt.fullIn)
			}
			if tt.ok && math.Abs(p.BytesPerHour-tt.rate*10) > 1e-9 {
				t.Errorf("bytes/h %v, want %v", p.BytesPerHour, tt.rate*10)
			}
		})
	}
}

func TestEstimateUnordered(t *testing.T) {
	s := series(30*time.Minute, 10, 11, 12, 13)
	s[0], s[3] = s[3], s[0]
	if p := Estimate(s); p.PercentPerHour != 2 {
		t.Fatalf("rate %v, want 2", p.PercentPerHour)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		p    Prediction
		want string
	}{
		{Prediction{}, ""},
		{Prediction{OK: true, PercentPerHour: 2.1, Filling: true, FullIn: 85 * time.Minute}, "+2.1%/h, full in about 1 h 25 min"},
		{Prediction{OK: true, PercentPerHour: -0.3}, "-0.3%/h, not filling"},
		{Prediction{OK: true, PercentPerHour: 0.5, Filling: true, FullIn: 40 * time.Minute}, "+0.5%/h, full in about 40 min"},
		{Prediction{OK: true, PercentPerHour: 0.1, Filling: true, FullIn: 76 * time.Hour}, "+0.1%/h, full in about 3 d 4 h"},
		{Prediction{OK: true, PercentPerHour: 9, Filling: true, FullIn: 2 * time.Hour}, "+9.0%/h, full in about 2 h"},
		{Prediction{OK: true, PercentPerHour: 50, Filling: true}, "+50.0%/h, full now"},
		{Prediction{OK: true, PercentPerHour: 5000, Filling: true, FullIn: 20 * time.Second}, "+5000.0%/h, full in under a minute"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.p, got, tt.want)
		}
	}
}
