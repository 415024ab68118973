package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fedora-infra/kojibot/config"
	"github.com/fedora-infra/kojibot/tests/harness/rabbitmq"
)

// TestMessagingProbe: check-config --probe connects to messaging.url with
// the client certificate and says so; a certificate the broker refuses
// is a clear error line and exit status 1; no url is said to publish
// nothing.
func TestMessagingProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real RabbitMQ")
	}
	ctx, cancel := context.WithTimeout(context.Background(), rabbitmq.Budget)
	defer cancel()
	b, err := rabbitmq.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	good, err := b.AddUser(ctx, "kojibot")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := b.ForeignCertificate("kojibot")
	if err != nil {
		t.Fatal(err)
	}
	probe := func(c rabbitmq.Client, url string) (int, string, string) {
		cfg := config.Default()
		cfg.Messaging.URL, cfg.Messaging.CAFile, cfg.Messaging.CertFile, cfg.Messaging.KeyFile = url, b.CAFile(), c.CertFile, c.KeyFile
		var out, errOut bytes.Buffer
		code := runMessagingProbe(ctx, cfg, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := probe(good, b.URL()); code != 0 || errOut != "" ||
		out != "messaging: connected, logged in by certificate (EXTERNAL); publishing to amq.topic as org.fedoraproject.prod.kojibot.*\n" {
		t.Errorf("good certificate: %d, %q, %q", code, out, errOut)
	}
	if code, _, errOut := probe(foreign, b.URL()); code != 1 || !strings.Contains(errOut, "error: messaging: the broker refused the bot's client certificate (messaging.cert_file)") {
		t.Errorf("refused certificate: %d, %q", code, errOut)
	}
	if code, out, _ := probe(good, ""); code != 0 || !strings.Contains(out, "messaging: not configured") {
		t.Errorf("no url: %d, %q", code, out)
	}
}
