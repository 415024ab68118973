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
#
# A service with a unit file, /etc/fakesvc/SERVICE.cmd in the machine's own
# /etc, runs that shell command line (as root, in its own session, with
# FAKESVC_UNIT=SERVICE in its environment; it redirects its own output)
# instead of the sleeping stand-in: a real daemon, such as kojid. stop then
# ends its whole process group.
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
unit=/etc/fakesvc/$svc.cmd

journal() {
	echo "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ) $action $svc $1" >>"$state/journal"
}

# running sets pid and succeeds when the service's process is alive (a
# zombie's cmdline is empty, so it does not count): the stand-in by its
# name, a unit's command by the mark in its environment (either, so that a
# stand-in started before its unit was written is still stopped).
running() {
	pid=
	[ -f "$pidfile" ] || return 1
	read -r pid <"$pidfile" 2>/dev/null || return 1
	[ -n "$pid" ] || return 1
	local cmdline
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
	[ -n "$cmdline" ] || return 1
	[ "$cmdline" = "fakesvc:$svc infinity " ] && return 0
	tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "FAKESVC_UNIT=$svc"
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
	if [ -f "$unit" ]; then
		setsid bash -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1" && FAKESVC_UNIT=$2 exec bash -c "$(cat "$3")"' \
			fakesvc "$pidfile" "$svc" "$unit" </dev/null >/dev/null 2>&1 &
	else
		setsid bash -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1" && exec -a "fakesvc:$2" sleep infinity' \
			fakesvc "$pidfile" "$svc" </dev/null >/dev/null 2>&1 &
	fi
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
		# The whole group: a unit's daemon and its children (setsid made
		# pid the leader of both session and group).
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 100); do
			running || break
			sleep 0.05
		done
		if running; then
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
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
