// Package contrib holds what an operator installs beside the kojibot
// binary: the systemd unit, its sysusers.d and tmpfiles.d files, the
// example configuration, the RPM spec, and for every Koji machine the bot
// reaches the root helper (kojibot-helper) with its sudoers rule. Its tests
// check each with the program that reads it in production: systemd-analyze,
// systemd-sysusers, systemd-tmpfiles, systemd's notify protocol, rpmbuild,
// visudo and sudo.
package contrib

import _ "embed"

// Helper is contrib/kojibot-helper, the only program the bot's user may
// run as root (through `sudo -n`) on a Koji machine. The test sandbox
// installs it on every machine at HelperPath.
//
//go:embed kojibot-helper
var Helper []byte

// Sudoers is contrib/sudoers.kojibot, the sudoers.d rule that allows the
// kojibot user to run Helper and nothing else.
//
//go:embed sudoers.kojibot
var Sudoers []byte

// HelperPath is where Helper is installed on a Koji machine, as Sudoers
// names it.
const HelperPath = "/usr/local/sbin/kojibot-helper"

// HelperConfPath is the helper's own configuration on each machine: what
// the bot may do there.
const HelperConfPath = "/etc/kojibot-helper.conf"
