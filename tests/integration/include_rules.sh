#!/bin/sh
# The source layout's include rules hold (scripts/check-includes.sh,
# docs/architecture.md): aggregator/ and collectors/ include common/ (the
# aggregator also ledger/), billing/ common/ and ledger/ alone, and so on;
# only ledger/ includes a database engine's API (<sqlite3.h>, <libpq-fe.h>).
# The checker itself is checked first on a breach it must find.
set -u
cd "$(dirname "$0")/../.."
probe=aggregator/zz_include_probe_$$.c
printf '#include "scheduler.h"\n' >"$probe"
out=$(sh scripts/check-includes.sh 2>&1); rc=$?
rm -f "$probe"
case $rc:$out in
1:*"aggregator/ may not include collectors/scheduler.h"*) ;;
*) echo "FAIL: the checker did not find a planted breach (exit $rc): $out"; exit 1 ;;
esac
# and an engine's API outside ledger/
probe=billing/zz_include_probe_$$.c
printf '#include <libpq-fe.h>\n' >"$probe"
out=$(sh scripts/check-includes.sh 2>&1); rc=$?
rm -f "$probe"
case $rc:$out in
1:*"billing/ may not include <libpq-fe.h>"*) ;;
*) echo "FAIL: the checker did not find an engine's API in billing/ (exit $rc): $out"; exit 1 ;;
esac
sh scripts/check-includes.sh
