// Package trend estimates how fast a mount is filling and when it will be
// full, from the samples the watcher takes of it.
//
// The estimate is robust to a clean-up: only the samples taken since the last
// large drop are fitted, and the slope is the Theil–Sen estimator (the median
// of the slopes between every pair of samples), which a few noisy readings do
// not move.
package trend

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Sample is one reading of a mount.
type Sample struct {
	// At is when the mount was read.
	At time.Time
	// Percent is how full the mount was (0–100).
	Percent float64
	// Size is the mount's size in bytes (0: unknown).
	Size uint64
}

// MinSamples is the fewest samples, since the last drop, an estimate needs.
const MinSamples = 3

// DropPercent is the fall, in percentage points between two consecutive
// samples, that counts as a clean-up: the samples before it are not fitted.
const DropPercent = 5.0

// Prediction is what the samples say of a mount's trend.
type Prediction struct {
	// OK is false when there were too few samples to say anything.
	OK bool
	// PercentPerHour and BytesPerHour are the fitted rate (negative:
	// emptying). BytesPerHour is 0 when the size is unknown.
	PercentPerHour float64
	BytesPerHour   float64
	// Filling is true when the mount is growing; FullIn is then the time
	// from the last sample until it reaches 100%.
	Filling bool
	FullIn  time.Duration
	// Samples is how many samples were fitted.
	Samples int
}

// Estimate fits the samples (in any order) and predicts when the mount is
// full. Samples before the last drop of DropPercent or more are ignored.
func Estimate(samples []Sample) Prediction {
	s := append([]Sample(nil), samples...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].At.Before(s[j].At) })
	start := 0
	for i := 1; i < len(s); i++ {
		if s[i-1].Percent-s[i].Percent >= DropPercent {
			start = i
		}
	}
	s = s[start:]
	if len(s) < MinSamples || !s[len(s)-1].At.After(s[0].At) {
		return Prediction{Samples: len(s)}
	}
	var slopes []float64
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			dt := s[j].At.Sub(s[i].At).Hours()
			if dt <= 0 {
				continue
			}
			slopes = append(slopes, (s[j].Percent-s[i].Percent)/dt)
		}
	}
	if len(slopes) == 0 {
		return Prediction{Samples: len(s)}
	}
	slope := median(slopes)
	// The intercept is the median of the residuals, read at the last sample.
	last := s[len(s)-1]
	levels := make([]float64, len(s))
	for i, x := range s {
		levels[i] = x.Percent - slope*x.At.Sub(last.At).Hours()
	}
	now := median(levels)
	p := Prediction{OK: true, PercentPerHour: slope, Samples: len(s)}
	if last.Size > 0 {
		p.BytesPerHour = slope / 100 * float64(last.Size)
	}
	// A rate below 0.01 points an hour fills nothing in a year: not filling.
	if slope >= 0.01 {
		p.Filling = true
		left := math.Max(0, 100-now)
		p.FullIn = time.Duration(left / slope * float64(time.Hour)).Round(time.Second)
	}
	return p
}

func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Rate is the rate as text, for example "+2.1%/h".
func (p Prediction) Rate() string {
	return fmt.Sprintf("%+.1f%%/h", p.PercentPerHour)
}

// String is the prediction as a reply or alert says it, for example
// "+2.1%/h, full in about 1 h 25 min", "+9.0%/h, full now" or "-0.3%/h, not
// filling"; empty when
// there were too few samples.
func (p Prediction) String() string {
	if !p.OK {
		return ""
	}
	if !p.Filling {
		return p.Rate() + ", not filling"
	}
	switch {
	case p.FullIn <= 0:
		return p.Rate() + ", full now"
	case p.FullIn < time.Minute:
		return p.Rate() + ", full in under a minute"
	}
	return p.Rate() + ", full in about " + Duration(p.FullIn)
}

// Duration is d rounded for people: "1 h 25 min", "40 min", "3 d 4 h".
func Duration(d time.Duration) string {
	d = d.Round(time.Minute)
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	default:
		dd, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%d d", dd)
		}
		return fmt.Sprintf("%d d %d h", dd, h)
	}
}
