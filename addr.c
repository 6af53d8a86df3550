/*
 * addr.c: parse and normalise the address of MAIL FROM, RCPT TO and VRFY
 * (smtpd.8, ADDRESSES).  The grammar and the normal form are those of
 * aiosmtpd, which uses Python's RFC 5322 parser (get_angle_addr and
 * get_addr_spec); where Python crashes or accepts an unterminated quoted
 * string, domain literal or angle path, the address is refused.
 */

#include <stddef.h>
#include <string.h>

#include "smtpd.h"

/* Deeper comment nesting is refused instead of recursing without end. */
#define ADDR_MAXNEST	64

/* Parser state: the input cursor and the output being built. */
struct addrp {
	const char	*ap_p;		/* next input byte */
	char		*ap_out;
	size_t		 ap_outsz;
	size_t		 ap_len;	/* bytes written to ap_out */
	int		 ap_full;	/* the normalised form did not fit */
};

static int	addr_is_wsp(int);
static int	addr_is_special(int);
static int	addr_is_atext(int);
static int	addr_is_phrase_end(int);
static void	addr_put(struct addrp *, int);
static void	addr_put_atext(struct addrp *);
static int	addr_skip_comment(struct addrp *);
static int	addr_skip_cfws(struct addrp *);
static int	addr_quoted(struct addrp *);
static int	addr_word(struct addrp *, int);
static int	addr_local(struct addrp *);
static int	addr_local_quote(struct addrp *, int);
static const char *addr_dotatom_end(const char *);
static int	addr_literal(struct addrp *);
static int	addr_domain(struct addrp *);
static int	addr_spec(struct addrp *, int);
static int	addr_route(struct addrp *);
static int	addr_angle(struct addrp *);

static int
addr_is_wsp(int c)
{
	return (c == ' ' || c == '\t');
}

/* RFC 5322 3.2.3 specials (Python's SPECIALS). */
static int
addr_is_special(int c)
{
	return (c != '\0' && strchr("()<>@,:;.\\\"[]", c) != NULL);
}

/*
 * RFC 5322 atext, plus every byte >= 0x80 (RFC 6532 3.2, SMTPUTF8) and,
 * as in Python, any other byte that is not a special or white space:
 * control characters are the caller's business (session_path()).
 */
static int
addr_is_atext(int c)
{
	return (c != '\0' && !addr_is_special(c) && !addr_is_wsp(c));
}

/* Bytes that end an obs-local-part: specials except . " ( (PHRASE_ENDS). */
static int
addr_is_phrase_end(int c)
{
	return (c != '\0' && strchr(")<>@,:;\\[]", c) != NULL);
}

static void
addr_put(struct addrp *ap, int c)
{
	/* Keep room for the NUL. */
	if (ap->ap_len + 1 < ap->ap_outsz)
		ap->ap_out[ap->ap_len++] = (char)c;
	else
		ap->ap_full = 1;
}

/* Copy a run of atext from the input; the caller checked there is one. */
static void
addr_put_atext(struct addrp *ap)
{
	while (addr_is_atext((unsigned char)*ap->ap_p))
		addr_put(ap, *ap->ap_p++);
}

/*
 * Skip one comment (RFC 5322 3.2.2): nested, `\` quotes the next byte.
 * Like Python we accept a comment left open at the end of the argument;
 * nesting deeper than ADDR_MAXNEST is refused.  Iterative, not recursive.
 */
static int
addr_skip_comment(struct addrp *ap)
{
	const char	*p = ap->ap_p;
	int		 depth = 0;

	do {
		switch (*p) {
		case '\0':
			ap->ap_p = p;
			return (0);
		case '(':
			if (++depth > ADDR_MAXNEST)
				return (-1);
			break;
		case ')':
			depth--;
			break;
		case '\\':
			if (p[1] != '\0')
				p++;
			break;
		}
		p++;
	} while (depth > 0);
	ap->ap_p = p;
	return (0);
}

