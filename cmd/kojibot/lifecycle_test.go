package main

import (
	"reflect"
	"testing"
)

// TestLifecycleStopsInReverseOnce: cleanups run once, the last acquired
// first; one pushed after stop runs at once.
func TestLifecycleStopsInReverseOnce(t *testing.T) {
	var ran []string
	lc := &lifecycle{}
	for _, name := range []string{"log", "database", "fleet", "store"} {
		lc.push(name, func() { ran = append(ran, name) })
	}
	lc.stop()
	lc.stop()
	if want := []string{"store", "fleet", "database", "log"}; !reflect.DeepEqual(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
	lc.push("late", func() { ran = append(ran, "late") })
	if ran[len(ran)-1] != "late" {
		t.Errorf("a cleanup pushed after stop did not run at once: %v", ran)
	}
}
