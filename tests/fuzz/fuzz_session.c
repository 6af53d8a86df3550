/*
 * fuzz_session.c: libFuzzer harness of the whole SMTP session (session.c):
 * the line reader, the command splitter and verb lookup, the MAIL and
 * RCPT parameters, AUTH, DATA, BDAT chunks and the state machine, with
 * and without enhanced status codes.  session_run() runs
 * in-process on one end of a socketpair; a writer thread feeds the input
 * in chunks and a reader thread drains the replies, which must all be
 * well-formed (RFC 5321 4.2).
 *
 * Input: octet 0 chooses the configuration (FZ_* bits), octet 1 the
 * chunk sizes, the rest is what the client sends.
 */

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "smtpd.h"
#include "internal.h"

#define FZ_SMTPUTF8	0x01
#define FZ_CMDLIMIT	0x02	/* command-limit * 4, NOOP 2 */
#define FZ_LMTP		0x04
#define FZ_SMALL	0x08	/* small line, size, recipient limits */
#define FZ_AUTH		0x10	/* auth auth-plaintext, backend fails */
#define FZ_REQAUTH	0x20	/* and require-auth */
#define FZ_INET		0x40	/* a client address, not a UNIX socket */
#define FZ_ENHANCED	0x80	/* enhanced-status-codes yes; with
				   FZ_CMDLIMIT, chunking no */

#define FZ_SPINS	2000	/* waits for the session to read a chunk */

#include "fuzz.h"

struct fz_feed {
	int		 f_fd;		/* the client's end */
	int		 f_sfd;		/* the session's end, for FIONREAD */
	const uint8_t	*f_data;
	size_t		 f_len;
	unsigned int	 f_seed;
};

struct fz_out {
	int		 o_fd;
	char		*o_buf;
	size_t		 o_len;
	size_t		 o_cap;
};

static struct config	*fz_conf;

static void
fuzz_setup(void)
{
	fz_conf = config_default();
	free(fz_conf->c_hostname);
	fz_conf->c_hostname = xstrdup("mx.example.org");
	fz_conf->c_dlv.dl_mode = DELIVER_DISCARD;
	fz_conf->c_lim.lim_timeout = 5;
	fz_conf->c_auth.au_delay = 0;
}

/* The next chunk size: 1..7, 1..63, 1..511 or everything, by seed. */
static size_t
fz_chunk(unsigned int *seed, size_t left)
{
	static const size_t	 mask[] = { 7, 63, 511, 0 };
	size_t			 m = mask[*seed & 3], n;

	*seed = *seed * 1103515245 + 12345;
	if (m == 0)
		return (left);
	n = 1 + ((*seed >> 16) & m);
	return (n < left ? n : left);
}

/*
 * Write the input in chunks, each after the session has read the last
 * one (as far as FIONREAD tells), so that chunk boundaries are mostly
 * where the input says; then end the client's side.
 */
static void *
fz_writer(void *arg)
{
	struct fz_feed	*f = arg;
	size_t		 off = 0, n;
	ssize_t		 w;
	int		 i, q;

	while (off < f->f_len) {
		n = fz_chunk(&f->f_seed, f->f_len - off);
		w = send(f->f_fd, f->f_data + off, n, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
		for (i = 0; i < FZ_SPINS; i++) {
			if (ioctl(f->f_sfd, FIONREAD, &q) == -1 || q == 0)
				break;
			sched_yield();
		}
	}
	shutdown(f->f_fd, SHUT_WR);
	return (NULL);
}

static void *
fz_reader(void *arg)
{
	struct fz_out	*o = arg;
	ssize_t		 n;

	for (;;) {
		if (o->o_cap - o->o_len < 4096) {
			o->o_cap = o->o_cap * 2 + 8192;
			if ((o->o_buf = realloc(o->o_buf, o->o_cap)) == NULL)
				abort();
		}
		n = read(o->o_fd, o->o_buf + o->o_len, o->o_cap - o->o_len);
		if (n <= 0)
			break;
		o->o_len += (size_t)n;
	}
	return (NULL);
}

/*
 * Every reply line is `DDD[ -]text` CRLF with no other CR or LF, at most
 * REPLY_MAX octets; the lines of a multiline reply share their code and
 * the output ends with a last line.  The greeting comes first.
 */
static void
fz_check_replies(const char *buf, size_t len)
{
	const char	*p = buf, *end = buf + len, *eol;
	char		 code[3];
	int		 more = 0;

	if (len > 0 && strncmp(buf, "220 mx.example.org ", 19) != 0)
		abort();
	while (p < end) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			abort();
		if (eol - p + 1 > REPLY_MAX || eol - p < 5 || eol[-1] != '\r')
			abort();
		if (memchr(p, '\r', (size_t)(eol - p - 1)) != NULL)
			abort();
		if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
		    p[2] < '0' || p[2] > '9' || (p[3] != ' ' && p[3] != '-'))
			abort();
		if (more && memcmp(code, p, 3) != 0)
			abort();
		memcpy(code, p, 3);
		more = p[3] == '-';
		p = eol + 1;
	}
	if (more)
		abort();
}

