#!/bin/sh
# The repository stands alone: no file in it sends a reader (or a script)
# to a directory outside the tree, such as a sibling checkout's shared/
# folder or a workplace path. Every tracked file is read; a hit names the
# file and line. Outside a git checkout (a release tarball) the files under
# the current directory are read instead.
set -eu
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	files=$(git ls-files)
else
	files=$(find . -type f ! -path './build*' ! -path './.git/*')
fi
# the patterns are split so that this file does not match itself
p1='\.\./'shared
p2='/work/'
hits=$(printf '%s\n' $files | grep -v '^tests/integration/standalone\.sh$' |
	xargs grep -nIE "$p1|$p2" 2>/dev/null || true)
if [ -n "$hits" ]; then
	echo "FAIL files point outside the repository:"
	echo "$hits" | head -n 20
	exit 1
fi
echo "ok   no file points outside the repository ($(printf '%s\n' $files | wc -l) files read)"
