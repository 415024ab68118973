package commands

import (
	"context"
	"time"

	"github.com/fedora-infra/kojibot/acl"
	"github.com/fedora-infra/kojibot/bot/reply"
	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojiapi"
	"github.com/fedora-infra/kojibot/commands/kojidb"
)

// Kind says what a reply is, which decides its prefix and the exit code of
// `kojibot exec`.
type Kind = reply.Kind

// The kinds of reply.
const (
	Info    = reply.Info    // a result or progress line
	Error   = reply.Error   // "error: ..." (exec exits 1)
	Usage   = reply.Usage   // "error: ..." followed by the usage line (exec exits 1)
	Denied  = reply.Denied  // "denied: ..." (exec exits 3)
	Confirm = reply.Confirm // "confirm: ..." with a token
)

// Transport names the way a request reached kojibot.
type Transport string

// The transports.
const (
	TransportIRC    Transport = "irc"
	TransportMatrix Transport = "matrix"
	TransportExec   Transport = "exec"
)

// Request is one command line from a caller, already stripped of the prefix.
type Request struct {
	// Account is the caller's services account; "" when not logged in.
	Account string
	// Transport is the transport the request came through: it decides
	// how the caller's identity is resolved (a Matrix id by the Matrix
	// rules) and is recorded in the audit.
	Transport Transport
	// TrustedFASUser, when set, is taken as the caller's FAS user without
	// any check: only kojibot exec --as sets it, for an operator on the
	// bot's host. No chat transport may.
	TrustedFASUser string
	// LocalUser is, for kojibot exec, the Unix user running it (its real
	// uid), for the audit record.
	LocalUser string
	// LoginUID and LoginUser are, for kojibot exec, the kernel's login uid
	// of the process (/proc/self/loginuid: who logged in to start the
	// session; sudo and su keep it, and a user cannot change it) and that
	// uid's user name, for the audit record. LoginUID is "unset" outside a
	// login session.
	LoginUID, LoginUser string
	// SudoUser is $SUDO_USER as kojibot exec found it. sudo sets it, but so
	// can whoever runs the bot, so the audit record calls it claimed
	// (sudo_user_claimed).
	SudoUser string
	// Nick is the caller's current nick, used only to address replies.
	Nick string
	// Place is the channel the line came from, or "" for a private message.
	Place string
	// PlaceName, when set, is how the place is shown beside Place (jobs,
	// the audit): a Matrix room's alias or name, Place being its id.
	PlaceName string
	// Text is the command line without the prefix.
	Text string
	// Received is when the line arrived.
	Received time.Time
	// AutoConfirm, when set (kojibot exec), answers a confirmation at once
	// instead of handing out a token.
	AutoConfirm func(plan reply.Message) bool
	// replan, when set, is the digest of the plan a caller confirmed in
	// another process: the command is planned again and run only when its
	// plan is still that one (ConfirmPlanKeyed).
	replan string
}

// Output receives a command's replies. One Send is one message, decided
// once (reply.Message); the transport renders, addresses, caps and paces
// it. An Output must stay usable after Handle returns: jobs keep reporting
// through it until they end.
type Output interface {
	Send(m reply.Message)
}

// ResultOutput is an Output that can mark a message as a job's result, so
// that a transport that sheds load never drops it. Outputs without it get
// the result through Send.
type ResultOutput interface {
	Output
	SendResult(m reply.Message)
}

// SendResult sends a job's result through out, marked as such when out
// supports it.
func SendResult(out Output, m reply.Message) {
	if r, ok := out.(ResultOutput); ok {
		r.SendResult(m)
		return
	}
	out.Send(m)
}

// ProgressOutput is an Output that can tell a job's progress from its other
// replies, so that a transport can gather one job's progress in one message
// (Matrix edits it). Outputs without it get progress through Send.
type ProgressOutput interface {
	Output
	SendProgress(jobID string, m reply.Message)
}

// KojiHosts is what the commands read and change of Koji's build hosts:
// through the hub's API (koji.hub.url, *kojiapi.Farm) or, without it,
// through the database (*kojidb.DB). Both return the same values and the
// same before/after semantics, so that the replies do not depend on the
// path.
type KojiHosts interface {
	// Hosts returns every build host, sorted by name.
	Hosts(ctx context.Context) ([]kojidb.Host, error)
	// SetCapacity sets a host's capacity and returns it before and after;
	// after equals before when it already had that capacity.
	SetCapacity(ctx context.Context, host string, capacity float64) (before, after kojidb.Host, err error)
	// SetEnabled enables or disables a host and, when comment is not
	// empty, sets its comment, as `koji enable-host` / `koji disable-host
	// --comment` do.
	SetEnabled(ctx context.Context, host string, enabled bool, comment string) (before, after kojidb.Host, err error)
	// ActiveBuildroots returns the ids of a host's buildroots in state
	// INIT, WAITING or BUILDING, ascending.
	ActiveBuildroots(ctx context.Context, host string) ([]int64, error)
}

// KojiBackends is what only the Koji database can tell: the hub role's
// backends (`connections`).
type KojiBackends interface {
	Backends(ctx context.Context, role string, olderThan time.Duration) ([]kojidb.Backend, error)
	TerminateBackends(ctx context.Context, role string, olderThan time.Duration, shown []kojidb.Backend) (terminated, skipped []kojidb.Backend, err error)
}

// KojiTagger tags builds through the hub's API (tagBuild, under Koji's
// own tag policy) and follows the tasks it makes: *kojiapi.Farm.
type KojiTagger interface {
	// TagBuild asks the hub to tag nvr into tag and returns the task id.
	TagBuild(ctx context.Context, tag, nvr string) (int64, error)
	// WaitTask asks for the task's state every poll until it ends.
	WaitTask(ctx context.Context, id int64, poll time.Duration) (kojiapi.TaskOutcome, error)
	// CancelTask cancels the task.
	CancelTask(ctx context.Context, id int64) error
	// TaskURL is the task's page on the hub's web UI, or "".
	TaskURL(id int64) string
}

// KojiDB is what the commands need of the Koji database when it is the
// way to Koji's hosts as well (no koji.hub.url): *kojidb.DB.
type KojiDB interface {
	KojiHosts
	KojiBackends
}

// Fleet is what the commands need of the machines reached over SSH.
type Fleet interface {
	Run(ctx context.Context, host string, argv []string, opts fleet.RunOptions) (fleet.Result, error)
	Service(ctx context.Context, host, action, service string) (fleet.Result, error)
	Each(ctx context.Context, hosts []string, fn func(ctx context.Context, host string) error) map[string]error
	DiskUsage(ctx context.Context, host string, paths []string) ([]fleet.Usage, error)
}

// Authorizer decides whether a caller may run a command.
type Authorizer interface {
	Authorize(ctx context.Context, caller acl.Caller, command string, readOnly bool) acl.Decision
}
