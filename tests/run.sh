#!/bin/sh
# Runs every unit suite given as an argument, then every integration script
# in tests/integration (unless --unit-only), and prints one closing line:
#   tests: N passed, N failed, N skipped
# An integration script exits 0 (pass), 77 (skip: says why on stderr) or
# anything else (fail). A skip is reported as a skip, never as a pass.
# Exit status: 0 only when nothing failed.
set -u
unit_only=0
[ "${1:-}" = "--unit-only" ] && { unit_only=1; shift; }
B=${B:-build}
export B
pass=0 fail=0 skip=0 failed=""
logdir=$B/test-logs
mkdir -p "$logdir"

for t in "$@"; do
	name=$(basename "$t")
	log=$logdir/$name.log
	if "$t" >"$log" 2>&1; then rc=0; else rc=$?; fi
	line=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -n 1)
	n=$(echo "$line" | sed -n 's/.*Checks: \([0-9]*\).*/\1/p')
	f=$(echo "$line" | sed -n 's/.*Failures: \([0-9]*\).*/\1/p')
	e=$(echo "$line" | sed -n 's/.*Errors: \([0-9]*\).*/\1/p')
	if [ -z "$n" ]; then
		echo "FAIL $name (no Check summary, exit $rc; see $log)"
		tail -n 20 "$log"
		fail=$((fail + 1)); failed="$failed $name"
		continue
	fi
	bad=$((f + e))
	pass=$((pass + n - bad)); fail=$((fail + bad))
	if [ "$rc" -ne 0 ] || [ "$bad" -ne 0 ]; then
		[ "$bad" -eq 0 ] && { fail=$((fail + 1)); }
		echo "FAIL $name: $line"
		grep -E ':[EF]:' "$log" | head -n 20
		failed="$failed $name"
	else
		echo "ok   $name: $n checks"
	fi
done

if [ "$unit_only" -eq 0 ]; then
	for t in tests/integration/*.sh; do
		[ -e "$t" ] || continue
		name=$(basename "$t" .sh)
		log=$logdir/it-$name.log
		if sh "$t" >"$log" 2>&1; then rc=0; else rc=$?; fi
		case $rc in
		0) pass=$((pass + 1)); echo "ok   $name" ;;
		77) skip=$((skip + 1)); echo "SKIP $name: $(tail -n 1 "$log")" ;;
		*) fail=$((fail + 1)); failed="$failed $name"; echo "FAIL $name (exit $rc; see $log)"; tail -n 25 "$log" ;;
		esac
	done
fi

echo "tests: $pass passed, $fail failed, $skip skipped"
[ -n "$failed" ] && echo "failed:$failed"
[ "$fail" -eq 0 ]
