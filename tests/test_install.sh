#!/bin/sh
#
# tests/test_install.sh: `make install' and `make uninstall' into a
# temporary DESTDIR (the tree, the modes, an edited smtpd.conf kept, the
# paths compiled in), the installed binary and example configuration under
# -n, the systemd unit under `systemd-analyze verify' when there is one, and
# the LSB init script contrib/init.d/smtpd driving the installed smtpd on
# a free 127.0.0.1 port: start, greeting, reload, stop.  POSIX sh; run from
# anywhere as `sh tests/test_install.sh' (after `make all', or it builds).
# MAKE=program overrides make.

cd "$(dirname "$0")/.." || exit 1

# A clean make of the default build: not the options of a make that runs
# this script (BUILDDIR=build-asan, say).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
MAKE=${MAKE:-make}

pass=0
fail=0
skip=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_install.XXXXXX") || exit 1
pidfile=$tmp/run/smtpd.pid

cleanup()
{
	# The daemon that the init script started, if a check left it.
	if [ -r "$pidfile" ]; then
		read -r _p <"$pidfile"
		case $_p in
		''|*[!0-9]*) ;;
		*) kill "$_p" 2>/dev/null ;;
		esac
		sleep 1
		kill -9 "$_p" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

. "$(dirname "$0")/lib.sh"

# Shows the output of a failed command.
show()
{
	sed 's/^/	/' "$1"
}

# The permission bits of a file, in octal (GNU or BSD stat).
mode()
{
	stat -c %a "$1" 2>/dev/null || stat -f %Lp "$1" 2>/dev/null
}

# check_file PATH MODE: PATH (under the DESTDIR) is a file with MODE.
check_file()
{
	if [ -f "$root$1" ] && [ "$(mode "$root$1")" = "$2" ]; then
		ok "installed $1 mode $2"
	else
		not_ok "installed $1 mode $2 (mode: $(mode "$root$1"))"
	fi
}

absent()
{
	[ ! -e "$root$1" ] && [ ! -L "$root$1" ]
}

#
# make install.
#

root=$tmp/root
p=/usr/local
unitdir=$p/lib/systemd/system
mk()
{
	$MAKE --no-print-directory "$@" DESTDIR="$root" PREFIX=$p \
	    SYSTEMDUNITDIR=$unitdir >"$tmp/make.out" 2>&1
}

if mk install; then
	ok "make install DESTDIR=... PREFIX=$p SYSTEMDUNITDIR=$unitdir"
else
	show "$tmp/make.out"
	not_ok "make install DESTDIR=... PREFIX=$p SYSTEMDUNITDIR=$unitdir"
	echo "$pass passed, $fail failed"
	exit 1
fi
check_file $p/sbin/smtpd 755
check_file $p/libexec/smtpd/deliver-maildir 755
check_file $p/share/man/man8/smtpd.8 644
check_file $p/share/man/man5/smtpd.conf.5 644
check_file $p/etc/smtpd.conf 644
check_file $unitdir/smtpd.service 644
check_file $unitdir/smtpd.socket 644
check "nothing else is installed" [ "$(cd "$root" && find . ! -type d |
    LC_ALL=C sort | tr '\n' ' ')" = "./usr/local/etc/smtpd.conf \
./usr/local/lib/systemd/system/smtpd.service \
./usr/local/lib/systemd/system/smtpd.socket \
./usr/local/libexec/smtpd/deliver-maildir ./usr/local/sbin/smtpd \
./usr/local/share/man/man5/smtpd.conf.5 \
./usr/local/share/man/man8/smtpd.8 " ]
check "installed smtpd.conf is contrib/smtpd.conf.example" \
    cmp -s "$root$p/etc/smtpd.conf" contrib/smtpd.conf.example
check "installed smtpd.8 is smtpd.8 (default paths)" \
    cmp -s "$root$p/share/man/man8/smtpd.8" smtpd.8
