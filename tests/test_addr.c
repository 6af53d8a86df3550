/*
 * test_addr.c: unit tests of addr_parse() (addr.c), table driven.  Every
 * address form aiosmtpd accepts or refuses is a row; the expected values
 * were checked against Python's email._header_value_parser, with smtpd's
 * own rules applied (unterminated quoted strings and domain literals are
 * refused, encoded words are kept as sent).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpd.h"
#include "internal.h"
#include "reparsable.h"

#define T_BAD		ADDR_BAD
#define T_NULL		ADDR_NULL
#define T_OK		ADDR_OK
#define T_EMPTY		ADDR_EMPTY

/* One row: input, result, normalised form, local part length, rest. */
struct addr_case {
	const char	*in;
	int		 ret;
	const char	*out;
	size_t		 locallen;
	const char	*rest;
};

#define OK(in, out, ll)		{ in, T_OK, out, ll, "" }
#define OKR(in, out, ll, rest)	{ in, T_OK, out, ll, rest }
#define BAD(in)			{ in, T_BAD, "", 0, NULL }
#define EMPTY(in, rest)		{ in, T_EMPTY, "", 0, rest }

/* Accepted addresses, their normal forms and local-part lengths. */
static const struct addr_case accepted[] = {
	OK("anne@example.com", "anne@example.com", 4),
	OK("<anne@example.com>", "anne@example.com", 4),
	OK("  <anne@example.com>", "anne@example.com", 4),
	OK("anne(comment)@example.com", "anne@example.com", 4),
	OK("(c)anne@example.com", "anne@example.com", 4),
	OK("anne@example.com(c)", "anne@example.com", 4),
	OK("anne@machine(comment).  example", "anne@machine.example", 4),
	OK("<anne @ example.com>", "anne@example.com", 4),
	OK("<(c)anne(d)@(e)example.com(f)>", "anne@example.com", 4),
	OK("<@example.org:anne@example.com>", "anne@example.com", 4),
	OK("<@a.net,@b.org:anne@example.com>", "anne@example.com", 4),
	OK("anne@[IPv6:2001:db8::1]", "anne@[IPv6:2001:db8::1]", 4),
	OK("anne@127.0.0.1", "anne@127.0.0.1", 4),
	OK("anne@mail", "anne@mail", 4),
	OK("mailhost!anne@example.com", "mailhost!anne@example.com", 13),
	OK("anne%x.org@example.com", "anne%x.org@example.com", 10),
	OK("$A12345@example.com", "$A12345@example.com", 7),
	OK("customer/department=shipping@example.com",
	    "customer/department=shipping@example.com", 28),
	OK("\"Abc@def\"@example.com", "\"Abc@def\"@example.com", 9),
	OK("\"Fred Bloggs\"@example.com", "\"Fred Bloggs\"@example.com", 13),
	OK("\" \"@example.com", "\" \"@example.com", 3),
	OK("\"anne..arthur\"@example.com", "anne..arthur@example.com", 12),
	OK("much.\"more\\ unusual\"@example.com",
	    "\"much.more unusual\"@example.com", 19),
	OK("Fred\\ Bloggs@example.com", "\"Fred\\\\ Bloggs\"@example.com", 15),
	OK("\"\"@example.com", "@example.com", 0),
	OK("<\"\"@example.com>", "\"\"@example.com", 2),
	OK("<Postmaster>", "Postmaster", 0),
	OK("=?utf-8?q?x?=@example.com", "=?utf-8?q?x?=@example.com", 13),
	OK("<anne@=?us-ascii?q?example.com?=>",
	    "anne@=?us-ascii?q?example.com?=", 4),
	OK("\"-a b\"@example.com", "\"-a b\"@example.com", 6),
	OK("<@x,,@y:a@b>", "a@b", 1),
	OK("a b@c", "\"a b\"@c", 5),
	OK("Postmaster", "Postmaster", 0),
};

