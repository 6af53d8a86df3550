# contrib/bench/source.sh: Postfix's smtp-source against smtp-sink, smtpd
# with deliver discard and smtpd with deliver-maildir, the RCPT rate with
# a 1,000,000-entry recipient table, and the cost of a context switch
# (switch-floor).  Sourced by bench.sh.

# Word splitting of PID lists, flags and "a b c" results is intended; the
# variables set here are read by the other parts.
# shellcheck shell=sh disable=SC2086,SC2046,SC2034,SC2317,SC2009,SC2015

# name|title|sessions|length|messages|source flags (-d: many msgs/connection)
SCENARIOS="
a|20 sessions x 4 KiB|20|4096|${BENCH_MSGS_A:-20000}|-d
b|1 msg/connection, 20 sess|20|4096|${BENCH_MSGS_B:-5000}|
c|1 session (latency)|1|4096|${BENCH_MSGS_C:-6000}|-d
d|200 sessions x 4 KiB|200|4096|${BENCH_MSGS_D:-10000}|-d
e|20 sessions x 1 MiB|20|1048576|${BENCH_MSGS_E:-500}|-d
"
RCPT_MSGS=${BENCH_MSGS_R:-2000}
RCPT_PER=100
SWITCH_HOPS=${BENCH_SWITCH_HOPS:-50000}

# Targets, as ratios to smtp-sink; "-" means none.  e: not below the
# ratio smtpd had when these targets were set (3.4 to 4.3 on 2-core
# machines, with the noise of such runs).  deliver-maildir has none: it
# starts a program for every message, so its rate is what the machine
# spends starting programs (0.06 to 0.19 of smtp-sink on machines of one
# kind); the program path (program.sh) measures smtpd against that cost.
target() {	# target scenario deliver-mode
	case "$2:$1" in
	discard:a|discard:d)	echo 0.95 ;;
	discard:b)		echo 0.80 ;;
	discard:c)		echo 1.00 ;;
	discard:e)		echo 3.00 ;;
	*)			echo - ;;
	esac
}

# run_source SCEN TARGET ROUND PORT SESS LEN MSGS FLAGS: one smtp-source
# run; records its rate, the server's CPU per message, the client's CPU
# per message and the client's share of one CPU (percent).
run_source() {
	[ "$2" = maildir ] && find "$MAILDIR/new" -type f -delete
	measure "$1" "$2" "$3" $SOURCE $8 -s "$5" -l "$6" -m "$7" -M $HOST \
	    -f "sender@$HOST" -t "rcpt@$HOST" "127.0.0.1:$4" || return
	if [ "$2" = maildir ]; then
		got=$(find "$MAILDIR/new" -type f | wc -l)
		[ "$got" -eq "$7" ] ||
		    echo "($1) maildir round $3: $got of $7 messages in new/" >>"$ERRORS"
		find "$MAILDIR/new" -type f -delete
	fi
	record "$1 $2 $3 $(awk -v a="$T0" -v b="$T1" -v m="$7" \
	    'BEGIN { printf "%.1f", m / (b - a) }') $(cpu_us "$C0" "$C1" "$7")" \
	    "$(cpu_us 0 "$CC" "$7") $(awk -v a="$T0" -v b="$T1" -v c="$CC" \
	    'BEGIN { printf "%.0f", c / (b - a) / 1e4 }')" \
	    "$(awk -v a="$W0" -v b="$W1" -v m="$7" \
	    'BEGIN { if (a == "-") print "-"; else printf "%.2f", (b - a) / m }')"
}

# scenario_rounds PREFIX TARGETS LABEL: every scenario, ROUNDS rounds of
# one run against each of TARGETS, recorded as scenario PREFIX<name>.
scenario_rounds() {
	while IFS='|' read -r scen title sess len msgs flags; do
		[ -n "$scen" ] || continue
		printf 'bench: (%s) %s%s: %s msgs ' "$scen" "$title" "$3" \
		    "$msgs" >&2
		r=1
		while [ $r -le "$ROUNDS" ]; do
			for t in $2; do
				run_source "$1$scen" $t $r "$(port_of $t)" \
				    "$sess" "$len" "$msgs" "$flags"
			done
			printf '.' >&2
			r=$((r + 1))
		done
		printf '\n' >&2
	done <<EOF
$SCENARIOS
EOF
}

source_run() {
	scenario_rounds "" "sink discard maildir" ""
}

# What a context switch costs here: switch-floor passes a token round a
# ring of 20 and of 200 processes (the children of scenarios a, b and d),
# and of as many threads, all on one CPU.  A session child sleeps at every
# command its client waits for and another child runs next; smtp-sink
# serves every session from one process.
switch_run() {
	printf 'bench: (w) context switches: %s hops a ring ' "$SWITCH_HOPS" >&2
	r=1
	while [ $r -le "$ROUNDS" ]; do
		for m in 20 200; do
			switch_one $r $m processes
			switch_one $r $m threads -t
		done
		printf '.' >&2
		r=$((r + 1))
	done
	printf '\n' >&2
}

