#!/bin/bash
# defs-check.sh SUITE...: every shell function of a lab suite (the script
# and the files it sources with `. "$HERE/FILE"`) is defined once.  A
# second definition in a file sourced later silently replaces the first
# for every caller (a test's helper once took the place of lib.sh's, and
# a dozen unrelated tests failed).  Pure text, no root, no lab.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rc=0
# shellcheck disable=SC2016 # $HERE is the suite's text, not ours
sourced='s/^\. "\$HERE\/\([A-Za-z0-9_.-]*\)"$/\1/p'
for suite in "$@"; do
	files=("$here/$suite")
	while read -r f; do
		files+=("$here/$f")
	done < <(sed -n "$sourced" "$here/$suite")
	dups=$(grep -Ho '^[A-Za-z_][A-Za-z0-9_]*()' "${files[@]}" |
		awk -F: '{ n[$2]++; w[$2] = w[$2] " " $1 } END { for (f in n) if (n[f] > 1) print "  " f ":" w[f] }')
	if [ -n "$dups" ]; then
		echo "$suite: defined more than once:"
		echo "$dups"
		rc=1
	else
		echo "$suite: ${#files[@]} files, every function defined once"
	fi
done
exit "$rc"
