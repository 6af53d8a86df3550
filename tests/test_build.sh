#!/bin/sh
# test_build.sh: a user's flags add to the build's own.  `make CFLAGS=-g`
# (and CPPFLAGS, LDFLAGS) in a BUILDDIR of its own must still compile
# with -std=c11, the libbsd overlay and pkg-config's flags: no warning at
# all (an implicit declaration of strlcpy or strtonum would be one), and a
# daemon that parses a configuration.
# Usage: sh tests/test_build.sh (from the top of the checkout)

. tests/lib.sh
pass=0 fail=0 skip=0
t=$(mktemp -d "${TMPDIR:-/tmp}/test_build.XXXXXX") || exit 1
trap 'rm -rf "$t"' EXIT
trap 'exit 1' INT TERM

make -s BUILDDIR="$t/build" CFLAGS=-g CPPFLAGS=-DTEST_BUILD_USER_FLAG \
    LDFLAGS=-g all >"$t/log" 2>&1
st=$?
check "make CFLAGS=-g CPPFLAGS=... LDFLAGS=-g builds" [ $st -eq 0 ]
if grep -q 'warning:\|error:' "$t/log"; then
	not_ok "make CFLAGS=-g: no warning"
	sed 's/^/    /' "$t/log" | head -20
else
	ok "make CFLAGS=-g: no warning"
fi
check "the user's flags are used with the build's own" \
    grep -q -- '-std=c11 .*-DLIBBSD_OVERLAY.* -g' "$t/build/.flags"
check "the user's CPPFLAGS are used" \
    grep -q -- '-DTEST_BUILD_USER_FLAG' "$t/build/.flags"
printf 'listen on 127.0.0.1 port 2525\nmax-message-size 10M\n' >"$t/smtpd.conf"
check "the -g build parses a configuration" \
    sh -c "'$t/build/smtpd' -n -f '$t/smtpd.conf' | grep -q '^max-message-size 10M$'"

echo "test_build: $pass passed, $fail failed"
[ $fail -eq 0 ]
