package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	f := d.deps.Fleet // the dispatcher checked it is there (NeedsFleet)
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
