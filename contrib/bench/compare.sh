# contrib/bench/compare.sh: with BENCH_BASE naming another smtpd binary
# (an earlier commit, built in its own worktree), the five smtp-source
# scenarios against it and against this one, both with deliver discard,
# alternating round by round on the same machine at the same time: what
# a change did to the rate and to the server's CPU per message, which
# the ratios to smtp-sink, taken minutes apart, cannot show within this
# machine's noise.  Sourced by bench.sh.

# Word splitting of flags is intended; the variables are read by the
# other parts.
# shellcheck shell=sh disable=SC2086,SC2034

compare_start() {
	START_BIN=$BENCH_BASE
	start_smtpd base discard
	START_BIN=""
	BASE_PID=$SMTPD_PID BASE_PORT=$SMTPD_PORT
	wait_prefork $BASE_PID
}

compare_run() {
	scenario_rounds x "base discard" ", base and this smtpd"
	stop_pid $BASE_PID
}

compare_report() {
	echo
	echo "base $BENCH_BASE against this $SMTPD, deliver discard"
	echo "(messages/s and server CPU us/message, median of $ROUNDS; ratio = this / base)"
	printf '%-30s %8s %5s | %8s %5s | %5s %5s\n' scenario base us this us \
	    rate cpu
	echo "$SCENARIOS" | while IFS='|' read -r scen title sess len msgs flags; do
		[ -n "$scen" ] || continue
		b=$(median "x$scen" base)
		bc=$(median "x$scen" base 5)
		d=$(median "x$scen" discard)
		dc=$(median "x$scen" discard 5)
		printf '%-30s %8s %5s | %8s %5s | %5s %5s\n' "($scen) $title" \
		    "$b" "$bc" "$d" "$dc" "$(ratio "$d" "$b")" "$(ratio "$dc" "$bc")"
	done
	printf '  rounds (msg/s: base this):\n'
	echo "$SCENARIOS" | while IFS='|' read -r scen title sess len msgs flags; do
		[ -n "$scen" ] || continue
		printf '  (%s)' "$scen"
		awk -v s="x$scen" '$1 == s { printf " %s", $4 }' "$RESULTS"
		echo
	done
}
