package fleet

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Usage is the df line of one path on a host.
type Usage struct {
	// Path is the path asked about; Mount the mount point holding it.
	Path  string
	Mount string
	// Filesystem is df's first column (a device, "tmpfs", "server:/export").
	Filesystem string
	// Size, Used and Avail are in bytes.
	Size, Used, Avail uint64
	// Percent is Used / (Used + Avail) × 100, the figure df rounds up into
	// its Capacity column (blocks reserved for root are not available).
	Percent float64
}

// DiskUsage returns one Usage per path on host, in order, with the figures
// `df -P -B1 -- <paths>` gives: those of the filesystem holding the path.
// It reads them with statvfs through the host's persistent SFTP session
// (the statvfs@openssh.com extension), so no process is started on the
// host per check; a host whose server lacks the sftp subsystem or the
// extension runs df over SSH instead (remembered for the connection, and
// reported to ObserveDiskFallback). Over SFTP, Mount and Filesystem come
// from the server's /proc/self/mounts, read at most every 10 minutes per
// session (the longest mount point containing the path; both empty when
// the table cannot be read).
//
// A path that cannot be read (missing, no permission) is left out of the
// result and named in the returned error; the Usages that could be read
// are returned with that error.
func (f *Fleet) DiskUsage(ctx context.Context, host string, paths []string) ([]Usage, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("fleet: %s: df: %w: no paths", f.label(host), ErrInvalid)
	}
	if usages, ok, err := f.statvfsUsage(ctx, host, paths); ok {
		return usages, err
	}
	return f.dfUsage(ctx, host, paths)
}

// dfUsage is DiskUsage by running df on host.
func (f *Fleet) dfUsage(ctx context.Context, host string, paths []string) ([]Usage, error) {
	argv := append([]string{"env", "LC_ALL=C", "df", "-P", "-B1", "--"}, paths...)
	res, err := f.Run(ctx, host, argv, RunOptions{})
	if err != nil {
		return nil, err
	}
	if res.Truncated {
		return nil, fmt.Errorf("fleet: %s: df: %w: output over the %d-byte cap", f.label(host), ErrOutputTruncated, f.cfg.MaxOutput)
	}
	usages, err := parseDF(res.Stdout, res.Stderr, res.ExitCode, paths)
	if err != nil {
		return usages, fmt.Errorf("fleet: %s: %w", f.label(host), err)
	}
	return usages, nil
}

// dfLine is one POSIX (-P) df line: filesystem, size, used, available,
// capacity, mount point. Filesystem and mount point may hold spaces.
var dfLine = regexp.MustCompile(`^(.+?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+%|-)\s+(.+)$`)

// parseDF reads the output of `df -P -B1 -- paths...` that exited with
// exit. df prints one line per path it could read, in order, and names the
// others on stderr.
func parseDF(stdout, stderr string, exit int, paths []string) ([]Usage, error) {
	var rows []Usage
	for i, line := range strings.Split(stdout, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		m := dfLine.FindStringSubmatch(line)
		if m == nil {
			if i == 0 { // the header
				continue
			}
			return nil, fmt.Errorf("df: unexpected line %q", line)
		}
		var n [3]uint64
		for j := range n {
			v, err := strconv.ParseUint(m[2+j], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("df: line %q: %w", line, err)
			}
			n[j] = v
		}
		u := Usage{Filesystem: m[1], Size: n[0], Used: n[1], Avail: n[2], Mount: m[6]}
		if u.Used+u.Avail > 0 {
			u.Percent = float64(u.Used) * 100 / float64(u.Used+u.Avail)
		}
		rows = append(rows, u)
	}

	readable := paths
	var missing []string
	if exit != 0 {
		readable = nil
		for _, p := range paths {
			if dfComplained(stderr, p) {
				missing = append(missing, p)
			} else {
				readable = append(readable, p)
			}
		}
	}
	if len(rows) != len(readable) {
		msg := fmt.Sprintf("df: %d lines for %d paths (exit %d)", len(rows), len(readable), exit)
		if s := strings.TrimSpace(stderr); s != "" {
			msg += ": " + s
		}
		return nil, errors.New(msg)
	}
	for i := range rows {
		rows[i].Path = readable[i]
	}
	if len(missing) > 0 {
		return rows, fmt.Errorf("df: cannot read %s: %s", strings.Join(missing, ", "), strings.TrimSpace(stderr))
	}
	return rows, nil
}

// dfComplained reports whether df's stderr names path in an error line
// ("df: /x: No such file or directory", with or without quotes).
func dfComplained(stderr, path string) bool {
	for _, form := range []string{path, "'" + path + "'", `"` + path + `"`} {
		if strings.Contains(stderr, "df: "+form+": ") {
			return true
		}
	}
	return false
}
