package main

import (
	"strings"
	"testing"
)

// TestGoals: the README's figures meet both goals; a median above 0.8×
// Limnoria's misses the first even when it is within the floor + 0.5 ms
// (the goal it replaced), and a p99 over the floor's + 2 ms misses the
// second.
func TestGoals(t *testing.T) {
	floor := stats{p50: 0.302, p99: 0.812}
	lim := &stats{p50: 1.490, p99: 2.227}
	for _, c := range []struct {
		name     string
		k        stats
		lim      *stats
		want     [2]string
		wantText [2]string
	}{
		{"README figures", stats{p50: 0.910, p99: 2.672}, lim, [2]string{"met", "met"}, [2]string{"0.910 ≤ 1.192 ms", "2.672 ≤ 2.812 ms"}},
		{"median over 0.8× Limnoria", stats{p50: 1.250, p99: 2.000}, lim, [2]string{"MISSED", "met"}, [2]string{"1.250 > 1.192 ms", ""}},
		{"median within floor + 0.5 ms, over 0.8× a fast Limnoria", stats{p50: 0.700, p99: 1.000}, &stats{p50: 0.800}, [2]string{"MISSED", "met"}, [2]string{"0.700 > 0.640 ms", ""}},
		{"p99 over floor p99 + 2 ms", stats{p50: 0.900, p99: 2.900}, lim, [2]string{"met", "MISSED"}, [2]string{"", "2.900 > 2.812 ms"}},
		{"Limnoria left out", stats{p50: 0.900, p99: 1.000}, nil, [2]string{"not measured", "met"}, [2]string{"", ""}},
	} {
		got := goals(floor, c.k, c.lim)
		if len(got) != 2 || !strings.HasPrefix(got[0], "goal median ≤ 0.8 × Limnoria echo median: ") || !strings.HasPrefix(got[1], "goal p99 ≤ floor p99 + 2 ms: ") {
			t.Fatalf("%s: %q", c.name, got)
		}
		for i, g := range got {
			_, verdict, _ := strings.Cut(g, ": ")
			if !strings.HasPrefix(verdict, c.want[i]) || !strings.Contains(verdict, c.wantText[i]) {
				t.Errorf("%s: %q, want %s (%s)", c.name, g, c.want[i], c.wantText[i])
			}
		}
	}
}

// TestHubGoal: through the hub, kojibot's median may be the raw call's
// median + 1 ms, not more.
func TestHubGoal(t *testing.T) {
	raw := stats{p50: 4.2}
	if got := hubGoal(stats{p50: 5.1}, raw); !strings.Contains(got, "met (5.100 ≤ 5.200 ms)") {
		t.Errorf("within: %q", got)
	}
	if got := hubGoal(stats{p50: 5.5}, raw); !strings.Contains(got, "MISSED by 0.300 ms (5.500 > 5.200 ms)") {
		t.Errorf("over: %q", got)
	}
}
