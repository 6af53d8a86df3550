#!/bin/sh
# contrib/bench/bench.sh: smtpd against Postfix's smtp-sink (an SMTP server
# that does nothing: the practical speed limit on this machine), both driven
# by Postfix's smtp-source on 127.0.0.1, in alternating rounds; prints
# messages/s, the ratio smtpd/smtp-sink and memory figures next to targets.
#
# Usage: contrib/bench/bench.sh        (from `make bench`, or the repo root)
# Environment: SMTPD, DELIVER_MAILDIR  binaries [build/smtpd, build/contrib/..]
#   BENCH_ROUNDS [3]   BENCH_TMP [/dev/shm]   BENCH_KEEP=1 keeps the logs
#   BENCH_MSGS_A..E    message counts of the five scenarios
#   BENCH_MSGS_R [2000] messages of 100 recipients, with and without a
#                      1,000,000-entry `accept recipients` table
# It is a measurement, not a test: PASS/MISS is printed, the exit status is 0
# unless the bench itself could not run.

# Word splitting of PID lists and "a b c" results is intended here.
# shellcheck disable=SC2086,SC2046,SC2317,SC2009,SC2015

set -u

cd "$(dirname "$0")/../.." || exit 1
SMTPD=${SMTPD:-build/smtpd}
DELIVER_MAILDIR=${DELIVER_MAILDIR:-build/contrib/deliver-maildir}
ROUNDS=${BENCH_ROUNDS:-3}
SOURCE=/usr/sbin/smtp-source
SINK=/usr/sbin/smtp-sink
HOST=bench.example
PREFORK=210

# name:sessions:length:messages:source flags (-d: many messages/connection)
SCENARIOS="
a|20 sessions x 4 KiB|20|4096|${BENCH_MSGS_A:-20000}|-d
b|1 msg/connection, 20 sess|20|4096|${BENCH_MSGS_B:-5000}|
c|1 session (latency)|1|4096|${BENCH_MSGS_C:-6000}|-d
d|200 sessions x 4 KiB|200|4096|${BENCH_MSGS_D:-10000}|-d
e|20 sessions x 1 MiB|20|1048576|${BENCH_MSGS_E:-500}|-d
"
# Targets, as ratios to smtp-sink; "-" means none.
target() {	# target scenario deliver-mode
	case "$2:$1" in
	discard:a|discard:d)	echo 0.80 ;;
	discard:e)		echo 0.90 ;;
	maildir:*)		echo 0.15 ;;
	*)			echo - ;;
	esac
}
IDLE_MAX_KIB=300
TREE_MAX_KIB=$((60 * 1024))

say() { printf 'bench: %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# --- Postfix's smtp-source and smtp-sink ---------------------------------

# Installs the Debian package postfix without starting or configuring
# Postfix: policy-rc.d forbids service starts during the install, debconf
# says "No configuration", and the boot-time service is disabled afterwards.
install_postfix() {
	[ "$(id -u)" = 0 ] ||
	    die "smtp-source/smtp-sink missing: run as root, or: apt-get install postfix"
	command -v apt-get >/dev/null || die "no apt-get: install Postfix's smtp-source and smtp-sink"
	say "installing Debian package postfix (for /usr/sbin/smtp-source and smtp-sink);"
	say "Postfix is left unconfigured (no main.cf), not started, and disabled at boot"
	if [ ! -e "$POLICY" ]; then
		printf '#!/bin/sh\n# smtpd bench: no service starts\nexit 101\n' >"$POLICY" &&
		    chmod 755 "$POLICY" && MADE_POLICY=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-cache show postfix >/dev/null 2>&1 || apt-get update -qq >/dev/null 2>&1
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections
	# Refuse if postfix would replace the installed MTA (exim4, ...).
	if apt-get -s install --no-install-recommends postfix 2>/dev/null |
	    grep -q '^Remv '; then
		die "installing postfix would remove packages (another MTA?); install smtp-source/smtp-sink yourself"
	fi
	apt-get -s install --no-install-recommends postfix 2>/dev/null |
	    awk '/^Inst /{ v = $3; gsub(/[()]/, "", v)
		printf "bench:   installs %s %s\n", $2, v }'
	ok=1
	if ! apt-get install -y -qq --no-install-recommends postfix \
	    >"${TMPDIR:-/tmp}/bench-apt.$$" 2>&1; then
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends postfix \
		    >"${TMPDIR:-/tmp}/bench-apt.$$" 2>&1 || ok=
	fi
	[ -n "$ok" ] || tail -20 "${TMPDIR:-/tmp}/bench-apt.$$" >&2
	rm -f "${TMPDIR:-/tmp}/bench-apt.$$"
	[ -n "$MADE_POLICY" ] && rm -f "$POLICY"
	MADE_POLICY=
	[ -n "$ok" ] || die "apt-get install postfix failed"
	# Postfix stays installed but inert: no start at boot either.
	command -v deb-systemd-helper >/dev/null &&
	    deb-systemd-helper disable postfix.service >/dev/null 2>&1
	command -v update-rc.d >/dev/null &&
	    update-rc.d postfix disable >/dev/null 2>&1
	[ -x "$SOURCE" ] && [ -x "$SINK" ] || die "postfix installed, but no $SOURCE"
}