/* Unparsable addresses, and the unterminated ones smtpd refuses. */
static const struct addr_case unparsable[] = {
	BAD("<@example.com>"),
	BAD("<johnathon@>"),
	BAD("@@"),
	BAD("a@b@c"),
	BAD("<a@b@c>"),
	BAD("a@.b"),
	BAD("a@b..c"),
	BAD("<<a@b>>"),
	BAD("<@x,a@b>"),
	BAD("<@:a@b>"),
	BAD("<@x:@y:a@b>"),
	BAD("\"anne@example.com"),
	BAD("<\"anne@example.com>"),
	BAD("\"a\\\"@example.com"),
	BAD("\""),
	BAD("anne@[1.2.3.4"),
	/* RFC 5321 4.1.2: a Path ends with `>`. */
	BAD("<a"),
	BAD("<anne@example.com"),
	BAD("<@example.org:anne@example.com"),
	BAD("<anne@example.com SIZE=1"),
	BAD("<a@b c>"),
	BAD("<a b"),
	BAD("<\"\"@x"),
	BAD(""),
	BAD("   "),
};

/* 7.1 the null path: no CFWS is taken after it. */
static const struct addr_case nullpath[] = {
	{ "<>", T_NULL, "", 0, "" },
	{ " <>", T_NULL, "", 0, "" },
	{ "<> NOTIFY=NEVER", T_NULL, "", 0, " NOTIFY=NEVER" },
	{ "<> (c)", T_NULL, "", 0, " (c)" },
	{ "<>x", T_NULL, "", 0, "x" },
	OK("<\"\">", "\"\"", 0),
	OK("<@x:\"\">", "\"\"", 0),
	BAD("< >"),
	BAD("<(c)>"),
};

/* 7.2: the caller refuses a normalised form that begins with `-`. */
static const struct addr_case dash[] = {
	OK("-oQ@example.com", "-oQ@example.com", 3),
	OK("<-oQ@example.com>", "-oQ@example.com", 3),
	OK("-f", "-f", 0),
	OK("\"-a\"@example.com", "-a@example.com", 2),
	OK("\"\\-a\"@example.com", "-a@example.com", 2),
	OK("(c)-a@example.com", "-a@example.com", 2),
	OK("<@example.org:-a@example.com>", "-a@example.com", 2),
	OK("a-b@example.com", "a-b@example.com", 3),
	OK("a@-b.example", "a@-b.example", 1),
	OK("\"-a b\"@example.com", "\"-a b\"@example.com", 6),
};

/* What follows the address is the rest (7, 6.5 examples, 7.3). */
static const struct addr_case rest[] = {
	OKR("anne@exa mple.com", "anne@exa", 4, "mple.com"),
	OKR("a,b@c", "a", 0, ",b@c"),
	OKR("Anne <anne@example.com>", "Anne", 0, "<anne@example.com>"),
	OKR("a@b\"c", "a@b", 1, "\"c"),
	OKR("<anne@example.com> SIZE=10000", "anne@example.com", 4,
	    "SIZE=10000"),
	OKR("<anne@example.com>  BODY 9BIT", "anne@example.com", 4,
	    "BODY 9BIT"),
	OKR("<anne@example.com>SIZE=1", "anne@example.com", 4, "SIZE=1"),
	OKR("<anne@example.com> (c) SIZE=1", "anne@example.com", 4,
	    "SIZE=1"),
	OKR("anne@example.com FOO=BAR SIZE=abc", "anne@example.com", 4,
	    "FOO=BAR SIZE=abc"),
	OKR("a@[x] y", "a@[x]", 1, "y"),
	OKR("a@b .x@c", "a@b.x", 1, "@c"),
	OKR("a@b. c@d", "a@b.c", 1, "@d"),
	OKR("a@[a@b]@c", "a@[a@b]", 4, "@c"),
	OKR("a:b", "a", 0, ":b"),
	OKR("a;b", "a", 0, ";b"),
	OKR("a>", "a", 0, ">"),
	OKR("a]", "a", 0, "]"),
	OKR("a)", "a", 0, ")"),
	OKR("a. )@b", "a.", 0, ")@b"),
	OKR("\ta\t<a@b>", "a", 0, "<a@b>"),
	BAD("a@b (c)@d"),
};

