# contrib/bench/program.sh: the program path.  The floor is what this
# machine can do at all: the delivery program spawned by 20 parallel
# spawners with a 4 KiB message on its standard input, no SMTP
# (spawn-floor).  Then smtpd delivering every message to that same program
# at scenario a's shape.  Sourced by bench.sh.

# Word splitting of PID lists, flags and "a b c" results is intended; the
# variables set here are read by the other parts.
# shellcheck shell=sh disable=SC2086,SC2046,SC2034

PROGRAM_MSGS=${BENCH_MSGS_P:-2000}
PROGRAM_TARGET=0.90	# smtpd's rate as a ratio to the floor

program_run() {
	PROGRAM=$TMP/deliver-cat
	printf '#!/bin/sh\nexec cat >/dev/null\n' >"$PROGRAM"
	chmod 755 "$PROGRAM"
	# The message smtp-source sends with -l 4096, near enough.
	awk 'BEGIN { for (i = 0; i < 52; i++) printf "%077d\r\n", i }' \
	    >"$TMP/message"
	start_smtpd program "\"$PROGRAM\""
	PROGRAM_PID=$SMTPD_PID PROGRAM_PORT=$SMTPD_PORT
	wait_prefork $PROGRAM_PID
	printf 'bench: (p) program path: %s spawns, then %s msgs ' \
	    "$PROGRAM_MSGS" "$PROGRAM_MSGS" >&2
	r=1
	while [ $r -le "$ROUNDS" ]; do
		floor_run $r
		run_source p program $r $PROGRAM_PORT 20 4096 "$PROGRAM_MSGS" -d
		printf '.' >&2
		r=$((r + 1))
	done
	printf '\n' >&2
	stop_pid $PROGRAM_PID
}

floor_run() {	# floor_run ROUND: one spawn-floor run
	measure p floor "$1" "$BENCH_BIN/spawn-floor" -P 20 \
	    -n "$PROGRAM_MSGS" -i "$TMP/message" "$PROGRAM" || return
	# "... 281.6 spawns/s, 6697 us CPU/spawn"
	record "p floor $1 $(field_before spawns/s,) $(awk '{
	    for (i = 3; i <= NF; i++) if ($i == "CPU/spawn") print $(i - 2) }' \
	    "$TMP/run.out")"
}

program_report() {
	f=$(median p floor)
	s=$(median p program)
	echo
	echo "program path: deliver \"$PROGRAM\" (#!/bin/sh, exec cat >/dev/null),"
	echo "4 KiB messages, median of $ROUNDS (CPU: us per spawn or message)"
	printf '  %-46s %8s spawns/s  %6s us\n' \
	    "spawn floor: spawn-floor -P 20, no SMTP" "$f" "$(median p floor 5)"
	printf '  %-46s %8s msgs/s    %6s us  ratio to the floor %s\n' \
	    "smtpd: smtp-source -d -s 20 -l 4096" "$s" \
	    "$(median p program 5)" \
	    "$(ratio_cols "$s" "$f" "$PROGRAM_TARGET")"
}
