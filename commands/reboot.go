package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/commands/fleet"
)

// rebootCommand renders the reboot for builder: the xen host's
// xen.reboot_command with {guest}, or ssh.reboot_command on the builder.
func (d *Dispatcher) rebootCommand(builder string) (host string, argv []string, err error) {
	xen, err := d.xenHostOf(builder)
	if err != nil {
		return "", nil, err
	}
	short, _, _ := strings.Cut(builder, ".")
	switch {
	case xen == "" && d.usesHelper():
		return builder, d.privileged(nil, "reboot"), nil
	case xen == "":
		return builder, strings.Fields(d.deps.Config.SSH.RebootCommand), nil
	case d.usesHelper():
		return xen, d.privileged(nil, "xl-reboot", short), nil
	}
	for _, w := range strings.Fields(d.deps.Config.Xen.RebootCommand) {
		argv = append(argv, strings.ReplaceAll(w, "{guest}", short))
	}
	return xen, argv, nil
}

// bootID reads the builder's kernel boot id: it changes at every boot.
func bootID(ctx context.Context, f Fleet, host string) (string, error) {
	res, err := f.Run(ctx, host, []string{"cat", "/proc/sys/kernel/random/boot_id"}, fleet.RunOptions{})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", errors.New(lastLine(res.Stderr))
	}
	return strings.TrimSpace(res.Stdout), nil
}

func (d *Dispatcher) runReboot(ctx context.Context, c *Call) error {
	f := d.deps.Fleet // the dispatcher checked it is there (NeedsFleet)
	builder, err := d.builder(c.Arg("builder"))
	if err != nil {
		return err
	}
	host, argv, err := d.rebootCommand(builder)
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return Userf("no reboot command configured")
	}
	line, err := fleet.Join(argv)
	if err != nil {
		return err
	}
	plan := fmt.Sprintf("reboot %s: run `%s` on %s, then wait up to %s for SSH to come back", builder, line, host, d.deps.Config.SSH.RebootWait)
	return c.Confirm(plan, func(ctx context.Context, c *Call) error {
		return c.StartJob([]string{builder}, func(ctx context.Context, c *Call) error {
			return d.doReboot(ctx, f, c, builder, host, argv)
		})
	})
}

// doReboot reboots and waits for the builder's SSH to answer with a new
// boot id (or after having gone away), reporting the downtime.
func (d *Dispatcher) doReboot(ctx context.Context, f Fleet, c *Call, builder, host string, argv []string) error {
	before, _ := bootID(ctx, f, builder)
	start := d.deps.Now()
	rctx, cancel := context.WithTimeout(ctx, d.perHostTimeout())
	res, err := f.Run(rctx, host, argv, fleet.RunOptions{})
	cancel()
	switch {
	case err != nil && host == builder && (errors.Is(err, fleet.ErrUnreachable) || errors.Is(err, fleet.ErrTimeout)):
		// The builder went down under our feet: that is the reboot.
	case err != nil:
		return fmt.Errorf("reboot command on %s: %s", host, remoteMessage(err))
	case res.ExitCode != 0:
		return Userf("reboot command on %s failed (exit %d): %s", host, res.ExitCode, lastLine(res.Stderr+res.Stdout))
	}
	c.Reply("%s: reboot sent; waiting for SSH", builder)
	wentAway := false
	deadline := time.After(d.deps.Config.SSH.RebootWait)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return Userf("%s did not come back within %s (ssh.reboot_wait); check its console", builder, d.deps.Config.SSH.RebootWait)
		case <-time.After(2 * time.Second):
		}
		pctx, cancel := context.WithTimeout(ctx, d.perHostTimeout())
		id, err := bootID(pctx, f, builder)
		cancel()
		if err != nil {
			wentAway = true
			continue
		}
		if (before != "" && id != before) || wentAway {
			c.Reply("%s is back: SSH answered %s after the reboot", builder, ago(d.deps.Now().Sub(start)))
			return nil
		}
	}
}
