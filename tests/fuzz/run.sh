#!/bin/sh
# tests/fuzz/run.sh BUILD SECONDS MAXLEN fuzz_NAME...: `make fuzz-run` and
# `make fuzz-check`.  Each harness first replays its regression inputs
# tests/fuzz/regress/NAME-*.bin, then fuzzes for SECONDS on its seeds
# tests/fuzz/corpus/NAME, growing BUILD/corpus/NAME (the seeds stay as
# committed).  A finding goes to BUILD/fuzz_NAME-crash-... (or -leak-,
# -timeout-, -oom-); the log of every run is BUILD/fuzz_NAME.log.  The
# exit status is 1 when any harness found something.

build=$1
seconds=$2
maxlen=$3
shift 3
status=0

# What went wrong: the sanitizer's or libFuzzer's report, its first frames.
report()
{
	echo "$1: $2, see $3"
	grep -A 10 -m 1 '^==[0-9]*==ERROR\|deadly signal\|ERROR: libFuzzer' "$3"
	grep 'Test unit written to\|^SUMMARY' "$3"
	status=1
}

for f in "$@"; do
	n=${f#fuzz_}
	log=$build/$f.log
	mkdir -p "$build/corpus/$n"
	set -- tests/fuzz/regress/$n-*.bin
	if [ -e "$1" ] && ! "./$build/$f" "$@" >"$log" 2>&1; then
		report "$f" "FINDING on a regression input" "$log"
		continue
	fi
	if ! "./$build/$f" -max_total_time="$seconds" -max_len="$maxlen" \
	    -timeout=20 -print_final_stats=1 -artifact_prefix="$build/$f-" \
	    "$build/corpus/$n" "tests/fuzz/corpus/$n" >"$log" 2>&1; then
		report "$f" "FINDING" "$log"
		continue
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	echo "$f: ${seconds}s, $runs runs, no finding"
done
exit $status
