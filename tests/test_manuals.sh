#!/bin/sh
#
# tests/test_manuals.sh: smtpd.8, smtpd.conf.5 and contrib/smtpd.conf.example
# against the code: mandoc -Tlint is clean, every keyword, listener option,
# placeholder and environment variable of the code is documented (and
# nothing else is), the SYNOPSIS is usage(), and, once build/smtpd exists,
# the documented defaults and the example configurations are what the
# binary says.  POSIX sh; run from anywhere as `sh tests/test_manuals.sh'.
# SMTPD=path overrides the binary (default build/smtpd).

cd "$(dirname "$0")/.." || exit 1

SMTPD=${SMTPD:-build/smtpd}
MAN8=smtpd.8
MAN5=smtpd.conf.5
EXAMPLE=contrib/smtpd.conf.example

pass=0
fail=0
skip=0
tmp=${TMPDIR:-/tmp}/test_manuals.$$
mkdir "$tmp" || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

. "$(dirname "$0")/lib.sh"

# A line of FILE that begins with the mdoc macros and WORD as a whole word.
has_item()
{
	grep -q -e "^$2 $(quote_re "$3")\( \|\$\)" "$1"
}

# WORD after the macro anywhere in FILE (a list, a sentence).
has_macro()
{
	grep -q -e "$2 $(quote_re "$3")\( \|\$\)" "$1"
}

# WORD as a basic regular expression that matches it literally.
quote_re()
{
	printf '%s\n' "$1" | sed 's/[].[*^$\\/]/\\&/g'
}

# The source of one .It entry of FILE: from `.It MACRO WORD' to the next
# `.It MACRO' at the same place in the text (nested lists included).
entry()
{
	awk -v head=".It $2 $3" -v next_=".It $2 " '
	    index($0, next_) == 1 && on { exit }
	    $0 == head || index($0, head " ") == 1 { on = 1 }
	    on { print }' "$1"
}

# The section NAME of FILE, .Sh line excluded.
section()
{
	awk -v name="$2" '
	    /^\.Sh / { on = (substr($0, 5) == name); next }
	    on { print }' "$1"
}

have_smtpd()
{
	[ -x "$SMTPD" ]
}

have_mandoc()
{
	command -v mandoc >/dev/null 2>&1
}

#
# What the code says.
#

# The keyword table of config.c: "TYPE name" per entry, K_LATER for the
# directives that are refused as not supported.
sed -n '/keywords\[\] = {/,/^};/p' config.c |
    sed -n 's/.*K_\([A-Z]*\)("\([^"]*\)".*/\1 \2/p' >"$tmp/keywords"
supported=$(awk '$1 != "LATER" { print $2 }' "$tmp/keywords")
later=$(awk '$1 == "LATER" { print $2 }' "$tmp/keywords")

# Listener options: those config_listen_opts() compares, those of the
# flag table, and the list of those refused as not supported.
lopts=$({ sed -n 's/.*strcmp(opt, "\([^"]*\)").*/\1/p' config.c
    sed -n '/listen_flags\[\] = {/,/};/p' config.c |
    grep -o '"[^"]*"' | tr -d '"'; } | sort -u)
lopts_later=$(sed -n '/listen_later\[\] = {/,/};/p' config.c |
    grep -o '"[^"]*"' | tr -d '"')

# Placeholders of the delivery command.
placeholders=$(sed -n '/placeholders\[PH_COUNT\] = {/,/};/p' deliver.c |
    grep -o '"%{[a-z]*}"' | tr -d '"')

# The environment of the delivery program.
envvars=$(grep -o '"SMTPD_[A-Z0-9_]*=' deliver.c | tr -d '"=' | sort -u)

# The replies of the delivery results (a format with % is not literal).
grep -o '"[245][0-9][0-9] [^"%]*"' deliver.c | tr -d '"' | sort -u \
    >"$tmp/replies"