# --- processes and clean-up ----------------------------------------------

POLICY=/usr/sbin/policy-rc.d
MADE_POLICY=""	# set while this script's policy-rc.d exists
PIDS=""		# every long-running process started here
CLIENT=""	# a background smtp-source, if any
TMP=""

descendants() {	# descendants PID: PID and all below it
	ps -e -o pid= -o ppid= | awk -v root="$1" '
	    { ppid[$1] = $2; pids[n++] = $1 }
	    END {
		keep[root] = 1; print root
		do {
			more = 0
			for (i = 0; i < n; i++) {
				p = pids[i]
				if (!(p in keep) && (ppid[p] in keep)) {
					keep[p] = 1; print p; more = 1
				}
			}
		} while (more)
	    }'
}

alive() { kill -0 "$1" 2>/dev/null; }

stop_pid() {	# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL
	pid=$1
	alive "$pid" || return 0
	tree=$(descendants "$pid")
	kill "$pid" 2>/dev/null
	i=0
	while alive "$pid" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	alive "$pid" && kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# Children left behind by a dying master (by PID, never by name).
	for p in $tree; do
		[ "$p" = "$pid" ] && continue
		alive "$p" && kill "$p" 2>/dev/null
	done
	return 0
}

cleanup() {
	trap - EXIT HUP INT PIPE TERM
	[ -n "$MADE_POLICY" ] && rm -f "$POLICY"
	[ -n "$CLIENT" ] && stop_pid "$CLIENT"
	for p in $PIDS; do stop_pid "$p"; done
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ]; then
			rm -rf "$TMP/maildir" "$TMP/spool-"*
			say "logs kept in $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
}
trap cleanup EXIT
# Dying of a signal would skip the EXIT trap: exit, and so clean up.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

