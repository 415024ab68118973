package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/fedora-infra/kojibot/commands/state"
)

// standbyRetry is how often a standby tries to take the leadership.
var standbyRetry = time.Second

// errLostLeadership ends a leader whose lock connection broke: it stops
// acting at once and exits non-zero, so that its service manager
// (systemd's Restart=on-failure, OpenShift's restart policy) starts it
// again, as a standby.
var errLostLeadership = errors.New("lost the leadership (the state store's lock connection broke): stopping at once; restart as a standby")

// awaitLeadership makes the `kojibot run` sharing the PostgreSQL store
// st a standby until it leads: it connects to no chat, watches nothing,
// runs no job and serves no action; on http.listen it answers /healthz
// "standby" (200), with the leader's holder and term, and everything else
// 503. It tries to take the leadership every standbyRetry, and returns the
// leadership, bound to st (every write of st carries its term), or nil
// when ctx ends first.
func awaitLeadership(ctx context.Context, sys *system, st *state.Store) (*state.Leader, error) {
	log := sys.log.With("component", "leader")
	if err := st.SetRole(ctx, state.RoleStandby); err != nil {
		log.Warn("could not record this process as a standby", "error", err)
	}
	var srv *http.Server
	if listen := sys.cfg.HTTP.Listen; listen != "" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return nil, fmt.Errorf("http.listen: %w", err)
		}
		srv = &http.Server{Handler: standbyHandler(st), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
	}
	stopServer := func() {
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}
	}
	defer stopServer()
	notify := newSystemdNotifier(sys.log.With("component", "systemd"))
	told := false
	for {
		l, ok, err := st.TryLead(ctx, state.Holder())
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("could not try to lead", "error", err)
		case ok:
			st.Bind(l)
			if err := st.SetRole(ctx, state.RoleLeader); err != nil {
				log.Warn("could not record this process as the leader", "error", err)
			}
			log.Info("leading", "term", l.Term, "holder", state.Holder())
			return l, nil
		case !told:
			told = true
			log.Info("standby: another kojibot leads; trying again every second", "retry", standbyRetry)
			// systemd: a standby is up and well.
			notify.notify("READY=1\nSTATUS=standby")
		}
		// systemd's WatchdogSec= holds for a standby too.
		if notify.watchdog > 0 {
			notify.notify("WATCHDOG=1")
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(standbyRetry):
		}
	}
}

// standbyHandler serves a standby's HTTP: /healthz says "standby" and
// who leads; nothing else is served.
func standbyHandler(st *state.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		li, err := st.Leadership(ctx)
		switch {
		case err != nil:
			fmt.Fprintln(w, "standby: the leader cannot be read from the state store")
		case li == nil || !li.Held:
			fmt.Fprintln(w, "standby: no leader at the moment; taking over")
		default:
			fmt.Fprintf(w, "standby: leader %s (term %d)\n", li.Holder, li.Term)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "standby: another kojibot process leads and serves this", http.StatusServiceUnavailable)
	})
	return mux
}
