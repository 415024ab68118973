package config

import (
	"errors"
	"strings"
	"testing"
)

func matrixConfig() *Config {
	c := validConfig()
	c.Matrix.UserID = "@kojibot:fedora.im"
	c.Matrix.AccessToken = "syt_secret"
	c.Matrix.Rooms = []string{"#admin:fedoraproject.org", "!abc:fedora.im"}
	c.Matrix.NotifyRoom = "#admin:fedoraproject.org"
	return c
}

func TestValidateMatrix(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		key    string // "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"matrix only", func(c *Config) { c.IRC.Server = "" }, ""},
		{"neither transport", func(c *Config) { c.IRC.Server = ""; c.Matrix = Default().Matrix }, "irc.server"},
		{"bad user id", func(c *Config) { c.Matrix.UserID = "kojibot" }, "matrix.user_id"},
		{"user id without server", func(c *Config) { c.Matrix.UserID = "@kojibot" }, "matrix.user_id"},
		{"bad room", func(c *Config) { c.Matrix.Rooms = []string{"admin"} }, "matrix.rooms[0]"},
		{"room without server", func(c *Config) { c.Matrix.Rooms = []string{"#admin"} }, "matrix.rooms[0]"},
		{"no rooms", func(c *Config) { c.Matrix.Rooms = nil; c.Matrix.NotifyRoom = "" }, "matrix.rooms"},
		{"notify not in rooms", func(c *Config) { c.Matrix.NotifyRoom = "#other:fedora.im" }, "matrix.notify_room"},
		{"no secret", func(c *Config) { c.Matrix.AccessToken = "" }, "matrix.access_token_file"},
		{"no max delay", func(c *Config) { c.Matrix.MaxDelay = 0 }, "matrix.max_delay"},
		{"password instead", func(c *Config) { c.Matrix.AccessToken = ""; c.Matrix.Password = "pw" }, ""},
		{"bad homeserver", func(c *Config) { c.Matrix.Homeserver = "fedora.im" }, "matrix.homeserver"},
		{"rooms without user", func(c *Config) { c.Matrix.UserID = "" }, "matrix.user_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := matrixConfig()
			tt.change(c)
			err := c.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ke *KeyError
			found := false
			for _, e := range unwrapAll(err) {
				if errors.As(e, &ke) && ke.Key == tt.key {
					found = true
				}
			}
			if !found {
				t.Fatalf("Validate = %v; want an error for %s", err, tt.key)
			}
			if strings.Contains(err.Error(), "syt_secret") {
				t.Fatalf("error shows the token: %v", err)
			}
		})
	}
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func TestMatrixDefaults(t *testing.T) {
	m := Default().Matrix
	if m.Enabled() || m.CommandPrefix != "!koji" || m.FASServer != "fedora.im" || m.MaxLines != 30 {
		t.Fatalf("defaults = %+v", m)
	}
}
