package bot

import (
	"context"

	"github.com/fedora-infra/kojibot/commands"
)

// Handler is the interface between a transport and the commands: it runs
// one command line from a caller and sends its replies, structured
// messages (bot/reply), to out, which the transport renders. The commands
// dispatcher implements it; both transports call it.
type Handler interface {
	Handle(ctx context.Context, req commands.Request, out commands.Output)
}
