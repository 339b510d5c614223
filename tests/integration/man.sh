#!/bin/sh
# Man pages: every page the build makes renders without a warning (groff
# -ww and mandoc's linter at warning level), and the hand-written pages name
# every option the programs' --help lists (so the two cannot drift); the
# generated pages hold every key of the references they are made from.
set -u
B=${B:-build}
for t in mandoc groff; do
	command -v "$t" >/dev/null || { echo "skip: $t is not installed (scripts/deps.sh installs it)"; exit 77; }
done
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
n=0
for page in "$B"/man/*.[0-9]; do
	n=$((n + 1))
	out=$( { mandoc -T lint -W warning "$page"; groff -ww -z -man "$page"; } 2>&1)
	[ -z "$out" ] && ok "$(basename "$page") renders cleanly" || bad "$(basename "$page"): $out"
done
[ "$n" -eq 6 ] || bad "$n man pages built, 6 expected"
# rendered text of a page, hyphenation off, wide, so options are whole words
text() { MANWIDTH=200 man -l "$1" 2>/dev/null | col -b; }
for prog in tallyd check_tally; do
	sec=$(ls "$B/man/$prog".[0-9] | head -n 1)
	text "$sec" > "/tmp/man-$$.txt"
	for opt in $("$B/$prog" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
		grep -q -- "$opt" "/tmp/man-$$.txt" && ok "$prog: $opt in $(basename "$sec")" ||
			bad "$prog --help lists $opt, $(basename "$sec") does not"
	done
done
text "$B/man/tally.yaml.5" > "/tmp/man-$$.txt"
for key in $(grep -oE '^\| `[a-z_]+`' docs/config.md | tr -d '|` ' | sort -u); do
	grep -q "$key" "/tmp/man-$$.txt" || bad "tally.yaml(5) lacks the key $key"
done
ok "tally.yaml(5): every key of docs/config.md's tables"
rm -f "/tmp/man-$$.txt"
[ "$fails" -eq 0 ]