[ -x "$SOURCE" ] && [ -x "$SINK" ] || install_postfix
[ -x "$SMTPD" ] || die "$SMTPD: not built (make build/smtpd)"
[ -x "$DELIVER_MAILDIR" ] || die "$DELIVER_MAILDIR: not built"
case $DELIVER_MAILDIR in /*) ;; *) DELIVER_MAILDIR=$PWD/$DELIVER_MAILDIR ;; esac

TMP=$(mktemp -d "${BENCH_TMP:-/dev/shm}/smtpd-bench.XXXXXX") ||
    die "mktemp failed"
chmod 711 "$TMP"
RUNAS=nobody
[ "$(id -u)" = 0 ] || RUNAS=

# --- ports -------------------------------------------------------------------

port_listening() {	# port_listening PORT: any socket listens on it
	hex=$(printf '%04X' "$1")
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
	    awk -v h="$hex" '{ n = split($2, a, ":"); if (a[n] == h && $4 == "0A") f = 1 }
		END { exit !f }'
}

NEXT_PORT=$((20000 + ($$ * 37) % 9000))
free_port() {	# sets PORT: below the ephemeral range, nobody listening
	while :; do
		NEXT_PORT=$((NEXT_PORT + 1))
		[ $NEXT_PORT -ge 30000 ] && NEXT_PORT=20001
		port_listening $NEXT_PORT || break
	done
	PORT=$NEXT_PORT
}

wait_listen() {	# wait_listen PORT PID
	i=0
	while ! port_listening "$1"; do
		alive "$2" || return 1
		[ $i -ge 100 ] && return 1
		sleep 0.1; i=$((i + 1))
	done
}

# --- servers -----------------------------------------------------------------

free_port; SINK_PORT=$PORT
sink_user=""
[ -n "$RUNAS" ] && sink_user="-u $RUNAS"
# -m: up to 1000 simultaneous sessions (default 256); backlog 1024.
# shellcheck disable=SC2086
$SINK $sink_user -m 1000 -h $HOST 127.0.0.1:$SINK_PORT 1024 \
    >"$TMP/sink.log" 2>&1 &
SINK_PID=$!
PIDS="$PIDS $SINK_PID"
wait_listen $SINK_PORT $SINK_PID || die "smtp-sink did not start: $(cat "$TMP/sink.log")"

MAILDIR=$TMP/maildir
mkdir -p "$MAILDIR/tmp" "$MAILDIR/new" "$MAILDIR/cur"

start_smtpd() {	# start_smtpd NAME DELIVER-LINE [LINE]: sets SMTPD_PID, SMTPD_PORT
	free_port
	spool=$TMP/spool-$1
	mkdir -p "$spool"
	[ -n "$RUNAS" ] && chown "$RUNAS" "$spool"
	{
		echo "# smtpd bench: $1"
		echo "hostname $HOST"
		echo "listen on 127.0.0.1 port $PORT"
		echo "prefork $PREFORK"
		echo "max-clients 512"
		echo "max-clients-per-address 512"
		echo "received-header yes"
		echo "spool $spool"
		[ -n "$RUNAS" ] && echo "user $RUNAS"
		echo "deliver $2"
		[ -n "${3:-}" ] && echo "$3"
	} >"$TMP/$1.conf"
	"$SMTPD" -n -f "$TMP/$1.conf" >/dev/null 2>"$TMP/$1.check" ||
	    die "$TMP/$1.conf rejected: $(cat "$TMP/$1.check")"
	"$SMTPD" -d -f "$TMP/$1.conf" 2>"$TMP/$1.log" &
	SMTPD_PID=$!
	PIDS="$PIDS $SMTPD_PID"
	SMTPD_PORT=$PORT
	wait_listen $PORT $SMTPD_PID ||
	    die "smtpd ($1) did not start: $(tail -5 "$TMP/$1.log")"
}

idle_children() {	# idle_children PID: count of children titled idle
	ps -o args= --ppid "$1" | grep -c idle
}

busy_children() {	# children serving a session (title: the client)
	ps -o args= --ppid "$1" | grep -vc idle
}

wait_prefork() {	# wait_prefork PID: until the pool is up (10 s at most)
	i=0
	while [ "$(idle_children "$1")" -lt $PREFORK ] && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
}

start_smtpd discard discard
DISCARD_PID=$SMTPD_PID DISCARD_PORT=$SMTPD_PORT
[ -n "$RUNAS" ] && chown -R "$RUNAS" "$MAILDIR"
start_smtpd maildir "\"$DELIVER_MAILDIR $MAILDIR\""
MAILDIR_PID=$SMTPD_PID MAILDIR_PORT=$SMTPD_PORT
wait_prefork $DISCARD_PID
wait_prefork $MAILDIR_PID

# --- memory ------------------------------------------------------------------

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
	# shellcheck disable=SC2086
	cat $files 2>/dev/null | awk '/^Rss:/ { n++ } /^Pss:/ { s += $2 }
	    END { print s + 0, n + 0 }'
}

passmiss() {	# passmiss VALUE OP LIMIT
	if awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
	    exit !((op == "<" && v < l) || (op == ">=" && v >= l)) }'; then
		echo PASS
	else
		echo MISS
	fi
}

MEM_FRESH=$(idle_child_mem $DISCARD_PID)
MEM_MASTER_FRESH=$(rollup $DISCARD_PID)

# --- runs --------------------------------------------------------------------

now() { date +%s.%N; }

RESULTS=$TMP/results	# scenario target round rate
: >"$RESULTS"
ERRORS=$TMP/errors
: >"$ERRORS"

run_source() {	# run_source SCEN TARGET ROUND PORT SESS LEN MSGS FLAGS
	scen=$1 tgt=$2 round=$3
	[ "$tgt" = maildir ] && find "$MAILDIR/new" -type f -delete
	t0=$(now)
	# shellcheck disable=SC2086
	$SOURCE $8 -s "$5" -l "$6" -m "$7" -M $HOST -f "sender@$HOST" \
	    -t "rcpt@$HOST" "127.0.0.1:$4" </dev/null >/dev/null \
	    2>"$TMP/source.err"
	rc=$?
	t1=$(now)
	if [ $rc -ne 0 ] || [ -s "$TMP/source.err" ]; then
		echo "($scen) $tgt round $round: smtp-source exit $rc: $(head -3 "$TMP/source.err")" >>"$ERRORS"
		echo "$scen $tgt $round ERR" >>"$RESULTS"
		return
	fi
	if [ "$tgt" = maildir ]; then
		got=$(find "$MAILDIR/new" -type f | wc -l)
		[ "$got" -eq "$7" ] ||
		    echo "($scen) maildir round $round: $got of $7 messages in new/" >>"$ERRORS"
		find "$MAILDIR/new" -type f -delete
	fi
	echo "$scen $tgt $round $(awk -v a="$t0" -v b="$t1" -v m="$7" \
	    'BEGIN { printf "%.1f", m / (b - a) }')" >>"$RESULTS"
}

say "smtpd $SMTPD (git $(git describe --always --dirty 2>/dev/null || echo '?'))," \
    "smtp-sink/smtp-source $(dpkg-query -W -f='${Version}' postfix 2>/dev/null || echo '?')"
say "$(nproc) CPUs, $(uname -sr); $ROUNDS rounds, alternating smtp-sink," \
    "smtpd deliver discard, smtpd deliver-maildir (tmpfs); median msg/s"
say "ports: smtp-sink $SINK_PORT, smtpd discard $DISCARD_PORT, smtpd maildir $MAILDIR_PORT; tmp $TMP"

LOAD=$(cut -d' ' -f1 /proc/loadavg)
say "load average before the runs: $LOAD"
awk -v l="$LOAD" 'BEGIN { exit !(l > 1.5) }' &&
    say "warning: other processes use the CPU; expect noisy figures"
T_START=$(now)
while IFS='|' read -r scen title sess len msgs flags; do
	[ -n "$scen" ] || continue
	printf 'bench: (%s) %s: %s msgs ' "$scen" "$title" "$msgs" >&2
	r=1
	while [ $r -le "$ROUNDS" ]; do
		run_source "$scen" sink $r $SINK_PORT "$sess" "$len" "$msgs" "$flags"
		run_source "$scen" discard $r $DISCARD_PORT "$sess" "$len" "$msgs" "$flags"
		run_source "$scen" maildir $r $MAILDIR_PORT "$sess" "$len" "$msgs" "$flags"
		printf '.' >&2
		r=$((r + 1))
	done
	printf '\n' >&2
done <<EOF
$SCENARIOS
EOF

# 200 busy sessions: the whole tree's PSS, sampled once all are connected.
busy_tree() {	# busy_tree PID PORT MSGS: sets BUSY to "pss procs busy"
	$SOURCE -d -s 200 -l 4096 -m "$3" -M $HOST -f "sender@$HOST" \
	    -t "rcpt@$HOST" "127.0.0.1:$2" </dev/null >/dev/null 2>&1 &
	CLIENT=$!
	i=0 busy=0
	while [ $i -lt 100 ]; do
		busy=$(busy_children "$1")
		[ "$busy" -ge 200 ] && break
		alive $CLIENT || break
		sleep 0.05; i=$((i + 1))
	done
	BUSY="$(tree_pss "$1") $busy"
	wait $CLIENT 2>/dev/null
	CLIENT=""
	[ -d "$MAILDIR/new" ] && find "$MAILDIR/new" -type f -delete
}
busy_tree $DISCARD_PID $DISCARD_PORT 20000
BUSY_DISCARD=$BUSY
busy_tree $MAILDIR_PID $MAILDIR_PORT 3000
BUSY_MAILDIR=$BUSY
MEM_AFTER=$(idle_child_mem $DISCARD_PID)
MEM_AFTER_MD=$(idle_child_mem $MAILDIR_PID)
MEM_MASTER=$(rollup $DISCARD_PID)
T_END=$(now)

# RCPT rate with a 1,000,000-entry recipient table against none: a hash
# lookup per RCPT should not show.  smtp-source -r N sends RCPT TO the
# recipients 1rcpt@ .. Nrcpt@; the table holds them (and 0rcpt@) among a
# million.
RCPT_MSGS=${BENCH_MSGS_R:-2000}
RCPT_PER=100
awk -v h=$HOST -v n=$RCPT_PER 'BEGIN {
	for (i = 0; i < 1000000 - n - 2; i++) printf "user%d@d%d.%s\n", i, i % 997, h
	for (i = 0; i <= n; i++) printf "%drcpt@%s\n", i, h
	printf "rcpt@%s\n", h }' >"$TMP/rcpts"
[ -n "$RUNAS" ] && chmod 644 "$TMP/rcpts"
T0=$(now)
start_smtpd table discard "accept recipients $TMP/rcpts"
TABLE_PID=$SMTPD_PID TABLE_PORT=$SMTPD_PORT
wait_prefork $TABLE_PID
say "1,000,000-entry table: smtpd up in $(awk -v a="$T0" -v b="$(now)" \
    'BEGIN { printf "%.1f", b - a }') s"
r=1
printf 'bench: (r) RCPT rate, %s msgs x %s rcpts ' "$RCPT_MSGS" $RCPT_PER >&2
while [ $r -le "$ROUNDS" ]; do
	run_source r notable $r $DISCARD_PORT 20 1024 "$RCPT_MSGS" "-d -r $RCPT_PER"
	run_source r table $r $TABLE_PORT 20 1024 "$RCPT_MSGS" "-d -r $RCPT_PER"
	printf '.' >&2
	r=$((r + 1))
done
printf '\n' >&2

# --- report ------------------------------------------------------------------

median() {	# median SCEN TARGET: the median rate, or ERR
	awk -v s="$1" -v t="$2" '$1 == s && $2 == t { print $4 }' "$RESULTS" |
	    sort -n | awk '
		/ERR/ { err = 1 } { v[n++] = $1 }
		END {
			if (err || n == 0) { print "ERR"; exit }
			if (n % 2) print v[int(n / 2)]
			else printf "%.1f\n", (v[n / 2 - 1] + v[n / 2]) / 2
		}'
}

ratio_cols() {	# ratio_cols RATE SINKRATE TARGET: "ratio target verdict"
	if [ "$1" = ERR ] || [ "$2" = ERR ]; then
		printf '%6s %7s %-4s' - "$3" ERR
		return
	fi
	ratio=$(awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }')
	if [ "$3" = - ]; then
		printf '%6s %7s %-4s' "$ratio" - ""
	else
		printf '%6s %7s %-4s' "$ratio" ">=$3" "$(passmiss "$ratio" ">=" "$3")"
	fi
}

echo
echo "throughput (messages/s, median of $ROUNDS; ratio = smtpd / smtp-sink)"
printf '%-30s %9s | %9s %6s %7s %-4s | %9s %6s %7s %-4s\n' \
    scenario smtp-sink discard ratio target "" maildir ratio target ""
echo "$SCENARIOS" | while IFS='|' read -r scen title sess len msgs flags; do
	[ -n "$scen" ] || continue
	s=$(median "$scen" sink)
	d=$(median "$scen" discard)
	m=$(median "$scen" maildir)
	printf '%-30s %9s | %9s %s | %9s %s\n' "($scen) $title" "$s" \
	    "$d" "$(ratio_cols "$d" "$s" "$(target "$scen" discard)")" \
	    "$m" "$(ratio_cols "$m" "$s" "$(target "$scen" maildir)")"
done

echo
rcpt_rate() {	# rcpt_rate TARGET: median RCPT/s of scenario r
	m=$(median r "$1")
	[ "$m" = ERR ] && { echo ERR; return; }
	awk -v m="$m" -v n=$RCPT_PER 'BEGIN { printf "%.0f", m * n }'
}
RN=$(rcpt_rate notable)
RT=$(rcpt_rate table)
printf '%-30s %9s RCPT/s | with a 1,000,000-entry table %9s RCPT/s' \
    "(r) smtp-source -r $RCPT_PER" "$RN" "$RT"
if [ "$RN" != ERR ] && [ "$RT" != ERR ]; then
	ratio=$(awk -v a="$RT" -v b="$RN" 'BEGIN { printf "%.2f", a / b }')
	printf ' ratio %s (target >=0.90 %s)' "$ratio" \
	    "$(passmiss "$ratio" ">=" 0.90)"
fi
echo

echo
echo "rounds (msg/s: sink discard maildir)"
echo "$SCENARIOS" | while IFS='|' read -r scen title sess len msgs flags; do
	[ -n "$scen" ] || continue
	printf '  (%s) %s msgs, smtp-source -s %s -l %s %s:' "$scen" "$msgs" \
	    "$sess" "$len" "$flags"
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

echo
echo "memory (KiB, /proc/PID/smaps_rollup; private = Private_Clean + Private_Dirty)"
mem_line() {	# mem_line LABEL "PSS PRIVATE [N]" LIMIT
	set -- "$1" $2 "$3"
	if [ "$4" = - ]; then
		printf '  %-52s pss %6s  private %6s\n' "$1" "$2" "$3"
	else
		printf '  %-52s pss %6s  private %6s  target private <%s %s\n' \
		    "$1" "$2" "$3" "$4" "$(passmiss "$3" "<" "$4")"
	fi
}
set -- $MEM_FRESH
mem_line "idle child, fresh (worst of $3)" "$1 $2" $IDLE_MAX_KIB
set -- $MEM_AFTER
mem_line "idle child after the runs, discard (worst of $3)" "$1 $2" $IDLE_MAX_KIB
set -- $MEM_AFTER_MD
mem_line "idle child after the runs, maildir (worst of $3)" "$1 $2" $IDLE_MAX_KIB
mem_line "master, fresh" "$MEM_MASTER_FRESH" -
mem_line "master, after the runs" "$MEM_MASTER" -
for v in discard maildir; do
	if [ $v = discard ]; then set -- $BUSY_DISCARD; else set -- $BUSY_MAILDIR; fi
	printf '  %-52s pss %6s  (%s processes, %s busy)  target <%s %s\n' \
	    "200 sessions busy, whole tree, $v" "$1" "$2" "$3" "$TREE_MAX_KIB" \
	    "$(passmiss "$1" "<" "$TREE_MAX_KIB")"
done

if [ -s "$ERRORS" ]; then
	echo
	echo "errors:"
	sed 's/^/  /' "$ERRORS"
fi
echo
say "done in $(awk -v a="$T_START" -v b="$T_END" 'BEGIN { printf "%.0f", b - a }') s"
exit 0
