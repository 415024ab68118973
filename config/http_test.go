package config

import (
	"strings"
	"testing"
)

// TestPublicListenNeedsPublicURL: an http.listen address other machines
// can reach is refused without http.public_url; a loopback one is not.
func TestPublicListenNeedsPublicURL(t *testing.T) {
	for _, tt := range []struct {
		listen, publicURL string
		refused           bool
	}{
		{"127.0.0.1:9090", "", false},
		{"[::1]:9090", "", false},
		{"localhost:9090", "", false},
		{"127.0.0.2:9090", "", false},
		{"0.0.0.0:9090", "", true},
		{":9090", "", true},
		{"[::]:9090", "", true},
		{"192.0.2.10:9090", "", true},
		{"kojibot.example.org:9090", "", true},
		{"0.0.0.0:9090", "https://kojibot.example.org", false},
		{":9090", "https://kojibot.example.org/", false},
		{"", "", false},
	} {
		c := validConfig()
		c.HTTP.Listen, c.HTTP.PublicURL = tt.listen, tt.publicURL
		err := c.Validate()
		if !tt.refused {
			if err != nil {
				t.Errorf("listen %q, public_url %q refused: %v", tt.listen, tt.publicURL, err)
			}
			continue
		}
		kes := keyErrors(t, err)
		if len(kes) != 1 || kes[0].Key != "http.public_url" || !strings.Contains(kes[0].Problem, tt.listen) ||
			!strings.Contains(kes[0].Problem, "loopback") {
			t.Errorf("listen %q without public_url: %v; want one problem naming http.public_url, the address and loopback", tt.listen, err)
		}
	}
}

// TestWarningsPublicListen: check-config warns about an http.listen
// address that is not loopback, even with public_url, and not otherwise.
func TestWarningsPublicListen(t *testing.T) {
	for _, tt := range []struct {
		listen string
		warn   bool
	}{
		{"127.0.0.1:9090", false},
		{"[::1]:9090", false},
		{"localhost:9090", false},
		{"", false},
		{"0.0.0.0:9090", true},
		{":9090", true},
		{"192.0.2.10:9090", true},
	} {
		c := validConfig()
		c.HTTP.Listen, c.HTTP.PublicURL = tt.listen, "https://kojibot.example.org"
		var got []*KeyError
		for _, w := range c.Warnings(nil) {
			if w.Key == "http.listen" {
				got = append(got, w)
			}
		}
		switch {
		case tt.warn && (len(got) != 1 || !strings.Contains(got[0].Problem, tt.listen)):
			t.Errorf("listen %q: warnings %v, want one about http.listen naming it", tt.listen, got)
		case !tt.warn && len(got) != 0:
			t.Errorf("listen %q: warnings %v, want none", tt.listen, got)
		}
	}
}

func TestIsLoopbackListen(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "127.1.2.3:1": true, "[::1]:9090": true, "localhost:9090": true, "LOCALHOST:1": true,
		"0.0.0.0:9090": false, ":9090": false, "[::]:9090": false, "10.0.0.1:80": false, "example.org:80": false,
		"127.0.0.1": false, "": false,
	} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v, want %v", addr, got, want)
		}
	}
}
