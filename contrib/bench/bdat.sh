# contrib/bench/bdat.sh: 1 MiB messages over 20 sessions by BDAT (RFC 3030,
# the message in one chunk) against DATA, both sent by bdat-client to smtpd
# with deliver discard; DATA to smtp-sink for reference (smtp-sink does
# not offer CHUNKING).  Sourced by bench.sh.

# Word splitting of PID lists, flags and "a b c" results is intended; the
# variables set here are read by the other parts.
# shellcheck shell=sh disable=SC2086,SC2046,SC2034

BDAT_MSGS=${BENCH_MSGS_BDAT:-1000}
BDAT_LEN=1048576
BDAT_SESSIONS=20
BDAT_SKIP=""	# why the BDAT runs were skipped

# run_bdat SCEN TARGET ROUND PORT [-D]: one bdat-client run
run_bdat() {
	measure "$1" "$2" "$3" "$BENCH_BIN/bdat-client" ${5:-} \
	    -s $BDAT_SESSIONS -l $BDAT_LEN -m "$BDAT_MSGS" -H "$HOST" \
	    -f "sender@$HOST" -t "rcpt@$HOST" "127.0.0.1:$4" || return
	# "bdat-client: ...: T s, R msgs/s"
	record "$1 $2 $3 $(field_before msgs/s) $(cpu_us "$C0" "$C1" "$BDAT_MSGS")"
}

bdat_run() {
	# Does smtpd offer CHUNKING?  bdat-client exits 69 when not.
	"$BENCH_BIN/bdat-client" -m 1 -l 1024 "127.0.0.1:$DISCARD_PORT" \
	    >/dev/null 2>"$TMP/bdat.err"
	case $? in
	0)	;;
	69)	BDAT_SKIP="smtpd does not advertise CHUNKING" ;;
	*)	BDAT_SKIP="bdat-client failed: $(head -1 "$TMP/bdat.err")" ;;
	esac
	printf 'bench: (f) %s x 1 MiB, bdat-client, BDAT and DATA ' \
	    "$BDAT_MSGS" >&2
	r=1
	while [ $r -le "$ROUNDS" ]; do
		run_bdat f sink $r $SINK_PORT -D
		run_bdat f discard $r $DISCARD_PORT -D
		[ -z "$BDAT_SKIP" ] && run_bdat f bdat $r $DISCARD_PORT
		printf '.' >&2
		r=$((r + 1))
	done
	printf '\n' >&2
}

bdat_report() {
	s=$(median f sink)
	d=$(median f discard)
	echo
	echo "BDAT against DATA: bdat-client -s $BDAT_SESSIONS -l $BDAT_LEN -m $BDAT_MSGS" \
	    "(msgs/s, server CPU us/msg, median of $ROUNDS)"
	printf '  %-40s %8s msgs/s %6s us\n' "smtp-sink, DATA (-D)" "$s" \
	    "$(median f sink 5)"
	printf '  %-40s %8s msgs/s %6s us\n' "smtpd deliver discard, DATA (-D)" \
	    "$d" "$(median f discard 5)"
	if [ -n "$BDAT_SKIP" ]; then
		printf '  %-40s skipped: %s\n' "smtpd deliver discard, BDAT" \
		    "$BDAT_SKIP"
		return
	fi
	b=$(median f bdat)
	printf '  %-40s %8s msgs/s %6s us  ratio BDAT/DATA %s\n' \
	    "smtpd deliver discard, BDAT (1 chunk)" "$b" "$(median f bdat 5)" \
	    "$(ratio "$b" "$d")"
}
