package config

import (
	"strings"
	"testing"
)

// TestValidateHubOnly: with koji.hub.url, koji.db.dsn may be empty (the
// database is then needed only by `connections`); with neither, check-config
// names koji.db.dsn and says the hub is the other way.
func TestValidateHubOnly(t *testing.T) {
	_, cert, _ := hubFiles(t)
	c := validConfig()
	c.Koji.DB.DSN = ""
	c.Koji.Hub = KojiHub{URL: "https://koji.example.org/kojihub", Auth: "certificate", CertFile: cert}
	if err := c.ValidateWith(knownCommands); err != nil {
		t.Errorf("a hub-only configuration: %v", err)
	}
	c.Koji.Hub.URL = ""
	ke := keyErrors(t, c.ValidateWith(knownCommands))
	if len(ke) != 1 || ke[0].Key != "koji.db.dsn" || !strings.Contains(ke[0].Problem, "koji.hub.url") || !strings.Contains(ke[0].Problem, "PostgreSQL") {
		t.Errorf("neither hub nor database: %v", ke)
	}
}
