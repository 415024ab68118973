// Package alerting decides when a watched check notifies, as a pure function
// of its past state, the current observation and the time: once when it
// starts failing, again every Policy.Repeat while it fails, once when it
// clears; a check that cannot run is reported once, and so is its recovery.
//
// A notification counts only once it was sent: Step returns the next state
// without recording it, and Tracker hands it back in a Pending that the
// caller commits after the notification went out. Until then the check's
// recorded state is unchanged, so the next observation yields the
// notification again.
package alerting

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Notification is what, if anything, a step of a check has to say.
type Notification int

// The notifications.
const (
	// None: nothing to say.
	None Notification = iota
	// Firing: the check has started failing.
	Firing
	// Repeat: the check still fails, and Policy.Repeat has passed since the
	// last notification about it.
	Repeat
	// Resolved: the check failed and no longer does.
	Resolved
	// CheckFailed: the check could not run (its Observation has an Err).
	CheckFailed
	// CheckRecovered: the check runs again after CheckFailed, and its
	// result is unchanged. (When the result changed, Firing or Resolved is
	// returned instead: either says that the check runs again.)
	CheckRecovered
)

var notificationNames = [...]string{
	None:           "none",
	Firing:         "firing",
	Repeat:         "repeat",
	Resolved:       "resolved",
	CheckFailed:    "check-failed",
	CheckRecovered: "check-recovered",
}

// String returns the notification's lower-case name, e.g. "firing".
func (n Notification) String() string {
	if n >= 0 && int(n) < len(notificationNames) {
		return notificationNames[n]
	}
	return fmt.Sprintf("Notification(%d)", int(n))
}

// Observation is one run of a check. Build it with Failed, Measured or
// Errored.
type Observation struct {
	// Err, when set, means that the check could not run; the other fields
	// are then ignored.
	Err error
	// HasValue selects Value and Threshold over Failing.
	HasValue bool
	// Failing is a pass/fail check's result.
	Failing bool
	// Value is a measured check's result, failing at Threshold or above
	// (with Policy.Hysteresis to clear).
	Value, Threshold float64
}

// Failed returns the observation of a pass/fail check.
func Failed(failing bool) Observation {
	return Observation{Failing: failing}
}

// Measured returns the observation of a check that measures value against
// threshold: it fails at value >= threshold and, once failing, clears only
// below threshold - Policy.Hysteresis. A NaN value counts as an error.
func Measured(value, threshold float64) Observation {
	return Observation{HasValue: true, Value: value, Threshold: threshold}
}

// Errored returns the observation of a check that could not run.
func Errored(err error) Observation {
	if err == nil {
		err = errors.New("check failed to run")
	}
	return Observation{Err: err}
}

// Policy says how often to remind and how far a measured value must fall
// to clear.
type Policy struct {
	// Repeat is the reminder interval while a check fails (watch.repeat);
	// zero or negative means no reminders.
	Repeat time.Duration
	// Hysteresis is how far below its threshold a measured value must fall
	// for a firing check to clear; negative counts as zero.
	Hysteresis float64
}

// State is what is remembered of a check between observations. The zero
// State is a check that has never failed nor notified.
type State struct {
	// Firing is whether the check is failing (as last notified).
	Firing bool
	// Since is when Firing last changed: when the current failure started,
	// or when the last one cleared. Zero if it never fired.
	Since time.Time
	// LastNotified is when the last Firing, Repeat or Resolved was sent.
	LastNotified time.Time
	// LastValue is the last measured value (Measured observations only).
	LastValue float64
	// Erroring is whether the check cannot run (CheckFailed was sent).
	Erroring bool
	// ErrorSince is when the check stopped running, if Erroring.
	ErrorSince time.Time
	// LastError is the last error's text, while Erroring.
	LastError string
}

// Step is the notification logic, a pure function: given the check's
// recorded state prev, a new observation, the policy and the time, it
// returns the state to record and the notification to send.
//
// Contract: when n is None, record next at once. Otherwise send n first and
// record next only once it was sent; if sending fails keep prev, and the
// next Step yields the notification again. (Tracker does this bookkeeping.)
//
// While a check cannot run nothing but its CheckFailed is said: its failure
// is neither reminded nor resolved, as its state is unknown.
func Step(prev State, obs Observation, p Policy, now time.Time) (next State, n Notification) {
	next = prev
	if obs.Err == nil && obs.HasValue && math.IsNaN(obs.Value) {
		obs = Errored(fmt.Errorf("measured value is NaN"))
	}
	if obs.Err != nil {
		next.LastError = obs.Err.Error()
		if prev.Erroring {
			return next, None
		}
		next.Erroring = true
		next.ErrorSince = now
		return next, CheckFailed
	}

	recovering := prev.Erroring
	next.Erroring = false
	next.ErrorSince = time.Time{}
	next.LastError = ""

	failing := obs.Failing
	if obs.HasValue {
		next.LastValue = obs.Value
		clearBelow := obs.Threshold
		if prev.Firing {
			clearBelow -= max(p.Hysteresis, 0)
		}
		failing = obs.Value >= clearBelow
	}

	switch {
	case failing && !prev.Firing:
		next.Firing = true
		next.Since = now
		next.LastNotified = now
		return next, Firing
	case !failing && prev.Firing:
		next.Firing = false
		next.Since = now
		next.LastNotified = now
		return next, Resolved
	case recovering:
		return next, CheckRecovered
	case failing && p.Repeat > 0 && now.Sub(prev.LastNotified) >= p.Repeat:
		next.LastNotified = now
		return next, Repeat
	}
	return next, None
}