/* Obsolete local parts (RFC 5322 4.4) and the normal form (7, 2-5). */
static const struct addr_case obsolete[] = {
	OK("a\tb@c", "\"a b\"@c", 5),
	OK("a  (x)  b@c", "\"a b\"@c", 5),
	OK("a(c)b@c", "\"a b\"@c", 5),
	OK("\"a\" \"b\"@c", "\"a b\"@c", 5),
	OK("a\"b\"@c", "ab@c", 2),
	OK("\"a  b\"@c", "\"a  b\"@c", 6),
	OK("\"a\\\tb\"@c", "\"a\tb\"@c", 5),
	OK("\"a\\\\b\"@c", "\"a\\\\b\"@c", 6),
	OK("\"a\\\"b\"@c", "\"a\\\"b\"@c", 6),
	OK("\"a\\b\"@c", "ab@c", 2),
	OK("\"a.b\"@c", "a.b@c", 3),
	OK("a.@b", "a.@b", 2),
	OK(".a@b", ".a@b", 2),
	OK("a..b@c", "a..b@c", 4),
	OK("a. b@c", "a.b@c", 3),
	OK("a .b@c", "a.b@c", 3),
	OK("a . b . c@d", "a.b.c@d", 5),
	OK("a. (c)@b", "a.@b", 2),
	OK(".", ".", 0),
	OK("\\", "\"\\\\\"", 0),
	OK("\\@x", "\"\\\\\"@x", 4),
	OK("a\\", "\"a\\\\\"", 0),
	OK("a\\ b", "\"a\\\\ b\"", 0),
	OK("a\\ \\b@c", "\"a\\\\\\\\b\"@c", 8),
	OK("a\\.b@c", "\"a\\\\.b\"@c", 7),
	OK("a \\b@c", "\"a \\\\b\"@c", 7),
	OK("<a b>", "\"a b\"", 0),
	OK("\"a(b)\"@c", "\"a(b)\"@c", 6),
	OK("\"<a>\"@c", "\"<a>\"@c", 5),
	OK("\"a,b;c:d\"@e", "\"a,b;c:d\"@e", 9),
	OK("\"[a]\"@c", "\"[a]\"@c", 5),
	OK("\"a@b\"", "\"a@b\"", 2),
	EMPTY("\"\"", ""),
	EMPTY("(c)\"\"(d)", ""),
	EMPTY("\"\",x", ",x"),
	EMPTY("\"\" <x>", "<x>"),
	BAD("a\"b@c"),
	BAD("(c)@x"),
	BAD("@x"),
};

/* Domains: obs-domain, literals (7). */
static const struct addr_case domains[] = {
	OK("a@ b", "a@b", 1),
	OK("a @b", "a@b", 1),
	OK("a@b .c", "a@b.c", 1),
	OK("a@b. c", "a@b.c", 1),
	OK("a@b . c . d", "a@b.c.d", 1),
	OK("a@ [x]", "a@[x]", 1),
	OK("a@(c)[x](d)", "a@[x]", 1),
	OK("a@[]", "a@[]", 1),
	OK("a@[ 1.2.3.4 ]", "a@[1.2.3.4]", 1),
	OK("a@[127.0.0.1]", "a@[127.0.0.1]", 1),
	OK("a@[a\\xb]", "a@[axb]", 1),
	BAD("a@[a\\]b]"),
	BAD("a@[a\\[b]"),
	BAD("a@[a\\\\b]"),
	BAD("x@[foo@\\[127.0.0.1]"),
	OK("a@[a\\ ]", "a@[a]", 1),
	OK("a@[x(y)\"z\"]", "a@[x(y)\"z\"]", 1),
	BAD("a@[a\\ b]"),
	BAD("a@[a b]"),
	BAD("a@[a[b]"),
	BAD("a@["),
	BAD("a@[ "),
	BAD("a@[x\\"),
	BAD("a@b."),
	BAD("a@b. "),
	BAD("a@.b"),
	BAD("a@"),
	BAD("a@ "),
	BAD("a@(c)"),
	BAD("a@<b>"),
	BAD("a@,b"),
};

/* Routes (RFC 5321 4.1.2 A-d-l, RFC 5322 4.4 obs-route), dropped. */
static const struct addr_case routes[] = {
	OK("<,@x:a@b>", "a@b", 1),
	OK("<(c),(d)@x:a@b>", "a@b", 1),
	OK("<@x ,@y:a@b>", "a@b", 1),
	OK("<@x, @y:a@b>", "a@b", 1),
	OK("<@x,:a@b>", "a@b", 1),
	OK("<@[1.2.3.4]:a@b>", "a@b", 1),
	OK("<@x .y:a@b>", "a@b", 1),
	OK("<@x:a>", "a", 0),
	OK("<@x:\"\"@y>", "\"\"@y", 2),
	BAD("<@x,a:b@c>"),
	BAD("<@x.:a@b>"),
	BAD("<@x@y:a@b>"),
	BAD("<@x:"),
	BAD("<@x:>"),
	BAD("<@x,"),
	BAD("<@x,(c)"),
	BAD("<@x;a@b>"),
	BAD("<@[x:a@b>"),
};

