package config

import (
	"net/url"
	"regexp"
)

// topicPrefixRE is a routing key's start: dot-separated words, no AMQP
// wildcard.
var topicPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// validateMessaging checks the messaging section when messaging.url is
// set: an amqps URL without a password (the broker logs the bot in by its
// certificate), the certificate and key files readable, a topic prefix
// and an exchange.
func (c *Config) validateMessaging(v *validator) {
	m := &c.Messaging
	if m.QueueLimit <= 0 {
		v.addf("messaging.queue_limit", "%d is not positive; expected how many messages may wait for the broker, e.g. 10000", m.QueueLimit)
	}
	if m.URL == "" {
		return
	}
	u, err := url.Parse(m.URL)
	switch {
	case err != nil || u.Scheme != "amqps" || u.Host == "":
		v.addf("messaging.url", "is not an amqps URL; expected e.g. \"amqps://rabbitmq.fedoraproject.org/%%2Fpubsub\", or \"\" to publish nothing")
	case u.User != nil:
		v.addf("messaging.url", "holds a user name or password; expected none: the broker logs the bot in by messaging.cert_file (EXTERNAL)")
	}
	if !topicPrefixRE.MatchString(m.TopicPrefix) {
		v.addf("messaging.topic_prefix", "%q is not a topic prefix; expected dot-separated words, e.g. \"org.fedoraproject.prod\"", m.TopicPrefix)
	}
	if m.Exchange == "" {
		v.addf("messaging.exchange", "is empty; expected the exchange to publish to, e.g. \"amq.topic\"")
	}
	for _, f := range []struct{ key, path, want string }{
		{"messaging.cert_file", m.CertFile, "the bot's client certificate (PEM), e.g. \"/etc/kojibot/messaging.crt\""},
		{"messaging.key_file", m.KeyFile, "the key of messaging.cert_file (PEM), e.g. \"/etc/kojibot/messaging.key\""},
	} {
		if f.path == "" {
			v.addf(f.key, "is empty with messaging.url set; expected %s", f.want)
		} else if problem := readProblem(f.path, nil); problem != "" {
			v.addf(f.key, "%q %s", f.path, problem)
		}
	}
	if m.CAFile != "" {
		if problem := readProblem(m.CAFile, nil); problem != "" {
			v.addf("messaging.ca_file", "%q %s", m.CAFile, problem)
		}
	}
}
