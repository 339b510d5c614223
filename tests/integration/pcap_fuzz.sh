#!/bin/sh
# A short libFuzzer run of the frame decoder and classifier
# (tests/fuzz/fuzz_pktdecode.c) on a copy of its corpus: 10 seconds under
# ASan and UBSan, any crash, leak, out-of-bounds read or broken invariant
# fails. The longer run and its last result: tests/fuzz/README.md.
set -eu
command -v clang >/dev/null || { echo "skip: clang missing (scripts/deps.sh installs it)"; exit 77; }
work=$(mktemp -d /tmp/tally-pcapfuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icommon -Icollectors \
	-o "$work/fuzz" tests/fuzz/fuzz_pktdecode.c collectors/pktdecode.c collectors/pktclass.c \
	collectors/lpm.c common/err.c 2> "$work/cc.log" || {
	if grep -q "fuzzer" "$work/cc.log"; then
		echo "skip: clang has no libFuzzer runtime (scripts/deps.sh installs libclang-rt-14-dev)"; exit 77
	fi
	cat "$work/cc.log"; exit 1; }
mkdir "$work/corpus"
cp tests/fuzz/corpus/pktdecode/* "$work/corpus/"
"$work/fuzz" -max_total_time=10 -print_final_stats=1 "$work/corpus" > "$work/log" 2>&1 || {
	tail -n 40 "$work/log"; exit 1; }
grep -E "^(Done|stat::number_of_executed_units)" "$work/log"
