package main

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// TestMain skips the package under -short (make unit): its tests start
// real servers. CI never passes -short.
func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipped with -short: these tests start real servers")
		os.Exit(0)
	}
	os.Exit(m.Run())
}