/* Comments: nested, `\` quoting, open at the end (Python accepts). */
static const struct addr_case comments[] = {
	OK("((((a))))x@y", "x@y", 1),
	OK("(a(b)c)x@(d(e\\)f)g)y", "x@y", 1),
	OK("(\\()x@y", "x@y", 1),
	OK("(a\\ (b))x@y", "x@y", 1),
	OK("anne@example.com (unterminated", "anne@example.com", 4),
	OK("a@b(c\\)", "a@b", 1),
	OK("a@b(c\\", "a@b", 1),
	OK("a(\"b)@c", "a@c", 1),
	BAD("(a"),
	BAD("(a)"),
	BAD(")"),
};

/* Lone specials; bytes >= 0x80, atext as in RFC 6532; encoded words kept. */
static const struct addr_case nasty[] = {
	BAD("<"),
	BAD(">"),
	BAD("("),
	BAD("["),
	BAD("]"),
	BAD("@"),
	BAD(","),
	BAD(":"),
	BAD("<\""),
	BAD("<("),
	BAD("<<"),
	BAD("\"\\"),
	OK("\xc3\xa9@example.com", "\xc3\xa9@example.com", 2),
	OK("anne@ex\xc3\xa4mple.com", "anne@ex\xc3\xa4mple.com", 4),
	OK("\"\xc3\xa9 x\"@y", "\"\xc3\xa9 x\"@y", 6),
	OK("\xff\x80", "\xff\x80", 0),
	OK("<\xff@\x80>", "\xff@\x80", 1),
	OK("=?utf-8?q?-x?=@example.com", "=?utf-8?q?-x?=@example.com", 14),
	OK("\"=?utf-8?q?x?=\"@e", "=?utf-8?q?x?=@e", 13),
	OK("a@=?utf-8?q?x?=.=?a?b?c?=", "a@=?utf-8?q?x?=.=?a?b?c?=", 1),
};

static void
check_case(const struct addr_case *c)
{
	char		 out[1024];
	size_t		 ll = 99;
	const char	*r = NULL;
	int		 ret;

	ret = addr_parse(c->in, out, sizeof(out), &ll, &r);
	if (ret != c->ret)
		fail_msg("[%s]: returned %d, want %d (out [%s])", c->in, ret,
		    c->ret, ret == T_BAD ? "" : out);
	if (ret == T_BAD) {
		assert_string_equal(out, "");
		assert_int_equal(ll, 0);
		return;
	}
	if (strcmp(out, c->out) != 0)
		fail_msg("[%s]: out [%s], want [%s]", c->in, out, c->out);
	if (ll != c->locallen)
		fail_msg("[%s]: locallen %zu, want %zu", c->in, ll,
		    c->locallen);
	assert_non_null(r);
	assert_true(r >= c->in && r <= c->in + strlen(c->in));
	if (strcmp(r, c->rest) != 0)
		fail_msg("[%s]: rest [%s], want [%s]", c->in, r, c->rest);
}

static void
check_table(const struct addr_case *tab, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		check_case(&tab[i]);
}

#define TABLE_TEST(name, tab)						\
static void								\
name(void **state)							\
{									\
	(void)state;							\
	check_table(tab, sizeof(tab) / sizeof(tab[0]));			\
}

TABLE_TEST(test_accepted, accepted)
TABLE_TEST(test_unparsable, unparsable)
TABLE_TEST(test_nullpath, nullpath)
TABLE_TEST(test_dash, dash)
TABLE_TEST(test_rest, rest)
TABLE_TEST(test_obsolete, obsolete)
TABLE_TEST(test_domains, domains)
TABLE_TEST(test_routes, routes)
TABLE_TEST(test_comments, comments)
TABLE_TEST(test_nasty, nasty)

