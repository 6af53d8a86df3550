#!/bin/sh
# test_maildir.sh: black-box tests of contrib/deliver-maildir.
# Usage: sh tests/test_maildir.sh build/contrib/deliver-maildir
# Prints "N passed, M failed" and exits non-zero when anything failed.

prog=${1:?usage: test_maildir.sh path/to/deliver-maildir}
case $prog in
/*)	;;
*)	prog=$PWD/$prog ;;
esac
t=$(mktemp -d /tmp/test_maildir.XXXXXX) || exit 1
small=
cleanup() {
	[ -n "$small" ] && umount "$small" 2>/dev/null
	chmod -R u+w "$t" 2>/dev/null
	rm -rf "$t"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pass=0
fail=0
check() {
	desc=$1
	shift
	if "$@"; then
		pass=$((pass + 1))
		echo "ok - $desc"
	else
		fail=$((fail + 1))
		echo "not ok - $desc"
	fi
}
# Number of entries in a directory.
count() {
	set -- "$1"/*
	[ -e "$1" ] && echo $# || echo 0
}
# Run the program on stdin from $msg; sets rc.
deliver() {
	"$prog" "$@" <"$msg" 2>"$t/stderr"
	rc=$?
}

msg=$t/msg
printf 'Subject: test\r\n\r\n.dot\nbare LF\rbare CR\351\000NUL\r\n' >"$msg"

# Usage errors: EX_USAGE.
deliver
check "no argument: exit 64" [ "$rc" = 64 ]
deliver "$t/a" "$t/b"
check "two arguments: exit 64" [ "$rc" = 64 ]
deliver -x "$t/a"
check "unknown option: exit 64" [ "$rc" = 64 ]
deliver ""
check "empty maildir: exit 64" [ "$rc" = 64 ]

# A `..' component (the maildir may come from %{recipient}): 67, and
# nothing is created, with -c or without.  Relative ones from $t/cwd.
mkdir "$t/store" "$t/cwd"
cd "$t/cwd" || exit 1
for d in .. ../x "$t/store/.." "$t/store/../x" "$t/store/a/../../x" \
    "$t/store/../" "$t/store//..//x"; do
	deliver -c "$d"
	check "'$d': exit 67" [ "$rc" = 67 ]
	check "'$d': reason in stderr" grep -q "\.\." "$t/stderr"
done
cd / || exit 1
check "no maildir made beside the store" [ ! -e "$t/x" ]
check "no maildir made in its parent" [ ! -e "$t/new" ]
check "nothing made in the store" [ "$(count "$t/store")" = 0 ]
# `..' inside a name is no component: these are delivered.
for d in "$t/store/a..b" "$t/store/..." "$t/store/x.." "$t/store/..x"; do
	deliver -c "$d"
	check "'$d': exit 0" [ "$rc" = 0 ]
	check "'$d': one file in new/" [ "$(count "$d/new")" = 1 ]
done

# A name longer than the system takes (a 300-octet local part, a path
# past PATH_MAX): 67, no retry can succeed; nothing is made.
long=$(printf '%0300d' 0)
before=$(count "$t/store")
deliver -c "$t/store/$long"
check "component of 300 octets: exit 67" [ "$rc" = 67 ]
check "component of 300 octets: reason in stderr" \
    grep -q "too long" "$t/stderr"
deliver "$t/store/$long"
check "component of 300 octets, no -c: exit 67" [ "$rc" = 67 ]
deep=$t/store
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17; do
	deep=$deep/$(printf '%0250d' "$i")
done
deliver -c "$deep"
check "path past PATH_MAX: exit 67" [ "$rc" = 67 ]
check "no name too long made in the store" \
    [ "$(count "$t/store")" = "$before" ]
# A Maildir path the system takes (4070 octets) whose message name it does
# not (tmp/<name> past PATH_MAX): 67, and -c has made nothing.
fit=$t/store/fit
mkdir "$fit"
near=$fit
while [ $((${#near} + 101)) -lt 4000 ]; do
	near=$near/$(printf '%0100d' 0)
done
mkdir -p "$near"
near=$near/$(printf '%0*d' $((4069 - ${#near})) 0)
check "Maildir fits: a path of 4070 octets" [ "${#near}" = 4070 ]
deliver -c "$near"
check "Maildir fits, message name past PATH_MAX: exit 67" [ "$rc" = 67 ]
check "Maildir fits, message name past PATH_MAX: nothing made" \
    [ ! -e "$near" ]

# -c syncs what it made in its parent (the Maildir in its parent, the
# subdirectories in the Maildir), then the message and new/ as always.
if strace -qq -o /dev/null true 2>/dev/null; then
	fsyncs() {
		strace -qq -f -e trace=fsync -o "$t/trace" "$prog" "$@" \
		    <"$msg" 2>/dev/null
		grep -c '^[0-9]* *fsync(' "$t/trace"
	}
	check "-c making a Maildir: 4 fsyncs" [ "$(fsyncs -c "$t/synced")" = 4 ]
	check "-c into one that exists: 2 fsyncs" \
	    [ "$(fsyncs -c "$t/synced")" = 2 ]
	# A Maildir without its subdirectories (left so by a run that failed
	# after its mkdir, before any sync) is new: its entry is synced too.
	mkdir "$t/half"
	check "-c making only the subdirectories: 4 fsyncs" \
	    [ "$(fsyncs -c "$t/half")" = 4 ]
	mkdir -p "$t/half2/tmp"
	check "-c making some of the subdirectories: 4 fsyncs" \
	    [ "$(fsyncs -c "$t/half2")" = 4 ]
else
	echo "skip - fsync of what -c makes (no strace, or no ptrace here)"
fi

# A spool it may write in but not read (mode 0333): the new Maildir's
# entry cannot be synced there, and the message is delivered all the same.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
	chmod 711 "$t"
	mkdir "$t/wo"
	chmod 0333 "$t/wo"
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$prog" -c "$t/wo/box" <"$msg" 2>"$t/stderr"
	rc=$?
	check "write-only spool: exit 0" [ "$rc" = 0 ]
	check "write-only spool: one file in new/" \
	    [ "$(count "$t/wo/box/new")" = 1 ]
else
	echo "skip - write-only spool (needs root and setpriv)"
fi

# Without -c a missing Maildir is a temporary failure.
deliver "$t/missing"
check "missing maildir without -c: exit 75" [ "$rc" = 75 ]
check "missing maildir is not created" [ ! -e "$t/missing" ]

# -c creates it; the message lands whole in new/, nothing stays in tmp/.
md=$t/md
deliver -c "$md"
check "-c delivery: exit 0" [ "$rc" = 0 ]
for d in tmp new cur; do
	check "-c made $d/ mode 700" \
	    [ "$(stat -c %a "$md/$d" 2>/dev/null)" = 700 ]
done
check "one file in new/" [ "$(count "$md/new")" = 1 ]
check "nothing in tmp/" [ "$(count "$md/tmp")" = 0 ]
f=$(ls "$md/new")
check "bytes are exact" cmp -s "$msg" "$md/new/$f"
check "unique name time.MusecPpid.host" \
    sh -c 'echo "$1" | grep -Eq "^[0-9]+\.M[0-9]{6}P[0-9]+\..+$"' sh "$f"

# Again, into the existing Maildir: a second, distinct file.
deliver "$md"
check "second delivery: exit 0" [ "$rc" = 0 ]
check "two files in new/" [ "$(count "$md/new")" = 2 ]

# A name already in new/ (the clock stepped back, or a container of the
# same host name and pid shares the store): that message stays, this one
# fails with 75 and leaves nothing in tmp/.  strace holds the program
# at its move into new/ while the test puts a message of its tmp/ name
# there.  Again where renameat2 has no RENAME_NOREPLACE (EINVAL, as on
# NFS): link() and unlink() instead.  (No leak check under ptrace: the
# sanitizer build's LeakSanitizer refuses to run there.)
traced() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    strace -qq -o /dev/null "$@"
}
taken() {	# taken DIR STRACE-OPTIONS...
	md=$1
	shift
	mkdir -p "$md/tmp" "$md/new" "$md/cur"
	traced "$@" "$prog" "$md" <"$msg" 2>"$t/stderr" &
	held=$!
	i=0
	while [ "$(count "$md/tmp")" = 0 ] && [ $i -lt 100 ]; do
		sleep 0.05; i=$((i + 1))
	done
	f=$(ls "$md/tmp")
	echo "the first message" >"$md/new/$f"
	wait $held
	rc=$?
}
if strace -qq -o /dev/null true 2>/dev/null; then
	for how in renameat2 link; do
		case $how in
		renameat2)
			taken "$t/md7" -e inject=renameat2:delay_enter=1000000 ;;
		link)
			taken "$t/md8" -e inject=renameat2:error=EINVAL \
			    -e inject=link:delay_enter=1000000 ;;
		esac
		check "name taken in new/ ($how): exit 75" [ "$rc" = 75 ]
		check "name taken in new/ ($how): that message is kept" \
		    grep -qx "the first message" "$md/new/$f"
		check "name taken in new/ ($how): nothing else in new/" \
		    [ "$(count "$md/new")" = 1 ]
		check "name taken in new/ ($how): nothing left in tmp/" \
		    [ "$(count "$md/tmp")" = 0 ]
	done
	md9=$t/md9
	mkdir -p "$md9/tmp" "$md9/new" "$md9/cur"
	traced -e inject=renameat2:error=EINVAL "$prog" "$md9" <"$msg" \
	    2>"$t/stderr"
	check "without RENAME_NOREPLACE: exit 0" [ $? = 0 ]
	f=$(ls "$md9/new")
	check "without RENAME_NOREPLACE: the message in new/" \
	    cmp -s "$msg" "$md9/new/$f"
	check "without RENAME_NOREPLACE: nothing left in tmp/" \
	    [ "$(count "$md9/tmp")" = 0 ]
else
	echo "skip - a name taken in new/ (no strace, or no ptrace here)"
fi

# An empty message is a message.
md2=$t/md2
"$prog" -c "$md2" </dev/null
check "empty message: exit 0" [ $? = 0 ]
f=$(ls "$md2/new")
check "empty message: a file" [ -f "$md2/new/$f" ]
check "empty message: of size 0" [ ! -s "$md2/new/$f" ]

# new/ that cannot take the file (a regular file in its place: permission
# bits do not stop root): 75, nothing left in tmp/.
md3=$t/md3
mkdir -p "$md3/tmp" "$md3/cur"
: >"$md3/new"
deliver "$md3"
check "new/ unusable: exit 75" [ "$rc" = 75 ]
check "new/ unusable: nothing left in tmp/" [ "$(count "$md3/tmp")" = 0 ]

# tmp/ unusable: 75, nothing in new/.
md4=$t/md4
mkdir -p "$md4/new" "$md4/cur"
: >"$md4/tmp"
deliver "$md4"
check "tmp/ unusable: exit 75" [ "$rc" = 75 ]
check "tmp/ unusable: nothing in new/" [ "$(count "$md4/new")" = 0 ]

# Read-only directories, where they mean something (not as root).
if [ "$(id -u)" != 0 ]; then
	md5=$t/md5
	mkdir -p "$md5/tmp" "$md5/new" "$md5/cur"
	chmod 555 "$md5/new"
	deliver "$md5"
	check "read-only new/: exit 75" [ "$rc" = 75 ]
	check "read-only new/: nothing in new/" [ "$(count "$md5/new")" = 0 ]
	check "read-only new/: nothing in tmp/" [ "$(count "$md5/tmp")" = 0 ]
else
	echo "skip - read-only new/ (root ignores permission bits)"
fi

# A full file system: ENOSPC is 75, and the partial file goes away.
small=$t/small
mkdir "$small"
if mount -t tmpfs -o size=64k tmpfs "$small" 2>/dev/null; then
	head -c 262144 /dev/zero >"$t/big"
	"$prog" -c "$small/md" <"$t/big" 2>"$t/stderr"
	rc=$?
	check "full file system: exit 75" [ "$rc" = 75 ]
	check "full file system: message in stderr" \
	    grep -q 'No space left' "$t/stderr"
	check "full file system: nothing in new/" \
	    [ "$(count "$small/md/new")" = 0 ]
	check "full file system: nothing in tmp/" \
	    [ "$(count "$small/md/tmp")" = 0 ]
else
	small=
	echo "skip - full file system (mount -t tmpfs not permitted)"
fi

# `/' and `:' in the host name are escaped (needs a UTS namespace).
if unshare -u sh -c 'hostname "a/b:c"' 2>/dev/null; then
	md6=$t/md6
	unshare -u sh -c 'hostname "a/b:c" && exec "$1" -c "$2" <"$3"' \
	    sh "$prog" "$md6" "$msg"
	f=$(ls "$md6/new")
	check "host name escaped as \\057 and \\072" \
	    sh -c 'case $1 in *.a\\057b\\072c) ;; *) exit 1 ;; esac' sh "$f"
else
	echo "skip - host name escaping (unshare -u not permitted)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
