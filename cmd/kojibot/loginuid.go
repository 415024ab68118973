package main

import (
	"os"
	"os/user"
	"strconv"
	"strings"
)

// procLoginUID is where the kernel tells a process its login uid.
const procLoginUID = "/proc/self/loginuid"

// unsetLoginUID is the login uid of a process outside any login session
// ((uid_t)-1), e.g. started by systemd or from a container's init.
const unsetLoginUID = "4294967295"

// loginUser reads the login uid at path (procLoginUID) and names its user,
// for the audit record of kojibot exec. The login uid is set when a user
// logs in (pam_loginuid) and kept across sudo and su; unlike SUDO_USER, the
// user cannot change it. It returns "unset" outside a login session, and
// "unreadable" (with no name) when the file cannot be read; the name is
// empty when the uid has no passwd entry.
func loginUser(path string) (uid, name string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable", ""
	}
	uid = strings.TrimSpace(string(b))
	if _, err := strconv.ParseUint(uid, 10, 32); err != nil {
		return "unreadable", ""
	}
	if uid == unsetLoginUID {
		return "unset", ""
	}
	if u, err := user.LookupId(uid); err == nil {
		name = u.Username
	}
	return uid, name
}
