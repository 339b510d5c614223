#!/bin/sh
# The property test of issue 9: random rate plans and ledgers (seeded,
# bounded in time and count), each rated by `tally invoice --format json`
# and by an independent exact model (tests/integration/billing_model.py,
# Python's fractions: no code shared with billing/); every line, subtotal,
# tax and total compared as decimal strings, including amounts past 2^53
# and int64 (where tally must refuse, exit 1, never print a number).
# TALLY_PROPERTY_SEED, _SECONDS, _CASES change the run; a failing case's
# plan and ledger are kept in $KEEP_DIR (default: the scratch directory,
# removed at the end) to be replayed by hand.
set -eu
B=${B:-build}
work=$(mktemp -d /tmp/tally-property-XXXXXX)
trap 'rm -rf "$work"' EXIT
exec /usr/bin/python3 tests/integration/billing_model.py "$PWD/$B/tally" "$work" "${TALLY_PROPERTY_SEED:-20261001}" \
	"${TALLY_PROPERTY_SECONDS:-40}" "${TALLY_PROPERTY_CASES:-400}"
