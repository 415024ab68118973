package commands

import (
	"strings"
	"testing"
)

// TestHelpExamplesParse runs every help example through the parser.
func TestHelpExamplesParse(t *testing.T) {
	d, _ := newTestDispatcher(t)
	for _, name := range d.Catalogue().Names() {
		s := d.Catalogue().Spec(name)
		if len(s.Examples) == 0 {
			t.Errorf("%s has no example", name)
		}
		for _, ex := range s.Examples {
			words, err := Tokenize(ex)
			if err != nil {
				t.Fatalf("%s: %v", ex, err)
			}
			spec, used := d.Catalogue().Lookup(words)
			if spec != s {
				t.Errorf("example %q finds %v, want %s", ex, spec, name)
				continue
			}
			if _, err := Parse(spec, words[used:]); err != nil {
				t.Errorf("example %q does not parse: %v", ex, err)
			}
		}
	}
}

// TestHelpFitsBudget: help without arguments, for the caller who may run
// every command, is one line that fits an IRC message (so within any
// irc.max_lines) and points to help <command>.
func TestHelpFitsBudget(t *testing.T) {
	d, _ := newTestDispatcher(t)
	got := strings.TrimSpace(run(d, "alice", "help"))
	if strings.Contains(got, "\n") || len(got) > 400 || !strings.Contains(got, "help <command> for usage") {
		t.Errorf("help: %d bytes %q, want one line of at most 400 bytes pointing to help <command>", len(got), got)
	}
}
