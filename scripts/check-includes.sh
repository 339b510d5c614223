#!/bin/sh
# The include rules of the source layout (docs/architecture.md, "Source
# layout"): for each folder, the folders whose headers its files may
# include. A quoted include is resolved to the folder that holds the
# header; system headers (<...>) are the libraries' and not checked, but
# for the database engines' APIs (<sqlite3.h>, <libpq-fe.h>): only ledger/
# speaks to an engine (ledger/backend.h), so no SQL of one is elsewhere.
# Prints every breach as file:line: folder/ may not include folder/x.h,
# exits 1 when there is one, 0 when there is none.
set -u
cd "$(dirname "$0")/.."

folders="common collectors ledger aggregator billing exporters daemon"
# the exporters read the aggregator's published snapshots (state.h,
# alerting.h's alert store and the aggregator.h they name), never its insides
rules='common: common
collectors: common collectors
ledger: common ledger
aggregator: common ledger aggregator
billing: common ledger billing
exporters: common ledger billing exporters aggregator:state.h aggregator:alerting.h aggregator:aggregator.h
daemon: common collectors ledger aggregator billing exporters daemon'

# one line per header: "NAME FOLDER", then the sources
{
	for d in $folders; do
		for h in "$d"/*.h; do [ -e "$h" ] && echo "H ${h#*/} $d"; done
	done
	printf '%s\n' "$rules" | sed 's/^/R /'
	for d in $folders; do
		for f in "$d"/*.c "$d"/*.h; do [ -e "$f" ] && echo "F $f"; done
	done
} | awk '
$1 == "H" { if (!($2 in owner)) owner[$2] = $3; next }
$1 == "R" { d = $2; sub(":", "", d); for (i = 3; i <= NF; i++) ok[d, $i] = 1; allowed[d] = substr($0, index($0, ":") + 2); next }
$1 == "F" {
	f = $2; dir = f; sub("/.*", "", dir); n = 0
	while ((getline line < f) > 0) {
		n++
		if (line ~ /^[ \t]*#[ \t]*include[ \t]*<(sqlite3|libpq-fe)\.h>/ && dir != "ledger") {
			h = line; sub(/^[^<]*</, "", h); sub(/>.*/, "", h)
			printf "%s:%d: %s/ may not include <%s>: a database engine is spoken to in ledger/ only (ledger/backend.h)\n", f, n, dir, h; bad++
			continue
		}
		if (line !~ /^[ \t]*#[ \t]*include[ \t]*"/) continue
		h = line; sub(/^[^"]*"/, "", h); sub(/".*/, "", h)
		o = (h in owner) ? owner[h] : ""
		if (o == "") { printf "%s:%d: \"%s\" is in none of the source folders\n", f, n, h; bad++; continue }
		if (ok[dir, o] || ok[dir, o ":" h]) continue
		printf "%s:%d: %s/ may not include %s/%s (allowed: %s)\n", f, n, dir, o, h, allowed[dir]; bad++
	}
	close(f)
}
END {
	if (bad) { printf "include rules: %d breaches\n", bad; exit 1 }
	print "include rules: every folder includes only what it may"
}'
