#!/bin/sh
# Run every unit test binary, plain and under ASan+UBSan.
# usage: run-unit.sh BUILD_DIR TEST...
set -u
b=$1
shift
rc=0
for t in "$@"; do
	for flavour in unit unit-asan; do
		echo "== $flavour/$t"
		if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		    "$b/$flavour/$t"; then
			echo "FAIL: $flavour/$t"
			rc=1
		fi
	done
done
exit $rc
