package redact

import "testing"

// TestRedactKeeps: what is not an address or a path stays.
func TestRedactKeeps(t *testing.T) {
	for _, s := range []string{
		"capacity must be a number greater than 1",
		"job 7: cleanup xenbuilder2 started 2026-11-26 08:17 UTC",
		"identify to NickServ (/msg NickServ IDENTIFY <account> <password>) and try again",
		"xenbuilder4: unknown SSH host key (see the log)",
		"ratio 3/4, SHA-1, and/or",
	} {
		if got := Text(s); got != s {
			t.Errorf("Text(%q) = %q", s, got)
		}
	}
}

// TestTextRemoves: addresses, paths, URLs and ssh-keyscan recipes go.
func TestTextRemoves(t *testing.T) {
	for in, want := range map[string]string{
		"dial tcp 10.3.4.5:22: connection refused":                                       "dial tcp <address>: connection refused",
		"failed to connect to `host=db3.example.org user=kojibot`: db3.example.org:5432": "failed to connect to `host=db3.example.org user=kojibot`: <address>",
		"unknown key; not in /etc/kojibot/known_hosts; run ssh-keyscan -p 22 xen4":       "unknown key (see the log)",
		"GET https://fasjson.example.org/v1/groups: timeout":                             "GET <url>: timeout",
		"open /var/lib/kojibot/state.db: permission denied":                              "open <path>: permission denied",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}
