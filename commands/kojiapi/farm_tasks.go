package kojiapi

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Koji's task states (koji.TASK_STATES).
const (
	TaskFree     = 0
	TaskOpen     = 1
	TaskClosed   = 2
	TaskCanceled = 3
	TaskAssigned = 4
	TaskFailed   = 5
)

// taskStateNames are the names of the task states, as Koji shows them.
var taskStateNames = map[int]string{
	TaskFree: "FREE", TaskOpen: "OPEN", TaskClosed: "CLOSED", TaskCanceled: "CANCELED",
	TaskAssigned: "ASSIGNED", TaskFailed: "FAILED",
}

// TaskStateName is the name Koji gives task state s ("CLOSED"...).
func TaskStateName(s int) string {
	if n, ok := taskStateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("state %d", s)
}

// TaskEnded reports whether task state s is final: CLOSED, CANCELED or
// FAILED.
func TaskEnded(s int) bool { return s == TaskClosed || s == TaskCanceled || s == TaskFailed }

// TaskOutcome is how a task ended.
type TaskOutcome struct {
	// State is the task's final state (TaskClosed, TaskCanceled or
	// TaskFailed).
	State int
	// Reason is, for a failed task, the message of the fault its result
	// holds (getTaskResult), e.g. "build foo-1.0-1 already tagged".
	Reason string
}

// DefaultTaskPoll is how often WaitTask asks for a task's state, as the
// koji CLI's --wait does (its poll_interval).
const DefaultTaskPoll = 2 * time.Second

// TagBuild asks the hub to tag build nvr into tag (tagBuild), in the
// session of the caller in ctx (ForCaller) with act_as_caller, and returns
// the id of the task it made for a kojid. tagBuild needs the tag's
// permission (or the hub's tag policy to allow it): a refusal is a
// PermissionError naming "tag". A tagBuild whose answer was lost is not
// sent again (a second task would tag twice): kojiapi.ErrOutcomeUnknown.
func (f *Farm) TagBuild(ctx context.Context, tag, nvr string) (int64, error) {
	caller := callerOf(ctx)
	k := f.c.As(caller)
	if !f.opts.ActAsCaller {
		caller = ""
	}
	v, err := k.CallWrite(ctx, nil, "tagBuild", tag, nvr)
	if err != nil {
		return 0, refusal(err, "tagBuild "+tag+" "+nvr, "tag", caller)
	}
	id, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("kojihub: tagBuild answered %T, not a task id", v)
	}
	return id, nil
}

// TaskState returns task id's state (getTaskInfo).
func (f *Farm) TaskState(ctx context.Context, id int64) (int, error) {
	v, err := f.c.Call(ctx, "getTaskInfo", id)
	if err != nil {
		return 0, refusal(err, fmt.Sprintf("getTaskInfo %d", id), "", "")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return 0, fmt.Errorf("kojihub: getTaskInfo %d answered %T: no such task", id, v)
	}
	s, ok := m["state"].(int64)
	if !ok {
		return 0, fmt.Errorf("kojihub: getTaskInfo %d has no state", id)
	}
	return int(s), nil
}

// WaitTask asks for task id's state every poll (DefaultTaskPoll when not
// positive) until it ends, as `koji tag-build --wait` does, and returns how
// it ended; a failed task's reason is its result's fault. It returns ctx's
// error when ctx ends first, leaving the task as it is.
func (f *Farm) WaitTask(ctx context.Context, id int64, poll time.Duration) (TaskOutcome, error) {
	if poll <= 0 {
		poll = DefaultTaskPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		s, err := f.TaskState(ctx, id)
		if err != nil {
			return TaskOutcome{}, err
		}
		if TaskEnded(s) {
			out := TaskOutcome{State: s}
			if s == TaskFailed {
				out.Reason = f.taskFault(ctx, id)
			}
			return out, nil
		}
		select {
		case <-ctx.Done():
			return TaskOutcome{}, ctx.Err()
		case <-t.C:
		}
	}
}

// taskFault is the message of the fault a failed task's result raises
// (getTaskResult), or "" when it cannot be read.
func (f *Farm) taskFault(ctx context.Context, id int64) string {
	_, err := f.c.Call(ctx, "getTaskResult", id)
	var fault *Fault
	if errors.As(err, &fault) {
		return fault.Message()
	}
	return ""
}

// CancelTask cancels task id (cancelTask) in the session of the caller in
// ctx (ForCaller) with act_as_caller; the hub allows it to the task's
// owner and to admins. A task that already ended is left as it is.
func (f *Farm) CancelTask(ctx context.Context, id int64) error {
	caller := callerOf(ctx)
	k := f.c.As(caller)
	if !f.opts.ActAsCaller {
		caller = ""
	}
	check := func(ctx context.Context) (bool, error) {
		s, err := f.TaskState(ctx, id)
		return err == nil && TaskEnded(s), err
	}
	_, err := k.CallWrite(ctx, check, "cancelTask", id)
	return refusal(err, fmt.Sprintf("cancelTask %d", id), "admin", caller)
}
