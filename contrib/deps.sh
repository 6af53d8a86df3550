#!/bin/sh
# Install the Debian packages that building and testing smtpd need, but only
# those that are missing.  Says what it does; without root it prints the
# apt-get line and stops.  Usage: contrib/deps.sh [build|check]
set -e
what=${1:-build}

# pkg-config module -> Debian package
need=""
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
	cmd_pkg openssl openssl
	# tests/e2e/test_agents.py runs contrib/examples/procmail.conf with
	# procmail (setuid root, no daemon, no MTA).  Not installed here,
	# because their packages enable a daemon: maildrop (courier-authlib's
	# authdaemond) and dovecot-lda (dovecot-core's dovecot); their tests
	# skip without them.
	[ -x /usr/bin/procmail ] || need="$need procmail"
fi

[ -z "$need" ] && exit 0
echo "deps.sh: missing Debian packages:$need"
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: run as root: apt-get install -y$need" >&2
	exit 1
fi
echo "deps.sh: apt-get update && apt-get install -y --no-install-recommends$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $need