# usage() of smtpd.c, its forms on one line without "usage: " and the
# indentation of the second form, and its option letters.
usage=$(sed -n '/"usage: /,/;$/s/.*"\(usage: \)\{0,1\} *\([^"]*\)\\n".*/\2/p' \
    smtpd.c | paste -s -d ' ' -)
letters=$(printf '%s\n' "$usage" | grep -o -e '\[-[A-Za-z0-9]*' \
    -e ' -[A-Za-z0-9]*' | sed 's/^\[-//; s/^ -//' | fold -w 1 | sort -u)
optstring=$(sed -n 's/.*getopt(argc, argv, "\([^"]*\)").*/\1/p' smtpd.c)

check "config.c: keyword table found" [ -n "$supported" ]
check "config.c: listener options found" [ -n "$lopts" ]
check "deliver.c: placeholders found" [ -n "$placeholders" ]
check "deliver.c: environment variables found" [ -n "$envvars" ]
check "deliver.c: delivery replies found" [ -s "$tmp/replies" ]
check "smtpd.c: usage() found" [ -n "$usage" ]

#
# mandoc -Tlint.
#

for page in "$MAN8" "$MAN5"; do
	if ! have_mandoc; then
		skipped "$page: mandoc -Tlint -W warning (no mandoc)"
		continue
	fi
	mandoc -Tlint -W warning "$page" >"$tmp/lint" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && [ ! -s "$tmp/lint" ]; then
		ok "$page: mandoc -Tlint -W warning is clean"
	else
		sed 's/^/	/' "$tmp/lint"
		not_ok "$page: mandoc -Tlint -W warning is clean"
	fi
done

#
# smtpd.conf.5 and the code.
#

for kw in $supported; do
	check "$MAN5: directive $kw has an entry (.It Ic $kw)" \
	    has_item "$MAN5" ".It Ic" "$kw"
done
for kw in $later; do
	check "$MAN5: unsupported directive $kw is named" \
	    has_macro "$MAN5" "Ic" "$kw"
	if has_item "$MAN5" ".It Ic" "$kw"; then
		not_ok "$MAN5: unsupported directive $kw has no entry"
	else
		ok "$MAN5: unsupported directive $kw has no entry"
	fi
done
# No more directives than the code has.
for kw in $(sed -n 's/^\.It Ic \([^ ]*\).*/\1/p' "$MAN5" | sort -u); do
	check "$MAN5: entry $kw is a directive of config.c" \
	    grep -q -x -e "[A-Z]* $(quote_re "$kw")" "$tmp/keywords"
done

# Listener options: entries inside the `listen' entry.
entry "$MAN5" Ic listen >"$tmp/listen"
for opt in $lopts; do
	check "$MAN5: listener option $opt has an entry (.It Cm $opt)" \
	    has_item "$tmp/listen" ".It Cm" "$opt"
done
for opt in $lopts_later; do
	check "$MAN5: unsupported listener option $opt is named" \
	    has_macro "$MAN5" "Cm" "$opt"
	if has_item "$tmp/listen" ".It Cm" "$opt"; then
		not_ok "$MAN5: unsupported listener option $opt has no entry"
	else
		ok "$MAN5: unsupported listener option $opt has no entry"
	fi
done
for opt in $(sed -n 's/^\.It Cm \([^ ]*\).*/\1/p' "$tmp/listen" | sort -u); do
	if printf '%s\n' "$lopts" | grep -q -x -e "$(quote_re "$opt")"; then
		ok "$MAN5: listener option entry $opt is in config.c"
	else
		not_ok "$MAN5: listener option entry $opt is in config.c"
	fi
done

# The delivery command: placeholders, environment, replies.
for ph in $placeholders; do
	check "$MAN5: placeholder $ph has an entry" \
	    has_item "$MAN5" ".It Cm" "$ph"
