package fleet

import (
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/config"
)

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
