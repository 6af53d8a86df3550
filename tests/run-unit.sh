#!/bin/sh
# Run the cmocka unit test programs of one build folder and sum them up.
# Usage: tests/run-unit.sh BUILDDIR test_a test_b ...
dir=$1
shift
passed=0
failed=0
for t in "$@"; do
	out=$("$dir/tests/$t" 2>&1)
	rc=$?
	run=$(printf '%s\n' "$out" | sed -n 's/^\[=*\] \([0-9]*\) test(s) run\./\1/p')
	bad=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p')
	run=${run:-0}
	bad=${bad:-0}
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		bad=1	# crashed before cmocka could count
	fi
	if [ "$bad" -ne 0 ] || [ "$run" -eq 0 ]; then
		printf '%s\n' "$out"
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
