#!/usr/bin/env bash
# bench-disk-all.sh — benchmark `!koji disk all` over 50 real sshd builders,
# kojibot (new connections, then cached ones) against pdsh -R ssh.
#
# Installs what the benchmark needs when missing (as `make deps` does), then
# runs tests/bench/diskall with the given flags, e.g.:
#   scripts/bench-disk-all.sh -rounds 20
#   scripts/bench-disk-all.sh -builders 100 -parallel 64
#   scripts/bench-disk-all.sh -subsystem none   # builders without sftp: kojibot falls back to df
# (The watcher's sweep over 500 builders is tests/bench/sweep:
#   go run ./tests/bench/sweep -builders 500 -parallel 64 -rounds 10)
# It must run as root (the builders are sshds in their own namespaces with
# tmpfs mounts). Every sshd it starts is stopped when it ends, Ctrl-C too.
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench-disk-all: must run as root (sshd, unshare, tmpfs mounts)" >&2
	exit 1
fi

missing=()
for p in pdsh openssh-server openssh-client util-linux; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "installing: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

exec "${GO:-go}" run ./tests/bench/diskall "$@"
