/*
 * content.c: the rules for the octets of a message, whatever carries
 * them: DATA after its dots are removed, or the chunks of BDAT.  Lines
 * are counted against max-line-length up to their CRLF, bare CR and LF
 * are kept, turned into CRLF or refused (bare-newline), and what is kept
 * goes to the spool.  What ends a message is not decided here.
 */

#include <string.h>

#include "smtpd.h"

/* n more octets of the current line; past max-line-length nothing is kept. */
static void
content_line(struct content *ct, size_t n)
{
	ct->ct_linelen += n;
	if (ct->ct_linelen > ct->ct_maxline)
		ct->ct_toolong = 1;
}

void
content_init(struct content *ct, struct spool *sp, size_t maxline, int bare)
{
	memset(ct, 0, sizeof(*ct));
	ct->ct_spool = sp;
	ct->ct_maxline = maxline;
	ct->ct_bare = bare;
}

/*
 * Octets that belong to the current line as received but not to the
 * message: the transparency dot of DATA (RFC 5321 4.5.2), which counts
 * for the line's length.  Always at the start of a line.
 */
void
content_count(struct content *ct, size_t n)
{
	content_line(ct, n);
}

/* A bare CR or LF: noted, and under `reject` nothing more is kept. */
static void
content_bare(struct content *ct)
{
	ct->ct_sawbare = 1;
	if (ct->ct_bare == BARE_REJECT)
		ct->ct_stop = 1;
}

/* Keep p[0..n) unless the message is already refused or kept. */
static void
content_keep(struct content *ct, const char *p, size_t n)
{
	if (n > 0 && !ct->ct_stop && !ct->ct_toolong && !ct->ct_inplace)
		spool_write(ct->ct_spool, p, n);
}

/*
 * The common case, done with memchr(): whole lines that end in CRLF and
 * hold no other CR or LF.  Counts them as content_write() would and
 * returns how many octets they take; content_write() goes on from there.
 */
static size_t
content_lines(struct content *ct, const char *p, size_t n)
{
	const char	*lf, *at = p, *end = p + n;
	size_t		 len;

	while (at < end && (lf = memchr(at, '\n', (size_t)(end - at))) !=
	    NULL) {
		/* The line's octets with its CR, and then its LF. */
		len = (size_t)(lf - at);
		if (len == 0 || lf[-1] != '\r' ||
		    memchr(at, '\r', len - 1) != NULL)
			break;
		content_line(ct, len + 1);
		ct->ct_linelen = 0;
		at = lf + 1;
	}
	return (size_t)(at - p);
}

/*
 * n octets of the message.  Only CRLF ends a line; a CR whose LF is in
 * the next call is remembered (ct_cr), so chunks may split the message
 * anywhere.  Under `normalize` a bare LF is written as CRLF: what came
 * before it is kept first, then the CR, and the LF starts the next run.
 */
void
content_write(struct content *ct, const char *p, size_t n)
{
	size_t	 i, j, from = 0;

	/* A CR left by the last call may pair with a LF at p[0]: not here. */
	for (i = ct->ct_cr ? 0 : content_lines(ct, p, n); i < n; i = j) {
		j = i + 1;
		if (p[i] != '\r' && p[i] != '\n') {
			/* A run without CR or LF: only counted. */
			while (j < n && p[j] != '\r' && p[j] != '\n')
				j++;
			if (ct->ct_cr)
				content_bare(ct);	/* CR without LF */
			ct->ct_cr = 0;
			content_line(ct, j - i);
			continue;
		}
		content_line(ct, 1);
		if (p[i] == '\r') {
			if (ct->ct_cr)
				content_bare(ct);	/* CR CR */
			ct->ct_cr = 1;
		} else if (ct->ct_cr) {
			ct->ct_cr = 0;
			ct->ct_linelen = 0;		/* CRLF ends the line */
		} else {
			content_bare(ct);		/* LF without CR */
			if (ct->ct_bare == BARE_NORMALIZE) {
				content_keep(ct, p + from, i - from);
				content_keep(ct, "\r", 1);
				from = i;
			}
		}
	}
	content_keep(ct, p + from, n - from);
}

/*
 * n octets of the message that the caller read straight into the spool
 * (spool_reserve): the rules apply, nothing is written again.  Only
 * when content_inplace_ok() says so: `normalize' rewrites octets.
 */
void
content_scan(struct content *ct, const char *p, size_t n)
{
	ct->ct_inplace = 1;
	content_write(ct, p, n);
	ct->ct_inplace = 0;
}

int
content_inplace_ok(const struct content *ct)
{
	return ct->ct_bare != BARE_NORMALIZE;
}

/* The message is complete: a CR at its very end had no LF. */
void
content_end(struct content *ct)
{
	if (ct->ct_cr)
		content_bare(ct);
	ct->ct_cr = 0;
}
