#!/bin/sh
# The include rules of the source layout (docs/architecture.md, "Source
# layout"): for each folder, the folders whose headers its files may
# include. A quoted include is resolved to the folder that holds the
# header; system headers (<...>) are the libraries' and not checked.
# Prints every breach as file:line: folder/ may not include folder/x.h,
# exits 1 when there is one, 0 when there is none.
set -u
cd "$(dirname "$0")/.."

allowed() {
	case $1 in
	common) echo "common" ;;
	collectors) echo "common collectors" ;;
	ledger) echo "common ledger" ;;
	aggregator) echo "common ledger aggregator" ;;
	billing) echo "common ledger billing" ;;
	# the exporters read the aggregator's published snapshots (state.h,
	# alerting.h's alert store) and billing's reports, never its insides
	exporters) echo "common ledger billing exporters aggregator:state.h aggregator:alerting.h aggregator:aggregator.h" ;;
	daemon) echo "common collectors ledger aggregator billing exporters daemon" ;;
	esac
}

folders="common collectors ledger aggregator billing exporters daemon"
tmp=$(mktemp "${TMPDIR:-/tmp}/tally-includes.XXXXXX")
trap 'rm -f "$tmp"' EXIT
for dir in $folders; do
	ok=$(allowed "$dir")
	for f in "$dir"/*.c "$dir"/*.h; do
		[ -e "$f" ] || continue
		grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r line; do
			n=${line%%:*}
			h=$(printf '%s\n' "$line" | sed 's/.*include[[:space:]]*"\([^"]*\)".*/\1/')
			owner=""
			for d in $folders; do
				[ -e "$d/$h" ] && { owner=$d; break; }
			done
			[ -n "$owner" ] || { [ -e "$(dirname "$f")/$h" ] && owner=$dir; }
			if [ -z "$owner" ]; then
				echo "$f:$n: \"$h\" is in none of the source folders"
				echo x >>"$tmp"
				continue
			fi
			pass=0
			for a in $ok; do
				[ "$a" = "$owner" ] && pass=1
				[ "$a" = "$owner:$h" ] && pass=1
			done
			if [ "$pass" -eq 0 ]; then
				echo "$f:$n: $dir/ may not include $owner/$h (allowed: $ok)"
				echo x >>"$tmp"
			fi
		done
	done
done
if [ -s "$tmp" ]; then
	echo "include rules: $(wc -l <"$tmp") breaches"
	exit 1
fi
echo "include rules: every folder includes only what it may"
