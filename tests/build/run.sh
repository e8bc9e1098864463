#!/bin/bash
# The build's own promises:
#  - every header compiles alone (it includes what it uses, so no file
#    needs to include another header first);
#  - every fuzzer links from the sources its Makefile entry declares and
#    nothing else, in a build directory of its own (the harness proves
#    the code it tests is pure).
# usage: tests/build/run.sh   (from anywhere; CC and CLANG honoured)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
CC=${CC:-cc}
pass=0
fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
nok() { fail=$((fail + 1)); echo "FAIL $*"; }

tmp=$(mktemp -d /tmp/grgw-build-test.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

# shellcheck disable=SC2046
cflags="-std=gnu11 -D_GNU_SOURCE -iquote . -iquote gw -Wall -Wextra -Werror \
-Wno-unused-parameter $(pkg-config --cflags libnl-3.0 libnl-route-3.0 libevent \
libsodium libnftables jansson 2>/dev/null)"
for h in $(git ls-files '*.h' | grep -v '^tests/'); do
	printf '#include "%s"\n#include "%s"\n' "$h" "$h" >"$tmp/one.c"
	# shellcheck disable=SC2086
	if $CC $cflags -fsyntax-only "$tmp/one.c" 2>"$tmp/err"; then
		ok "header $h compiles alone (and twice)"
	else
		nok "header $h compiles alone"; sed 's/^/    | /' "$tmp/err"
	fi
done

for f in tests/fuzz/fuzz_*.c; do
	name=$(basename "$f" .c)
	srcs=$(make -s --no-print-directory print-fuzz-srcs FUZZ="$name")
	if [ -z "$srcs" ]; then
		nok "$name declares its sources (${name}_SRCS in the Makefile)"
		continue
	fi
	if make -s --no-print-directory B="$tmp/b" "$tmp/b/fuzz/$name" \
	    >"$tmp/err" 2>&1; then
		ok "$name links from its own sources: $srcs"
	else
		nok "$name links from its own sources: $srcs"
		sed 's/^/    | /' "$tmp/err" | tail -20
	fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
