# contrib/bench/lib.sh: what the bench scripts share: messages, Postfix's
# tools, processes and clean-up, ports, CPU of a process tree, smtpd
# instances, results and medians.  Sourced by bench.sh; sets nothing up by
# itself but the variables below.

# Word splitting of PID lists, flags and "a b c" results is intended; the
# variables set here are read by the other parts.
# shellcheck shell=sh disable=SC2086,SC2046,SC2034,SC2317,SC2009,SC2015

SOURCE=/usr/sbin/smtp-source
SINK=/usr/sbin/smtp-sink
HOST=bench.example
PREFORK=210
POLICY=/usr/sbin/policy-rc.d
MADE_POLICY=""	# set while this script's policy-rc.d exists
PIDS=""		# every long-running process started here
CLIENT=""	# a background client, if any
TMP=""
CLK_TCK=$(getconf CLK_TCK)

say() { printf 'bench: %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }

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
	if ! apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
	    --no-install-recommends postfix >"${TMPDIR:-/tmp}/bench-apt.$$" 2>&1; then
		apt-get update -qq >/dev/null 2>&1
		apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
		    --no-install-recommends postfix \
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
			rm -rf "$TMP/maildir" "$TMP/spool-"* "$TMP/postfix/queue"
			say "logs kept in $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
}

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

server_pid() {	# server_pid TARGET: the PID at the top of its tree
	case $1 in
	sink)		echo "$SINK_PID" ;;
	base)		echo "$BASE_PID" ;;
	discard|notable|bdat) echo "$DISCARD_PID" ;;
	maildir)	echo "$MAILDIR_PID" ;;
	table)		echo "$TABLE_PID" ;;
	program)	echo "$PROGRAM_PID" ;;
	floor)		;;
	tls)		echo "$TLS_PID" ;;
	postfix)	echo "$PF_PID" ;;
	*)		die "server_pid: $1?" ;;
	esac
}

# --- a quiet machine ---------------------------------------------------------

# cpu_busy: the share of all CPUs in use over one second, in percent
# (/proc/stat: everything but idle and iowait).
cpu_busy() {
	{ head -1 /proc/stat; sleep 1; head -1 /proc/stat; } | awk '
	    { t = 0; for (i = 2; i <= NF; i++) t += $i; idle = $5 + $6
	      if (NR == 1) { t0 = t; i0 = idle; next }
	      if (t > t0) printf "%.0f\n", 100 - 100 * (idle - i0) / (t - t0)
	      else print 0 }'
}

# wait_quiet: the runs start when the CPUs are idle (under 10% in use over
# a second), waiting up to BENCH_QUIET_WAIT seconds: the load average a
# job such as make check leaves behind says nothing of what runs now, and
# a job still running would take its share of every round.
wait_quiet() {
	w=0 max=${BENCH_QUIET_WAIT:-120}
	while b=$(cpu_busy) && [ "$b" -ge 10 ] && [ $w -lt "$max" ]; do
		[ $w -eq 0 ] && say "the CPUs are $b% in use; waiting up to $max s for them to be idle"
		sleep 4
		w=$((w + 5))
	done
	if [ "$b" -ge 10 ]; then
		say "warning: the CPUs are still $b% in use; expect noisy figures"
	elif [ $w -gt 0 ]; then
		say "CPUs in use before the runs: $b% (after $w s)"
	else
		say "CPUs in use before the runs: $b%"
	fi
}

# --- CPU of a server ---------------------------------------------------------

