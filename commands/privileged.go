package commands

import "strings"

// exitHelperRefused is contrib/kojibot-helper's exit status when it
// refuses a step (not allowed by the machine's /etc/kojibot-helper.conf).
const exitHelperRefused = 64

// usesHelper reports whether ssh.helper is set: every privileged step on a
// machine then runs through it (`sudo -n kojibot-helper ACTION ARGS`).
func (d *Dispatcher) usesHelper() bool {
	return len(strings.Fields(d.deps.Config.SSH.Helper)) > 0
}

// privileged returns the argv of one privileged step: with ssh.helper
// set, the helper's words then action and args; without it, direct (the
// command the bot runs itself, for sites that log in as root or keep
// their own sudo rules).
func (d *Dispatcher) privileged(direct []string, action string, args ...string) []string {
	if !d.usesHelper() {
		return direct
	}
	argv := strings.Fields(d.deps.Config.SSH.Helper)
	argv = append(argv, action)
	return append(argv, args...)
}