/* Skip CFWS: returns 1 if there was some, 0 if none, -1 on error. */
static int
addr_skip_cfws(struct addrp *ap)
{
	const char	*start = ap->ap_p;

	for (;;) {
		if (addr_is_wsp(*ap->ap_p))
			ap->ap_p++;
		else if (*ap->ap_p == '(') {
			if (addr_skip_comment(ap) == -1)
				return (-1);
		} else
			break;
	}
	return (ap->ap_p != start);
}

/*
 * A quoted-string (RFC 5322 3.2.4), appended unquoted: quoted-pairs are
 * decoded, white space inside is kept as is.  Unlike aiosmtpd, one left
 * open at the end of the argument is an error (Python closes it there).
 */
static int
addr_quoted(struct addrp *ap)
{
	const char	*p = ap->ap_p + 1;

	for (;;) {
		if (*p == '\0')
			return (-1);
		if (*p == '"')
			break;
		if (*p == '\\' && *++p == '\0')
			return (-1);
		addr_put(ap, *p++);
	}
	ap->ap_p = p + 1;
	return (0);
}

/*
 * One word of the local part: an atom or a quoted-string (RFC 5322
 * 3.2.5).  `space` asks for the single space that stands for the CFWS
 * before it.
 */
static int
addr_word(struct addrp *ap, int space)
{
	if (space)
		addr_put(ap, ' ');
	if (*ap->ap_p == '"')
		return (addr_quoted(ap));
	addr_put_atext(ap);
	return (0);
}

/*
 * The local part, unquoted, into ap_out.  Parsed as Python's
 * get_obs_local_part (RFC 5322 4.4), which covers dot-atom and
 * quoted-string too: words, dots (leading, trailing, doubled all
 * tolerated) and stray backslashes.  CFWS next to a dot or at either end
 * disappears; between two words, or next to a backslash, it becomes one
 * space (`a b@c` is "a b"@c).  CFWS followed by no word is dropped.
 */
static int
addr_local(struct addrp *ap)
{
	int	 c, lead, trail = 0, after_dot = 1;

	if (addr_skip_cfws(ap) == -1)
		return (-1);
	c = (unsigned char)*ap->ap_p;
	if (c == '\0' || (c != '\\' && addr_is_phrase_end(c)))
		return (-1);
	while ((c = (unsigned char)*ap->ap_p) != '\0' &&
	    (c == '\\' || !addr_is_phrase_end(c))) {
		if (c == '.' || c == '\\') {
			if (c == '\\' && trail)
				addr_put(ap, ' ');
			addr_put(ap, c);
			ap->ap_p++;
			after_dot = (c == '.');
			trail = 0;
			continue;
		}
		if ((lead = addr_skip_cfws(ap)) == -1)
			return (-1);
		c = (unsigned char)*ap->ap_p;
		if (c == '\0' || (c != '"' && addr_is_special(c)))
			continue;
		if (addr_word(ap, trail || (lead && !after_dot)) == -1)
			return (-1);
		if ((trail = addr_skip_cfws(ap)) == -1)
			return (-1);
		after_dot = 0;
	}
	return (0);
}

/*
 * Quote the local part again, in place, if it needs it (Python's
 * AddrSpec.addr_spec): any special but the dot, or white space, and `\`
 * and `"` escaped.  As in aiosmtpd, an empty one is "" in angle form only.
 */
static int
addr_local_quote(struct addrp *ap, int angle)
{
	size_t	 i, j, need;
	int	 quote = 0;

	if (ap->ap_full)
		return (-1);
	need = ap->ap_len + 2;
	for (i = 0; i < ap->ap_len; i++) {
		if (ap->ap_out[i] != '.' && !addr_is_atext(
		    (unsigned char)ap->ap_out[i]))
			quote = 1;
		if (ap->ap_out[i] == '\\' || ap->ap_out[i] == '"')
			need++;
	}
	if (!quote && !(angle && ap->ap_len == 0))
		return (0);
	if (need >= ap->ap_outsz) {
		ap->ap_full = 1;
		return (-1);
	}
	/* Backwards, so that no byte is overwritten before it is read. */
	j = need - 1;
	ap->ap_out[j--] = '"';
	for (i = ap->ap_len; i-- > 0; ) {
		ap->ap_out[j--] = ap->ap_out[i];
		if (ap->ap_out[i] == '\\' || ap->ap_out[i] == '"')
			ap->ap_out[j--] = '\\';
	}
	ap->ap_out[0] = '"';
	ap->ap_len = need;
	return (0);
}