# tree_cpu PID: the CPU time of PID and every process below it, their
# own and that of the children they reaped (cutime, cstime), in
# microseconds.  A process that ends between two samples moves from its
# own count into its parent's c-fields, so the difference of two samples
# is the CPU the whole tree spent in between: smtpd's master, children and
# delivery programs, Postfix's master and all its daemons.  A process's
# own time is read from /proc/PID/schedstat (nanoseconds): stat's utime
# and stime are whole clock ticks, cut process by process, and 200
# children that each ran a few milliseconds in a run came to almost
# nothing (smtpd's CPU per message in scenario d read 9 us).  Second,
# the times these processes were put on a CPU (schedstat's third field),
# each a context switch to one of them; a process that ends between two
# samples takes its count with it, so only a tree whose processes live
# through the run (the servers with deliver discard, while no child is
# recycled) is counted whole: third, the pids, for measure to tell.
SCHEDSTAT=""
# A kernel without schedstats may show the file with zeros in it.
[ -r /proc/self/schedstat ] && read -r SCHEDSTAT _ </proc/self/schedstat
[ "${SCHEDSTAT:-0}" = 0 ] && SCHEDSTAT=""
tree_cpu() {
	[ -n "$1" ] || { echo 0 0; return; }
	files="" pids=""
	for p in $(descendants "$1"); do
		files="$files /proc/$p/stat"
		[ -n "$SCHEDSTAT" ] && files="$files /proc/$p/schedstat"
		pids="$pids$p,"
	done
	# Fields after "pid (comm) ": utime stime cutime cstime are 12-15;
	# schedstat's first field is the time run, its third the times the
	# process was put on a CPU (a context switch to it).
	cat $files 2>/dev/null | awk -v hz="$CLK_TCK" -v ss="$SCHEDSTAT" '
	    /\) / { sub(/^.*\) /, "")
		t = $14 + $15
		if (ss == "") t += $12 + $13
		us += t * 1e6 / hz; next }
	    NF == 3 { us += $1 / 1000; runs += $3 }
	    END { printf "%.0f %.0f ", us, runs }'
	echo "$pids"
}

# lived PIDS0 PIDS1: whether every process of the first sample of tree_cpu
# is in the second.
lived() {
	awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, ","); split(b, y, ",")
	    for (i in y) have[y[i]] = 1
	    for (i = 1; i <= n; i++) if (x[i] != "" && !(x[i] in have)) exit 1 }'
}

# children_us FILE: the second line of the output of the builtin times
# (the CPU of the shell's reaped children, "0m1.23s 0m0.45s"), in us.
children_us() {
	awk 'NR == 2 { for (i = 1; i <= 2; i++) {
		split($i, t, "m"); sub(/s$/, "", t[2]); us += (t[1] * 60 + t[2]) * 1e6 }
	    printf "%.0f\n", us }' "$1"
}

# measure SCEN TARGET ROUND COMMAND...: runs a client with the CPU of the
# TARGET server's tree sampled before and after (C0, C1, in us; W0, W1
# its switches, see tree_cpu; W0 is "-" when a process of the tree ended
# in between and took its switches with it), the
# clock (T0, T1) and the client's own CPU (CC, in us: the builtin times
# around it, with no other command of this shell in between); its output
# in $TMP/run.out and run.err.  A client that fails or complains on
# stderr is an error of the run: recorded, and measure returns 1.
measure() {
	m_scen=$1 m_tgt=$2 m_round=$3
	shift 3
	m_pid=$(server_pid "$m_tgt")
	read -r C0 W0 P0 <<EOF
$(tree_cpu "$m_pid")
EOF
	T0=$(now)
	times >"$TMP/times0"
	"$@" </dev/null >"$TMP/run.out" 2>"$TMP/run.err"
	m_rc=$?
	times >"$TMP/times1"
	T1=$(now)
	CC=$(($(children_us "$TMP/times1") - $(children_us "$TMP/times0")))
	read -r C1 W1 P1 <<EOF
$(tree_cpu "$m_pid")
EOF
	lived "$P0" "$P1" || W0=-
	[ $m_rc -eq 0 ] && [ ! -s "$TMP/run.err" ] && return 0
	echo "($m_scen) $m_tgt round $m_round: ${1##*/} exit $m_rc: $(head -3 "$TMP/run.err")" >>"$ERRORS"
	record "$m_scen $m_tgt $m_round ERR ERR ERR ERR ERR"
	return 1
}

field_before() {	# field_before WORD: in run.out, the field before WORD
	awk -v w="$1" '{ for (i = 2; i <= NF; i++) if ($i == w) print $(i - 1) }' \
	    "$TMP/run.out"
}

cpu_us() {	# cpu_us US0 US1 COUNT: microseconds of CPU per unit
	awk -v a="$1" -v b="$2" -v n="$3" \
	    'BEGIN { if (n > 0) printf "%.0f", (b - a) / n; else print "-" }'
}

# --- smtpd instances ---------------------------------------------------------

