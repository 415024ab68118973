package commands

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/commands/fleet"
)

// setMemoryScript rewrites the memory line of a xen guest config in place,
// atomically, after a timestamped backup. It is a constant: the file, the
// size and the stamp reach it only as positional arguments, quoted.
const setMemoryScript = `set -eu
f=$1; n=$2; stamp=$3
grep -Eq '^[[:space:]]*memory[[:space:]]*=' "$f" || { echo "no memory line in $f" >&2; exit 3; }
cp -p -- "$f" "$f.kojibot-$stamp"
tmp=$(mktemp "$f.kojibot-tmp.XXXXXX")
sed -E "s/^([[:space:]]*)memory[[:space:]]*=.*/\1memory = $n/" -- "$f" > "$tmp"
chmod --reference="$f" -- "$tmp"
chown --reference="$f" -- "$tmp" 2>/dev/null || true
mv -f -- "$tmp" "$f"
echo "$f.kojibot-$stamp"`

var reMemoryLine = regexp.MustCompile(`(?m)^\s*memory\s*=\s*"?([0-9]+)"?`)

// xenHostOf returns the xen host of a builder, or a UserError when it has
// none or is disabled in the xen map.
func (d *Dispatcher) xenHostOf(builder string) (string, error) {
	short, _, _ := strings.Cut(builder, ".")
	x, ok := d.deps.Config.Xen.Guests[builder]
	if !ok {
		x, ok = d.deps.Config.Xen.Guests[short]
	}
	switch {
	case !ok:
		return "", nil
	case x == "disabled":
		return "", Userf("%s is disabled in the xen map (xen.guests); refusing to touch it", builder)
	}
	return x, nil
}

// guestFile is the xen config file of a guest on its xen host.
func (d *Dispatcher) guestFile(builder string) string {
	short, _, _ := strings.Cut(builder, ".")
	return path.Join(d.deps.Config.Xen.ConfigDir, short)
}

// readMemory reads the guest's memory = N (MiB) on its xen host.
func (d *Dispatcher) readMemory(ctx context.Context, f Fleet, xen, file string) (string, error) {
	res, err := f.Run(ctx, xen, []string{"cat", "--", file}, fleet.RunOptions{MaxOutput: 64 << 10})
	if err != nil {
		return "", fmt.Errorf("reading %s on %s: %s", file, xen, remoteMessage(err))
	}
	if res.ExitCode != 0 {
		return "", Userf("cannot read %s on %s: %s", file, xen, lastLine(res.Stderr))
	}
	m := reMemoryLine.FindStringSubmatch(res.Stdout)
	if m == nil {
		return "", Userf("%s on %s has no memory = line", file, xen)
	}
	return m[1], nil
}

func (d *Dispatcher) runMemory(ctx context.Context, c *Call) error {
	f, err := d.fleetOrError()
	if err != nil {
		return err
	}
	builder, err := d.builder(c.Arg("builder"))
	if err != nil {
		return err
	}
	xen, err := d.xenHostOf(builder)
	if err != nil {
		return err
	}
	if xen == "" {
		return Userf("%s has no xen host in xen.guests", builder)
	}
	file := d.guestFile(builder)
	cur, err := d.readMemory(ctx, f, xen, file)
	if err != nil {
		return err
	}
	size := c.Arg("size")
	if size == "" {
		c.Reply("%s: memory = %s MiB (%s on %s)", builder, cur, file, xen)
		return nil
	}
	mib, err := ParseSizeMiB(size)
	if err != nil || mib < 256 || mib > 4<<20 {
		return Userf("size must be between 256M and 4096G, got %s", quoteShort(size))
	}
	newValue := fmt.Sprint(mib)
	if newValue == cur {
		c.Reply("%s already has memory = %s MiB; nothing changed", builder, cur)
		return nil
	}
	plan := fmt.Sprintf("set memory = %s (was %s) in %s on %s, keeping a timestamped backup", newValue, cur, file, xen)
	return c.Confirm(plan, func(ctx context.Context, c *Call) error {
		stamp := d.deps.Now().UTC().Format("20060102T150405Z")
		res, err := f.Run(ctx, xen, []string{"sh", "-c", setMemoryScript, "kojibot-memory", file, newValue, stamp}, fleet.RunOptions{})
		if err != nil {
			return fmt.Errorf("editing %s on %s: %s", file, xen, remoteMessage(err))
		}
		if res.ExitCode != 0 {
			return Userf("editing %s on %s failed: %s; the file was left as it was", file, xen, lastLine(res.Stderr))
		}
		c.Reply("%s: memory %s → %s MiB in %s on %s (backup %s); restart the guest for it to apply (reboot %s)",
			builder, cur, newValue, file, xen, strings.TrimSpace(res.Stdout), builder)
		return nil
	})
}

// rebootCommand renders the reboot for builder: the xen host's
// xen.reboot_command with {guest}, or ssh.reboot_command on the builder.
func (d *Dispatcher) rebootCommand(builder string) (host string, argv []string, err error) {
	xen, err := d.xenHostOf(builder)
	if err != nil {
		return "", nil, err
	}
	if xen == "" {
		return builder, strings.Fields(d.deps.Config.SSH.RebootCommand), nil
	}
	short, _, _ := strings.Cut(builder, ".")
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
	f, err := d.fleetOrError()
	if err != nil {
		return err
	}
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
