package realkoji

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fedora-infra/kojibot/commands/kojiapi/xmlrpc"
)

// Kwargs are keyword arguments of a hub call, sent as kojibot's client
// sends them (a trailing struct with __starstar).
type Kwargs = xmlrpc.Kwargs

// Fault is an XML-RPC fault the hub answered with.
type Fault = xmlrpc.Fault

// Client calls the hub's XML-RPC API, anonymously or in a session opened
// by a certificate login. It is safe for concurrent use.
type Client struct {
	url  string
	http *http.Client

	mu      sync.Mutex
	session string // Koji-Session-Id, "" when anonymous
	key     string
	callnum int
}

// newClient returns an anonymous client of the hub at url (…/kojihub) that
// trusts ca and, when cert is not nil, presents it.
func newClient(url string, ca *x509.CertPool, cert *tls.Certificate) *Client {
	cfg := &tls.Config{RootCAs: ca, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &Client{url: url, http: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg, DisableCompression: true},
	}}
}

// Call calls method with args (a trailing Kwargs sends keyword arguments)
// and returns the decoded answer: nil, bool, int64, float64, string,
// []any or map[string]any. A fault is a *Fault.
func (c *Client) Call(ctx context.Context, method string, args ...any) (any, error) {
	return c.post(ctx, c.url, method, args)
}

func (c *Client) post(ctx context.Context, url, method string, args []any) (any, error) {
	body, err := xmlrpc.EncodeCall(method, args)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml")
	c.mu.Lock()
	if c.session != "" {
		req.Header.Set("Koji-Session-Id", c.session)
		req.Header.Set("Koji-Session-Key", c.key)
		req.Header.Set("Koji-Session-Callnum", strconv.Itoa(c.callnum))
		c.callnum++
	}
	c.mu.Unlock()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("realkoji: %s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
		return nil, fmt.Errorf("realkoji: %s: HTTP %s: %s", method, resp.Status, b)
	}
	v, err := xmlrpc.DecodeResponse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("realkoji: %s: %w", method, err)
	}
	return v, nil
}

// SSLLogin opens a session with the client certificate (sslLogin on
// /kojihub/ssllogin); kw are sslLogin's keyword arguments (exclusive,
// proxyuser), or nil.
func (c *Client) SSLLogin(ctx context.Context, kw Kwargs) error {
	args := []any{}
	if len(kw) > 0 {
		args = append(args, kw)
	}
	v, err := c.post(ctx, c.url+"/ssllogin", "sslLogin", args)
	if err != nil {
		return err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("realkoji: sslLogin answered %v", v)
	}
	id, _ := m["session-id"].(int64)
	key, _ := m["session-key"].(string)
	if id == 0 || key == "" {
		return fmt.Errorf("realkoji: sslLogin answered %v", m)
	}
	c.mu.Lock()
	c.session, c.key, c.callnum = strconv.FormatInt(id, 10), key, 0
	c.mu.Unlock()
	return nil
}

// Logout ends the session.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.Call(ctx, "logout")
	c.mu.Lock()
	c.session, c.key = "", ""
	c.mu.Unlock()
	return err
}

// Int calls method and returns its integer answer.
func (c *Client) Int(ctx context.Context, method string, args ...any) (int64, error) {
	v, err := c.Call(ctx, method, args...)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("realkoji: %s answered %T %v, not an integer", method, v, v)
	}
	return n, nil
}

// Struct calls method and returns its struct answer (nil when the hub
// answered None).
func (c *Client) Struct(ctx context.Context, method string, args ...any) (map[string]any, error) {
	v, err := c.Call(ctx, method, args...)
	if err != nil || v == nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("realkoji: %s answered %T, not a struct", method, v)
	}
	return m, nil
}

// Structs calls method and returns its array-of-structs answer.
func (c *Client) Structs(ctx context.Context, method string, args ...any) ([]map[string]any, error) {
	v, err := c.Call(ctx, method, args...)
	if err != nil {
		return nil, err
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("realkoji: %s answered %T, not an array", method, v)
	}
	out := make([]map[string]any, len(a))
	for i, e := range a {
		if out[i], ok = e.(map[string]any); !ok {
			return nil, fmt.Errorf("realkoji: %s answered an array of %T", method, e)
		}
	}
	return out, nil
}

// HostConfig shows a host as getHost returns it, one "key=value" line per
// field in key order, without what differs between two hosts given the
// same changes (id, name, user_id, update_ts): for comparing a host that
// kojibot changed with its twin that the koji CLI changed.
func HostConfig(v map[string]any) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		switch k {
		case "id", "name", "user_id", "update_ts":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%#v\n", k, v[k])
	}
	return b.String()
}
