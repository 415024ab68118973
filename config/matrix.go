package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Matrix identifiers (https://spec.matrix.org/latest/appendices/#identifier-grammar),
// checked loosely: a sigil, a localpart or opaque id, ":" and a server name
// (host, optionally :port).
var (
	matrixUserRE   = regexp.MustCompile(`^@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)
	matrixAliasRE  = regexp.MustCompile(`^#[^:\s]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)
	matrixRoomIDRE = regexp.MustCompile(`^![^:\s]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)
	matrixServerRE = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)
)

// ValidMatrixUserID reports whether s is a Matrix user id, "@local:server".
func ValidMatrixUserID(s string) bool { return matrixUserRE.MatchString(s) }

// ValidMatrixRoom reports whether s is a room alias ("#name:server") or a
// room id ("!opaque:server").
func ValidMatrixRoom(s string) bool {
	return matrixAliasRE.MatchString(s) || matrixRoomIDRE.MatchString(s)
}

func (c *Config) validateMatrix(v *validator) {
	m := &c.Matrix
	if !m.Enabled() {
		if m.AccessToken != "" || m.Password != "" || len(m.Rooms) > 0 || m.Homeserver != "" {
			v.addf("matrix.user_id", "is empty while other matrix keys are set; expected the bot's Matrix id such as \"@kojibot:fedora.im\"")
		}
		return
	}
	if !ValidMatrixUserID(m.UserID) {
		v.addf("matrix.user_id", "%q is not a Matrix user id; expected \"@localpart:server\" such as \"@kojibot:fedora.im\"", m.UserID)
	}
	if m.Homeserver != "" {
		u, err := url.Parse(m.Homeserver)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.addf("matrix.homeserver", "%q is not a URL; expected the client-server API base such as \"https://fedora.ems.host\", or empty to discover it", m.Homeserver)
		}
	}
	if m.AccessToken == "" && m.Password == "" {
		v.addf("matrix.access_token_file", "is not set and neither is matrix.password_file; expected a file holding the bot's access token")
	}
	if len(m.Rooms) == 0 {
		v.addf("matrix.rooms", "is empty; expected the aliases or ids of the rooms to serve, such as [\"#admin:fedoraproject.org\"]")
	}
	for i, r := range m.Rooms {
		if !ValidMatrixRoom(r) {
			v.addf(fmt.Sprintf("matrix.rooms[%d]", i), "%q is not a room; expected an alias \"#name:server\" or a room id \"!id:server\"", r)
		}
	}
	if m.NotifyRoom != "" {
		if !ValidMatrixRoom(m.NotifyRoom) {
			v.addf("matrix.notify_room", "%q is not a room; expected an alias \"#name:server\" or a room id \"!id:server\"", m.NotifyRoom)
		} else if !containsFold(m.Rooms, m.NotifyRoom) {
			v.addf("matrix.notify_room", "%q is not in matrix.rooms; expected one of: %s", m.NotifyRoom, listOrNone(m.Rooms))
		}
	}
	if m.CommandPrefix == "" || strings.ContainsFunc(m.CommandPrefix, isSpace) {
		v.addf("matrix.command_prefix", "%q is not a prefix; expected a word without spaces such as \"!koji\"", m.CommandPrefix)
	}
	if m.FASServer != "" && !matrixServerRE.MatchString(m.FASServer) {
		v.addf("matrix.fas_server", "%q is not a server name; expected a homeserver name such as \"fedora.im\", or empty", m.FASServer)
	}
	v.atLeast("matrix.max_lines", m.MaxLines, 2)
	v.positive("matrix.max_delay", m.MaxDelay)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
