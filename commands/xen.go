package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/commands/fleet"
)

// Exit codes of the xen config scripts, beyond 0 and a tool's own failure.
const (
	exitNoMemory = 3 // the file has no memory = line
	exitSymlink  = 4 // the file is a symbolic link
	exitNotFile  = 5 // the file is not a regular file
	exitChanged  = 6 // memory is no longer the value the plan showed
)

// readConfigScript prints a xen guest config, refusing a symbolic link
// (tested on the xen host, not followed) and anything but a regular file.
const readConfigScript = `f=$1
if [ -L "$f" ]; then echo "$f is a symbolic link" >&2; exit 4; fi
if [ ! -f "$f" ]; then echo "$f is not a regular file" >&2; exit 5; fi
exec cat -- "$f"`

// setMemoryScript rewrites the memory line of a xen guest config in place,
// atomically, after a backup. It is a constant: the file, the new size,
// the value the plan showed and the backup's name reach it only as
// positional arguments, quoted. It refuses a symbolic link, and a file
// whose memory is no longer the value the plan showed; the backup is
// created with noclobber (O_EXCL), so an existing file is never
// overwritten.
const setMemoryScript = `set -eu
f=$1; n=$2; want=$3; bak=$4; tmp=
trap 'if [ -n "$tmp" ]; then rm -f -- "$tmp"; fi' EXIT
if [ -L "$f" ]; then echo "$f is a symbolic link" >&2; exit 4; fi
if [ ! -f "$f" ]; then echo "$f is not a regular file" >&2; exit 5; fi
cur=$(sed -nE 's/^[[:space:]]*memory[[:space:]]*=[[:space:]]*"?([0-9]+).*/\1/p' -- "$f" | head -n 1)
if [ -z "$cur" ]; then echo "no memory line in $f" >&2; exit 3; fi
if [ "$cur" != "$want" ]; then echo "memory is now $cur, not $want" >&2; echo "$cur"; exit 6; fi
set -C
cat -- "$f" > "$bak"
set +C
chmod --reference="$f" -- "$bak"
touch -r "$f" -- "$bak"
tmp=$(mktemp "$f.kojibot-tmp.XXXXXX")
sed -E "s/^([[:space:]]*)memory[[:space:]]*=.*/\1memory = $n/" -- "$f" > "$tmp"
chmod --reference="$f" -- "$tmp"
chown --reference="$f" -- "$tmp" 2>/dev/null || true
mv -f -- "$tmp" "$f"
echo "$bak"`

// backupName is a new, unique backup name for file: a UTC timestamp to the
// nanosecond and a random suffix, so that two edits, even in the same
// second and from two bots, never share one.
func backupName(file string, now time.Time) (string, error) {
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("backup name: %w", err)
	}
	return file + ".kojibot-" + now.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(r[:]), nil
}

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

// readMemory reads the guest's memory = N (MiB) on its xen host. A config
// that is a symbolic link is refused: it is neither read nor edited
// through the link.
func (d *Dispatcher) readMemory(ctx context.Context, f Fleet, xen, file string) (string, error) {
	res, err := f.Run(ctx, xen, []string{"sh", "-c", readConfigScript, "kojibot-memory", file}, fleet.RunOptions{MaxOutput: 64 << 10})
	if err != nil {
		return "", fmt.Errorf("reading %s on %s: %s", file, xen, remoteMessage(err))
	}
	switch res.ExitCode {
	case 0:
	case exitSymlink:
		return "", Userf("%s on %s is a symbolic link: refusing to read or edit a guest config through a link", file, xen)
	case exitNotFile:
		return "", Userf("%s on %s is not a regular file", file, xen)
	default:
		return "", Userf("cannot read %s on %s: %s", file, xen, lastLine(res.Stderr))
	}
	if res.Truncated {
		return "", Userf("%s on %s is larger than %d bytes: not a xen guest config", file, xen, 64<<10)
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
		// The file may have changed since the plan: read it again, and let
		// the edit itself check once more.
		now, err := d.readMemory(ctx, f, xen, file)
		if err != nil {
			return err
		}
		if now != cur {
			return Userf("memory in %s on %s is now %s, not %s as the plan showed; nothing changed: run memory again", file, xen, now, cur)
		}
		bak, err := backupName(file, d.deps.Now())
		if err != nil {
			return err
		}
		// The helper finds the file in its own xen_config_dir by the
		// guest's name and names the backup itself.
		short, _, _ := strings.Cut(builder, ".")
		argv := d.privileged([]string{"sh", "-c", setMemoryScript, "kojibot-memory", file, newValue, cur, bak}, "xen-memory", short, newValue, cur)
		res, err := f.Run(ctx, xen, argv, fleet.RunOptions{})
		if err != nil {
			return fmt.Errorf("editing %s on %s: %s", file, xen, remoteMessage(err))
		}
		switch res.ExitCode {
		case 0:
		case exitChanged:
			return Userf("memory in %s on %s is now %s, not %s as the plan showed; nothing changed: run memory again",
				file, xen, strings.TrimSpace(res.Stdout), cur)
		case exitSymlink:
			return Userf("%s on %s is a symbolic link: refusing to edit a guest config through a link; nothing changed", file, xen)
		case exitNoMemory:
			return Userf("%s on %s has no memory = line any more; nothing changed", file, xen)
		default:
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