# A run that could not pin its ring to one CPU (or put it in the batch
# class) measured wake-ups or preemptions: ERR.
switch_one() {	# switch_one ROUND MEMBERS KIND [-t]
	if "$BENCH_BIN/switch-floor" ${4:-} -n "$SWITCH_HOPS" "$2" \
	    </dev/null >"$TMP/run.out" 2>"$TMP/run.err" &&
	    [ ! -s "$TMP/run.err" ]; then
		record "w $3$2 $1 $(field_before us)"
		return
	fi
	record "w $3$2 $1 ERR"
	echo "(w) $2 $3 round $1: $(head -3 "$TMP/run.err")" >>"$ERRORS"
}

switch_report() {
	echo
	echo "context switches: switch-floor, a token round a ring of pipes on one CPU"
	echo "(us a hop, median of $ROUNDS)"
	printf '  %-12s %9s %9s\n' members processes threads
	for m in 20 200; do
		printf '  %-12s %9s %9s\n' $m "$(median w processes$m)" \
		    "$(median w threads$m)"
	done
	echo "  A session child sleeps at every command its client waits for, and"
	echo "  another child runs next: 7 switches for a session of one message (b),"
	echo "  4 a message in longer sessions (a, d); smtp-sink serves every session"
	echo "  from one process."
	switches_report
}

# The switches of the smtp-source workloads (field 8 of their records),
# smtpd's priced at the hop of the ring of as many members as it has
# sessions (20 or 200; the hop also holds the ring's pipe write and read,
# so the price is a bound from above), beside its CPU a message: on a
# host where a switch between processes is dear, that is where the
# difference from smtp-sink goes.
switches_report() {
	echo
	echo "switches a message: the times a process of the server's tree was put on a"
	echo "CPU (/proc/PID/schedstat), median of $ROUNDS; smtpd's at the hop above; only"
	echo "rounds in which no process of the tree ended (a child that ends takes its"
	echo "count with it; max-sessions-per-child recycles them), \"-\" when none was"
	printf '%-30s %8s | %8s %9s %9s\n' scenario sink discard "x hop us" \
	    "of CPU us"
	echo "$SCENARIOS" | while IFS='|' read -r scen title sess len msgs flags; do
		[ -n "$scen" ] || continue
		hop=-
		[ "$sess" -ge 20 ] && hop=$(median w processes20)
		[ "$sess" -ge 200 ] && hop=$(median w processes200)
		sw=$(median "$scen" discard 8 counted)
		printf '%-30s %8s | %8s %9s %9s\n' "($scen) $title" \
		    "$(median "$scen" sink 8 counted)" "$sw" "$(awk -v s="$sw" -v h="$hop" \
		    'BEGIN { if (s + 0 == s && h + 0 == h && h != "")
			printf "%.0f", s * h; else print "-" }')" \
		    "$(median "$scen" discard 5)"
	done
}

port_of() {	# port_of TARGET
	case $1 in
	sink)		echo "$SINK_PORT" ;;
	base)		echo "$BASE_PORT" ;;
	discard)	echo "$DISCARD_PORT" ;;
	maildir)	echo "$MAILDIR_PORT" ;;
	esac
}

# RCPT rate with a 1,000,000-entry recipient table against none: a hash
# lookup per RCPT should not show.  smtp-source -r N sends RCPT TO the
# recipients 1rcpt@ .. Nrcpt@; the table holds them (and 0rcpt@) among a
# million.
rcpt_run() {
	awk -v h=$HOST -v n=$RCPT_PER 'BEGIN {
		for (i = 0; i < 1000000 - n - 2; i++)
			printf "user%d@d%d.%s\n", i, i % 997, h
		for (i = 0; i <= n; i++) printf "%drcpt@%s\n", i, h
		printf "rcpt@%s\n", h }' >"$TMP/rcpts"
	[ -n "$RUNAS" ] && chmod 644 "$TMP/rcpts"
	T0=$(now)
	start_smtpd table discard "accept recipients $TMP/rcpts"
	TABLE_PID=$SMTPD_PID TABLE_PORT=$SMTPD_PORT
	wait_prefork $TABLE_PID
	TABLE_UP=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
	r=1
	printf 'bench: (r) RCPT rate, %s msgs x %s rcpts ' "$RCPT_MSGS" $RCPT_PER >&2
	while [ $r -le "$ROUNDS" ]; do
		run_source r notable $r $DISCARD_PORT 20 1024 "$RCPT_MSGS" \
		    "-d -r $RCPT_PER"
		run_source r table $r $TABLE_PORT 20 1024 "$RCPT_MSGS" \
		    "-d -r $RCPT_PER"
		printf '.' >&2
		r=$((r + 1))
	done
	printf '\n' >&2
	# The table's smtpd holds a million entries: not needed any more.
	stop_pid $TABLE_PID
}

