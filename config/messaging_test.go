package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateMessaging: no url publishes nothing and passes; a full
// section passes; each broken key is named with what is expected.
func TestValidateMessaging(t *testing.T) {
	_, cert, ca := hubFiles(t)
	missing := filepath.Join(t.TempDir(), "missing")
	good := Messaging{URL: "amqps://rabbitmq.example.org/%2Fpubsub", TopicPrefix: "org.fedoraproject.prod", Exchange: "amq.topic",
		CAFile: ca, CertFile: cert, KeyFile: cert, QueueLimit: 10}
	for name, m := range map[string]Messaging{"none": Default().Messaging, "full": good} {
		c := validConfig()
		c.Messaging = m
		if err := c.ValidateWith(knownCommands); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	tests := []struct {
		name string
		set  func(*Messaging)
		key  string
		says []string
	}{
		{"plain amqp", func(m *Messaging) { m.URL = "amqp://rabbitmq.example.org/" }, "messaging.url", []string{"amqps"}},
		{"password in url", func(m *Messaging) { m.URL = "amqps://bot:hunter2@rabbitmq.example.org/" }, "messaging.url", []string{"EXTERNAL"}},
		{"no cert", func(m *Messaging) { m.CertFile = "" }, "messaging.cert_file", []string{"empty", "PEM"}},
		{"key missing", func(m *Messaging) { m.KeyFile = missing }, "messaging.key_file", []string{"does not exist"}},
		{"ca missing", func(m *Messaging) { m.CAFile = missing }, "messaging.ca_file", []string{"does not exist"}},
		{"wildcard prefix", func(m *Messaging) { m.TopicPrefix = "org.#" }, "messaging.topic_prefix", []string{`"org.#"`}},
		{"no exchange", func(m *Messaging) { m.Exchange = "" }, "messaging.exchange", []string{"amq.topic"}},
		{"queue limit", func(m *Messaging) { m.QueueLimit = 0 }, "messaging.queue_limit", []string{"positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Messaging = good
			tt.set(&c.Messaging)
			kes := keyErrors(t, c.ValidateWith(knownCommands))
			if len(kes) != 1 {
				t.Fatalf("want exactly one problem, got %d: %v", len(kes), kes)
			}
			if kes[0].Key != tt.key {
				t.Errorf("named %q, want %q (%v)", kes[0].Key, tt.key, kes[0])
			}
			for _, s := range tt.says {
				if !strings.Contains(kes[0].Problem, s) {
					t.Errorf("%q does not say %q", kes[0].Error(), s)
				}
			}
			if strings.Contains(kes[0].Error(), "hunter2") {
				t.Errorf("the password is shown: %v", kes[0])
			}
		})
	}
}