# start_smtpd NAME DELIVER [LINE [LISTEN-OPTIONS]]: a pool of PREFORK
# children on a free port; sets SMTPD_PID, SMTPD_PORT.  The binary is
# START_BIN when set (compare.sh), else SMTPD.
START_BIN=""
start_smtpd() {
	free_port
	spool=$TMP/spool-$1
	mkdir -p "$spool"
	[ -n "$RUNAS" ] && chown "$RUNAS" "$spool"
	{
		echo "# smtpd bench: $1"
		echo "hostname $HOST"
		echo "listen on 127.0.0.1 port $PORT ${4:-}"
		echo "prefork $PREFORK"
		echo "max-clients 512"
		echo "max-clients-per-address 512"
		echo "received-header yes"
		echo "spool $spool"
		# Every daemon its own status socket, not the host's default.
		echo "control $TMP/$1.sock"
		[ -n "$RUNAS" ] && echo "user $RUNAS"
		echo "deliver $2"
		[ -n "${3:-}" ] && echo "$3"
	} >"$TMP/$1.conf"
	bin=${START_BIN:-$SMTPD}
	"$bin" -n -f "$TMP/$1.conf" >/dev/null 2>"$TMP/$1.check" ||
	    die "$TMP/$1.conf rejected: $(cat "$TMP/$1.check")"
	"$bin" -d -f "$TMP/$1.conf" 2>"$TMP/$1.log" &
	SMTPD_PID=$!
	PIDS="$PIDS $SMTPD_PID"
	SMTPD_PORT=$PORT
	wait_listen $PORT $SMTPD_PID ||
	    die "smtpd ($1) did not start: $(tail -5 "$TMP/$1.log")"
}

idle_children() {	# idle_children PID: count of children titled idle
	ps -o args= --ppid "$1" | grep -c idle
}

# session_children PID: children serving a session.  A session child's
# title is its client's address (the bench's clients are all on
# 127.0.0.1); the broker and idle children have names (a child serving a
# metrics scrape has its scraper's address, but the bench does not scrape).
session_children() {
	ps -o args= --ppid "$1" | grep -cE '^smtpd: 127\.0\.0\.1( |$)'
}

wait_prefork() {	# wait_prefork PID: until the pool is up (10 s at most)
	i=0
	while [ "$(idle_children "$1")" -lt $PREFORK ] && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
}

# --- results -----------------------------------------------------------------

# $RESULTS has one line per run: "scenario target round rate cpu-us ...".
record() { echo "$*" >>"$RESULTS"; }

# median SCEN TARGET [FIELD [counted]]: the median of a field (4: rate);
# with "counted", of the rounds where it was counted (not "-"), if any.
median() {
	awk -v s="$1" -v t="$2" -v f="${3:-4}" -v c="${4:-}" '
	    $1 == s && $2 == t && !(c != "" && $f == "-") { print $f }' \
	    "$RESULTS" | sort -n | awk -v c="${4:-}" '
		/ERR/ { err = 1 } /^-$/ { dash = 1 } { v[n++] = $1 }
		END {
			if (n == 0 && c != "") { print "-"; exit }
			if (err || n == 0) { print "ERR"; exit }
			if (dash) { print "-"; exit }
			if (n % 2) print v[int(n / 2)]
			else printf "%.1f\n", (v[n / 2 - 1] + v[n / 2]) / 2
		}'
}

passmiss() {	# passmiss VALUE OP LIMIT
	if awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
	    exit !((op == "<" && v < l) || (op == ">=" && v >= l)) }'; then
		echo PASS
	else
		echo MISS
	fi
}

ratio() {	# ratio A B: A / B with two decimals, or "-"
	case "$1:$2" in
	ERR:* | *:ERR | -:* | *:- | *:0 | *:0.0) echo - ;;
	*) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' ;;
	esac
}

ratio_cols() {	# ratio_cols RATE REFRATE TARGET: "ratio target verdict"
	if [ "$1" = ERR ] || [ "$2" = ERR ]; then
		printf '%5s %6s %-4s' - "$3" ERR
		return
	fi
	r=$(ratio "$1" "$2")
	if [ "$3" = - ] || [ "$r" = - ]; then
		printf '%5s %6s %-4s' "$r" - ""
	else
		printf '%5s %6s %-4s' "$r" ">=$3" "$(passmiss "$r" ">=" "$3")"
	fi
}
