package commands

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/fedora-infra/kojibot/commands/fleet"
)

var reCreatedTask = regexp.MustCompile(`(?m)^Created task:? ([0-9]+)`)

func (d *Dispatcher) runOverride(ctx context.Context, c *Call) error {
	f := d.deps.Fleet // the dispatcher checked it is there (NeedsFleet)
	cfg := d.deps.Config
	if cfg.Koji.AdminHost == "" {
		return Userf("no admin host configured (koji.admin_host)")
	}
	release := strings.ToLower(c.Arg("release"))
	tag := strings.ReplaceAll(cfg.Koji.OverrideTag, "{release}", release)
	nvrs := c.Args["nvr"]
	// With the helper, the admin host's root runs the koji CLI with a Koji
	// identity only root can read, into a tag its own configuration allows
	// (override_tag); without it, koji.command runs as the bot's user.
	direct := append(strings.Fields(cfg.Koji.Command), "tag-build", "--wait", tag)
	argv := d.privileged(append(direct, nvrs...), "tag-build", append([]string{tag}, nvrs...)...)
	return c.StartJob(nil, func(ctx context.Context, c *Call) error {
		c.Reply("tagging %s into %s on %s", strings.Join(nvrs, ", "), tag, cfg.Koji.AdminHost)
		res, err := f.Run(ctx, cfg.Koji.AdminHost, argv, fleet.RunOptions{})
		if err != nil {
			return fmt.Errorf("koji on %s: %s", cfg.Koji.AdminHost, remoteMessage(err))
		}
		var tasks []string
		for _, m := range reCreatedTask.FindAllStringSubmatch(res.Stdout, -1) {
			tasks = append(tasks, m[1])
		}
		switch {
		case res.ExitCode == exitHelperRefused && d.usesHelper():
			return Userf("the admin host's helper refused: %s", lastLine(res.Stderr))
		}
		switch res.ExitCode {
		case 0:
			c.Reply("tagged %s into %s (task %s)", strings.Join(nvrs, ", "), tag, orNone(strings.Join(tasks, ", ")))
			return nil
		case 2:
			return Userf("koji refused the command line: %s", lastLine(res.Stderr))
		}
		msg := lastLine(res.Stderr)
		if msg == "" {
			msg = lastLine(res.Stdout)
		}
		if len(tasks) > 0 {
			msg += " (task " + strings.Join(tasks, ", ") + ")"
		}
		return Userf("koji tag-build failed: %s", msg)
	})
}
