package commands

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/fedora-infra/kojibot/commands/fleet"
	"github.com/fedora-infra/kojibot/commands/kojiapi"
)

var reCreatedTask = regexp.MustCompile(`(?m)^Created task:? ([0-9]+)`)

// throughHub reports whether spec runs through the hub's API, needing no
// SSH: `override` with a Tagger.
func (d *Dispatcher) throughHub(spec *Spec) bool {
	return spec.Name == "override" && d.deps.Tagger != nil
}

// overridePoll is how often a waiting override asks for its tasks' state.
var overridePoll = kojiapi.DefaultTaskPoll

// cancelTimeout bounds the cancelTask calls of a cancelled override.
const cancelTimeout = 30 * time.Second

func (d *Dispatcher) runOverride(ctx context.Context, c *Call) error {
	cfg := d.deps.Config
	release := strings.ToLower(c.Arg("release"))
	tag := strings.ReplaceAll(cfg.Koji.OverrideTag, "{release}", release)
	nvrs := c.Args["nvr"]
	if d.deps.Tagger != nil {
		return d.overrideThroughHub(c, tag, nvrs)
	}
	f := d.deps.Fleet // the dispatcher checked it is there (NeedsFleet)
	if cfg.Koji.AdminHost == "" {
		return Userf("no admin host configured (koji.admin_host)")
	}
	// With the helper, the admin host's root runs the koji CLI with a Koji
	// identity only root can read, into a tag its own configuration allows
	// (override_tag); without it, koji.command runs as the bot's user.
	direct := append(strings.Fields(cfg.Koji.Command), "tag-build", "--wait", tag)
	argv := d.privileged(append(direct, nvrs...), "tag-build", append([]string{tag}, nvrs...)...)
	return c.StartJob(nil, func(ctx context.Context, c *Call) error {
		c.Reply("tagging %s into %s on %s", strings.Join(nvrs, ", "), tag, cfg.Koji.AdminHost)
		res, err := f.Run(ctx, cfg.Koji.AdminHost, argv, fleet.RunOptions{})
		if err != nil {
			return fmt.Errorf("koji on %s: %s", cfg.Koji.AdminHost, remoteMessage(err))
		}
		var tasks []string
		for _, m := range reCreatedTask.FindAllStringSubmatch(res.Stdout, -1) {
			tasks = append(tasks, m[1])
		}
		switch {
		case res.ExitCode == exitHelperRefused && d.usesHelper():
			return Userf("the admin host's helper refused: %s", lastLine(res.Stderr))
		}
		switch res.ExitCode {
		case 0:
			c.Reply("tagged %s into %s (task %s)", strings.Join(nvrs, ", "), tag, orNone(strings.Join(tasks, ", ")))
			return nil
		case 2:
			return Userf("koji refused the command line: %s", lastLine(res.Stderr))
		}
		msg := lastLine(res.Stderr)
		if msg == "" {
			msg = lastLine(res.Stdout)
		}
		if len(tasks) > 0 {
			msg += " (task " + strings.Join(tasks, ", ") + ")"
		}
		return Userf("koji tag-build failed: %s", msg)
	})
}

// hubTask is one tagBuild task of an override.
type hubTask struct {
	nvr   string
	id    int64
	ended bool
}

// overrideThroughHub tags each of nvrs into tag with the hub's tagBuild,
// as the caller (koji.hub.act_as_caller) or the bot's Koji user, then
// waits for the tasks as `koji tag-build --wait` does. Cancelling the job
// cancels the tasks that have not ended (cancelTask).
func (d *Dispatcher) overrideThroughHub(c *Call, tag string, nvrs []string) error {
	t := d.deps.Tagger
	return c.StartJob(nil, func(ctx context.Context, c *Call) error {
		ctx = kojiapi.ForCaller(ctx, c.FASUser)
		var tasks []*hubTask
		var failed []string
		for _, nvr := range nvrs {
			id, err := t.TagBuild(ctx, tag, nvr)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				if len(nvrs) == 1 {
					return err
				}
				failed = append(failed, nvr+": "+d.errorText(err))
				continue
			}
			tasks = append(tasks, &hubTask{nvr: nvr, id: id})
			msg := fmt.Sprintf("tagging %s into %s: Koji task %d", nvr, tag, id)
			if u := t.TaskURL(id); u != "" {
				msg += " " + u
			}
			c.Reply("%s", msg)
		}
		var tagged []string
		for _, task := range tasks {
			out, err := t.WaitTask(ctx, task.id, overridePoll)
			if ctx.Err() != nil {
				d.cancelTasks(ctx, c, tasks)
				return ctx.Err()
			}
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: Koji task %d: %s", task.nvr, task.id, d.errorText(err)))
				continue
			}
			task.ended = true
			switch out.State {
			case kojiapi.TaskClosed:
				tagged = append(tagged, fmt.Sprintf("%s (task %d)", task.nvr, task.id))
			case kojiapi.TaskFailed:
				failed = append(failed, fmt.Sprintf("%s: Koji task %d failed: %s", task.nvr, task.id, orNone(out.Reason)))
			default:
				failed = append(failed, fmt.Sprintf("%s: Koji task %d ended %s", task.nvr, task.id, kojiapi.TaskStateName(out.State)))
			}
		}
		if ctx.Err() != nil {
			d.cancelTasks(ctx, c, tasks)
			return ctx.Err()
		}
		if len(tagged) > 0 {
			c.Reply("tagged into %s: %s", tag, strings.Join(tagged, ", "))
		}
		if len(failed) > 0 {
			return Userf("not tagged into %s: %s", tag, strings.Join(failed, "; "))
		}
		return nil
	})
}

// cancelTasks cancels, after the job's ctx ended, the tasks that have not
// ended, and says so. When kojibot is shutting down rather than the job
// being cancelled, the tasks are left to Koji: they go on without the bot.
func (d *Dispatcher) cancelTasks(ctx context.Context, c *Call, tasks []*hubTask) {
	if d.jobs.base.Err() != nil {
		for _, task := range tasks {
			if !task.ended {
				c.Reply("kojibot is shutting down: Koji task %d (%s) goes on without it", task.id, task.nvr)
			}
		}
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer cancel()
	for _, task := range tasks {
		if task.ended {
			continue
		}
		if err := d.deps.Tagger.CancelTask(cctx, task.id); err != nil {
			c.Log.Warn("cancelling a Koji task", "task", task.id, "error", err)
			c.Reply("could not cancel Koji task %d (%s): %s", task.id, task.nvr, d.errorText(err))
			continue
		}
		c.Reply("cancelled Koji task %d (%s)", task.id, task.nvr)
	}
}

// errorText is err as a reply shows it: a known failure by its meaning,
// anything else redacted.
func (d *Dispatcher) errorText(err error) string {
	var ue *UserError
	if errors.As(err, &ue) {
		return ue.Msg
	}
	if msg, ok := systemMessage(err); ok {
		return msg
	}
	return publicError(err)
}
