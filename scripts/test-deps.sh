#!/bin/sh
# Installs (as root, with apt) or names (otherwise) the real programs the
# tests run: Debian's Gunicorn and a setproctitle module for it, logrotate,
# promtool (from the prometheus package), Alertmanager (the receiver's
# end-to-end tests), PostgreSQL, PgBouncer, psycopg2, Chromium (the
# incident page's headless browser test) and
# systemd-analyze (from the systemd package; `make check-unit` runs it on the
# sample unit, no running systemd needed; the same package brings the
# systemd-journald, systemd-cat and journalctl the journal tests run, with
# unshare, nsenter and setpriv from util-linux), polkitd with a dbus-daemon
# (`make check-polkit` asks a private polkitd about the sample polkit rule),
# and gcc, which the race detector (`go test -race`) needs through cgo.
# Tests never use mocks of them.
set -eu

# package:command-or-file that proves it is installed
NEEDS="gcc:/usr/bin/gcc
gunicorn:/usr/bin/gunicorn
python3-setproctitle:/usr/lib/python3/dist-packages/setproctitle
logrotate:/usr/sbin/logrotate
prometheus:/usr/bin/promtool
prometheus-alertmanager:/usr/bin/amtool
postgresql:/usr/lib/postgresql/*/bin/initdb
pgbouncer:/usr/sbin/pgbouncer
python3-psycopg2:/usr/lib/python3/dist-packages/psycopg2
systemd:/usr/bin/systemd-analyze
iproute2:/usr/bin/ss
util-linux:/usr/bin/nsenter
chromium:/usr/bin/chromium
polkitd:/usr/lib/polkit-1/polkitd
dbus-daemon:/usr/bin/dbus-daemon"

missing=""
for entry in $NEEDS; do
	pkg=${entry%%:*}
	probe=${entry#*:}
	# $probe is unquoted on purpose: it may hold a glob (the PostgreSQL version).
	# shellcheck disable=SC2086
	if ! ls -d $probe >/dev/null 2>&1; then
		missing="$missing $pkg"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: installing Debian packages:$missing"
	export DEBIAN_FRONTEND=noninteractive
	# Update the package index only when it is missing or older than a day.
	if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
		apt-get update -qq
	fi
	# shellcheck disable=SC2086 # word splitting is the point
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
	# Debian starts the prometheus service on install; the tests start their
	# own on loopback, so do not leave a stray one listening on :9090.
	# The same for PostgreSQL's system cluster and PgBouncer.
	if command -v systemctl >/dev/null 2>&1; then
		systemctl stop prometheus prometheus-node-exporter prometheus-alertmanager postgresql pgbouncer 2>/dev/null || true
	fi
	exit 0
fi

echo "test-deps: missing Debian packages:$missing" >&2
echo "test-deps: run 'sudo make deps' (or: sudo apt-get install -y$missing)." >&2
echo "test-deps: tests that need them will be skipped (they fail when REFLEX_REQUIRE_REAL=1)." >&2
if [ "${REFLEX_REQUIRE_REAL:-}" = 1 ]; then
	exit 1
fi
exit 0
