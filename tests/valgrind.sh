#!/bin/sh
# Full sessions (plain, STARTTLS with AUTH, implicit TLS) against smtpd
# running under valgrind; fails on any memory error or definite leak in
# the master or a child.  Usage: sh tests/valgrind.sh [build/smtpd]
set -u
smtpd=$(cd "$(dirname "${1:-build/smtpd}")" && pwd)/$(basename "${1:-build/smtpd}")
command -v valgrind >/dev/null || { echo "valgrind: not installed"; exit 1; }
tmp=$(mktemp -d /tmp/smtpd-vg.XXXXXX)
chmod 1777 "$tmp"	# the spool: children run as nobody when root
trap 'rm -rf "$tmp"' EXIT
port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
p1=$(port); p2=$(port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 -subj /CN=mx.test \
    2>/dev/null
chmod 600 "$tmp/key.pem"
pw=$(openssl passwd -6 secret)
printf 'alice:%s\n' "$pw" > "$tmp/passwd"
chmod 600 "$tmp/passwd"
cat > "$tmp/smtpd.conf" <<CONF
hostname mx.test
prefork 1
timeout 10
spool "$tmp"
listen on 127.0.0.1 port $p1 starttls auth
listen on 127.0.0.1 port $p2 tls auth
tls certificate "$tmp/cert.pem" key "$tmp/key.pem"
auth passwd "$tmp/passwd"
auth failure-delay 0
deliver discard
CONF
valgrind -q --vgdb=no --trace-children=yes --leak-check=full \
    --errors-for-leak-kinds=definite --error-exitcode=99 \
    --log-file="$tmp/vg.%p" "$smtpd" -d -f "$tmp/smtpd.conf" \
    2>"$tmp/log" &
pid=$!
python3 - "$p1" "$p2" <<'PY'
import smtplib, ssl, sys, time
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
p1, p2 = int(sys.argv[1]), int(sys.argv[2])
for _ in range(100):
    try:
        s = smtplib.SMTP("127.0.0.1", p1, timeout=30); break
    except OSError:
        time.sleep(0.2)
s.ehlo(); s.sendmail("a@b", ["c@d"], b"plain\r\n"); s.quit()
s = smtplib.SMTP("127.0.0.1", p1, timeout=30)
s.starttls(context=ctx); s.login("alice", "secret")
s.sendmail("a@b", ["c@d", "e@f"], b"Subject: x\r\n\r\ntls\r\n"); s.quit()
s = smtplib.SMTP_SSL("127.0.0.1", p2, timeout=30, context=ctx)
try:
    s.login("alice", "wrong")
except smtplib.SMTPAuthenticationError:
    pass
s.login("alice", "secret")
s.sendmail("a@b", ["c@d"], (b"x" * 998 + b"\r\n") * 300); s.quit()
PY
rc=$?
kill "$pid"
wait "$pid"
bad=$(grep -l "ERROR SUMMARY: [1-9]\|definitely lost: [1-9]" "$tmp"/vg.* 2>/dev/null)
errs=$(cat "$tmp"/vg.* | grep -c "^==[0-9]*== [A-Z]")
if [ "$rc" -ne 0 ] || [ -n "$bad" ] || [ "$errs" -ne 0 ]; then
	cat "$tmp"/vg.* "$tmp/log"
	echo "valgrind: 0 passed, 1 failed"
	exit 1
fi
echo "valgrind: $(ls "$tmp"/vg.* | wc -l) processes clean"
echo "valgrind: 1 passed, 0 failed"
