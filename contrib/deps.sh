#!/bin/sh
# Install the Debian packages that building and testing smtpd need, but only
# those that are missing.  Says what it does; without root it prints the
# apt-get line and stops.  Usage: contrib/deps.sh [build|check]
set -e
what=${1:-build}

apt="apt-get -o DPkg::Lock::Timeout=900"
# Where the e2e tests find Exim (tests/e2e/exim.py); its .debs are kept
# beside it.
EXIM_ROOT=${EXIM_ROOT:-/var/cache/smtpd-tests/exim}

# pkg-config module -> Debian package
need=""
exim=""
# Packages whose services must not start: installed under a policy-rc.d
# that forbids it (invoke-rc.d's exit 101, "action forbidden").
nostart=""
pkg_mod() {
	pkg-config --exists "$1" 2>/dev/null || need="$need $2"
}
cmd_pkg() {
	command -v "$1" >/dev/null 2>&1 || need="$need $2"
}

# Exim conflicts with Postfix as the system's MTA, so its packages are
# downloaded and unpacked with dpkg-deb -x into EXIM_ROOT, as a second MTA
# is run for a test; the libraries its binary needs are installed as
# usual, and the Debian-exim system user it runs as is made.
fetch_exim() {
	if [ ! -x "$EXIM_ROOT/usr/sbin/exim4" ]; then
		debs=$(dirname "$EXIM_ROOT")/debs
		mkdir -p "$debs"
		echo "deps.sh: apt-get download exim4-daemon-light exim4-base" \
		    "(into $debs; not installed)"
		(cd "$debs" && rm -f exim4-*.deb &&
		    $apt -q -o APT::Sandbox::User=root download \
		    exim4-daemon-light exim4-base)
		libs=""
		for lib in $(dpkg-deb -f "$debs"/exim4-daemon-light_*.deb \
		    Depends | tr ',|' '\n\n' |
		    sed -n 's/^ *\(lib[^ ]*\).*/\1/p'); do
			dpkg -s "$lib" >/dev/null 2>&1 || libs="$libs $lib"
		done
		if [ -n "$libs" ]; then
			echo "deps.sh: apt-get install -y" \
			    "--no-install-recommends$libs (for Exim)"
			$apt install -y -qq --no-install-recommends $libs
		fi
		tmp=$(mktemp -d "$EXIM_ROOT.new.XXXXXX")
		for deb in "$debs"/exim4-daemon-light_*.deb \
		    "$debs"/exim4-base_*.deb; do
			dpkg-deb -x "$deb" "$tmp"
		done
		chmod 755 "$tmp"
		rm -rf "$EXIM_ROOT"
		# A concurrent run may have won: keep its copy.
		mv -T "$tmp" "$EXIM_ROOT" 2>/dev/null || rm -rf "$tmp"
		echo "deps.sh: Exim unpacked in $EXIM_ROOT"
	fi
	getent passwd Debian-exim >/dev/null || {
		echo "deps.sh: useradd --system Debian-exim"
		useradd --system --user-group --home-dir /nonexistent \
		    --no-create-home --shell /usr/sbin/nologin Debian-exim
	}
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
	# tests/e2e/postfix.py runs a private Postfix (master -c DIR, its own
	# config and queue under a temp dir); smtp-source and smtp-sink come
	# with it.  The package stays unconfigured (no /etc/postfix/main.cf)
	# and its service never starts.
	[ -x /usr/lib/postfix/sbin/master ] || nostart="$nostart postfix"
	# tests/e2e/test_ops.py checks the metrics listener's output with
	# promtool, and tests/e2e/prom.py starts a Prometheus server on a
	# loopback port with its own data directory: the prometheus package,
	# whose service must not run.
	command -v promtool >/dev/null 2>&1 || nostart="$nostart prometheus"
	cmd_pkg systemd-socket-activate systemd
	cmd_pkg setpriv util-linux
	# tests/test_maildir.sh counts deliver-maildir's fsync calls.
	cmd_pkg strace strace
	# tests/e2e/exim.py: Exim as a second MTA, unpacked, not installed
	# (fetch_exim).
	[ -x "$EXIM_ROOT/usr/sbin/exim4" ] || exim=1
	getent passwd Debian-exim >/dev/null || exim=1
fi

[ -z "$need$nostart$exim" ] && exit 0
[ -z "$need$nostart" ] || echo "deps.sh: missing Debian packages:$need$nostart"
[ -z "$exim" ] || echo "deps.sh: missing: Exim unpacked in $EXIM_ROOT"
if [ "$(id -u)" != 0 ]; then
	[ -z "$need$nostart" ] ||
	    echo "deps.sh: run as root: apt-get install -y$need$nostart" >&2
	[ -z "$nostart" ] ||
	    echo "deps.sh: (with a policy-rc.d that exits 101, so that" \
	    "$nostart does not start)" >&2
	[ -z "$exim" ] || echo "deps.sh: run as root for Exim" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$apt update -qq
if [ -n "$need" ]; then
	echo "deps.sh: apt-get install -y --no-install-recommends$need"
	$apt install -y -qq --no-install-recommends $need
fi
[ -z "$exim" ] || fetch_exim
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
# Postfix unconfigured: no main.cf, so nothing could start it later.
echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections
status=0
# --no-remove: never replace the MTA that is installed (exim4, ...).
$apt install -y -qq --no-install-recommends --no-remove $nostart ||
    status=$?
# Nor at boot: the packages enable their units (systemctl also works
# without a running systemd, and does the SysV links too).
for svc in $nostart; do
	systemctl disable "$svc" >/dev/null 2>&1 || true
done
if [ -n "$made" ]; then
	rm -f "$rcd"
	trap - EXIT HUP INT TERM
fi
exit $status