# The client's side of the same runs.  smtp-source is one process: when
# it nears 100% of one CPU, it is what limits the run, and the rate then
# follows the CPU it spends per message, which depends on the server too
# (the kernel work of waking the process that reads each command is done
# in the client's system calls).
client_report() {
	echo
	echo "client: smtp-source's own CPU (us/message, and % of one CPU), median of $ROUNDS"
	printf '%-30s %8s %5s | %8s %5s | %8s %5s\n' scenario sink % discard % \
	    maildir %
	echo "$SCENARIOS" | while IFS='|' read -r scen title sess len msgs flags; do
		[ -n "$scen" ] || continue
		printf '%-30s' "($scen) $title"
		for t in sink discard maildir; do
			[ $t = sink ] || printf ' |'
			printf ' %8s %5s' "$(median "$scen" $t 6)" \
			    "$(median "$scen" $t 7)"
		done
		echo
	done
}

# The two runs of one round follow each other, while the host's speed
# drifts from round to round (smtp-sink's own rate in b has varied 1.8x
# within one run of this bench): the ratio round by round, and how far
# it spreads, says how much one run's ratio of medians can be trusted.
paired_report() {
	echo
	echo "paired: smtpd discard / smtp-sink in the same round (the two runs back to"
	echo "back), median [lowest-highest] of $ROUNDS"
	echo "$SCENARIOS" | while IFS='|' read -r scen title sess len msgs flags; do
		[ -n "$scen" ] || continue
		printf '%-30s %s\n' "($scen) $title" "$(awk -v s="$scen" '
		    $1 == s && $2 == "sink" && $4 != "ERR" { k[$3] = $4 }
		    $1 == s && $2 == "discard" && $4 != "ERR" { d[$3] = $4 }
		    END {
			for (r in k)
				if ((r in d) && k[r] > 0)
					v[n++] = d[r] / k[r]
			if (n == 0) { print "-"; exit }
			for (i = 1; i < n; i++) {
				x = v[i]
				for (j = i - 1; j >= 0 && v[j] > x; j--)
					v[j + 1] = v[j]
				v[j + 1] = x
			}
			m = n % 2 ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
			printf "%.2f [%.2f-%.2f]\n", m, v[0], v[n - 1]
		    }' "$RESULTS")"
	done
}

rcpt_rate() {	# rcpt_rate TARGET: median RCPT/s of scenario r
	m=$(median r "$1")
	[ "$m" = ERR ] && { echo ERR; return; }
	awk -v m="$m" -v n=$RCPT_PER 'BEGIN { printf "%.0f", m * n }'
}

source_report() {
	echo
	echo "throughput: smtp-source (messages/s and server CPU us/message, median of $ROUNDS;"
	echo "ratio = smtpd / smtp-sink)"
	printf '%-30s %8s %5s | %8s %5s %5s %6s %-4s | %8s %5s %5s %6s %-4s\n' \
	    scenario sink us discard us ratio target "" maildir us ratio \
	    target ""
	echo "$SCENARIOS" | while IFS='|' read -r scen title sess len msgs flags; do
		[ -n "$scen" ] || continue
		s=$(median "$scen" sink)
		d=$(median "$scen" discard)
		m=$(median "$scen" maildir)
		printf '%-30s %8s %5s | %8s %5s %s | %8s %5s %s\n' \
		    "($scen) $title" "$s" "$(median "$scen" sink 5)" \
		    "$d" "$(median "$scen" discard 5)" \
		    "$(ratio_cols "$d" "$s" "$(target "$scen" discard)")" \
		    "$m" "$(median "$scen" maildir 5)" \
		    "$(ratio_cols "$m" "$s" "$(target "$scen" maildir)")"
	done
	echo "maildir: a fork and exec of deliver-maildir a message, no target;"
	echo "the program path below is smtpd's rate against the machine's spawn cost"

	paired_report
	client_report

	echo
	RN=$(rcpt_rate notable)
	RT=$(rcpt_rate table)
	printf '(r) smtp-source -r %s: %s RCPT/s | with a 1,000,000-entry table %s RCPT/s' \
	    $RCPT_PER "$RN" "$RT"
	r=$(ratio "$RT" "$RN")
	[ "$r" != - ] &&
	    printf ' ratio %s (target >=0.90 %s)' "$r" "$(passmiss "$r" ">=" 0.90)"
	echo
	echo "    (smtpd with the table was up in $TABLE_UP s)"
	switch_report

	echo
	echo "rounds (msg/s: sink discard maildir)"
	echo "$SCENARIOS" | while IFS='|' read -r scen title sess len msgs flags; do
		[ -n "$scen" ] || continue
		printf '  (%s) %s msgs, smtp-source -s %s -l %s %s:' "$scen" \
		    "$msgs" "$sess" "$len" "$flags"
		r=1
		while [ $r -le "$ROUNDS" ]; do
			for t in sink discard maildir; do
				printf ' %s' "$(awk -v s="$scen" -v t="$t" -v r=$r \
				    '$1 == s && $2 == t && $3 == r { print $4 }' "$RESULTS")"
			done
			[ $r -lt "$ROUNDS" ] && printf ' |'
			r=$((r + 1))
		done
		echo
	done
}
