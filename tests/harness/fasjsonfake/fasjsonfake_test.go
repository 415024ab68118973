package fasjsonfake

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", map[string]User{
		"alice": {Groups: []string{"sysadmin-build", "packager"}, IRCNicks: []string{"irc:/alice", "matrix:/alice"}},
		"bob":   {Groups: []string{"packager"}, IRCNicks: []string{"irc://irc.libera.chat/bobby"}},
		"carol": {},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// get returns the status and the decoded JSON body of GET s.URL()+path.
func get(t *testing.T, s *Server, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(s.URL() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("GET %s: body %q: %v", path, b, err)
	}
	return resp.StatusCode, body
}

// usernames pulls the "username" of each item of a result list.
func usernames(t *testing.T, result any) []string {
	t.Helper()
	list, ok := result.([]any)
	if !ok {
		t.Fatalf("result %#v is not a list", result)
	}
	names := []string{}
	for _, it := range list {
		names = append(names, it.(map[string]any)["username"].(string))
	}
	return names
}

func TestIsMember(t *testing.T) {
	s := start(t)
	tests := []struct {
		path    string
		status  int
		result  any
		message string
	}{
		{"/v1/groups/sysadmin-build/is-member/alice", 200, true, ""},
		{"/v1/groups/packager/is-member/bob", 200, true, ""},
		{"/v1/groups/sysadmin-build/is-member/bob", 200, false, ""},
		{"/v1/groups/sysadmin-build/is-member/nobody", 200, false, ""},
		{"/v1/groups/no-such-group/is-member/alice", 404, nil, "Group not found"},
		{"/v1/groups/-bad/is-member/alice", 404, nil, "The requested URL was not found on the server."},
	}
	for _, tt := range tests {
		status, body := get(t, s, tt.path)
		if status != tt.status {
			t.Errorf("%s: status %d, want %d", tt.path, status, tt.status)
		}
		if tt.message != "" {
			if body["message"] != tt.message {
				t.Errorf("%s: message %v, want %q", tt.path, body["message"], tt.message)
			}
			if _, ok := body["result"]; ok {
				t.Errorf("%s: an error carries a result: %v", tt.path, body)
			}
			continue
		}
		if body["result"] != tt.result {
			t.Errorf("%s: result %v, want %v", tt.path, body["result"], tt.result)
		}
	}
}

func TestUsers(t *testing.T) {
	s := start(t)
	status, body := get(t, s, "/v1/users/bob/")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	u := body["result"].(map[string]any)
	if u["username"] != "bob" || !reflect.DeepEqual(u["ircnicks"], []any{"irc://irc.libera.chat/bobby"}) {
		t.Errorf("user bob = %v", u)
	}
	if u["uri"] != s.URL()+"/v1/users/bob/" {
		t.Errorf("uri %v", u["uri"])
	}
	if status, body := get(t, s, "/v1/users/carol/"); status != 200 ||
		!reflect.DeepEqual(body["result"].(map[string]any)["ircnicks"], []any{}) {
		t.Errorf("carol: %d %v", status, body)
	}
	if status, body := get(t, s, "/v1/users/zed/"); status != 404 || body["message"] != "User not found" {
		t.Errorf("unknown user: %d %v", status, body)
	}

	status, body = get(t, s, "/v1/users/alice/groups/")
	if status != 200 {
		t.Fatalf("groups: status %d", status)
	}
	var groups []string
	for _, it := range body["result"].([]any) {
		groups = append(groups, it.(map[string]any)["groupname"].(string))
	}
	if !reflect.DeepEqual(groups, []string{"packager", "sysadmin-build"}) {
		t.Errorf("alice's groups = %v", groups)
	}
	if _, ok := body["page"]; ok {
		t.Errorf("a list without page_size has a page: %v", body)
	}
	if status, _ := get(t, s, "/v1/users/zed/groups/"); status != 404 {
		t.Errorf("unknown user's groups: status %d", status)
	}

	status, body = get(t, s, "/v1/users/alice/groups/?page_size=1&page_number=2")
	page, _ := body["page"].(map[string]any)
	if status != 200 || page["total_results"] != 2.0 || page["total_pages"] != 2.0 || len(body["result"].([]any)) != 1 {
		t.Errorf("paged groups: %d %v", status, body)
	}
	if _, ok := page["next_page"]; ok {
		t.Errorf("last page has a next_page: %v", page)
	}

	status, body = get(t, s, "/v1/groups/packager/members/")
	if status != 200 || !reflect.DeepEqual(usernames(t, body["result"]), []string{"alice", "bob"}) {
		t.Errorf("packager members: %d %v", status, body)
	}
}

