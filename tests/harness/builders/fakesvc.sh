#!/bin/bash
# fakesvc [--no-pager] ACTION SERVICE — the stand-in for "systemctl ACTION SERVICE" on a
# kojibot test builder (tests/harness/builders). Each running service is a
# real process, "fakesvc:SERVICE" in ps/pgrep -f, whose pid file lives in the
# builder's own tmpfs at /run/fakesvc, so every builder has its own services
# and a restarted ("rebooted") builder starts clean.
#
#   start      start it unless running; fails (exit 1) while
#              /run/fakesvc/SERVICE.broken exists
#   stop       SIGTERM, then SIGKILL after 5 s; waits until it is gone
#   restart    stop, then start
#   is-active  prints active (exit 0) or inactive (exit 3)
#   status     a short systemctl-like status (exit 0 or 3)
#
# start, stop and restart append "TIME ACTION SERVICE RESULT" to
# /run/fakesvc/journal.
set -u
state=/run/fakesvc
# --no-pager, as systemctl takes it: there is no pager here anyway.
if [ "${1:-}" = --no-pager ]; then
	shift
fi
action=${1:-}
svc=${2:-}

usage() {
	echo "usage: fakesvc start|stop|restart|is-active|status SERVICE" >&2
	exit 2
}
[ $# -eq 2 ] || usage
case $svc in
'' | -* | *[!a-zA-Z0-9@._-]*)
	echo "fakesvc: invalid service name: $svc" >&2
	exit 2
	;;
esac
mkdir -p "$state"
pidfile=$state/$svc.pid

journal() {
	echo "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ) $action $svc $1" >>"$state/journal"
}

# running sets pid and succeeds when the service's process is alive (a
# zombie's cmdline is empty, so it does not count).
running() {
	pid=
	[ -f "$pidfile" ] || return 1
	read -r pid <"$pidfile" 2>/dev/null || return 1
	[ -n "$pid" ] || return 1
	[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" = "fakesvc:$svc infinity " ]
}

start() {
	if [ -e "$state/$svc.broken" ]; then
		echo "Job for $svc.service failed because the control process exited with error code." >&2
		journal failed
		return 1
	fi
	if running; then
		return 0
	fi
	rm -f "$pidfile"
	setsid bash -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1" && exec -a "fakesvc:$2" sleep infinity' \
		fakesvc "$pidfile" "$svc" </dev/null >/dev/null 2>&1 &
	for _ in $(seq 100); do
		if running; then
			journal ok
			return 0
		fi
		sleep 0.05
	done
	echo "fakesvc: $svc did not start" >&2
	journal failed
	return 1
}

stop() {
	if running; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 100); do
			running || break
			sleep 0.05
		done
		if running; then
			kill -KILL "$pid" 2>/dev/null
			sleep 0.1
		fi
	fi
	rm -f "$pidfile"
	journal ok
}

case $action in
start) start ;;
stop) stop ;;
restart) stop && start ;;
is-active)
	if running; then
		echo active
	else
		echo inactive
		exit 3
	fi
	;;
status)
	if running; then
		printf '● %s.service - %s (fakesvc stand-in)\n     Active: active (running)\n   Main PID: %s\n' "$svc" "$svc" "$pid"
	else
		printf '○ %s.service - %s (fakesvc stand-in)\n     Active: inactive (dead)\n' "$svc" "$svc"
		exit 3
	fi
	;;
*) usage ;;
esac
