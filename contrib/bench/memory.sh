# contrib/bench/memory.sh: memory of smtpd's idle children, of its master,
# and of the whole process tree while 200 sessions are busy.  Sourced by
# bench.sh.

# Word splitting of PID lists, flags and "a b c" results is intended; the
# variables set here are read by the other parts.
# shellcheck shell=sh disable=SC2086,SC2046,SC2034,SC2317,SC2009,SC2015

IDLE_MAX_KIB=300
TREE_MAX_KIB=$((60 * 1024))
BUSY_SESSIONS=200
BUSY_WAIT=200		# tenths of a second for the sessions to come up

rollup() {	# rollup PID: "Pss Private" in KiB from smaps_rollup
	awk '/^Pss:/ { pss = $2 } /^Private_(Clean|Dirty):/ { priv += $2 }
	    END { print pss + 0, priv + 0 }' "/proc/$1/smaps_rollup" 2>/dev/null
}

idle_child_mem() {	# the idle child with the most private memory
	worst=0 wpss=0 n=0
	for c in $(ps -o pid=,args= --ppid "$1" | awk '/idle/ { print $1 }'); do
		set -- "$1" $(rollup "$c")
		[ $# -eq 3 ] || continue
		n=$((n + 1))
		if [ "$3" -gt "$worst" ]; then worst=$3 wpss=$2; fi
	done
	echo "$wpss $worst $n"
}

tree_pss() {	# tree_pss PID: "Pss-sum process-count" of the whole tree
	files=""
	for p in $(descendants "$1"); do files="$files /proc/$p/smaps_rollup"; done
	cat $files 2>/dev/null | awk '/^Rss:/ { n++ } /^Pss:/ { s += $2 }
	    END { print s + 0, n + 0 }'
}

# smtpd's processes are not dumpable (smtpd.8): their smaps_rollup is
# root's, and a bench run as another user cannot read it.
memory_readable() { [ -r "/proc/$DISCARD_PID/smaps_rollup" ] &&
    cat "/proc/$DISCARD_PID/smaps_rollup" >/dev/null 2>&1; }

memory_fresh() {
	memory_readable || return 0
	MEM_FRESH=$(idle_child_mem $DISCARD_PID)
	MEM_MASTER_FRESH=$(rollup $DISCARD_PID)
}

# busy_tree PID PORT MODE: the whole tree's PSS while BUSY_SESSIONS
# sessions are in progress.  smtp-source opens its sessions over a second
# or so and ends them when its messages run out, so it gets more messages
# than it can send in the time, and is stopped once the sample is taken.
# Sets BUSY to "pss processes sessions-before sessions-after": children
# serving a session right before and right after the sample (the broker
# and idle children are not counted).  A client that ended before the
# sample is an error, with its last words.
busy_tree() {
	$SOURCE -d -s $BUSY_SESSIONS -l 4096 -m 10000000 -M $HOST \
	    -f "sender@$HOST" -t "rcpt@$HOST" "127.0.0.1:$2" \
	    </dev/null >/dev/null 2>"$TMP/busy-$3.err" &
	CLIENT=$!
	i=0 busy=0
	while [ $i -lt $BUSY_WAIT ]; do
		busy=$(session_children "$1")
		[ "$busy" -ge $BUSY_SESSIONS ] && break
		alive $CLIENT || break
		sleep 0.1; i=$((i + 1))
	done
	BUSY="$(tree_pss "$1") $busy $(session_children "$1")"
	if ! alive $CLIENT; then
		wait $CLIENT
		echo "(memory) $3: smtp-source ended (status $?) with $busy" \
		    "sessions up: $(tail -1 "$TMP/busy-$3.err")" >>"$ERRORS"
	elif [ "$busy" -lt $BUSY_SESSIONS ]; then
		echo "(memory) $3: $busy of $BUSY_SESSIONS sessions up after" \
		    "$((BUSY_WAIT / 10)) s" >>"$ERRORS"
	fi
	stop_pid $CLIENT
	CLIENT=""
	[ -d "$MAILDIR/new" ] && find "$MAILDIR/new" -type f -delete
}

memory_run() {
	memory_readable || return 0
	say "memory: $BUSY_SESSIONS busy sessions, discard and maildir"
	busy_tree $DISCARD_PID $DISCARD_PORT discard
	BUSY_DISCARD=$BUSY
	busy_tree $MAILDIR_PID $MAILDIR_PORT maildir
	BUSY_MAILDIR=$BUSY
	# Children that served sessions cut short need a moment to be idle.
	sleep 1
	MEM_AFTER=$(idle_child_mem $DISCARD_PID)
	MEM_AFTER_MD=$(idle_child_mem $MAILDIR_PID)
	MEM_MASTER=$(rollup $DISCARD_PID)
}

mem_line() {	# mem_line LABEL "PSS PRIVATE [N]" LIMIT
	set -- "$1" $2 "$3"
	if [ "$4" = - ]; then
		printf '  %-52s pss %6s  private %6s\n' "$1" "$2" "$3"
	else
		printf '  %-52s pss %6s  private %6s  target private <%s %s\n' \
		    "$1" "$2" "$3" "$4" "$(passmiss "$3" "<" "$4")"
	fi
}

busy_line() {	# busy_line MODE "PSS PROCS SESSIONS SESSIONS-AFTER"
	set -- "$1" $2
	v=$(passmiss "$2" "<" "$TREE_MAX_KIB")
	# A sample with fewer sessions than it says is not a measurement (the
	# errors below say why).
	[ "$4" -lt $BUSY_SESSIONS ] && v="NOT MEASURED: only $4 sessions"
	printf '  %-52s pss %6s  (%s processes; %s, then %s sessions)  target <%s %s\n' \
	    "$BUSY_SESSIONS sessions busy, whole tree, $1" "$2" "$3" "$4" \
	    "$5" "$TREE_MAX_KIB" "$v"
}

memory_report() {
	echo
	echo "memory (KiB, /proc/PID/smaps_rollup; private = Private_Clean + Private_Dirty)"
	if ! memory_readable; then
		echo "  NOT MEASURED: smtpd's processes are not dumpable, so their"
		echo "  /proc/PID/smaps_rollup is root's; run make bench as root"
		return 0
	fi
	set -- $MEM_FRESH
	mem_line "idle child, fresh (worst of $3)" "$1 $2" $IDLE_MAX_KIB
	set -- $MEM_AFTER
	mem_line "idle child after the runs, discard (worst of $3)" "$1 $2" $IDLE_MAX_KIB
	set -- $MEM_AFTER_MD
	mem_line "idle child after the runs, maildir (worst of $3)" "$1 $2" $IDLE_MAX_KIB
	mem_line "master, fresh" "$MEM_MASTER_FRESH" -
	mem_line "master, after the runs" "$MEM_MASTER" -
	busy_line discard "$BUSY_DISCARD"
	busy_line maildir "$BUSY_MAILDIR"
}
