#!/bin/sh
# Install the Debian packages that building and testing smtpd need, but only
# those that are missing.  Says what it does; without root it prints the
# apt-get line and stops.  Usage: contrib/deps.sh [build|check]
set -e
what=${1:-build}

# pkg-config module -> Debian package
need=""
# Packages whose services must not start: installed under a policy-rc.d
# that forbids it (invoke-rc.d's exit 101, "action forbidden").
nostart=""
pkg_mod() {
	pkg-config --exists "$1" 2>/dev/null || need="$need $2"
}
cmd_pkg() {
	command -v "$1" >/dev/null 2>&1 || need="$need $2"
}

command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
cmd_pkg cc gcc
cmd_pkg make make
if command -v pkg-config >/dev/null 2>&1; then
	pkg_mod openssl libssl-dev
	pkg_mod libbsd-overlay libbsd-dev
	pkg_mod libcrypt libcrypt-dev
else
	need="$need libssl-dev libbsd-dev libcrypt-dev"
fi
# deliver-maildir, run once per message, is linked statically against musl
# when musl-gcc is there: it starts three times faster than with glibc
# (make bench).  Without it the Makefile falls back to static glibc.
cmd_pkg musl-gcc musl-tools
if [ "$what" = check ]; then
	if command -v pkg-config >/dev/null 2>&1; then
		pkg_mod cmocka libcmocka-dev
	else
		need="$need libcmocka-dev"
	fi
	cmd_pkg python3 python3
	cmd_pkg swaks swaks
	# swaks speaks TLS (--tls, --tlsc) through these Perl modules.
	perl -MNet::SSLeay -MIO::Socket::SSL -e 1 2>/dev/null ||
	    need="$need libnet-ssleay-perl libio-socket-ssl-perl"
	cmd_pkg haproxy haproxy
	cmd_pkg mandoc mandoc
	# make fuzz-check: clang's libFuzzer (its runtime is a separate package).
	if ! command -v clang >/dev/null 2>&1; then
		need="$need clang libclang-rt-14-dev"
	elif ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)
	    { (void)d; (void)n; return 0; }' | clang -fsanitize=fuzzer -x c - \
	    -o /dev/null 2>/dev/null; then
		need="$need libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
	fi
	cmd_pkg openssl openssl
	# tests/e2e/test_agents.py runs contrib/examples/procmail.conf with
	# procmail (setuid root, no daemon, no MTA).  Not installed here,
	# because their packages enable a daemon: maildrop (courier-authlib's
	# authdaemond) and dovecot-lda (dovecot-core's dovecot); their tests
	# skip without them.
	[ -x /usr/bin/procmail ] || need="$need procmail"
	# tests/e2e/test_policy.py runs postgrey itself, as its own process
	# on a loopback port; the package's service must not run.
	[ -x /usr/sbin/postgrey ] || nostart="$nostart postgrey"
	# tests/e2e/test_ops.py checks the metrics listener's output with
	# promtool, from the prometheus package; its service must not run.
	command -v promtool >/dev/null 2>&1 || nostart="$nostart prometheus"
fi

[ -z "$need$nostart" ] && exit 0
echo "deps.sh: missing Debian packages:$need$nostart"
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: run as root: apt-get install -y$need$nostart" >&2
	[ -z "$nostart" ] ||
	    echo "deps.sh: (with a policy-rc.d that exits 101, so that" \
	    "$nostart does not start)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ -n "$need" ]; then
	echo "deps.sh: apt-get install -y --no-install-recommends$need"
	apt-get install -y -qq --no-install-recommends $need
fi
[ -z "$nostart" ] && exit 0

# An existing policy-rc.d is the administrator's: used as it is, and
# kept.  Ours is removed on every way out, a failed install included.
rcd=/usr/sbin/policy-rc.d
made=""
if [ ! -e "$rcd" ] && [ ! -L "$rcd" ]; then
	trap 'rm -f "$rcd"' EXIT
	trap 'exit 1' HUP INT TERM
	printf '#!/bin/sh\n# deps.sh: no service starts (removed after)\nexit 101\n' \
	    >"$rcd"
	chmod 755 "$rcd"
	made=1
else
	echo "deps.sh: keeping the existing $rcd" >&2
fi
echo "deps.sh: apt-get install -y --no-install-recommends$nostart" \
    "(services not started)"
status=0
apt-get install -y -qq --no-install-recommends $nostart || status=$?
if [ -n "$made" ]; then
	rm -f "$rcd"
	trap - EXIT HUP INT TERM
fi
exit $status
