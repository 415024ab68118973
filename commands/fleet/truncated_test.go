package fleet

import (
	"errors"
	"strings"
	"testing"
)

func TestResultWhole(t *testing.T) {
	if err := (Result{Stdout: "a\x00b\x00"}).Whole("find"); err != nil {
		t.Errorf("whole output: %v", err)
	}
	err := (Result{Stdout: "a\x00b", Truncated: true}).Whole("find /var/lib/mock")
	if !errors.Is(err, ErrOutputTruncated) {
		t.Fatalf("truncated output: %v, want ErrOutputTruncated", err)
	}
	if !strings.Contains(err.Error(), "find /var/lib/mock") || !strings.Contains(err.Error(), "ssh.max_output") {
		t.Errorf("error %q does not name what was cut and the setting", err)
	}
}
