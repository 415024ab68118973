package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// CheckStateDir checks state.dir on this machine, for check-config: it
// exists or can be created, the bot's user can write it, and it is not
// group- or world-writable (nor a symbolic link). The bot's user is the
// user running check-config, or, when that is root (to read the
// secrets), the owner of state.dir: a kojibot started as root switches
// to that owner before it opens the store. errs are problems kojibot
// would refuse to start with; warns are settings that work but that an
// operator probably did not mean. With state.dsn there is nothing to
// check here.
func (c *Config) CheckStateDir() (errs, warns []*KeyError) {
	const key = "state.dir"
	if c.State.DSN != "" {
		return nil, nil // the store is in PostgreSQL: state.dir is not used
	}
	dir := c.State.Dir
	if dir == "" {
		return []*KeyError{{Key: key, Problem: "is empty: the journal of what jobs stop needs a directory"}}, nil
	}
	euid := os.Geteuid()
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		parent := filepath.Dir(dir)
		for {
			pfi, perr := os.Stat(parent)
			if perr == nil {
				if !pfi.IsDir() {
					return []*KeyError{{Key: key, Problem: fmt.Sprintf("%s does not exist and cannot be created: %s is not a directory", dir, parent)}}, nil
				}
				break
			}
			if !errors.Is(perr, fs.ErrNotExist) || parent == filepath.Dir(parent) {
				return []*KeyError{{Key: key, Problem: fmt.Sprintf("%s does not exist and cannot be created: %v", dir, perr)}}, nil
			}
			parent = filepath.Dir(parent)
		}
		if err := syscall.Access(parent, 0o2|0o1); err != nil { // W_OK|X_OK
			return []*KeyError{{Key: key, Problem: fmt.Sprintf("%s does not exist and cannot be created by %s: %s: %v", dir, userName(euid), parent, err)}}, nil
		}
		if euid == 0 {
			return nil, []*KeyError{{Key: key, Problem: fmt.Sprintf("%s does not exist: a kojibot started as root would create it as root's, and a kojibot running as its own user could not use it; create it owned by the bot's user (install -d -m 0700 -o kojibot -g kojibot %s)", dir, dir)}}
		}
		return nil, nil
	}
	if err != nil {
		return []*KeyError{{Key: key, Problem: err.Error()}}, nil
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return []*KeyError{{Key: key, Problem: fmt.Sprintf("%s is a symbolic link: give the real directory", dir)}}, nil
	case !fi.IsDir():
		return []*KeyError{{Key: key, Problem: fmt.Sprintf("%s is not a directory", dir)}}, nil
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		errs = append(errs, &KeyError{Key: key, Problem: fmt.Sprintf("%s is group- or world-writable (mode %04o): anyone who can write it can make the bot's recovery act; chmod 0700 %s", dir, perm, dir)})
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errs, nil
	}
	owner := int(st.Uid)
	switch {
	case euid != 0 && owner != euid:
		errs = append(errs, &KeyError{Key: key, Problem: fmt.Sprintf("%s belongs to %s, not to %s, the bot's user here: kojibot cannot use it", dir, userName(owner), userName(euid))})
	case fi.Mode().Perm()&0o300 != 0o300:
		errs = append(errs, &KeyError{Key: key, Problem: fmt.Sprintf("%s is not writable by its owner %s, the bot's user (mode %04o): chmod 0700 %s", dir, userName(owner), fi.Mode().Perm(), dir)})
	case euid == 0 && owner == 0:
		warns = append(warns, &KeyError{Key: key, Problem: fmt.Sprintf("%s belongs to root: kojibot then runs as root, and a kojibot running as its own user cannot use it; chown it to the bot's user", dir)})
	}
	return errs, warns
}

// userName is "name (uid N)", or "uid N" for a uid without a name.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return "uid " + strconv.Itoa(uid)
}
