package kojiapi

// The shared hub and its helpers, for the tests of package kojiapi_test
// (the commands through the hub).
var (
	SeededHub   = seededHub
	UpstreamHub = upstreamHub
	CertClient  = certClient
	TestLogger  = testLogger
)

// BotUser is the Koji user of the bot in these tests.
const BotUser = botUser
