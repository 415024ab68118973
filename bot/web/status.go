package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"

	"github.com/fedora-infra/kojibot/commands"
	"github.com/fedora-infra/kojibot/commands/kojidb"
	"github.com/fedora-infra/kojibot/commands/watch/trend"
)

// StatusPoll is how often /status/events looks for a change of the page.
const StatusPoll = 5 * time.Second

// StatusDrafts is how many outage drafts /status lists, newest first.
const StatusDrafts = 5

// HostReader reads Koji's build hosts for /status, as *kojidb.DB and
// *kojiapi.Farm do.
type HostReader interface {
	Hosts(ctx context.Context) ([]kojidb.Host, error)
}

// StatusSource is what /status shows. Every field may be nil.
type StatusSource struct {
	// Hosts reads the build hosts.
	Hosts HostReader
	// StaleAfter marks a host whose last check-in is older (0: never).
	StaleAfter time.Duration
	// Mounts are the builder and shared mounts shown with their last
	// reading from Options.Samples and their fill rate.
	Mounts []Mount
	// FullPercent is the fill at which a mount is full (disk.full_percent).
	FullPercent float64
	// Firing returns the alerts that fire, as *watch.Watcher does.
	Firing func() []string
	// Running returns the running jobs, as *commands.Dispatcher does.
	Running func() []*commands.Job
}

type statusHost struct {
	Name, Enabled, Ready, Load, Checkin, Comment string
	Stale                                        bool
}

type statusMount struct {
	Label, PercentText, Rate string
	Percent                  float64
	Full                     bool
}

type statusJob struct{ ID, Command, Owner, Progress, Link string }

type statusDraft struct{ ID, Service, Created, Link string }

type statusPage struct {
	Now, HostsError string
	DraftsError     string
	FullPercent     float64
	Alerts          []string
	Hosts           []statusHost
	Mounts          []statusMount
	Jobs            []statusJob
	Drafts          []statusDraft
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// statusData gathers what /status shows.
func (s *Server) statusData(ctx context.Context) statusPage {
	src := s.opts.Status
	now := s.opts.Now()
	p := statusPage{Now: now.UTC().Format("2006-01-02 15:04:05 UTC"), FullPercent: src.FullPercent}
	if p.FullPercent <= 0 {
		p.FullPercent = 90
	}
	if src.Firing != nil {
		p.Alerts = src.Firing()
	}
	if src.Hosts != nil {
		ctx, cancel := context.WithTimeout(ctx, HealthTimeout)
		hosts, err := src.Hosts.Hosts(ctx)
		cancel()
		if err != nil {
			s.log.Warn("status page: the hosts cannot be read", "err", err)
			p.HostsError = "The build hosts cannot be read now."
		}
		for _, h := range hosts {
			sh := statusHost{Name: h.Name, Enabled: yesNo(h.Enabled), Ready: yesNo(h.Ready), Comment: h.Comment,
				Load: fmt.Sprintf("%.1f / %.1f", h.TaskLoad, h.Capacity), Checkin: "never"}
			if !h.LastCheckin.IsZero() {
				sh.Checkin = h.CheckinAge.Round(time.Second).String() + " ago"
			}
			sh.Stale = h.Enabled && src.StaleAfter > 0 && (h.LastCheckin.IsZero() || h.CheckinAge > src.StaleAfter)
			p.Hosts = append(p.Hosts, sh)
		}
	}
	if s.opts.Samples != nil {
		for _, m := range src.Mounts {
			samples := s.opts.Samples.Recent(m.Check, now.Add(-ChartSpan))
			if len(samples) == 0 {
				continue
			}
			last := samples[len(samples)-1]
			sm := statusMount{Label: m.Label, Percent: last.Percent, PercentText: fmt.Sprintf("%.1f%%", last.Percent),
				Full: last.Percent >= p.FullPercent, Rate: "not known yet"}
			if pr := trend.Estimate(samples); pr.OK {
				sm.Rate = pr.String() // as the alerts and disk say it
			}
			p.Mounts = append(p.Mounts, sm)
		}
	}
	if src.Running != nil {
		for _, j := range src.Running() {
			if j.Place == "" {
				continue // a private message's job is its owner's alone
			}
			log := j.Log()
			progress := "started"
			if len(log) > 0 {
				progress = log[len(log)-1]
			}
			p.Jobs = append(p.Jobs, statusJob{ID: j.ID, Command: j.Command, Owner: j.Owner, Progress: progress, Link: "/jobs/" + j.Token})
		}
	}
	if s.opts.Drafts != nil {
		drafts, err := s.opts.Drafts.List() // newest first
		if err != nil {
			s.log.Warn("status page: the outage drafts cannot be read", "err", err)
			p.DraftsError = "The outage drafts cannot be read now."
		}
		for _, d := range drafts[:min(len(drafts), StatusDrafts)] {
			p.Drafts = append(p.Drafts, statusDraft{ID: d.ID, Service: d.Service, Created: d.Created.UTC().Format("2006-01-02 15:04 UTC"), Link: d.Path()})
		}
	}
	return p
}

// sharedStatus is statusData as read for every viewer at most once per
// half StatusPoll. A viewer that comes while it is being read waits for
// that read rather than starting another.
func (s *Server) sharedStatus(ctx context.Context) statusPage {
	s.page.Lock()
	defer s.page.Unlock()
	if !s.page.at.IsZero() && time.Since(s.page.at) < s.statusPoll/2 {
		return s.page.data
	}
	// Not the viewer's context: a viewer who leaves must not leave an
	// error on the page the others are shown.
	s.page.data = s.statusData(context.WithoutCancel(ctx))
	s.page.at = time.Now()
	return s.page.data
}

// status serves /status, the farm on one page; only when
// http.status_page is on (Options.StatusPage).
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	s.writeHTML(w, "status.html", s.sharedStatus(r.Context()))
}

// statusEvents sends a "changed" event whenever what /status shows
// changes, looked at every StatusPoll, until the client goes.
func (s *Server) statusEvents(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	var last [32]byte
	tick := time.NewTicker(s.statusPoll)
	defer tick.Stop()
	for first := true; ; first = false {
		_ = rc.SetWriteDeadline(time.Now().Add(s.statusPoll + time.Minute))
		p := s.sharedStatus(r.Context())
		p.Now = ""
		var b bytes.Buffer
		if err := pages.ExecuteTemplate(&b, "status.html", p); err == nil {
			sum := sha256.Sum256(b.Bytes())
			if !first && sum != last {
				if _, err := w.Write([]byte("event: changed\ndata: \n\n")); err != nil {
					return
				}
				if rc.Flush() != nil {
					return
				}
			}
			last = sum
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}
