# Shared by the shell test scripts: counters and TAP-like result lines.
# The script sets pass=0 fail=0 skip=0 and prints the totals at the end.

ok()
{
	pass=$((pass + 1))
	echo "ok - $1"
}

not_ok()
{
	fail=$((fail + 1))
	echo "FAIL - $1"
}

skipped()
{
	skip=$((skip + 1))
	echo "skip - $1"
}

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check()
{
	_desc=$1
	shift
	if "$@"; then
		ok "$_desc"
	else
		not_ok "$_desc"
	fi
}

# host_lacks ERRFILE: `smtpd -n` (whose standard error is in ERRFILE)
# refused only what this host lacks and a real one would have: the
# configuration's user, or the program it runs, does not exist here.
host_lacks()
{
	[ "$(wc -l <"$1")" -eq 1 ] || return 1
	_u=$(sed -n 's/^smtpd: \(.*:[0-9]*: \)\{0,1\}user \(.*\): no such user$/\2/p' \
	    "$1")
	if [ -n "$_u" ]; then
		! id "$_u" >/dev/null 2>&1
		return
	fi
	_p=$(sed -n 's/^smtpd: .*:[0-9]*: [a-z ]*: \(\/[^:]*\): No such file or directory for user .*$/\1/p' "$1")
	[ -n "$_p" ] && [ ! -e "$_p" ]
}
