package bot

import (
	"reflect"
	"testing"
	"time"
)

func TestRoute(t *testing.T) {
	tests := []struct {
		name      string
		inChannel bool
		text      string
		want      string
		ok        bool
	}{
		{"channel command", true, "!koji hosts ppc*", "hosts ppc*", true},
		{"channel prefix alone", true, "!koji", "", true},
		{"channel extra spaces", true, "!koji   whoami  ", "whoami", true},
		{"channel prefix case", true, "!KOJI whoami", "whoami", true},
		{"channel prefix glued", true, "!kojibot whoami", "", false},
		{"channel chatter", true, "hello !koji whoami", "", false},
		{"channel empty", true, "", "", false},
		{"channel CTCP action", true, "\x01ACTION !koji whoami\x01", "", false},
		{"private command", false, "whoami", "whoami", true},
		{"private with prefix", false, "!koji whoami", "whoami", true},
		{"private prefix alone", false, "!koji", "", false},
		{"private blank", false, "   ", "", false},
		{"private CTCP", false, "\x01VERSION\x01", "", false},
		{"private tab after prefix", false, "!koji\twhoami", "whoami", true},
	}
	for _, tt := range tests {
		got, ok := Route("!koji", tt.inChannel, tt.text)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: Route(%q) = %q, %v; want %q, %v", tt.name, tt.text, got, ok, tt.want, tt.ok)
		}
	}
}

func TestUserLimits(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	u := NewUserLimits(0.5, 2)
	u.now = func() time.Time { return now }
	type step struct{ ok, warn bool }
	var got []step
	for range 4 {
		ok, warn := u.Allow("account:alice")
		got = append(got, step{ok, warn})
	}
	want := []step{{true, false}, {true, false}, {false, true}, {false, false}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("alice: %v, want %v", got, want)
	}
	if ok, _ := u.Allow("account:bob"); !ok {
		t.Error("bob limited by alice's commands")
	}
	now = now.Add(2 * time.Second)
	if ok, _ := u.Allow("account:alice"); !ok {
		t.Error("alice still limited after the bucket refilled")
	}
	if ok, warn := u.Allow("account:alice"); ok || !warn {
		t.Errorf("alice limited again: ok=%v warn=%v, want a new warning", ok, warn)
	}
}