check "installed smtpd is the build" cmp -s "$root$p/sbin/smtpd" build/smtpd
check "installed smtpd has $p/etc/smtpd.conf compiled in" \
    grep -q -a -F "$p/etc/smtpd.conf" "$root$p/sbin/smtpd"

smtpd=$root$p/sbin/smtpd
if "$smtpd" -n -f "$root$p/etc/smtpd.conf" >"$tmp/n.out" 2>&1; then
	ok "installed smtpd -n -f installed smtpd.conf"
elif host_lacks "$tmp/n.out"; then
	ok "installed smtpd -n -f installed smtpd.conf ($(cat "$tmp/n.out"))"
else
	show "$tmp/n.out"
	not_ok "installed smtpd -n -f installed smtpd.conf"
fi
if command -v mandoc >/dev/null 2>&1; then
	check "installed manuals: mandoc -Tlint -W warning" \
	    mandoc -Tlint -W warning "$root$p/share/man/man8/smtpd.8" \
	    "$root$p/share/man/man5/smtpd.conf.5"
else
	skipped "installed manuals: mandoc -Tlint (no mandoc)"
fi

# An edited configuration survives a second install.
echo "# edited" >>"$root$p/etc/smtpd.conf"
cp "$root$p/etc/smtpd.conf" "$tmp/edited.conf"
if mk install; then
	ok "second make install"
else
	show "$tmp/make.out"
	not_ok "second make install"
fi
check "second install keeps the edited smtpd.conf" \
    cmp -s "$root$p/etc/smtpd.conf" "$tmp/edited.conf"
check "second install says so" grep -q "keeping the existing" "$tmp/make.out"

#
# The systemd unit: verified with its paths pointing into the DESTDIR.
#

if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir "$tmp/unit"
	for u in smtpd.service smtpd.socket; do
		sed "s|$p/|$root$p/|g" "$root$unitdir/$u" >"$tmp/unit/$u"
	done
	if systemd-analyze verify --man=no "$tmp/unit/smtpd.socket" \
	    "$tmp/unit/smtpd.service" >"$tmp/verify.out" 2>&1 &&
	    [ ! -s "$tmp/verify.out" ]; then
		ok "systemd-analyze verify smtpd.service smtpd.socket"
	else
		show "$tmp/verify.out"
		not_ok "systemd-analyze verify smtpd.service smtpd.socket"
	fi
else
	skipped "systemd-analyze verify (no systemd-analyze)"
fi
check "installed unit runs $p/sbin/smtpd -d -f $p/etc/smtpd.conf" \
    grep -q -x -F "ExecStart=$p/sbin/smtpd -d -f $p/etc/smtpd.conf" \
    "$root$unitdir/smtpd.service"
# The installed smtpd.conf delivers through /usr/sbin/sendmail; Postfix's
# runs the setgid postdrop, which writes /var/spool/postfix/maildrop.  A
# unit with NoNewPrivileges=yes (the setgid bit ignored at exec), or with
# that directory read-only, would have every message end in a 451.
check "installed smtpd.conf delivers through /usr/sbin/sendmail" \
    grep -q '^deliver[[:space:]]*"/usr/sbin/sendmail ' "$root$p/etc/smtpd.conf"
check "unit lets a setgid delivery program gain its group" \
    sh -c "! grep -q '^NoNewPrivileges=' '$root$unitdir/smtpd.service'"
check "unit leaves /var/spool/postfix/maildrop writable" \
    grep -q '^ReadWritePaths=.* -/var/spool/postfix/maildrop' \
    "$root$unitdir/smtpd.service"
check "unit lets Postfix's sendmail list the host's addresses (netlink)" \
    grep -q '^RestrictAddressFamilies=.* AF_NETLINK' \
    "$root$unitdir/smtpd.service"

#
# Another PREFIX and SYSCONFDIR: compiled in, and named by the manuals,
# the example and the unit (a build of its own, in the temporary directory).
#

