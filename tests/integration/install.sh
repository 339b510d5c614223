#!/bin/sh
# make install / uninstall into a DESTDIR: the files land where the
# Makefile's layout says (Debian's with PREFIX=/usr), the operator's config
# is never overwritten or removed, the installed sample config is valid, and
# the systemd unit passes systemd-analyze verify. systemd is not PID 1 here,
# so the unit is verified offline, not started.
set -u
B=${B:-build}
work=$(mktemp -d /tmp/tally-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
d=$work/dest
make -s install B="$B" PREFIX=/usr DESTDIR="$d" >/dev/null 2>"$work/err" || { bad "make install: $(cat "$work/err")"; exit 1; }
(cd "$d" && find . -type f | sort) > "$work/got"
cat > "$work/want" <<EOF2
./etc/tally/plan.yaml
./etc/tally/tally.yaml
./usr/bin/tally
./usr/lib/nagios/plugins/check_tally
./usr/lib/systemd/system/tallyd.service
./usr/sbin/tallyd
./usr/share/doc/tally/README.md
./usr/share/doc/tally/architecture.md
./usr/share/doc/tally/config.md
./usr/share/doc/tally/customers.md
./usr/share/doc/tally/events-api.md
./usr/share/doc/tally/examples/grafana/tally-dashboard.json
./usr/share/doc/tally/examples/icinga2/tally.conf
./usr/share/doc/tally/examples/nagios/tally.cfg
./usr/share/doc/tally/examples/prometheus/rules.yml
./usr/share/doc/tally/examples/prometheus/scrape.yml
./usr/share/doc/tally/invoice.md
./usr/share/doc/tally/invoice.schema.json
./usr/share/doc/tally/ledger.md
./usr/share/doc/tally/meters.md
./usr/share/doc/tally/plan-example.yaml
./usr/share/doc/tally/plan.md
./usr/share/doc/tally/rrd.md
./usr/share/doc/tally/sla.md
./usr/share/doc/tally/usage.md
./usr/share/man/man1/check_tally.1
./usr/share/man/man1/tally.1
./usr/share/man/man5/tally-plan.5
./usr/share/man/man5/tally.yaml.5
./usr/share/man/man7/tally.7
./usr/share/man/man8/tallyd.8
EOF2
diff "$work/want" "$work/got" > "$work/diff" && ok "make install PREFIX=/usr: the $(wc -l < "$work/want") files where they belong" ||
	bad "make install file list: $(cat "$work/diff")"
[ "$(stat -c %a "$d/usr/sbin/tallyd")" = 755 ] && [ "$(stat -c %a "$d/etc/tally/tally.yaml")" = 644 ] &&
	ok "modes: programs 0755, config 0644" || bad "modes: $(stat -c '%a %n' "$d/usr/sbin/tallyd" "$d/etc/tally/tally.yaml")"
grep -q '^ExecStart=/usr/sbin/tallyd -q -c /etc/tally/tally.yaml$' "$d/usr/lib/systemd/system/tallyd.service" &&
	ok "the unit runs /usr/sbin/tallyd with /etc/tally/tally.yaml" || bad "ExecStart: $(grep ExecStart "$d/usr/lib/systemd/system/tallyd.service")"
"$d/usr/sbin/tallyd" -n -c "$d/etc/tally/tally.yaml" >/dev/null 2>"$work/err" && ok "the sample config passes tallyd -n" ||
	bad "sample config: $(cat "$work/err")"
"$d/usr/bin/tally" plan check "$d/etc/tally/plan.yaml" >/dev/null 2>"$work/err" && ok "the sample plan passes tally plan check" ||
	bad "sample plan: $(cat "$work/err")"
# the operator's config survives a reinstall and an uninstall
echo "# mine" >> "$d/etc/tally/tally.yaml"
make -s install B="$B" PREFIX=/usr DESTDIR="$d" >/dev/null 2>&1
tail -n 1 "$d/etc/tally/tally.yaml" | grep -q '^# mine$' && ok "reinstall keeps the operator's config" || bad "reinstall overwrote the config"
make -s uninstall B="$B" PREFIX=/usr DESTDIR="$d" >/dev/null 2>&1
left=$(cd "$d" && find . -type f | sort | tr '\n' ' ')
[ "$left" = "./etc/tally/plan.yaml ./etc/tally/tally.yaml " ] && ok "uninstall leaves only the config" || bad "after uninstall: $left"
# PREFIX=/usr/local: the config under PREFIX/etc; the unit verified offline
p=$work/local
make -s install B="$B" PREFIX="$p" >/dev/null 2>&1
[ -f "$p/etc/tally/tally.yaml" ] && [ -x "$p/sbin/tallyd" ] && ok "PREFIX=$p: config under PREFIX/etc" || bad "PREFIX install"
if command -v systemd-analyze >/dev/null; then
	if MANPATH=$p/share/man systemd-analyze verify "$p/lib/systemd/system/tallyd.service" >"$work/v" 2>&1; then
		ok "systemd-analyze verify: clean (offline: systemd is not PID 1 here)"
	else
		bad "systemd-analyze verify: $(cat "$work/v")"
	fi
	exp=$(systemd-analyze security --offline=true "$p/lib/systemd/system/tallyd.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for tallyd.service: \([0-9.]*\).*/\1/p')
	awk -v e="$exp" 'BEGIN { exit !(e != "" && e <= 2.5) }' && ok "systemd-analyze security: exposure $exp" ||
		bad "systemd-analyze security: exposure '$exp' (want <= 2.5)"
else
	bad "systemd-analyze is missing (scripts/deps.sh installs systemd)"
fi
[ "$fails" -eq 0 ]
