#!/bin/sh
# contrib/bench/bench.sh: smtpd against references on 127.0.0.1, in
# alternating rounds, printing rates, server CPU and memory next to targets:
#  - source.sh   Postfix's smtp-source against smtp-sink (Postfix's server
#                that does nothing: the practical speed limit) and smtpd
#                (deliver discard, and deliver-maildir), with the client's
#                own CPU beside the servers'; RCPT rate with a
#                1,000,000-entry recipient table; the cost of a context
#                switch between processes and between threads (switch-floor)
#  - memory.sh   idle children, master, 200 busy sessions
#  - program.sh  the spawn floor of a delivery program, and smtpd running it
#  - bdat.sh     1 MiB messages by BDAT against DATA (bdat-client)
#  - tls.sh      STARTTLS sessions, smtpd against a private Postfix instance
#                (tls-client), full handshakes and resumption
#  - compare.sh  with BENCH_BASE: the smtp-source scenarios against another
#                smtpd binary and this one, alternating
#
# Usage: contrib/bench/bench.sh        (from `make bench`, or the repo root)
# Environment: SMTPD, DELIVER_MAILDIR  binaries [build/smtpd, build/contrib/..]
#   BENCH_BIN [build/contrib/bench]  bdat-client, tls-client, spawn-floor,
#                      switch-floor
#   BENCH_ROUNDS [5]   BENCH_TMP [/dev/shm]   BENCH_KEEP=1 keeps the logs
#   BENCH_ONLY         workloads to run, of "source memory program bdat tls
#                      compare" [all of them; compare only with BENCH_BASE]
#   BENCH_BASE         another smtpd binary (say, built at an earlier commit
#                      in its own worktree) for compare
#   BENCH_MSGS_A..E    message counts of the five smtp-source scenarios
#   BENCH_MSGS_R [2000] messages of 100 recipients, with and without a
#                      1,000,000-entry `accept recipients` table
#   BENCH_MSGS_P [2000] spawns of the floor and messages of the program path
#   BENCH_SWITCH_HOPS [50000] hops of each context-switch ring
#   BENCH_MSGS_BDAT [1000] 1 MiB messages of each BDAT and DATA run
#   BENCH_TLS_SECONDS [5]  BENCH_TLS_PROCS [8]  each STARTTLS run
#   BENCH_QUIET_WAIT [120] seconds to wait at the start for the CPUs to be
#                      idle (what another job such as make check left running)
# It is a measurement, not a test: PASS/MISS is printed, the exit status is 0
# unless the bench itself could not run.

# The parts are sourced from BENCHDIR; PIDs and ports split as intended.
# shellcheck disable=SC1090,SC1091,SC2086,SC2015
set -u

cd "$(dirname "$0")/../.." || exit 1
BENCHDIR=contrib/bench
SMTPD=${SMTPD:-build/smtpd}
DELIVER_MAILDIR=${DELIVER_MAILDIR:-build/contrib/deliver-maildir}
BENCH_BIN=${BENCH_BIN:-build/contrib/bench}
# Five: the medians of three runs swung by 10% and more from one bench to
# the next on a 2-CPU machine shared by client and server.
ROUNDS=${BENCH_ROUNDS:-5}
ONLY=${BENCH_ONLY:-source memory program bdat tls compare}
BENCH_BASE=${BENCH_BASE:-}

. $BENCHDIR/lib.sh
. $BENCHDIR/source.sh
. $BENCHDIR/memory.sh
. $BENCHDIR/program.sh
. $BENCHDIR/bdat.sh
. $BENCHDIR/tls.sh
. $BENCHDIR/compare.sh

trap cleanup EXIT
# Dying of a signal would skip the EXIT trap: exit, and so clean up.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

wanted() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

