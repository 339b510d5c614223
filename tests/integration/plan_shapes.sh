#!/bin/sh
# tally plan check refuses every wrong shape of a rate plan (issue 9):
# each file of tests/fixtures/plans/shapes/ holds one mistake and, on its
# first line, "# expect: LINE:COL: message" with the place counted by hand;
# plan check must exit 2 and print FILE:LINE:COL: message (the key named),
# and `tally invoice` with that plan must print no invoice.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
work=$(mktemp -d /tmp/tally-shapes-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0 n=0
for f in tests/fixtures/plans/shapes/*.yaml; do
	n=$((n + 1))
	want="$f:$(sed -n '1s/^# expect: //p' "$f")"
	if "$TALLY" plan check "$f" > "$work/out" 2> "$work/err"; then rc=0; else rc=$?; fi
	if [ "$rc" -ne 2 ] || ! grep -qF -- "$want" "$work/err"; then
		echo "FAIL $f: exit $rc, want 2 and '$want'; got: $(cat "$work/err")"
		fails=$((fails + 1))
	else
		echo "ok   $(head -n 1 "$work/err")"
	fi
done
# the plan of an invoice: exit 2, nothing printed (no ledger is read first)
f=tests/fixtures/plans/shapes/tax-map.yaml
if "$TALLY" invoice --ledger "$work/none.db" --period 2026-10 --plan "$f" > "$work/out" 2> "$work/err"; then rc=0; else rc=$?; fi
if [ "$rc" -ne 2 ] || [ -s "$work/out" ] || ! grep -qF "tax-map.yaml:4:6: key 'tax'" "$work/err"; then
	echo "FAIL tally invoice with $f: exit $rc, out $(wc -c < "$work/out") bytes: $(cat "$work/err")"
	fails=$((fails + 1))
else
	echo "ok   tally invoice refuses the plan, prints nothing"
fi
echo "$n shapes checked"
[ "$n" -ge 20 ] && [ "$fails" -eq 0 ]
