#!/bin/sh
# Run the cmocka unit test programs of one build folder and sum them up.
# Usage: tests/run-unit.sh BUILDDIR test_a test_b ...
# They run UNIT_JOBS at a time (default: the number of CPUs), the order
# given being the order started (the longest first, say); their reports
# are printed in that order once all have ended.
dir=$1
shift
jobs=${UNIT_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
out=$(mktemp -d "${TMPDIR:-/tmp}/smtpd-unit.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT

# Each program's output in $out/NAME.out, its exit status in $out/NAME.rc
# (the inner shell expands them: hence single quotes).
# shellcheck disable=SC2016
printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh -c \
    '"$1/tests/$2" >"$3/$2.out" 2>&1; echo $? >"$3/$2.rc"' _ "$dir" {} "$out"

passed=0
failed=0
for t in "$@"; do
	rc=$(cat "$out/$t.rc" 2>/dev/null || echo 127)
	run=$(sed -n 's/^\[=*\] \([0-9]*\) test(s) run\./\1/p' "$out/$t.out")
	bad=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$out/$t.out")
	run=${run:-0}
	bad=${bad:-0}
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		bad=1	# crashed before cmocka could count
	fi
	if [ "$bad" -ne 0 ] || [ "$run" -eq 0 ]; then
		cat "$out/$t.out"
		echo "$t: FAILED ($bad of $run)"
		[ "$run" -eq 0 ] && bad=1
	else
		echo "$t: $run passed"
	fi
	passed=$((passed + run - bad))
	failed=$((failed + bad))
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
