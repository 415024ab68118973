package fleet

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/config"
)

func TestExpandService(t *testing.T) {
	const tmpl = "sudo systemctl {action} {service}"
	for _, c := range []struct {
		template, action, service string
		want                      string // "" means refused
	}{
		{tmpl, "start", "kojid", "sudo systemctl start kojid"},
		{tmpl, "stop", "plague-builder", "sudo systemctl stop plague-builder"},
		{tmpl, "restart", "httpd", "sudo systemctl restart httpd"},
		{tmpl, "is-active", "kojira", "sudo systemctl is-active kojira"},
		{tmpl, "is-active", "getty@tty1.service", "sudo systemctl is-active getty@tty1.service"},
		{tmpl, "status", "kojid", ""},
		{"/opt/fakesvc {action} {service}.service", "stop", "kojid", "/opt/fakesvc stop kojid.service"},
		{"svc {service} {action} # {service}", "stop", "a_b", "svc a_b stop # a_b"},
		{tmpl, "reload", "kojid", ""},
		{tmpl, "", "kojid", ""},
		{tmpl, "start;reboot", "kojid", ""},
		{tmpl, "START", "kojid", ""},
		{tmpl, "start", "", ""},
		{tmpl, "start", "-kojid", ""},
		{tmpl, "start", "--now", ""},
		{tmpl, "start", "kojid;reboot", ""},
		{tmpl, "start", "kojid reboot", ""},
		{tmpl, "start", "$(reboot)", ""},
		{tmpl, "start", "`reboot`", ""},
		{tmpl, "start", "kojid\n", ""},
		{tmpl, "start", "kōjid", ""},
		{tmpl, "start", "../../etc/passwd", ""},
		{tmpl, "start", "a\x00", ""},
	} {
		got, err := expandService(c.template, c.action, c.service)
		switch {
		case c.want == "" && !errors.Is(err, ErrInvalid):
			t.Errorf("expandService(%q, %q) = %q, %v; want ErrInvalid", c.action, c.service, got, err)
		case c.want != "" && (err != nil || got != c.want):
			t.Errorf("expandService(%q, %q) = %q, %v; want %q", c.action, c.service, got, err, c.want)
		}
	}
}

// testKnownHosts writes an empty but valid known_hosts file.
func testKnownHosts(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte("# none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCappedWriter(t *testing.T) {
	c := &capped{max: 5}
	for _, p := range []string{"ab", "cd", "é", "xyz"} { // é is 2 bytes: only its first fits
		if n, err := c.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if got := c.String(); got != "abcd" || !c.truncated() {
		t.Errorf("String() = %q, truncated %v; want \"abcd\" (no half rune), true", got, c.truncated())
	}
	c = &capped{max: 5}
	c.Write([]byte("abcde"))
	if c.String() != "abcde" || c.truncated() {
		t.Errorf("exactly at the cap: %q, truncated %v", c.String(), c.truncated())
	}
}

func TestPIDReader(t *testing.T) {
	for _, c := range []struct {
		chunks  []string
		pid     int
		forward string
	}{
		{[]string{"kojibot-pid:42\nhello\n"}, 42, "hello\n"},
		{[]string{"kojibot-", "pid:7", "\n", "a", "b\n"}, 7, "ab\n"},
		{[]string{"kojibot-pid:9\n"}, 9, ""},
		{[]string{"no marker\nrest"}, 0, "no marker\nrest"},
		{[]string{"partial"}, 0, "partial"},
		{[]string{strings.Repeat("x", 100), "\nmore"}, 0, strings.Repeat("x", 100) + "\nmore"},
	} {
		out := &capped{max: 1000}
		p := &pidReader{next: out}
		for _, ch := range c.chunks {
			if n, err := p.Write([]byte(ch)); n != len(ch) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", ch, n, err)
			}
		}
		p.flush()
		if p.get() != c.pid || out.String() != c.forward {
			t.Errorf("%q: pid %d, passed on %q; want %d, %q", c.chunks, p.get(), out.String(), c.pid, c.forward)
		}
	}
}

// TestServiceNameRuleIsConfigs: a service name that check-config accepts
// in a hosts entry is one the fleet runs, and one it refuses the fleet
// refuses too, so that a valid config never fails at run time.
func TestServiceNameRuleIsConfigs(t *testing.T) {
	for _, name := range []string{"kojid", "plague-builder", "getty@tty1", "kojira.service", "a_b",
		"foo:bar", "-kojid", ".hidden", "@x", "", "ko jid", "kojid;reboot", "k/ojid", "kójid"} {
		c := config.Default()
		c.IRC.Server = "irc.example.org"
		c.Koji.DB.DSN = "postgres://kojibot@db/koji"
		c.Hosts = map[string]config.Host{"builder1": {Address: "builder1:22", Services: []string{name}}}
		err := c.Validate()
		configOK := err == nil || !strings.Contains(err.Error(), "services[0]")
		_, runErr := expandService("sudo systemctl {action} {service}", "stop", name)
		if configOK != (runErr == nil) {
			t.Errorf("service %q: check-config accepts it: %v; the fleet runs it: %v (%v)", name, configOK, runErr == nil, runErr)
		}
	}
}

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