[ -x "$SOURCE" ] && [ -x "$SINK" ] || install_postfix
[ -x "$SMTPD" ] || die "$SMTPD: not built (make build/smtpd)"
if [ -n "$BENCH_BASE" ]; then
	[ -f "$BENCH_BASE" ] && [ -x "$BENCH_BASE" ] ||
	    die "BENCH_BASE $BENCH_BASE: not an executable file"
	case $BENCH_BASE in /*) ;; *) BENCH_BASE=$PWD/$BENCH_BASE ;; esac
fi
[ -x "$DELIVER_MAILDIR" ] || die "$DELIVER_MAILDIR: not built"
for b in bdat-client tls-client spawn-floor switch-floor; do
	[ -x "$BENCH_BIN/$b" ] || die "$BENCH_BIN/$b: not built (make bench builds it)"
done

TMP=$(mktemp -d "${BENCH_TMP:-/dev/shm}/smtpd-bench.XXXXXX") ||
    die "mktemp failed"
case $TMP in /*) ;; *) TMP=$PWD/$TMP ;; esac	# it names programs
chmod 711 "$TMP"
RUNAS=nobody
[ "$(id -u)" = 0 ] || RUNAS=
RESULTS=$TMP/results	# scenario target round rate cpu-us ...
: >"$RESULTS"
ERRORS=$TMP/errors
: >"$ERRORS"

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
[ -n "$RUNAS" ] && chown -R "$RUNAS" "$MAILDIR"
# The deliver-user runs deliver-maildir: a copy under the bench's tmp
# (mode 711), which that user reaches wherever the checkout is (one
# under /root is closed to it).
cp "$DELIVER_MAILDIR" "$TMP/deliver-maildir" && chmod 755 "$TMP/deliver-maildir" ||
    die "cannot copy $DELIVER_MAILDIR to $TMP"
DELIVER_MAILDIR=$TMP/deliver-maildir

start_smtpd discard discard
DISCARD_PID=$SMTPD_PID DISCARD_PORT=$SMTPD_PORT
start_smtpd maildir "\"$DELIVER_MAILDIR $MAILDIR\""
MAILDIR_PID=$SMTPD_PID MAILDIR_PORT=$SMTPD_PORT
wait_prefork $DISCARD_PID
wait_prefork $MAILDIR_PID
# Started now, so that a base that cannot start stops the bench before it
# has run anything.
[ -n "$BENCH_BASE" ] && wanted compare && compare_start
wanted memory && memory_fresh

# --- runs --------------------------------------------------------------------

say "smtpd $SMTPD (git $(git describe --always --dirty 2>/dev/null || echo '?'))," \
    "Postfix $(dpkg-query -W -f='${Version}' postfix 2>/dev/null || echo '?')," \
    "OpenSSL $(openssl version 2>/dev/null | cut -d' ' -f2)"
say "$(nproc) CPUs, $(uname -sr); $ROUNDS rounds, medians;" \
    "server CPU = user+system of the server's whole process tree (/proc)"
say "ports: smtp-sink $SINK_PORT, smtpd discard $DISCARD_PORT, smtpd maildir $MAILDIR_PORT; tmp $TMP"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average before the runs: $LOAD"
wait_quiet

T_START=$(now)
wanted source && source_run
wanted memory && memory_run
wanted source && rcpt_run
wanted source && switch_run
wanted program && program_run
wanted bdat && bdat_run
wanted tls && tls_run
[ -n "$BENCH_BASE" ] && wanted compare && compare_run
T_END=$(now)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------

wanted source && source_report
wanted program && program_report
wanted bdat && bdat_report
wanted tls && tls_report
wanted memory && memory_report
[ -n "$BENCH_BASE" ] && wanted compare && compare_report

if [ -s "$ERRORS" ]; then
	echo
	echo "errors:"
	sed 's/^/  /' "$ERRORS"
fi
echo
say "load average after the runs: $LOAD_END"
say "done in $(awk -v a="$T_START" -v b="$T_END" 'BEGIN { printf "%.0f", b - a }') s"
exit 0
