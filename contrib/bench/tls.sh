# contrib/bench/tls.sh: STARTTLS sessions (connect, EHLO, STARTTLS,
# handshake, EHLO, QUIT) by tls-client, against smtpd and against Postfix's
# smtpd, with the same certificate: full handshakes, then offering the last
# session for resumption.  Postfix runs as a private instance: its own
# configuration, queue and data directories under the bench's tmp, started
# with `master -c DIR`, stopped by PID; nothing under /etc/postfix is read
# or written but the package's defaults.  Sourced by bench.sh.

# Word splitting of PID lists, flags and "a b c" results is intended; the
# variables set here are read by the other parts.
# shellcheck shell=sh disable=SC2086,SC2046,SC2034

TLS_SECONDS=${BENCH_TLS_SECONDS:-5}
TLS_PROCS=${BENCH_TLS_PROCS:-8}
TLS_EHLO_MAX_MS=2	# the first EHLO over TLS, answered on loopback
TLS_RESUMED_MIN=90	# % of the sessions resumed when the client offers
TLS_SKIP_PF=""		# why Postfix could not run

tls_cert() {	# an RSA 2048 certificate, the kind most MX hosts have
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
	    -subj "/CN=$HOST" -keyout "$TMP/tls.key" -out "$TMP/tls.crt" \
	    >"$TMP/openssl.log" 2>&1 || die "openssl req: $(tail -1 "$TMP/openssl.log")"
	chmod 600 "$TMP/tls.key"
}

# postfix_start: Postfix's master and the daemons an smtpd with STARTTLS
# needs (tlsmgr makes the session ticket keys) on a free port.  Sets PF_PID
# and PF_PORT, or TLS_SKIP_PF.
postfix_start() {
	dir=$TMP/postfix
	daemons=$(postconf -dh daemon_directory 2>/dev/null)
	if [ "$(id -u)" != 0 ] || [ ! -x "$daemons/master" ]; then
		TLS_SKIP_PF="a private Postfix needs root and the postfix package"
		return
	fi
	free_port; PF_PORT=$PORT
	mkdir -p "$dir/conf" "$dir/queue" "$dir/data"
	chown postfix "$dir/data"
	cat >"$dir/conf/main.cf" <<EOF
# smtpd bench: a private Postfix for STARTTLS sessions
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.$HOST
mydestination =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
smtpd_tls_security_level = may
smtpd_tls_cert_file = $TMP/tls.crt
smtpd_tls_key_file = $TMP/tls.key
EOF
	cat >"$dir/conf/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
rewrite   unix  - - n - - trivial-rewrite
proxymap  unix  - - n - - proxymap
anvil     unix  - - n - 1 anvil
tlsmgr    unix  - - n 1000? 1 tlsmgr
postlog   unix-dgram n - n - 1 postlogd
EOF
	# check makes the queue's directories with their owners.
	if ! postfix -c "$dir/conf" check >"$dir/check.log" 2>&1; then
		TLS_SKIP_PF="postfix check failed: $(tail -1 "$dir/maillog" 2>/dev/null)"
		return
	fi
	# Its own process group: at SIGTERM the master signals the group.
	setsid "$daemons/master" -c "$dir/conf" -d >"$dir/master.log" 2>&1 &
	PF_PID=$!
	PIDS="$PIDS $PF_PID"
	wait_listen $PF_PORT $PF_PID ||
	    TLS_SKIP_PF="Postfix did not start: $(tail -1 "$dir/maillog" 2>/dev/null)"
}

# run_tls SCEN TARGET ROUND PORT [-r]: one tls-client run; records
# sessions/s, server CPU per session, EHLO median in ms, % resumed.
run_tls() {
	measure "$1" "$2" "$3" "$BENCH_BIN/tls-client" ${5:-} \
	    -P "$TLS_PROCS" -T "$TLS_SECONDS" -H "client.$HOST" \
	    "127.0.0.1:$4" || return
	# "tls-client: N sessions (...), ...: T s, R sessions/s, P% resumed,
	# EHLO after the handshake: median M ms, 90% Q ms"
	n=$(awk '{ print $2 }' "$TMP/run.out")
	p=$(field_before resumed,)
	record "$1 $2 $3 $(field_before sessions/s,) $(cpu_us "$C0" "$C1" "$n")" \
	    "$(awk '{ for (i = 2; i <= NF; i++) if ($i == "median") print $(i + 1) }' \
	    "$TMP/run.out") ${p%\%}"
}

