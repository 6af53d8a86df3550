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