func TestSearch(t *testing.T) {
	s := start(t)
	tests := []struct {
		query  url.Values
		status int
		want   []string
	}{
		{url.Values{"ircnick__exact": {"irc:/alice"}}, 200, []string{"alice"}},
		{url.Values{"ircnick__exact": {"irc:/ali"}}, 200, []string{}},
		{url.Values{"ircnick__exact": {"irc:/bobby"}}, 200, []string{}},
		{url.Values{"ircnick__exact": {"irc://irc.libera.chat/bobby"}}, 200, []string{"bob"}},
		{url.Values{"ircnick": {"ali"}}, 200, []string{"alice"}},
		{url.Values{"ircnick": {"irc"}}, 200, []string{"alice", "bob"}},
		{url.Values{"username": {"aro"}}, 200, []string{"carol"}},
		{url.Values{"ircnick": {"al"}}, 400, nil},
		{url.Values{"unknown": {"alice"}}, 400, nil},
		{url.Values{}, 400, nil},
	}
	for _, tt := range tests {
		status, body := get(t, s, "/v1/search/users/?"+tt.query.Encode())
		if status != tt.status {
			t.Errorf("%v: status %d, want %d (%v)", tt.query, status, tt.status, body)
			continue
		}
		if tt.status != 200 {
			if m, _ := body["message"].(string); m == "" {
				t.Errorf("%v: error without message: %v", tt.query, body)
			}
			continue
		}
		if got := usernames(t, body["result"]); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v: users %v, want %v", tt.query, got, tt.want)
		}
		if page, ok := body["page"].(map[string]any); !ok || page["page_size"] != 40.0 {
			t.Errorf("%v: search page = %v", tt.query, body["page"])
		}
	}
}

func TestFailureDelayAndCount(t *testing.T) {
	s := start(t)
	before := s.Requests()

	s.SetFailure(500)
	status, body := get(t, s, "/v1/groups/packager/is-member/alice")
	if status != 500 || body["message"] == nil || body["result"] != nil {
		t.Errorf("failure 500: %d %v", status, body)
	}
	s.SetFailure(401)
	if status, body := get(t, s, "/v1/users/alice/"); status != 401 || body["message"] == nil {
		t.Errorf("failure 401: %d %v", status, body)
	}
	s.SetFailure(0)
	if status, body := get(t, s, "/v1/groups/packager/is-member/alice"); status != 200 || body["result"] != true {
		t.Errorf("healthy again: %d %v", status, body)
	}

	s.SetDelay(300 * time.Millisecond)
	t0 := time.Now()
	get(t, s, "/v1/users/alice/")
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("delayed answer came after %s", d)
	}
	// A client that gives up does not keep the server busy.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/v1/users/alice/", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("a request past its deadline was answered")
	}
	s.SetDelay(0)

	if got := s.Requests() - before; got != 5 {
		t.Errorf("Requests() counted %d, want 5", got)
	}
}

func TestMutations(t *testing.T) {
	s := start(t)
	s.SetUser("dave", User{Groups: []string{"sysadmin-build"}})
	if _, body := get(t, s, "/v1/groups/sysadmin-build/is-member/dave"); body["result"] != true {
		t.Errorf("SetUser: %v", body)
	}
	s.AddGroups("empty-group")
	if status, body := get(t, s, "/v1/groups/empty-group/is-member/alice"); status != 200 || body["result"] != false {
		t.Errorf("AddGroups: %d %v", status, body)
	}
	s.DeleteUser("alice")
	if status, _ := get(t, s, "/v1/users/alice/"); status != 404 {
		t.Errorf("deleted user: status %d", status)
	}
	// sysadmin-build still exists although alice left it and dave is in it;
	// and a group that lost its last member still exists.
	s.DeleteUser("dave")
	if status, body := get(t, s, "/v1/groups/sysadmin-build/is-member/dave"); status != 200 || body["result"] != false {
		t.Errorf("group after its members left: %d %v", status, body)
	}
}

func TestStartAndClose(t *testing.T) {
	s := start(t)
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || s.URL() != "http://"+s.Addr() {
		t.Errorf("URL() = %q, Addr() = %q", s.URL(), s.Addr())
	}
	if _, err := Start(s.Addr(), nil); err == nil {
		t.Errorf("Start on an address in use succeeded")
	}
	// The users map is copied.
	users := map[string]User{"erin": {Groups: []string{"g1"}}}
	s2, err := Start("", users)
	if err != nil {
		t.Fatal(err)
	}
	users["erin"].Groups[0] = "changed"
	if _, body := get(t, s2, "/v1/groups/g1/is-member/erin"); body["result"] != true {
		t.Errorf("Start did not copy the users: %v", body)
	}

	// Close ends a request that is waiting on a delay, and refuses new ones.
	s2.SetDelay(time.Minute)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get(s2.URL() + "/v1/users/erin/")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	if err := s2.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-errc; err == nil {
		t.Errorf("the delayed request was answered after Close")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
	if _, err := http.Get(s2.URL() + "/v1/users/erin/"); err == nil {
		t.Errorf("a closed server answered")
	}
	if err := s2.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
