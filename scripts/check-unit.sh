#!/bin/sh
# Checks deploy/gunicorn-reflex.service the way systemd would see it, with the
# real binary built from this tree (make check-unit builds it first):
#  1. `systemd-analyze verify` accepts the unit (any warning fails too). The
#     machine need not run systemd; only ExecStart is pointed at the built
#     binary, because verify requires the program to exist.
#  2. The unit's ExecStart arguments are accepted by that binary
#     (--config.check, with the example config in place of /etc's).
#  3. `systemd-analyze security --offline=yes` rates its exposure at most
#     MAX_EXPOSURE (tenths: 20 is "2.0"). Raise it only with a reason.
#  4. The capabilities the unit says discovery needs are really granted:
#     the analyser sees CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH in the bounding
#     set (an empty CapabilityBoundingSet= after them would drop both).
# Usage: scripts/check-unit.sh BINARY
set -eu

MAX_EXPOSURE=20
unit=deploy/gunicorn-reflex.service
bin=$(realpath "$1")

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "check-unit: systemd-analyze not found (Debian package systemd); unit not checked" >&2
	[ "${REFLEX_REQUIRE_REAL:-}" = 1 ] && exit 1
	exit 0
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|^ExecStart=/usr/local/bin/gunicorn-reflex |ExecStart=$bin |" "$unit" >"$dir/gunicorn-reflex.service"
grep -q "^ExecStart=$bin " "$dir/gunicorn-reflex.service" || {
	echo "check-unit: $unit: no ExecStart=/usr/local/bin/gunicorn-reflex line to check" >&2
	exit 1
}

# 1. verify: a non-zero status or any message fails.
if ! systemd-analyze verify "$dir/gunicorn-reflex.service" >"$dir/verify.out" 2>&1 || [ -s "$dir/verify.out" ]; then
	echo "check-unit: systemd-analyze verify $unit:" >&2
	cat "$dir/verify.out" >&2
	exit 1
fi

# 2. The command line parses and the example config is valid.
args=$(sed -n "s|^ExecStart=$bin ||p" "$dir/gunicorn-reflex.service" |
	sed 's|--config.file=[^ ]*|--config.file=deploy/config.example.yml|')
# shellcheck disable=SC2086 # the unit's arguments, split as systemd splits them (no quoting in them)
if ! "$bin" $args --config.check >"$dir/check.out" 2>&1; then
	echo "check-unit: $unit: ExecStart arguments rejected by $bin:" >&2
	cat "$dir/check.out" >&2
	exit 1
fi

# 3. Exposure.
if ! systemd-analyze security --offline=yes --threshold="$MAX_EXPOSURE" "$dir/gunicorn-reflex.service" >"$dir/security.out" 2>&1; then
	grep -E '✗|Overall' "$dir/security.out" >&2 || cat "$dir/security.out" >&2
	echo "check-unit: $unit: exposure above the recorded $MAX_EXPOSURE (tenths); tighten the unit or raise MAX_EXPOSURE in $0 with a reason" >&2
	exit 1
fi

# 4. The capabilities are effective.
systemd-analyze security --offline=yes --json=short "$dir/gunicorn-reflex.service" >"$dir/security.json"
for cap in 'CAP_SYS_PTRACE' 'CAP_(DAC_*|FOWNER|IPC_OWNER)'; do
	if ! grep -qF "\"set\":false,\"name\":\"CapabilityBoundingSet=~$cap\"" "$dir/security.json"; then
		echo "check-unit: $unit: the analyser finds $cap outside the capability bounding set; discovery of another user's Gunicorn would fail" >&2
		exit 1
	fi
done

echo "check-unit: $unit verified; $(grep -o 'Overall exposure level[^:]*: [0-9.]*' "$dir/security.out" | sed 's/.*: //') exposure (at most $MAX_EXPOSURE tenths), capabilities granted"
