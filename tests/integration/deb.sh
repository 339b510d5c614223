#!/bin/sh
# The Debian package: built from this tree with dpkg-buildpackage, lintian
# finds no error, dpkg -i puts the files where Debian puts them and the
# postinst makes the service user and the state directory; the unit's
# ExecStart line, run as written as the unit's user (systemd is not PID 1
# here, so not through systemd), comes up and /metrics answers; SIGTERM
# stops it with exit 0 and a ledger that opens; dpkg --purge removes the
# user, the state and the config. Root only: it installs the package on this
# machine (and purges it). Runs in the plain build only: the package is built
# with Debian's flags, not the sanitizers'.
set -u
B=${B:-build}
[ "$(id -u)" = 0 ] || { echo "skip: installs a package; needs root"; exit 77; }
[ "${SANITIZE:-}" = 1 ] && { echo "skip: the package is built with Debian's flags; the plain run tests it"; exit 77; }
for t in dpkg-buildpackage lintian curl sqlite3 setpriv; do
	command -v "$t" >/dev/null || { echo "FAIL: $t is missing (scripts/deps.sh installs it)"; exit 1; }
done
if dpkg-query -W -f='${Status}' tally 2>/dev/null | grep -q installed; then
	echo "skip: a tally package is already installed here; not touching it"; exit 77
fi
work=$(mktemp -d /tmp/tally-deb-XXXXXX)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	dpkg --purge tally >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
ver=$(cat VERSION)
head -n 1 debian/changelog | grep -q "^tally ($ver) " && ok "debian/changelog is at VERSION $ver" ||
	bad "debian/changelog: $(head -n 1 debian/changelog), VERSION $ver"

# build from the tracked files only, as a clean clone would
mkdir "$work/src"
git ls-files -z | (cd "$work/src" && xargs -0 -I{} sh -c 'mkdir -p "$(dirname "{}")"') 
git ls-files -z | xargs -0 -I{} cp --parents {} "$work/src/"
(cd "$work/src" && dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1 || {
	bad "dpkg-buildpackage: $(tail -n 20 "$work/build.log")"; exit 1; }
deb=$work/tally_${ver}_amd64.deb
[ -f "$deb" ] && ok "dpkg-buildpackage: $(basename "$deb")" || { bad "no $deb"; exit 1; }
lintian --tag-display-limit 0 "$work"/tally_"$ver"_amd64.changes > "$work/lintian" 2>&1
errs=$(grep -c '^E:' "$work/lintian")
[ "$errs" -eq 0 ] && ok "lintian: no error ($(grep -c '^W:' "$work/lintian") warnings)" || bad "lintian: $(grep '^E:' "$work/lintian")"

dpkg -i "$deb" > "$work/dpkg.log" 2>&1 || { bad "dpkg -i: $(cat "$work/dpkg.log")"; exit 1; }
for f in /usr/sbin/tallyd /usr/bin/tally /usr/lib/nagios/plugins/check_tally /usr/lib/systemd/system/tallyd.service \
	/usr/share/man/man8/tallyd.8.gz /usr/share/man/man5/tally.yaml.5.gz /etc/tally/tally.yaml; do
	[ -e "$f" ] || bad "not installed: $f"
done
ok "dpkg -i: programs, unit, man pages and config in place"
dpkg-query -W -f='${Conffiles}\n' tally | grep -q '/etc/tally/tally.yaml' && ok "/etc/tally/tally.yaml is a conffile" ||
	bad "/etc/tally/tally.yaml is not a conffile"
getent passwd tally >/dev/null && ok "postinst: the service user tally" || bad "postinst made no user tally"
[ "$(stat -c '%U:%G %a' /var/lib/tally)" = "tally:tally 750" ] && ok "postinst: /var/lib/tally tally:tally 0750" ||
	bad "/var/lib/tally: $(stat -c '%U:%G %a' /var/lib/tally 2>&1)"
[ "$(stat -c '%G %a' /etc/tally/tally.yaml)" = "tally 640" ] && ok "the config is readable by the service only" ||
	bad "/etc/tally/tally.yaml: $(stat -c '%U:%G %a' /etc/tally/tally.yaml)"

# the unit's ExecStart, as written, as its user, in its working directory
unit=/usr/lib/systemd/system/tallyd.service
start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
wd=$(sed -n 's/^WorkingDirectory=//p' "$unit")
# setpriv execs: the pid is tallyd's own, so SIGTERM reaches it
(cd "$wd" && exec setpriv --reuid="$user" --regid="$user" --init-groups -- $start) > "$work/tallyd.log" 2>&1 &
pid=$!
code=000
for _ in $(seq 1 100); do
	code=$(curl -s -o "$work/metrics" -w '%{http_code}' http://127.0.0.1:9464/metrics || true)
	[ "$code" = 200 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.2
done
[ "$code" = 200 ] && grep -q "^tally_build_info{version=\"$ver\"" "$work/metrics" &&
	ok "ExecStart as written: /metrics answers on 127.0.0.1:9464 ($start)" ||
	bad "ExecStart: /metrics $code; log: $(tail -n 5 "$work/tallyd.log")"
kill -TERM "$pid"
if wait "$pid"; then rc=0; else rc=$?; fi
pid=""
[ "$rc" -eq 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc; log: $(tail -n 5 "$work/tallyd.log")"
[ "$(stat -c %U /var/lib/tally/ledger.db)" = tally ] && ok "the ledger belongs to the service user" ||
	bad "ledger owner: $(stat -c %U /var/lib/tally/ledger.db 2>&1)"
[ "$(sqlite3 /var/lib/tally/ledger.db 'PRAGMA integrity_check')" = ok ] && [ ! -s /var/lib/tally/ledger.db-wal ] &&
	ok "after SIGTERM the ledger is whole and checkpointed (no WAL left)" ||
	bad "ledger after SIGTERM: $(sqlite3 /var/lib/tally/ledger.db 'PRAGMA integrity_check' 2>&1), wal $(stat -c %s /var/lib/tally/ledger.db-wal 2>&1)"
TALLY_LEDGER=/var/lib/tally/ledger.db tally usage --from 2026-10 --to 2026-10 >/dev/null 2>"$work/usage.err" &&
	ok "tally usage opens the service's ledger" || bad "tally usage: $(cat "$work/usage.err")"

dpkg --purge tally > "$work/purge.log" 2>&1 || bad "dpkg --purge: $(cat "$work/purge.log")"
left=""
getent passwd tally >/dev/null && left="$left user"
[ -e /var/lib/tally ] && left="$left /var/lib/tally"
[ -e /etc/tally ] && left="$left /etc/tally"
[ -e /usr/sbin/tallyd ] && left="$left /usr/sbin/tallyd"
[ -z "$left" ] && ok "dpkg --purge: user, state, config and programs gone" || bad "left after purge:$left"
[ "$fails" -eq 0 ]
