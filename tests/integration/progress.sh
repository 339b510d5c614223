#!/bin/sh
# A fast-forward run on a terminal draws one progress line (virtual time,
# share of the period, samples/s) at its first cycle, redraws it every
# second and a last time at the end (100 %), then ends it with a newline;
# the same run with stderr in a file writes no progress at all.
set -u
B=${B:-build}
command -v script >/dev/null || { echo "FAIL: script (bsdutils) is missing"; exit 1; }
work=$(mktemp -d /tmp/tally-progress-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
conf() {
	cat > "$work/$1.yaml" <<EOC
tallyd:
  agent_id: prog
  data_dir: $work/$1
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-04T00:00:00Z
  log_level: warning
rrd:
  enabled: false
collectors:
  sim:
    vms: 300
    seed: 2
EOC
}
conf tty
conf file
script -qec "$PWD/$B/tallyd -q -c $work/tty.yaml" /dev/null > "$work/tty.out" 2>&1 || bad "tallyd on a terminal failed: $(tail -c 300 "$work/tty.out")"
tr '\r' '\n' < "$work/tty.out" | grep -E '^tallyd: fast-forward at 2026-10-0[1-4]T[0-9:]{8}Z, +[0-9.]+ % of the period, [0-9]+ samples/s' > "$work/lines"
n=$(wc -l < "$work/lines")
[ "$n" -ge 2 ] && ok "on a terminal: $n progress lines, the first: $(head -n 1 "$work/lines" | tr -s ' ')" ||
	bad "fewer than 2 progress lines on a terminal: $(tail -c 300 "$work/tty.out" | tr '\r' '|')"
tail -n 1 "$work/lines" | grep -q 'at 2026-10-04T00:00:00Z, 100.0 % of the period' &&
	ok "the last one at the end of the period: $(tail -n 1 "$work/lines" | tr -s ' ')" ||
	bad "last progress line: $(tail -n 1 "$work/lines")"
"$B/tallyd" -q -c "$work/file.yaml" 2> "$work/file.err" || bad "tallyd with stderr in a file failed"
grep -q 'fast-forward at' "$work/file.err" && bad "progress written to a file: $(head -c 200 "$work/file.err")" ||
	ok "stderr in a file: no progress line ($(wc -c < "$work/file.err") bytes of log)"
[ "$fails" -eq 0 ]