/* The end of a dot-atom-text at p (RFC 5322 3.2.3), or NULL if none. */
static const char *
addr_dotatom_end(const char *p)
{
	for (;;) {
		if (!addr_is_atext((unsigned char)*p))
			return (NULL);
		while (addr_is_atext((unsigned char)*p))
			p++;
		if (*p != '.')
			return (p);
		p++;
	}
}

/*
 * A domain-literal (RFC 5322 3.4.1), copied without its white space
 * and with quoted-pairs decoded, as Python does.  One run of dtext only.
 * Unlike aiosmtpd, one left open is an error (it crashes Python's
 * parser), and so is a quoted-pair of `[`, `]` or `\`, which dtext
 * cannot hold: decoded, the address would not parse again as itself.
 */
static int
addr_literal(struct addrp *ap)
{
	int	 c;

	addr_put(ap, *ap->ap_p++);
	while (addr_is_wsp(*ap->ap_p))
		ap->ap_p++;
	while ((c = (unsigned char)*ap->ap_p) != '\0' && !addr_is_wsp(c) &&
	    c != '[' && c != ']') {
		if (c == '\\') {
			/* Python drops a `\` that ends the run of dtext. */
			c = (unsigned char)*++ap->ap_p;
			if (c == '\0' || addr_is_wsp(c))
				break;
			/*
			 * Decoded, it would end the literal early or open
			 * another: `x@[a@\[b]` would become x@[a@[b], which
			 * a table entry @[b] matches and a program splitting
			 * at the first @ reads as another domain.
			 */
			if (c == '[' || c == ']' || c == '\\')
				return (-1);
		}
		addr_put(ap, c);
		ap->ap_p++;
	}
	while (addr_is_wsp(*ap->ap_p))
		ap->ap_p++;
	if (*ap->ap_p != ']')
		return (-1);
	addr_put(ap, *ap->ap_p++);
	return (addr_skip_cfws(ap) == -1 ? -1 : 0);
}

/*
 * A domain: domain-literal, dot-atom, or RFC 5322 4.4 obs-domain (CFWS
 * around the dots), without its CFWS.  No empty labels.  As in Python,
 * an `@` right after the first dot-atom is an error (`a@b@c`).
 */
static int
addr_domain(struct addrp *ap)
{
	const char	*end;

	if (addr_skip_cfws(ap) == -1 || *ap->ap_p == '\0')
		return (-1);
	if (*ap->ap_p == '[')
		return (addr_literal(ap));
	if ((end = addr_dotatom_end(ap->ap_p)) == NULL) {
		if (!addr_is_atext((unsigned char)*ap->ap_p))
			return (-1);
		addr_put_atext(ap);
	} else
		while (ap->ap_p < end)
			addr_put(ap, *ap->ap_p++);
	if (addr_skip_cfws(ap) == -1 || *ap->ap_p == '@')
		return (-1);
	while (*ap->ap_p == '.') {
		addr_put(ap, *ap->ap_p++);
		if (addr_skip_cfws(ap) == -1 ||
		    !addr_is_atext((unsigned char)*ap->ap_p))
			return (-1);
		addr_put_atext(ap);
		if (addr_skip_cfws(ap) == -1)
			return (-1);
	}
	return (0);
}

/* The character c at ap_p, stepped over; -1 when another is there. */
static int
addr_expect(struct addrp *ap, char c)
{
	if (*ap->ap_p != c)
		return (-1);
	ap->ap_p++;
	return (0);
}

/* An addr-spec, normalised into ap_out; the `@domain` is optional. */
static int
addr_spec(struct addrp *ap, int angle)
{
	if (addr_local(ap) == -1 || addr_local_quote(ap, angle) == -1)
		return (-1);
	if (*ap->ap_p != '@')
		return (0);
	addr_put(ap, *ap->ap_p++);
	return (addr_domain(ap));
}

