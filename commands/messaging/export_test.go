package messaging

import (
	"context"

	"github.com/fedora-infra/kojibot/config"
)

// DiagnoseForTest is the second look Dial takes when amqp091 closed the
// connection without a reason: the broker's verdict, in the operator's words.
func DiagnoseForTest(ctx context.Context, cfg config.Messaging) error {
	tc, err := TLSConfig(cfg)
	if err != nil {
		return err
	}
	if why := diagnose(ctx, cfg, tc); why != nil {
		return explain(why)
	}
	return nil
}