/* A heap copy of `head`, `n` times `fill`, then `tail`. */
static char *
make_input(const char *head, int fill, size_t n, const char *tail)
{
	size_t	 hl = strlen(head), tl = strlen(tail);
	char	*s;

	if ((s = malloc(hl + n + tl + 1)) == NULL)
		fail_msg("malloc");
	memcpy(s, head, hl);
	memset(s + hl, fill, n);
	memcpy(s + hl + n, tail, tl + 1);
	return (s);
}

/* Parse with the outsz callers pass (2 * strlen + 8); the result. */
static int
parse_big(const char *in, char **outp, size_t *ll)
{
	const char	*r;
	size_t		 sz = 2 * strlen(in) + 8;

	if ((*outp = malloc(sz)) == NULL)
		fail_msg("malloc");
	return (addr_parse(in, *outp, sz, ll, &r));
}

/* Comment nesting is bounded (64), not a recursion without end. */
static void
test_nesting(void **state)
{
	char	*in, *out;
	size_t	 ll;

	(void)state;
	in = make_input("", '(', 128, "x@y");
	memset(in + 64, ')', 64);
	assert_int_equal(parse_big(in, &out, &ll), T_OK);
	assert_string_equal(out, "x@y");
	free(in);
	free(out);
	in = make_input("", '(', 130, "x@y");
	memset(in + 65, ')', 65);
	assert_int_equal(parse_big(in, &out, &ll), T_BAD);
	free(in);
	free(out);
	in = make_input("a@b", '(', 100000, "");
	assert_int_equal(parse_big(in, &out, &ll), T_BAD);
	free(in);
	free(out);
}

/* Very long inputs, the worst case of quoting, no length rule (7). */
static void
test_long(void **state)
{
	char	*in, *out;
	size_t	 ll, n = 100000;

	(void)state;
	in = make_input("", 'a', n, "@example.com");
	assert_int_equal(parse_big(in, &out, &ll), T_OK);
	assert_string_equal(out, in);
	assert_int_equal(ll, n);
	free(in);
	free(out);
	in = make_input("", 'a', 500, "");
	assert_int_equal(parse_big(in, &out, &ll), T_OK);
	assert_string_equal(out, in);
	assert_int_equal(ll, 0);
	free(in);
	free(out);
	/* n backslashes quote to 2n + 2 bytes, the caller's bound. */
	in = make_input("", '\\', n, "");
	assert_int_equal(parse_big(in, &out, &ll), T_OK);
	assert_int_equal(strlen(out), 2 * n + 2);
	assert_true(out[0] == '"' && out[2 * n + 1] == '"');
	free(in);
	free(out);
	/* 50000 empty quoted-strings after the a: nothing added. */
	in = make_input("a", '"', n, "@b");
	assert_int_equal(parse_big(in, &out, &ll), T_OK);
	assert_string_equal(out, "a@b");
	free(in);
	free(out);
	in = make_input("<", '@', n, "");
	assert_int_equal(parse_big(in, &out, &ll), T_BAD);
	free(in);
	free(out);
	in = make_input("a@b", '.', n, "");
	assert_int_equal(parse_big(in, &out, &ll), T_BAD);
	free(in);
	free(out);
}

/* An output buffer too small gives ADDR_BAD, never an overrun. */
static void
test_outsz(void **state)
{
	char		 out[64];
	size_t		 ll;
	const char	*r;

	(void)state;
	assert_int_equal(addr_parse("a@b", out, 0, &ll, &r), T_BAD);
	assert_int_equal(addr_parse("a@b", out, 1, &ll, &r), T_BAD);
	assert_string_equal(out, "");
	assert_int_equal(addr_parse("a@b", out, 3, &ll, &r), T_BAD);
	assert_int_equal(addr_parse("a@b", out, 4, &ll, &r), T_OK);
	assert_string_equal(out, "a@b");
	assert_int_equal(addr_parse("<>", out, 1, &ll, &r), T_NULL);
	assert_string_equal(out, "");
	/* Quoting grows the local part: "a b" needs 6 bytes with NUL. */
	assert_int_equal(addr_parse("a b", out, 5, &ll, &r), T_BAD);
	assert_int_equal(addr_parse("a b", out, 6, &ll, &r), T_OK);
	assert_string_equal(out, "\"a b\"");
	assert_int_equal(addr_parse("\\\\", out, 6, &ll, &r), T_BAD);
	assert_int_equal(addr_parse("\\\\", out, 7, &ll, &r), T_OK);
	assert_string_equal(out, "\"\\\\\\\\\"");
	assert_int_equal(addr_parse("<\"\"@x>", out, 4, &ll, &r), T_BAD);
	assert_int_equal(addr_parse("<\"\"@x>", out, 5, &ll, &r), T_OK);
	assert_int_equal(addr_parse("<@longer.domain:a@b>", out, 4, &ll, &r),
	    T_OK);
	assert_string_equal(out, "a@b");
	/* NULL locallen and rest are allowed. */
	assert_int_equal(addr_parse("a@b", out, sizeof(out), NULL, NULL),
	    T_OK);
}