done
for ph in $(sed -n 's/^\.It Cm \(%{[^ ]*\).*/\1/p' "$MAN5" | sort -u); do
	if printf '%s\n' "$placeholders" | grep -q -x -F -e "$ph"; then
		ok "$MAN5: placeholder entry $ph is in deliver.c"
	else
		not_ok "$MAN5: placeholder entry $ph is in deliver.c"
	fi
done
for ev in $envvars; do
	check "$MAN5: environment variable $ev is documented" \
	    has_macro "$MAN5" "Ev" "$ev"
done
while IFS= read -r reply; do
	check "$MAN5: reply \"$reply\" is documented" \
	    grep -q -F -e "$reply" "$MAN5"
done <"$tmp/replies"

#
# smtpd.8 and the code.
#

for l in $letters; do
	check "$MAN8: option -$l has an entry (.It Fl $l)" \
	    has_item "$MAN8" ".It Fl" "$l"
done
for l in $(sed -n 's/^\.It Fl \([^ ]*\).*/\1/p' "$MAN8" | sort -u); do
	if printf '%s\n' "$letters" | grep -q -x -F -e "$l"; then
		ok "$MAN8: option entry -$l is in usage()"
	else
		not_ok "$MAN8: option entry -$l is in usage()"
	fi
done
check "smtpd.c: getopt() letters are those of usage()" [ \
    "$(printf '%s\n' "$optstring" | tr -d ':' | fold -w 1 | sort -u)" = \
    "$letters" ]

# CAVEATS names no supported feature as missing: the directives of
# config.c are all there.
for man in "$MAN8" "$MAN5"; do
	section "$man" CAVEATS >"$tmp/caveats"
	for w in TLS AUTH PROXY policy; do
		check "$man: CAVEATS does not say there is no $w" \
		    sh -c "! tr '\n' ' ' <'$tmp/caveats' | \
		    grep -q -i -e 'no $w\\b' -e 'not supported'"
	done
done