root2=$tmp/root2
if $MAKE --no-print-directory -j2 install BUILDDIR="$tmp/build" \
    DESTDIR="$root2" PREFIX=/usr SYSCONFDIR=/etc \
    SYSTEMDUNITDIR=/lib/systemd/system >"$tmp/make.out" 2>&1; then
	ok "make install PREFIX=/usr SYSCONFDIR=/etc (BUILDDIR of its own)"
else
	show "$tmp/make.out"
	not_ok "make install PREFIX=/usr SYSCONFDIR=/etc (BUILDDIR of its own)"
fi
check "PREFIX=/usr: smtpd has /etc/smtpd.conf compiled in" \
    grep -q -a -F /etc/smtpd.conf "$root2/usr/sbin/smtpd"
check "PREFIX=/usr: not /usr/local/etc/smtpd.conf" \
    sh -c "! grep -q -a -F /usr/local/etc/smtpd.conf '$root2/usr/sbin/smtpd'"
check "PREFIX=/usr: smtpd.8 names /etc/smtpd.conf and no /usr/local/etc" \
    sh -c "grep -q -F /etc/smtpd.conf '$root2/usr/share/man/man8/smtpd.8' &&
    ! grep -q -F /usr/local/etc '$root2/usr/share/man/man8/smtpd.8'"
check "PREFIX=/usr: unit runs /usr/sbin/smtpd -d -f /etc/smtpd.conf" \
    grep -q -x -F "ExecStart=/usr/sbin/smtpd -d -f /etc/smtpd.conf" \
    "$root2/lib/systemd/system/smtpd.service"
check "PREFIX=/usr: example names /usr/libexec/smtpd/deliver-maildir" \
    grep -q -F /usr/libexec/smtpd/deliver-maildir "$root2/etc/smtpd.conf"
check "PREFIX=/usr: deliver-maildir in /usr/libexec/smtpd" \
    [ -x "$root2/usr/libexec/smtpd/deliver-maildir" ]
# Unedited, the configuration goes with the rest.
if $MAKE --no-print-directory uninstall BUILDDIR="$tmp/build" \
    DESTDIR="$root2" PREFIX=/usr SYSCONFDIR=/etc \
    SYSTEMDUNITDIR=/lib/systemd/system >"$tmp/make.out" 2>&1; then
	ok "make uninstall PREFIX=/usr SYSCONFDIR=/etc"
else
	show "$tmp/make.out"
	not_ok "make uninstall PREFIX=/usr SYSCONFDIR=/etc"
fi
check "uninstall removes an unedited smtpd.conf and everything else" \
    [ -z "$(find "$root2" ! -type d)" ]

#
# The LSB init script, on the installed smtpd.
#

port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null)

# The greeting of 127.0.0.1:$port, or nothing.
greeting()
{
	python3 -c 'import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)
    s.settimeout(2)
    print(s.makefile("rb").readline().decode().rstrip("\r\n"))
    s.sendall(b"QUIT\r\n")
except OSError:
    pass' "$port"
}

# Waits up to 5 s for a greeting that ends with TEXT.
wait_greeting()
{
	_i=0
	while [ $_i -lt 50 ]; do
		case $(greeting) in
		*" $1") return 0 ;;
		esac
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

svcconf()
{
	printf '%s\n' "listen on 127.0.0.1 port $port" "deliver discard" \
	    "pidfile $pidfile" "banner \"$1\"" >"$tmp/svc.conf"
}

# The init script with the test's settings, and no /etc/default/smtpd.
initd()
{
	env DAEMON="$smtpd" SMTPD_CONF="$tmp/svc.conf" \
	    SMTPD_PIDFILE="${pf:-$pidfile}" SMTPD_DEFAULTS=/nonexistent \
	    _SYSTEMCTL_SKIP_REDIRECT=1 sh contrib/init.d/smtpd "$@" \
	    >"$tmp/initd.out" 2>&1
}