static void
check_idempotent(const char *in)
{
	char		 out[4096], again[4096];
	size_t		 ll, ll2;
	const char	*r;

	if (addr_parse(in, out, sizeof(out), &ll, &r) != T_OK ||
	    !reparsable(out))
		return;
	if (addr_parse(out, again, sizeof(again), &ll2, &r) != T_OK)
		fail_msg("[%s] -> [%s] does not parse", in, out);
	if (strcmp(out, again) != 0 || *r != '\0' || ll != ll2)
		fail_msg("[%s] -> [%s] -> [%s] rest [%s]", in, out, again, r);
}

/* Every byte, alone and inside addresses, parses without harm. */
static void
test_all_bytes(void **state)
{
	/* `#` stands for the byte under test. */
	static const char *const tmpl[] = {
		"#", "<#", "a#b@c", "<a@b#>", "\"#\"@x", "a@[#]", "(#)a",
		"<@x#:a@b>", "##", "\\#", "a@b#c", "<a#@b>",
	};
	char		 in[16], out[64];
	size_t		 i, j, ll;
	const char	*r;
	int		 c, ret;

	(void)state;
	for (c = 1; c < 256; c++) {
		for (i = 0; i < sizeof(tmpl) / sizeof(tmpl[0]); i++) {
			for (j = 0; tmpl[i][j] != '\0'; j++)
				in[j] = tmpl[i][j] == '#' ? (char)c :
				    tmpl[i][j];
			in[j] = '\0';
			ret = addr_parse(in, out, sizeof(out), &ll, &r);
			assert_true(ret == T_OK || ret == T_BAD ||
			    ret == T_NULL || ret == T_EMPTY);
			assert_true(strlen(out) < sizeof(out));
			if (ret != T_BAD)
				assert_true(r >= in && r <= in + strlen(in));
			check_idempotent(in);
		}
	}
}

static void
test_idempotent(void **state)
{
	static const struct {
		const struct addr_case	*tab;
		size_t			 n;
	} tabs[] = {
#define TAB(t)	{ t, sizeof(t) / sizeof(t[0]) }
		TAB(accepted), TAB(nullpath), TAB(dash), TAB(rest),
		TAB(obsolete), TAB(domains), TAB(routes), TAB(comments),
		TAB(nasty),
#undef TAB
	};
	static const char	 alpha[] = "ab.@\"\\()<>,:;[] \t=?-\xc3\xa9";
	char			 in[24];
	uint32_t		 seed = 12345;
	size_t			 i, j, len;

	(void)state;
	for (i = 0; i < sizeof(tabs) / sizeof(tabs[0]); i++)
		for (j = 0; j < tabs[i].n; j++)
			check_idempotent(tabs[i].tab[j].in);
	/* Random strings from the bytes that matter (a fixed LCG). */
	for (i = 0; i < 200000; i++) {
		seed = seed * 1103515245 + 12345;
		len = 1 + (seed >> 16) % (sizeof(in) - 1);
		for (j = 0; j < len; j++) {
			seed = seed * 1103515245 + 12345;
			in[j] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
		}
		in[len] = '\0';
		check_idempotent(in);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_unparsable),
		cmocka_unit_test(test_nullpath),
		cmocka_unit_test(test_dash),
		cmocka_unit_test(test_rest),
		cmocka_unit_test(test_obsolete),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_nasty),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_long),
		cmocka_unit_test(test_outsz),
		cmocka_unit_test(test_all_bytes),
		cmocka_unit_test(test_idempotent),
	};

	return (cmocka_run_group_tests_name("addr", tests, NULL, NULL));
}
