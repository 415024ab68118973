package acl

import (
	"context"
	"fmt"
	"strings"
)

// shortMatrixServer is the homeserver a "matrix:/name" ircnicks value
// means: FAS's own convention, whatever matrix.fas_server says.
const shortMatrixServer = "fedora.im"

// SplitMatrixID splits "@local:server" into its localpart and server; ok is
// false when id is not shaped like a Matrix user id.
func SplitMatrixID(id string) (local, server string, ok bool) {
	if !strings.HasPrefix(id, "@") {
		return "", "", false
	}
	local, server, ok = strings.Cut(id[1:], ":")
	if !ok || local == "" || server == "" || strings.ContainsAny(id, " \t\r\n/") {
		return "", "", false
	}
	return local, server, true
}

// normMatrixID is a Matrix user id with its server name lower-cased, the
// form acl.accounts keys are compared in; ok is false when id is not one.
func normMatrixID(id string) (string, bool) {
	local, server, ok := SplitMatrixID(id)
	if !ok {
		return "", false
	}
	return "@" + local + ":" + strings.ToLower(server), true
}

// isGuest reports whether a localpart is a guest's: homeservers give
// guests purely numeric localparts, which no registered user can choose.
func isGuest(local string) bool {
	return strings.Trim(local, "0123456789") == ""
}

// matrixValues are the ircnicks forms FAS stores a Matrix id in.
func matrixValues(local, server string) []string {
	v := []string{"matrix://" + server + "/" + local}
	if strings.EqualFold(server, shortMatrixServer) {
		v = append([]string{"matrix:/" + local}, v...)
	}
	return v
}

// resolveMatrix maps a Matrix user id to a FAS user: acl.accounts (whose
// keys may be Matrix ids), else the localpart when the id's server is
// matrix.fas_server, else (fasjson) the FAS user whose ircnicks holds the
// id. A guest is never identified.
func (c *Checker) resolveMatrix(ctx context.Context, id string) (string, error) {
	local, server, ok := SplitMatrixID(id)
	switch {
	case !ok:
		return "", &reasonError{ErrNoFASUser, fmt.Sprintf("%q is not a Matrix user id", id)}
	case isGuest(local):
		return "", &reasonError{ErrNoFASUser, "guests are never identified; log in to a Matrix account linked to FAS"}
	}
	if u, ok := c.matrixAccountUser(id); ok {
		return u, nil
	}
	if c.matrixFASServer != "" && strings.ToLower(server) == c.matrixFASServer {
		if !ValidName(local) {
			return "", &reasonError{ErrNoFASUser, fmt.Sprintf("%q is not a valid FAS username", local)}
		}
		return local, nil
	}
	values := matrixValues(local, server)
	if c.source == SourceFASJSON {
		m, err := c.lookupNick(ctx, "matrix\x00"+strings.ToLower(id), id, values)
		if err != nil {
			return "", err
		}
		switch {
		case len(m.matches) > 1:
			return "", &reasonError{ErrNoFASUser, fmt.Sprintf(
				"Matrix id %s is a chat nick of several FAS users (%s); ask an admin to map it in acl.accounts",
				id, strings.Join(m.matches, ", "))}
		case m.user != "":
			return m.user, nil
		}
		return "", &reasonError{ErrNoFASUser, fmt.Sprintf(
			"Matrix id %s is not linked to a FAS user; add %s to the chat nicknames of your FAS profile, or ask an admin to map it in acl.accounts",
			id, values[len(values)-1])}
	}
	return "", &reasonError{ErrNoFASUser, fmt.Sprintf(
		"Matrix id %s is not linked to a FAS user; ask an admin to map it in acl.accounts", id)}
}

// knownMatrixUser is the FAS user of a Matrix id when it is known without
// asking FASJSON; "" otherwise.
func (c *Checker) knownMatrixUser(id string) string {
	local, server, ok := SplitMatrixID(id)
	if !ok || isGuest(local) {
		return ""
	}
	if u, ok := c.matrixAccountUser(id); ok {
		return u
	}
	if c.matrixFASServer != "" && strings.ToLower(server) == c.matrixFASServer && ValidName(local) {
		return local
	}
	if c.source == SourceFASJSON {
		c.mu.Lock()
		m, ok := c.mappings.get("matrix\x00"+strings.ToLower(id), c.now())
		c.mu.Unlock()
		if ok && len(m.matches) <= 1 {
			return m.user
		}
	}
	return ""
}
