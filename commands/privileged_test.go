package commands

import (
	"slices"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/config"
)

// With ssh.helper set, every privileged step is the helper with an action
// and the step's own arguments; without it, the direct command.
func TestPrivilegedStepsThroughTheHelper(t *testing.T) {
	cfg := &config.Config{}
	cfg.SSH.RebootCommand = "sudo systemctl reboot"
	cfg.Xen = config.Xen{Guests: map[string]string{"xenbuilder1": "xen4"}, ConfigDir: "/etc/xen", RebootCommand: "xl reboot {guest}"}
	d := New(Deps{Config: cfg})
	direct := []string{"rm", "-rf", "--one-file-system", "--", "/var/lib/mock/x"}

	if got := d.privileged(direct, "rm", "/var/lib/mock/x"); !slices.Equal(got, direct) {
		t.Fatalf("without a helper: %q", got)
	}
	host, argv, err := d.rebootCommand("xenbuilder1.example.org")
	if err != nil || host != "xen4" || strings.Join(argv, " ") != "xl reboot xenbuilder1" {
		t.Fatalf("xen reboot without a helper: %s %q %v", host, argv, err)
	}
	host, argv, _ = d.rebootCommand("xenbuilder4")
	if host != "xenbuilder4" || strings.Join(argv, " ") != "sudo systemctl reboot" {
		t.Fatalf("reboot without a helper: %s %q", host, argv)
	}

	cfg.SSH.Helper = "sudo -n /usr/local/sbin/kojibot-helper"
	want := []string{"sudo", "-n", "/usr/local/sbin/kojibot-helper", "rm", "/var/lib/mock/x"}
	if got := d.privileged(direct, "rm", "/var/lib/mock/x"); !slices.Equal(got, want) {
		t.Fatalf("with a helper: %q, want %q", got, want)
	}
	host, argv, _ = d.rebootCommand("xenbuilder1.example.org")
	if host != "xen4" || strings.Join(argv, " ") != "sudo -n /usr/local/sbin/kojibot-helper xl-reboot xenbuilder1" {
		t.Fatalf("xen reboot with a helper: %s %q", host, argv)
	}
	host, argv, _ = d.rebootCommand("xenbuilder4")
	if host != "xenbuilder4" || strings.Join(argv, " ") != "sudo -n /usr/local/sbin/kojibot-helper reboot" {
		t.Fatalf("reboot with a helper: %s %q", host, argv)
	}
}
