#!/bin/sh
# Checks deploy/50-gunicorn-reflex.rules with the real polkitd: in a private
# mount namespace, the rule directories are replaced by one holding only this
# rule, a private system bus (dbus-daemon) is started on a socket in a
# temporary directory, polkitd is started on it, and pkcheck asks it, for a
# process of the rule's user, whether systemd's manage-units action may:
#   restart the configured unit                   -> authorised
#   stop it, or restart any other unit            -> not authorised
#   anything under another action id              -> not authorised
# and the same restart for a process of another user -> not authorised.
# The rule's USER is replaced by "nobody" for the check (the account
# gunicorn-reflex need not exist here); nothing else of it changes.
# Nothing outside the namespace and the temporary directory is touched;
# every process started is stopped by pid.
# Needs root, unshare and setpriv (util-linux), dbus-daemon, polkitd and
# systemd's polkit actions; without them it says so and passes, unless
# REFLEX_REQUIRE_REAL=1.
# Usage: scripts/check-polkit.sh
set -eu

rule=deploy/50-gunicorn-reflex.rules
unit=gunicorn-shop.service
polkitd=/usr/lib/polkit-1/polkitd

skip() {
	echo "check-polkit: $1; $rule not checked" >&2
	[ "${REFLEX_REQUIRE_REAL:-}" = 1 ] && exit 1
	exit 0
}

if [ "${CHECK_POLKIT_INNER:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || skip "not root (a private mount namespace is needed)"
	for c in unshare setpriv stdbuf timeout dbus-daemon pkcheck pkaction; do
		command -v "$c" >/dev/null 2>&1 || skip "$c not found"
	done
	[ -x "$polkitd" ] || skip "$polkitd not found (Debian package polkitd)"
	[ -f /usr/share/polkit-1/actions/org.freedesktop.systemd1.policy ] || skip "systemd's polkit actions not found"
	CHECK_POLKIT_INNER=1 exec unshare --mount --propagation private "$0" "$@"
fi

dir=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
# polkitd drops to its own user: it must reach the socket and read the rule.
chmod 0755 "$dir"
mkdir -m 0755 "$dir/rules" "$dir/empty"
sed 's/^\(\s*var USER = \)"gunicorn-reflex";/\1"nobody";/' "$rule" >"$dir/rules/50-gunicorn-reflex.rules"
grep -q 'var USER = "nobody";' "$dir/rules/50-gunicorn-reflex.rules" || {
	echo "check-polkit: $rule: no 'var USER = \"gunicorn-reflex\";' line to check" >&2
	exit 1
}
grep -q "\"$unit\"" "$rule" || {
	echo "check-polkit: $rule: the example unit $unit is not in UNITS" >&2
	exit 1
}
chmod 0644 "$dir/rules/50-gunicorn-reflex.rules"
mount --bind "$dir/rules" /usr/share/polkit-1/rules.d
[ -d /etc/polkit-1/rules.d ] && mount --bind "$dir/empty" /etc/polkit-1/rules.d

cat >"$dir/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile 2>"$dir/bus.log" &
pids="$pids $!"
i=0
until [ -S "$dir/bus" ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "check-polkit: dbus-daemon did not start:" >&2; cat "$dir/bus.log" >&2; exit 1; }
	sleep 0.1
done
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus
export DBUS_SYSTEM_BUS_ADDRESS
# Line-buffered, so its log can be read while it runs.
stdbuf -oL -eL "$polkitd" >"$dir/polkitd.log" 2>&1 &
pids="$pids $!"
i=0
until timeout 5 pkaction --action-id org.freedesktop.systemd1.manage-units >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "check-polkit: polkitd did not start:" >&2; cat "$dir/polkitd.log" >&2; exit 1; }
	sleep 0.1
done
if grep -qi 'error' "$dir/polkitd.log" || ! grep -q 'executing 1 rules' "$dir/polkitd.log"; then
	echo "check-polkit: polkitd did not load $rule cleanly:" >&2
	cat "$dir/polkitd.log" >&2
	exit 1
fi

# Subjects: long sleeps as nobody and as daemon (another system user).
setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 60 &
as_rule_user=$!
pids="$pids $as_rule_user"
setpriv --reuid=daemon --regid=daemon --clear-groups sleep 60 &
as_other_user=$!
pids="$pids $as_other_user"
sleep 0.2

failed=0
# expect WANT PID ACTION UNIT VERB: WANT is yes (pkcheck exits 0) or no
# (exits 1, not authorised, or 2, only with authentication).
expect() {
	set +e
	timeout 20 pkcheck --action-id "$3" --process "$2" --detail unit "$4" --detail verb "$5" >"$dir/pkcheck.out" 2>&1
	rc=$?
	set -e
	case "$1:$rc" in
	yes:0 | no:1 | no:2) echo "check-polkit: $3 $5 $4 by uid $(stat -c %u /proc/"$2"): $([ "$rc" = 0 ] && echo allowed || echo refused), as wanted" ;;
	*)
		echo "check-polkit: $3 $5 $4 by uid $(stat -c %u /proc/"$2"): pkcheck exit $rc, want $([ "$1" = yes ] && echo allowed || echo refused):" >&2
		cat "$dir/pkcheck.out" >&2
		failed=1
		;;
	esac
}
manage=org.freedesktop.systemd1.manage-units
expect yes "$as_rule_user" "$manage" "$unit" restart
expect no "$as_rule_user" "$manage" "$unit" stop
expect no "$as_rule_user" "$manage" "$unit" start
expect no "$as_rule_user" "$manage" sshd.service restart
expect no "$as_rule_user" "$manage" "x$unit" restart
expect no "$as_rule_user" org.freedesktop.systemd1.manage-unit-files "$unit" restart
expect no "$as_other_user" "$manage" "$unit" restart
if [ "$failed" != 0 ]; then
	echo "check-polkit: $rule allows more or less than restarting the configured units" >&2
	exit 1
fi
echo "check-polkit: $rule verified with polkitd: only restart of the configured units, only for its user"
