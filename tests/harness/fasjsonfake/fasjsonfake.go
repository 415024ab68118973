// Package fasjsonfake is a stand-in for Fedora's FASJSON service: it answers
// the part of the /v1 API that kojibot uses (group membership, users, their
// groups, the IRC-nick search) with FASJSON's {"result": ...} envelope and
// flat {"message": ...} errors, on a real TCP listener so that unit tests,
// end-to-end tests and `make demo` can all point the bot at it.
//
// It needs no authentication; failures and slowness are switched on at run
// time with SetFailure and SetDelay.
package fasjsonfake

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// User is one FAS account the fake knows.
type User struct {
	// Groups are the FAS groups the user is a member of.
	Groups []string
	// IRCNicks are the user's IRC nicks as FAS stores them:
	// "irc:/nick" or "irc://irc.libera.chat/nick".
	IRCNicks []string
}

// Server is a running FASJSON stand-in. Its methods are safe for concurrent
// use.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	url  string
	done chan struct{}

	closeOnce sync.Once
	closeErr  error
	served    chan struct{}

	requests atomic.Int64

	mu      sync.Mutex
	users   map[string]User
	groups  map[string]bool // groups that exist without members
	failure int
	delay   time.Duration
}

// nameRE is what FASJSON accepts as a user or group name in a URL.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// Start listens on addr ("127.0.0.1:0" picks a free loopback port; "" means
// the same) and serves the given users until Close. The map is copied.
func Start(addr string, users map[string]User) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fasjsonfake: listen %s: %w", addr, err)
	}
	s := &Server{
		ln:     ln,
		url:    "http://" + ln.Addr().String(),
		done:   make(chan struct{}),
		served: make(chan struct{}),
		users:  make(map[string]User, len(users)),
		groups: make(map[string]bool),
	}
	for name, u := range users {
		s.users[name] = cloneUser(u)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/groups/{group}/is-member/{user}", s.isMember)
	mux.HandleFunc("GET /v1/groups/{group}/members/{$}", s.groupMembers)
	mux.HandleFunc("GET /v1/users/{user}/{$}", s.user)
	mux.HandleFunc("GET /v1/users/{user}/groups/{$}", s.userGroups)
	mux.HandleFunc("GET /v1/search/users/{$}", s.searchUsers)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "The requested URL was not found on the server.", nil)
	})
	s.srv = &http.Server{
		Handler:           s.wrap(mux),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(s.served)
		// Serve returns http.ErrServerClosed after Close; nothing to report.
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// URL is the base URL to configure as acl.fasjson_url, e.g.
// "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.url }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server: the listener is closed, open connections are
// dropped and delayed requests are abandoned. It is safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.closeErr = s.srv.Close()
		<-s.served
	})
	return s.closeErr
}

// SetFailure makes every request fail with the given HTTP status and a
// FASJSON-style flat error body ({"message": ...}); 0 makes the server
// healthy again. 401 stands for refused Kerberos credentials, 500 for FASJSON
// having lost its LDAP server.
func (s *Server) SetFailure(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = status
}

// SetDelay makes every request wait d before it is answered (0: no wait), to
// exercise the client's timeout. A waiting request ends early when its client
// goes away or the server is closed.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Requests is how many HTTP requests the server has received, failed or not.
func (s *Server) Requests() int { return int(s.requests.Load()) }

// SetUser adds or replaces a user.
func (s *Server) SetUser(name string, u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[name] = cloneUser(u)
}

// DeleteUser removes a user; the groups it was in keep existing.
func (s *Server) DeleteUser(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[name]; ok {
		for _, g := range u.Groups {
			s.groups[g] = true
		}
	}
	delete(s.users, name)
}

// AddGroups makes groups exist even when no user is a member of them.
func (s *Server) AddGroups(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range names {
		s.groups[g] = true
	}
}

func cloneUser(u User) User {
	return User{Groups: slices.Clone(u.Groups), IRCNicks: slices.Clone(u.IRCNicks)}
}

