/*
 * fuzz_data.c: libFuzzer harness of the DATA reader (session.c's
 * data_scan(), reached by including session.c, and content.c behind
 * it).  The input buffer of a struct session is filled in chunks as
 * session_fill() would, and the outcome is compared with a deliberately
 * naive reading of smtpd.conf(5) (max-line-length, max-message-size,
 * bare-newline) and RFC 5321 4.5.2: whether the message ended, where,
 * its size, the limit crossed first, whether it had a bare CR or LF,
 * and the message the program would get.
 *
 * Input: octets 0-1 max-line-length, 2-3 max-message-size, 4 the chunk
 * sizes, 5 bare-newline; the rest is what the client sends after 354.
 */

#include "../../session.c"

#include <stdint.h>
#include <syslog.h>

#include "fuzz.h"

struct fz_ref {
	int		 r_done;	/* the final dot was seen */
	size_t		 r_end;		/* the offset after it */
	long long	 r_size;
	enum data_error	 r_error;
	int		 r_bare;	/* a bare CR or LF in the message */
	char		*r_msg;
	size_t		 r_len;
};

static void
fuzz_setup(void)
{
}

/*
 * Lines end only at CRLF; the message ends at a line that is exactly
 * `.` CRLF; a leading dot goes.  The size counts every octet received
 * before the final line; a line counts with its CRLF and its dot.  The
 * octet that first crosses a limit decides; the same octet crossing both
 * is the size's (9.2, "size first").
 */
static void
fz_reference(const char *in, size_t len, long long maxsize, size_t maxline,
    struct fz_ref *r)
{
	size_t		 pos = 0, eol, n;
	long long	 first_size = -1, first_line = -1;

	memset(r, 0, sizeof(*r));
	if ((r->r_msg = malloc(len + 1)) == NULL)
		abort();
	for (;;) {
		for (eol = pos; eol + 1 < len; eol++)
			if (in[eol] == '\r' && in[eol + 1] == '\n')
				break;
		if (eol + 1 >= len)
			break;		/* no CRLF: never ends */
		n = eol + 2 - pos;
		if (n == 3 && in[pos] == '.') {
			r->r_done = 1;
			r->r_end = eol + 2;
			break;
		}
		if (n > maxline && first_line == -1)
			first_line = (long long)(pos + maxline);
		memcpy(r->r_msg + r->r_len, in + pos + (in[pos] == '.'),
		    n - (in[pos] == '.'));
		r->r_len += n - (in[pos] == '.');
		pos = eol + 2;
	}
	r->r_size = (long long)pos;
	if (maxsize != 0 && r->r_size > maxsize)
		first_size = maxsize;
	if (first_size != -1 && (first_line == -1 || first_size <= first_line))
		r->r_error = DATA_TOO_BIG;
	else if (first_line != -1)
		r->r_error = DATA_LINE_TOO_LONG;
}

/*
 * bare-newline on the unstuffed message: a CR not followed by LF, an LF
 * not preceded by CR; with normalize each such LF becomes CRLF.
 */
static void
fz_bare(struct fz_ref *r, int mode)
{
	char	*out;
	size_t	 i, n = 0;

	if ((out = malloc(2 * r->r_len + 1)) == NULL)
		abort();
	for (i = 0; i < r->r_len; i++) {
		if ((r->r_msg[i] == '\r' && (i + 1 == r->r_len ||
		    r->r_msg[i + 1] != '\n')) || (r->r_msg[i] == '\n' &&
		    (i == 0 || r->r_msg[i - 1] != '\r')))
			r->r_bare = 1;
		if (mode == BARE_NORMALIZE && r->r_msg[i] == '\n' &&
		    (i == 0 || r->r_msg[i - 1] != '\r'))
			out[n++] = '\r';
		out[n++] = r->r_msg[i];
	}
	free(r->r_msg);
	r->r_msg = out;
	r->r_len = n;
}

/* The next chunk size: 1..7, 1..63, 1..4095 or everything, by seed. */
static size_t
fz_chunk(unsigned int *seed, size_t left)
{
	static const size_t	 mask[] = { 7, 63, 4095, 0 };
	size_t			 m = mask[*seed & 3], n;

	*seed = *seed * 1103515245 + 12345;
	if (m == 0)
		return (left);
	n = 1 + ((*seed >> 16) & m);
	return (n < left ? n : left);
}

/* data_read(), with session_fill() taking the next chunk of the input. */
static int
fz_read(struct session *s, struct data_reader *d, const char *in,
    size_t len, unsigned int seed, int mode, size_t *end)
{
	size_t	 off = 0, shifted = 0, n;
	int	 done;

	data_start(s, d, mode);
	for (;;) {
		d->d_lines = 0;
		if ((done = data_scan(s, d)) || off == len)
			break;
		memmove(s->s_ibuf, s->s_ibuf + s->s_ipos,
		    s->s_ilen - s->s_ipos);
		shifted += s->s_ipos;
		s->s_ilen -= s->s_ipos;
		s->s_ipos = 0;
		n = fz_chunk(&seed, len - off);
		if (n > s->s_isize - s->s_ilen)
			n = s->s_isize - s->s_ilen;
		memcpy(s->s_ibuf + s->s_ilen, in + off, n);
		s->s_ilen += n;
		off += n;
	}
	*end = shifted + s->s_ipos;
	if (done)
		content_end(&d->d_content);
	return (done);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config		 c;
	struct session		 s;
	struct data_reader	 d;
	struct fz_ref		 ref;
	const char		*in = (const char *)data + 6;
	size_t			 len, end;
	int			 done, mode;

	if (size < 6)
		return (0);
	len = size - 6;
	mode = data[5] % 3;
	memset(&c, 0, sizeof(c));
	c.c_lim.lim_maxline = MIN_LINE + (data[0] << 8 | data[1]) % 1000;
	c.c_lim.lim_maxmsgsize = (data[2] << 8 | data[3]) % 9000;
	memset(&s, 0, sizeof(s));
	s.s_conf = &c;
	s.s_isize = (size_t)c.c_lim.lim_maxline + IBUF_EXTRA;
	s.s_ibuf = xmalloc(s.s_isize);
	spool_init(&s.s_spool, DEF_SPOOL);
	done = fz_read(&s, &d, in, len, data[4], mode, &end);
	fz_reference(in, len, c.c_lim.lim_maxmsgsize,
	    (size_t)c.c_lim.lim_maxline, &ref);
	fz_bare(&ref, mode);
	if (done != ref.r_done)
		abort();
	if (done && (end != ref.r_end || d.d_size != ref.r_size ||
	    d.d_error != ref.r_error))
		abort();
	if (done && d.d_error == DATA_OK &&
	    d.d_content.ct_sawbare != ref.r_bare)
		abort();
	/* Under reject, a message with a bare CR or LF is not kept whole. */
	if (done && d.d_error == DATA_OK &&
	    !(mode == BARE_REJECT && ref.r_bare) && (s.s_spool.sp_error ||
	    s.s_spool.sp_size != (long long)ref.r_len ||
	    s.s_spool.sp_fd != -1 || s.s_spool.sp_len != ref.r_len ||
	    (ref.r_len > 0 &&
	    memcmp(s.s_spool.sp_buf, ref.r_msg, ref.r_len) != 0)))
		abort();
	spool_reset(&s.s_spool);
	free(s.s_ibuf);
	free(ref.r_msg);
	return (0);
}