# The seconds the init script's stop waits before SIGKILL, for a
# configuration with `shutdown-grace' LINE (none: the default).
stop_wait_for()
{
	printf '%s\n' "listen on 127.0.0.1 port 2525" "deliver discard" \
	    ${1:+"shutdown-grace $1"} >"$tmp/grace.conf"
	DAEMON="$smtpd" SMTPD_CONF="$tmp/grace.conf" sh -c \
	    "$(sed -n '/^stop_wait()/,/^}/p' contrib/init.d/smtpd); stop_wait"
}
check "init.d stop waits shutdown-grace + 15 s (default: 45)" \
    [ "$(stop_wait_for)" = 45 ]
check "init.d stop waits shutdown-grace + 15 s (2m: 135)" \
    [ "$(stop_wait_for 2m)" = 135 ]
check "init.d stop waits for smtpd itself when smtpd -n fails" \
    [ "$(stop_wait_for bad 2>/dev/null)" = 604815 ]
check "init.d stop uses that wait" grep -q \
    'start-stop-daemon --stop .*--retry="TERM/$(stop_wait)/KILL/5"' \
    contrib/init.d/smtpd

if [ -z "$port" ] || ! command -v start-stop-daemon >/dev/null 2>&1; then
	skipped "init.d/smtpd (needs python3 and start-stop-daemon)"
else
	mkdir "$tmp/run"
	svcconf "ESMTP first"
	pf=$tmp/run/other.pid
	initd start
	rc=$?
	[ -z "$(greeting)" ] || rc=0
	check "init.d start refuses a pidfile that is not the config's" \
	    [ $rc -ne 0 ]
	pf=
	if initd start; then
		ok "init.d start"
	else
		show "$tmp/initd.out"
		not_ok "init.d start"
	fi
	pid=$(cat "$pidfile" 2>/dev/null)
	check "init.d start: pidfile names a live smtpd" \
	    kill -0 "${pid:-0}" 2>/dev/null
	check "init.d status: running" initd status
	check "greeting 220 ... ESMTP first" wait_greeting "ESMTP first"

	svcconf "ESMTP second"
	check "init.d reload" initd reload
	check "after reload (SIGHUP): greeting ... ESMTP second" \
	    wait_greeting "ESMTP second"
	check "reload kept the master" [ "$(cat "$pidfile")" = "$pid" ]

	echo "no such directive" >>"$tmp/svc.conf"
	initd reload
	check "init.d reload refuses a bad configuration" [ $? -ne 0 ]
	check "bad reload: still running the old configuration" \
	    wait_greeting "ESMTP second"
	svcconf "ESMTP second"

	children=$(pgrep -P "${pid:-0}" 2>/dev/null | tr '\n' ' ')
	if initd stop; then
		ok "init.d stop"
	else
		show "$tmp/initd.out"
		not_ok "init.d stop"
	fi
	check "init.d stop: the master is gone" \
	    sh -c "! kill -0 ${pid:-0} 2>/dev/null"
	left=${children:-none}
	if [ -n "$children" ]; then
		left=
		for c in $children; do
			kill -0 "$c" 2>/dev/null && left="$left $c"
		done
	fi
	check "init.d stop: its children (${children:-none}) are gone" \
	    [ -z "$left" ]
	check "init.d stop: pidfile removed" [ ! -e "$pidfile" ]
	check "init.d stop: nothing listens" [ -z "$(greeting)" ]
	initd status
	check "init.d status: not running (3)" [ $? -eq 3 ]
fi

#
# make uninstall keeps the edited configuration.
#

if mk uninstall; then
	ok "make uninstall"
else
	show "$tmp/make.out"
	not_ok "make uninstall"
fi
for f in $p/sbin/smtpd $p/libexec/smtpd/deliver-maildir \
    $p/share/man/man8/smtpd.8 $p/share/man/man5/smtpd.conf.5 \
    $unitdir/smtpd.service $unitdir/smtpd.socket $p/libexec/smtpd; do
	check "uninstall removes $f" absent "$f"
done
check "uninstall keeps the edited smtpd.conf" \
    cmp -s "$root$p/etc/smtpd.conf" "$tmp/edited.conf"
check "uninstall says so" grep -q "keeping the edited" "$tmp/make.out"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