# The SYNOPSIS, read from the source (.Nm .Op .Fl .Ar), is usage().
name=$(sed -n 's/^\.Nm \([^ ]*\).*/\1/p' "$MAN8" | head -n 1)
synopsis=$(section "$MAN8" SYNOPSIS | awk -v name="$name" '
	function words(from,    i, s, w) {
		s = ""
		for (i = from; i <= NF; i++) {
			w = $i
			if (w == "Fl") { i++; w = "-" $i }
			else if (w == "Ar" || w == "Cm") { i++; w = $i }
			s = s (s == "" ? "" : " ") w
		}
		return s
	}
	$1 == ".Nm" { out = out " " (NF > 1 ? $2 : name); next }
	$1 == ".Op" { out = out " [" words(2) "]"; next }
	$1 == ".Fl" || $1 == ".Ar" {
		$1 = substr($1, 2)
		out = out " " words(1)
		next
	}
	{ out = out " ?" $0 }
	END { sub(/^ /, "", out); print out }')
if [ "$synopsis" = "$usage" ]; then
	ok "$MAN8: SYNOPSIS source is usage(): $usage"
else
	not_ok "$MAN8: SYNOPSIS source \"$synopsis\" is usage() \"$usage\""
fi
if have_mandoc; then
	rendered=$(mandoc -T ascii "$MAN8" | col -b |
	    awk '/^SYNOPSIS/ { on = 1; next } /^[A-Z]/ { on = 0 }
		on && NF { sub(/^ +/, ""); printf "%s%s", sep, $0; sep = " " }')
	if [ "$rendered" = "$usage" ]; then
		ok "$MAN8: rendered SYNOPSIS is usage()"
	else
		not_ok "$MAN8: rendered SYNOPSIS \"$rendered\" is usage()"
	fi
else
	skipped "$MAN8: rendered SYNOPSIS (no mandoc)"
fi

# Paths and texts of smtpd.h and smtpd.c.
sysconfdir=$(sed -n 's/^#define[	 ]*SYSCONFDIR[	 ]*"\(.*\)"/\1/p' smtpd.h)
pidfile=$(sed -n 's/^#define[	 ]*DEF_PIDFILE[	 ]*"\(.*\)"/\1/p' smtpd.h)
refuse=$(sed -n 's/^#define[	 ]*REFUSE_TEXT[	 ]*"\(.*\)"/\1/p' smtpd.c)
for page in "$MAN8" "$MAN5"; do
	check "$page: names the default file $sysconfdir/smtpd.conf" \
	    grep -q -F -e "$sysconfdir/smtpd.conf" "$page"
done
check "$MAN8: names the default pidfile $pidfile" \
    grep -q -F -e "$pidfile" "$MAN8"
check "$MAN8: has the master's 421 text \"$refuse\"" \
    grep -q -F -e "$refuse" "$MAN8"

#
# Every reply text of the C code is in smtpd.8 DIAGNOSTICS (or, for the
# delivery results, smtpd.conf.5): the parts of each literal that begins
# with a reply code, between its printf conversions, as the pages render.
#

if have_mandoc && command -v python3 >/dev/null 2>&1; then
	python3 - *.c >"$tmp/fragments" <<'PYEOF'
import re, sys
tok = re.compile(r'/\*.*?\*/|//[^\n]*|\'(?:\\.|[^\\\'])*\'|'
    r'"((?:\\.|[^\\"])*)"|(\s+)|(.)', re.S)
conv = re.compile(r'%[-+ #0-9.*]*(?:hh|h|ll|l|z|j|t)?[diouxXsc]')
for path in sys.argv[1:]:
    lits, cur = [], None
    for m in tok.finditer(open(path, encoding='latin-1').read()):
        if m.group(1) is not None:
            s = re.sub(r'\\(.)', r'\1', m.group(1))
            cur = s if cur is None else cur + s
        elif m.group(2) is None and m.group(0)[:2] not in ('/*', '//'):
            if cur is not None:
                lits.append(cur)
            cur = None
    for s in lits:
        if not re.match(r'[2-5][0-9][0-9][ -]', s):
            continue
        for part in conv.split(s):
            part = part.strip()
            if len(part) > 4 or (len(part) == 4 and
                not re.match(r'[2-5][0-9][0-9]-?$', part)):
                print(path + '\t' + part)
PYEOF
	mandoc -T ascii "$MAN8" | col -b | awk '
	    /^[A-Z]/ { on = ($0 == "DIAGNOSTICS") ; next } on' |
	    tr -s ' \t\n' '   ' >"$tmp/diagnostics"
	mandoc -T ascii "$MAN5" | col -b | tr -s ' \t\n' '   ' >"$tmp/man5"
	check "C code: reply texts found" [ -s "$tmp/fragments" ]
	while IFS='	' read -r file text; do
		if grep -q -F -e "$text" "$tmp/diagnostics" ||
		    { [ "$file" = deliver.c ] &&
		    grep -q -F -e "$text" "$tmp/man5"; }; then
			ok "$MAN8 DIAGNOSTICS: has \"$text\" ($file)"
		else
			not_ok "$MAN8 DIAGNOSTICS: has \"$text\" ($file)"
		fi
	done <"$tmp/fragments"
else
	skipped "$MAN8 DIAGNOSTICS: every reply text (no mandoc or python3)"
fi

#
# The project stands alone: no tracked file points to a document or a
# marker that is not part of it (the RFCs and the manuals are cited).
#

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z | xargs -0 grep -I -n -E \
	    -e 'PROTOCOL[.]md|DESIGN[.]md|STYLE[.]md|\[(DAEMON|QUIRK)\]' \
	    -e '[Ii]ssue #?[0-9]|[Ss]teps? [0-9]' -- >"$tmp/outside" 2>/dev/null
	if [ -s "$tmp/outside" ]; then
		sed 's/^/	/' "$tmp/outside"
		not_ok "tracked files refer to no outside document"
	else
		ok "tracked files refer to no outside document"
	fi
else
	skipped "tracked files refer to no outside document (no git)"
fi

#
# contrib/smtpd.conf.example.
#

for kw in $supported; do
	check "$EXAMPLE: shows $kw" \
	    grep -q -e "^#\{0,1\}$(quote_re "$kw")[	 ]" "$EXAMPLE"
done

#
# With the binary: defaults and example configurations.
#

if have_smtpd; then
	# Every default that `smtpd -n' prints is in the directive's entry
	# (hostname is the machine's; listen is the one of this file), those
	# it prints as comments ("# user _smtpd (the default; ...)") too.
	printf 'listen on 127.0.0.1 port 2525\n' >"$tmp/min.conf"
	if "$SMTPD" -n -f "$tmp/min.conf" >"$tmp/defaults" 2>"$tmp/err"; then
		ok "smtpd -n prints the defaults"
	else
		sed 's/^/	/' "$tmp/err"
		not_ok "smtpd -n prints the defaults"
	fi
	while read -r kw val; do
		case $kw in
		hostname|listen)
			continue ;;
		'#')
			kw=${val%% *}; val=${val#* }; val=${val%% *} ;;
		esac
		val=$(printf '%s\n' "$val" | sed 's/^"\(.*\)"$/\1/')
		entry "$MAN5" Ic "$kw" >"$tmp/entry"
		check "$MAN5: $kw entry gives the default $val" \
		    grep -q -w -F -e "$val" "$tmp/entry"
	done <"$tmp/defaults"

	if "$SMTPD" -n -f "$EXAMPLE" >"$tmp/example.out" 2>"$tmp/err"; then
		ok "smtpd -n -f $EXAMPLE"
	elif host_lacks "$tmp/err"; then
		ok "smtpd -n -f $EXAMPLE ($(cat "$tmp/err"))"
	else
		sed 's/^/	/' "$tmp/err"
		not_ok "smtpd -n -f $EXAMPLE"
	fi

	# Its commented-out lines are the defaults: uncommenting those of
	# the directives with a fixed default changes nothing.
	re=$(printf '%s\n' "$supported" | grep -v -x -e hostname -e chroot \
	    -e user -e deliver-user -e pidfile -e control -e command-limit \
	    -e listen -e deliver -e accept -e reject -e policy \
	    -e recipient-delimiter -e bare-newline-exempt |
	    tr '\n' '|' | sed 's/|$//')
	sed -E "s/^#(($re)[	 ])/\\1/" "$EXAMPLE" >"$tmp/uncommented.conf"
	"$SMTPD" -n -f "$tmp/uncommented.conf" >"$tmp/uncommented.out" 2>&1
	check "$EXAMPLE: the commented-out lines are the defaults" \
	    cmp -s "$tmp/uncommented.out" "$tmp/example.out"

	# Every literal display of the EXAMPLES of smtpd.conf.5 is a whole
	# configuration that smtpd accepts.
	section "$MAN5" EXAMPLES | awk -v dir="$tmp" '
	    /^\.Bd -literal/ { n++; on = 1; next }
	    /^\.Ed/ { on = 0; next }
	    on {
		gsub(/\\e/, "\\"); gsub(/\\&/, "")
		print > (dir "/example" n ".conf")
	    }'
	n=0
	for f in "$tmp"/example*.conf; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		if "$SMTPD" -n -f "$f" >/dev/null 2>"$tmp/err"; then
			ok "$MAN5: EXAMPLES display $n is a valid configuration"
		elif host_lacks "$tmp/err"; then
			ok "$MAN5: EXAMPLES display $n is a valid configuration ($(cat "$tmp/err"))"
		else
			sed 's/^/	/' "$tmp/err"
			not_ok "$MAN5: EXAMPLES display $n is a valid configuration"
		fi
	done
	check "$MAN5: EXAMPLES has configurations" [ $n -gt 0 ]
else
	skipped "defaults and example configurations (no $SMTPD; make $SMTPD)"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