/*
 * RFC 5322 4.4 obs-route, RFC 5321 4.1.2 A-d-l: `@domain` items
 * separated by commas (empty items tolerated), then `:`.  Checked, then
 * dropped (RFC 5321 C: the route SHOULD be ignored).
 */
static int
addr_route(struct addrp *ap)
{
	while (*ap->ap_p == ',' || addr_is_wsp(*ap->ap_p) ||
	    *ap->ap_p == '(') {
		if (*ap->ap_p == ',')
			ap->ap_p++;
		else if (addr_skip_cfws(ap) == -1)
			return (-1);
	}
	if (addr_expect(ap, '@') == -1 || addr_domain(ap) == -1)
		return (-1);
	while (*ap->ap_p == ',') {
		if (*++ap->ap_p == '\0' || addr_skip_cfws(ap) == -1)
			return (-1);
		if (*ap->ap_p == '@') {
			ap->ap_p++;
			if (addr_domain(ap) == -1)
				return (-1);
		}
	}
	if (addr_expect(ap, ':') == -1)
		return (-1);
	ap->ap_len = 0;
	ap->ap_full = 0;
	return (0);
}

/*
 * angle-addr: `<>`, or `<` [route] addr-spec `>`.  RFC 5321 4.1.2: a
 * Path ends with `>`; one never closed (`<a`, `<a@b c>`) is refused, as
 * Postfix does (Python only notes a defect).
 */
static int
addr_angle(struct addrp *ap)
{
	const char	*start;

	if (*++ap->ap_p == '\0')
		return (-1);
	if (*ap->ap_p == '>') {
		/* RFC 5321 4.1.1.2 null reverse-path; no CFWS after it. */
		ap->ap_p++;
		return (ADDR_NULL);
	}
	start = ap->ap_p;
	if (addr_spec(ap, 1) == -1) {
		ap->ap_p = start;
		ap->ap_len = 0;
		ap->ap_full = 0;
		if (addr_route(ap) == -1 || addr_spec(ap, 1) == -1)
			return (-1);
	}
	if (addr_expect(ap, '>') == -1 || addr_skip_cfws(ap) == -1)
		return (-1);
	return (ADDR_OK);
}

/*
 * Parse the address at the start of arg (leading white space skipped):
 * angle form if it begins with `<`, else a bare addr-spec.  On success
 * out holds the normalised address, *locallen the length of what precedes
 * its last `@` (0 if none: max-local-part then does not apply) and *rest
 * points just after the address and its CFWS.  An address whose normal
 * form is empty (a bare `""`) is ADDR_EMPTY, with out empty: no mailbox,
 * and not the null path (aiosmtpd answers MAIL and RCPT with 501, VRFY
 * with 252).
 */
int
addr_parse(const char *arg, char *out, size_t outsz, size_t *locallen,
    const char **rest)
{
	struct addrp	 ap;
	const char	*at;
	int		 r;

	memset(&ap, 0, sizeof(ap));
	ap.ap_p = arg;
	ap.ap_out = out;
	ap.ap_outsz = outsz;
	if (locallen != NULL)
		*locallen = 0;
	if (rest != NULL)
		*rest = arg;
	if (outsz == 0)
		return (ADDR_BAD);
	while (addr_is_wsp(*ap.ap_p))
		ap.ap_p++;
	if (*ap.ap_p == '<')
		r = addr_angle(&ap);
	else
		r = addr_spec(&ap, 0) == -1 ? -1 : ADDR_OK;
	if (r == -1 || ap.ap_full) {
		out[0] = '\0';
		return (ADDR_BAD);
	}
	if (r == ADDR_OK && ap.ap_len == 0)
		r = ADDR_EMPTY;
	out[ap.ap_len] = '\0';
	if (locallen != NULL && (at = strrchr(out, '@')) != NULL)
		*locallen = (size_t)(at - out);
	if (rest != NULL)
		*rest = ap.ap_p;
	return (r);
}