// wrap counts the request and applies the configured delay and failure.
func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		delay, failure := s.delay, s.failure
		s.mu.Unlock()
		if delay > 0 {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			case <-s.done:
				// Drop the connection without an answer, as a dying
				// server would.
				panic(http.ErrAbortHandler)
			}
		}
		if failure != 0 {
			writeError(w, failure, failureMessage(failure), nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func failureMessage(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "Unauthorized: GSSAPI authentication required"
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusInternalServerError:
		return "LDAP server is down"
	case http.StatusServiceUnavailable:
		return "Service Unavailable"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "error " + strconv.Itoa(status)
}

// groupExists reports whether any user is in g or g was added. s.mu is held.
func (s *Server) groupExists(g string) bool {
	if s.groups[g] {
		return true
	}
	for _, u := range s.users {
		if slices.Contains(u.Groups, g) {
			return true
		}
	}
	return false
}

func (s *Server) isMember(w http.ResponseWriter, r *http.Request) {
	group, user := r.PathValue("group"), r.PathValue("user")
	if !nameRE.MatchString(group) || !nameRE.MatchString(user) {
		writeError(w, http.StatusNotFound, "The requested URL was not found on the server.", nil)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.groupExists(group) {
		writeError(w, http.StatusNotFound, "Group not found", map[string]any{"groupname": group})
		return
	}
	u, ok := s.users[user]
	writeResult(w, ok && slices.Contains(u.Groups, group), nil)
}

func (s *Server) groupMembers(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	if !nameRE.MatchString(group) {
		writeError(w, http.StatusNotFound, "The requested URL was not found on the server.", nil)
		return
	}
	s.mu.Lock()
	if !s.groupExists(group) {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Group not found", map[string]any{"groupname": group})
		return
	}
	var names []string
	for name, u := range s.users {
		if slices.Contains(u.Groups, group) {
			names = append(names, name)
		}
	}
	s.mu.Unlock()
	slices.Sort(names)
	items := make([]any, 0, len(names))
	for _, n := range names {
		items = append(items, map[string]any{"username": n, "uri": s.url + "/v1/users/" + n + "/"})
	}
	writePaged(w, r, items, false)
}

// userJSON is the public part of FASJSON's user model that the fake fills in.
func (s *Server) userJSON(name string, u User) map[string]any {
	nicks := u.IRCNicks
	if nicks == nil {
		nicks = []string{}
	}
	return map[string]any{
		"username":   name,
		"human_name": name,
		"ircnicks":   nicks,
		"emails":     []string{name + "@fedoraproject.org"},
		"locked":     false,
		"is_private": false,
		"uri":        s.url + "/v1/users/" + name + "/",
	}
}

func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("user")
	s.mu.Lock()
	u, ok := s.users[name]
	s.mu.Unlock()
	if !ok || !nameRE.MatchString(name) {
		writeError(w, http.StatusNotFound, "User not found", map[string]any{"name": name})
		return
	}
	writeResult(w, s.userJSON(name, u), nil)
}

func (s *Server) userGroups(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("user")
	s.mu.Lock()
	u, ok := s.users[name]
	s.mu.Unlock()
	if !ok || !nameRE.MatchString(name) {
		writeError(w, http.StatusNotFound, "User does not exist", map[string]any{"name": name})
		return
	}
	groups := slices.Clone(u.Groups)
	slices.Sort(groups)
	items := make([]any, 0, len(groups))
	for _, g := range slices.Compact(groups) {
		items = append(items, map[string]any{"groupname": g, "uri": s.url + "/v1/groups/" + g + "/"})
	}
	writePaged(w, r, items, false)
}

// searchTerms are the search parameters the fake understands; FASJSON
// ignores parameters it does not know.
var searchTerms = []string{"username", "username__exact", "ircnick", "ircnick__exact"}

func (s *Server) searchUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	terms := map[string]string{}
	for _, t := range searchTerms {
		if v := q.Get(t); v != "" {
			if len(v) < 3 {
				writeError(w, http.StatusBadRequest, "Search term must be at least 3 characters long.",
					map[string]any{"search_term": t, "search_value": v})
				return
			}
			terms[t] = v
		}
	}
	if len(terms) == 0 {
		writeError(w, http.StatusBadRequest, "At least one search term must be provided.", nil)
		return
	}
	s.mu.Lock()
	var names []string
	for name, u := range s.users {
		if matchUser(name, u, terms) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	items := make([]any, 0, len(names))
	for _, n := range names {
		items = append(items, s.userJSON(n, s.users[n]))
	}
	s.mu.Unlock()
	writePaged(w, r, items, true)
}

// matchUser applies every search term: plain terms are case-insensitive
// substrings, __exact terms compare the whole stored value exactly.
func matchUser(name string, u User, terms map[string]string) bool {
	for t, v := range terms {
		ok := false
		switch t {
		case "username":
			ok = strings.Contains(strings.ToLower(name), strings.ToLower(v))
		case "username__exact":
			ok = name == v
		case "ircnick":
			ok = slices.ContainsFunc(u.IRCNicks, func(n string) bool {
				return strings.Contains(strings.ToLower(n), strings.ToLower(v))
			})
		case "ircnick__exact":
			ok = slices.Contains(u.IRCNicks, v)
		}
		if !ok {
			return false
		}
	}
	return true
}

// writePaged answers a list in the result envelope. FASJSON adds a "page"
// object when page_size is given; search always pages (40 by default).
func writePaged(w http.ResponseWriter, r *http.Request, items []any, alwaysPaged bool) {
	q := r.URL.Query()
	if q.Get("page_size") == "" && !alwaysPaged {
		writeResult(w, items, nil)
		return
	}
	size, number := 40, 1
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || (alwaysPaged && n > 40) {
			writeError(w, http.StatusBadRequest, "Invalid page size.", map[string]any{"page_size": v})
			return
		}
		size = n
	}
	if v := q.Get("page_number"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "Invalid page number.", map[string]any{"page_number": v})
			return
		}
		number = n
	}
	total := len(items)
	pages := (total + size - 1) / size
	start := min((number-1)*size, total)
	end := min(start+size, total)
	page := map[string]any{
		"total_results": total,
		"page_size":     size,
		"page_number":   number,
		"total_pages":   pages,
	}
	if number < pages {
		next := *r.URL
		nq := next.Query()
		nq.Set("page_number", strconv.Itoa(number+1))
		next.RawQuery = nq.Encode()
		page["next_page"] = "http://" + r.Host + next.RequestURI()
	}
	writeResult(w, items[start:end], page)
}

func writeResult(w http.ResponseWriter, result any, page map[string]any) {
	body := map[string]any{"result": result}
	if page != nil {
		body["page"] = page
	}
	writeJSON(w, http.StatusOK, body)
}

// writeError answers FASJSON's flat error: {"message": ..., extra...}.
func writeError(w http.ResponseWriter, status int, message string, extra map[string]any) {
	body := map[string]any{"message": message}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"message": "fasjsonfake: cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