static void
fz_configure(struct listener *l, uint8_t flags)
{
	struct config	*c = fz_conf;
	static char	 addr[] = "127.0.0.1";
	int		 small = (flags & FZ_SMALL) != 0;

	memset(l, 0, sizeof(*l));
	l->l_addr = addr;
	strlcpy(l->l_name, "127.0.0.1:25", sizeof(l->l_name));
	c->c_smtputf8 = (flags & FZ_SMTPUTF8) != 0;
	c->c_enhanced = (flags & FZ_ENHANCED) != 0;
	c->c_chunking = (flags & (FZ_ENHANCED | FZ_CMDLIMIT)) !=
	    (FZ_ENHANCED | FZ_CMDLIMIT);
	c->c_lim.lim_cmdlimit = (flags & FZ_CMDLIMIT) ? 4 : -1;
	c->c_lim.lim_ncmdlimits = (flags & FZ_CMDLIMIT) ? 1 : 0;
	strlcpy(c->c_lim.lim_cmdlimits[0].cml_verb, "NOOP", VERB_MAX);
	c->c_lim.lim_cmdlimits[0].cml_max = 2;
	c->c_lim.lim_maxline = small ? MIN_LINE : DEF_MAXLINE;
	c->c_lim.lim_maxmsgsize = small ? 300 : DEF_MAXMSGSIZE;
	c->c_lim.lim_maxrcpt = small ? 3 : DEF_MAXRCPT;
	c->c_lim.lim_maxlocal = small ? 8 : DEF_MAXLOCAL;
	/* No passwd file loaded: every attempt is a quick 454. */
	c->c_auth.au_backend = (flags & FZ_AUTH) ? AUTH_PASSWD : AUTH_NONE;
	if (flags & FZ_LMTP)
		l->l_flags |= LF_LMTP;
	if (flags & FZ_AUTH)
		l->l_flags |= LF_AUTH | LF_AUTH_PLAIN;
	if ((flags & FZ_AUTH) && (flags & FZ_REQAUTH))
		l->l_flags |= LF_REQ_AUTH;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct listener		 l;
	struct sockaddr_in	 sin;
	struct fz_feed		 feed;
	struct fz_out		 out;
	pthread_t		 tw, tr;
	int			 fds[2];

	if (size < 2)
		return (0);
	fz_configure(&l, data[0]);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == -1)
		abort();
	memset(&feed, 0, sizeof(feed));
	feed.f_fd = fds[1];
	feed.f_sfd = fds[0];
	feed.f_data = data + 2;
	feed.f_len = size - 2;
	feed.f_seed = data[1];
	memset(&out, 0, sizeof(out));
	out.o_fd = fds[1];
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	sin.sin_addr.s_addr = htonl(0xc0000201);	/* 192.0.2.1 */
	if (pthread_create(&tw, NULL, fz_writer, &feed) != 0 ||
	    pthread_create(&tr, NULL, fz_reader, &out) != 0)
		abort();
	/* session_run() closes fds[0]. */
	if (data[0] & FZ_INET)
		session_run(fz_conf, &l, fds[0], (struct sockaddr *)&sin,
		    sizeof(sin));
	else
		session_run(fz_conf, &l, fds[0], NULL, 0);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	close(fds[1]);
	fz_check_replies(out.o_buf, out.o_len);
	free(out.o_buf);
	return (0);
}
