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
#  5. The same again with the receiver's drop-in
#     (deploy/gunicorn-reflex.service.d/receiver.conf) beside the unit, at most
#     MAX_EXPOSURE_RECEIVER: it must add CAP_KILL (the signals) and nothing the
#     exporter alone has; the unit alone must not have CAP_KILL.
# Usage: scripts/check-unit.sh BINARY
set -eu

MAX_EXPOSURE=20
# CAP_KILL costs 0.1: the receiver signals Gunicorn masters of another user.
MAX_EXPOSURE_RECEIVER=21
unit=deploy/gunicorn-reflex.service
dropin=deploy/gunicorn-reflex.service.d/receiver.conf
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

# security NAME MAX: steps 3 and 4 for the unit as it stands in $dir (with
# or without the drop-in); CAP_KILL must be granted exactly when the
# drop-in is there. Prints the exposure.
security() {
	name=$1
	max=$2
	if ! systemd-analyze security --offline=yes --threshold="$max" "$dir/gunicorn-reflex.service" >"$dir/security.out" 2>&1; then
		grep -E '✗|Overall' "$dir/security.out" >&2 || cat "$dir/security.out" >&2
		echo "check-unit: $name: exposure above the recorded $max (tenths); tighten the unit or raise the maximum in $0 with a reason" >&2
		exit 1
	fi
	systemd-analyze security --offline=yes --json=short "$dir/gunicorn-reflex.service" >"$dir/security.json"
	for cap in 'CAP_SYS_PTRACE' 'CAP_(DAC_*|FOWNER|IPC_OWNER)'; do
		if ! grep -qF "\"set\":false,\"name\":\"CapabilityBoundingSet=~$cap\"" "$dir/security.json"; then
			echo "check-unit: $name: the analyser finds $cap outside the capability bounding set; discovery of another user's Gunicorn would fail" >&2
			exit 1
		fi
	done
	kill_granted=no
	grep -qF '"set":false,"name":"CapabilityBoundingSet=~CAP_KILL"' "$dir/security.json" && kill_granted=yes
	if [ "$kill_granted" != "$3" ]; then
		echo "check-unit: $name: CAP_KILL granted: $kill_granted, want $3 (only the receiver's drop-in may grant it)" >&2
		exit 1
	fi
	grep -o 'Overall exposure level[^:]*: [0-9.]*' "$dir/security.out" | sed 's/.*: //'
}

# 3, 4. Exposure and capabilities, the exporter alone.
exporter=$(security "$unit" "$MAX_EXPOSURE" no)

# 5. With the receiver's drop-in, found by the analyser beside the unit as
# systemd finds it under /etc/systemd/system.
mkdir "$dir/gunicorn-reflex.service.d"
cp "$dropin" "$dir/gunicorn-reflex.service.d/"
if ! systemd-analyze verify "$dir/gunicorn-reflex.service" >"$dir/verify.out" 2>&1 || [ -s "$dir/verify.out" ]; then
	echo "check-unit: systemd-analyze verify $unit with $dropin:" >&2
	cat "$dir/verify.out" >&2
	exit 1
fi
receiver=$(security "$unit with $dropin" "$MAX_EXPOSURE_RECEIVER" yes)

echo "check-unit: $unit verified; $exporter exposure (at most $MAX_EXPOSURE tenths), capabilities granted; with $dropin: $receiver (at most $MAX_EXPOSURE_RECEIVER tenths), CAP_KILL granted"
