package commands

import (
	"context"
	"errors"
	"fmt"
)

// serviceVerbs words each service action in an error: "stopping kojid".
var serviceVerbs = map[string]string{"stop": "stopping", "start": "starting", "restart": "restarting"}

// serviceStep is the one service step of every job and of the recovery:
// run action (stop, start or restart) on host's service, then check with
// is-active that the service is in the state the action should leave it
// in: inactive after a stop, active after a start or a restart. The
// journal is the caller's: it records before a stop or a restart and
// closes after a start or restart succeeds.
func serviceStep(ctx context.Context, f Fleet, host, action, service string) error {
	verb := serviceVerbs[action]
	if verb == "" {
		return fmt.Errorf("internal error: service action %q", action)
	}
	res, err := f.Service(ctx, host, action, service)
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, service, err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%s %s: exit %d: %s", verb, service, res.ExitCode, lastLine(res.Stderr+res.Stdout))
	}
	res, err = f.Service(ctx, host, "is-active", service)
	if err != nil {
		return fmt.Errorf("checking %s: %w", service, err)
	}
	switch active := res.ExitCode == 0; {
	case action == "stop" && active:
		return errors.New(service + " is still active after stop")
	case action != "stop" && !active:
		return fmt.Errorf("%s is not active after %s", service, action)
	}
	return nil
}