tls_warm() {	# tls_warm PORT: sessions to start up what starts on demand
	"$BENCH_BIN/tls-client" -P "$TLS_PROCS" -n $((TLS_PROCS * 4)) \
	    "127.0.0.1:$1" >/dev/null 2>&1
}

tls_run() {
	tls_cert
	start_smtpd tls discard \
	    "tls certificate \"$TMP/tls.crt\" key \"$TMP/tls.key\"" starttls
	TLS_PID=$SMTPD_PID TLS_PORT=$SMTPD_PORT
	wait_prefork $TLS_PID
	postfix_start
	[ -n "$TLS_SKIP_PF" ] && say "STARTTLS: no Postfix: $TLS_SKIP_PF"
	[ -z "$TLS_SKIP_PF" ] && tls_warm $PF_PORT
	tls_warm $TLS_PORT
	printf 'bench: (t) STARTTLS, %s processes x %s s, full and resumed ' \
	    "$TLS_PROCS" "$TLS_SECONDS" >&2
	r=1
	while [ $r -le "$ROUNDS" ]; do
		for mode in full resumed; do
			flag=""
			[ $mode = resumed ] && flag=-r
			[ -z "$TLS_SKIP_PF" ] &&
			    run_tls "t-$mode" postfix $r $PF_PORT $flag
			run_tls "t-$mode" tls $r $TLS_PORT $flag
		done
		printf '.' >&2
		r=$((r + 1))
	done
	printf '\n' >&2
	[ -z "$TLS_SKIP_PF" ] && stop_pid $PF_PID
	stop_pid $TLS_PID
}

tls_row() {	# tls_row SCEN TARGET LABEL
	printf '  %-22s %10s %8s %7s%% %9s' "$3" "$(median "$1" "$2")" \
	    "$(median "$1" "$2" 5)" "$(median "$1" "$2" 7)" \
	    "$(median "$1" "$2" 6)"
}

tls_report() {
	echo
	echo "STARTTLS sessions: tls-client -P $TLS_PROCS -T $TLS_SECONDS" \
	    "(connect, EHLO, STARTTLS, handshake, EHLO, QUIT;"
	echo "RSA 2048, OpenSSL's defaults; no TCP_NODELAY in the client; median of $ROUNDS)"
	printf '  %-22s %10s %8s %8s %9s\n' "" sessions/s "us CPU" resumed \
	    "EHLO ms"
	for mode in full resumed; do
		if [ -z "$TLS_SKIP_PF" ]; then
			tls_row "t-$mode" postfix "$mode, Postfix smtpd"
			echo
		fi
		tls_row "t-$mode" tls "$mode, smtpd"
		e=$(median "t-$mode" tls 6)
		printf '  EHLO <%s ms %s' $TLS_EHLO_MAX_MS \
		    "$(passmiss "$e" "<" $TLS_EHLO_MAX_MS)"
		[ -z "$TLS_SKIP_PF" ] && printf '  ratio to Postfix %s' \
		    "$(ratio_cols "$(median "t-$mode" tls)" \
		    "$(median "t-$mode" postfix)" 1.00)"
		[ $mode = resumed ] && printf '  resumed >=%s%% %s' \
		    $TLS_RESUMED_MIN "$(passmiss "$(median "t-$mode" tls 7)" \
		    ">=" $TLS_RESUMED_MIN)"
		echo
	done
	[ -n "$TLS_SKIP_PF" ] && echo "  (no Postfix: $TLS_SKIP_PF)"
	echo "  EHLO ms: the first EHLO after the handshake until its reply"
}
