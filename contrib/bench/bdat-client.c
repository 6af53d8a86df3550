/*
 * bdat-client: sends messages over parallel SMTP sessions with BDAT
 * (RFC 3030 CHUNKING), or with DATA (-D), and prints messages/s, so that
 * make bench can compare the two on the same server.  With PIPELINING
 * (RFC 2920) MAIL, RCPT and DATA or the first BDAT go in one write, and up
 * to BDAT_WINDOW chunks are sent before their replies are read.
 */

#include <sys/types.h>
#include <sys/uio.h>

#include <err.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "benchio.h"

#define BDAT_WINDOW	32		/* chunks ahead of their replies */
#define BDAT_MAXLEN	(1LL << 30)	/* largest message */
#define BDAT_LINELEN	76		/* body line, before its CRLF */

struct bdat_opts {
	const char	*bo_target;
	const char	*bo_helo;
	const char	*bo_from;
	const char	*bo_to;
	long long	 bo_msgs;
	long long	 bo_chunk;	/* 0: the message in one chunk */
	int		 bo_sessions;
	int		 bo_data;	/* -D: DATA instead of BDAT */
	int		 bo_pipelining;	/* the server offers PIPELINING */
	char		*bo_msg;	/* the message, and ".\r\n" for DATA */
	size_t		 bo_len;	/* its length without the dot line */
};

struct bdat_rec {
	long long	 br_sent;	/* messages the server accepted */
};

static void	 usage(void) __attribute__((__noreturn__));
static char	*bdat_message(const struct bdat_opts *, size_t);
static int	 bdat_sendv(struct bconn *, struct iovec *, size_t);
static struct iovec bdat_iov(const void *, size_t);
static int	 bdat_envelope(struct bconn *, const struct bdat_opts *,
		    const char *, size_t, const void *, size_t);
static int	 bdat_chunks(struct bconn *, const struct bdat_opts *);
static int	 bdat_data(struct bconn *, const struct bdat_opts *);
static int	 bdat_session(struct bconn *, const struct bdat_opts *,
		    long long, int);
static int	 bdat_worker(int, int, void *);
static void	 bdat_count(const void *, void *);
static void	 bdat_probe(struct bdat_opts *);
static long long bdat_options(int, char *[], struct bdat_opts *);

static void
usage(void)
{
	fprintf(stderr, "usage: bdat-client [-D] [-c chunk] [-f sender] "
	    "[-H helo] [-l length] [-m messages]\n"
	    "                   [-s sessions] [-t recipient] host:port\n");
	exit(EX_USAGE);
}

/* Headers, then lines of x's: length octets ending with CRLF, no dots. */
static char *
bdat_message(const struct bdat_opts *o, size_t len)
{
	char	*m;
	size_t	 n, i;
	int	 h;

	if ((m = malloc(len + 4)) == NULL)
		err(1, "malloc");
	h = snprintf(m, len + 1, "From: <%s>\r\nTo: <%s>\r\n"
	    "Subject: bench\r\n\r\n", o->bo_from, o->bo_to);
	if (h < 0 || (size_t)h + 2 > len)
		errx(1, "-l %zu: shorter than the headers", len);
	for (n = h; n < len; n = i + 2) {
		for (i = n; i < len - 2 && i - n < BDAT_LINELEN; i++)
			m[i] = 'x';
		m[i] = '\r';
		m[i + 1] = '\n';
	}
	memcpy(m + len, ".\r\n", 4);
	return m;
}

/* Buffers in one write: a command and its data leave together. */
static int
bdat_sendv(struct bconn *c, struct iovec *iov, size_t cnt)
{
	ssize_t	 n;
	size_t	 i = 0;

	for (;;) {
		while (i < cnt && iov[i].iov_len == 0)
			i++;
		if (i == cnt)
			return 0;
		if ((n = writev(c->bc_fd, iov + i, (int)(cnt - i))) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			warnx("write: %s",
			    n == 0 ? "closed" : strerror(errno));
			return -1;
		}
		for (; i < cnt && (size_t)n >= iov[i].iov_len; i++)
			n -= iov[i].iov_len;
		if (i < cnt) {
			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= n;
		}
	}
}

/* An iovec of a const buffer (writev never writes into it). */
static struct iovec
bdat_iov(const void *p, size_t len)
{
	struct iovec	 v;

	v.iov_base = (void *)(uintptr_t)p;
	v.iov_len = len;
	return v;
}

/*
 * MAIL and RCPT, then cmd (DATA or the first BDAT) with data: in one
 * write with PIPELINING, else each after the previous reply.  Reads the
 * replies to MAIL and RCPT only.
 */
static int
bdat_envelope(struct bconn *c, const struct bdat_opts *o, const char *cmd,
    size_t cmdlen, const void *data, size_t datalen)
{
	struct iovec	 iov[3];
	char		 env[1024];
	int		 n, mail;

	n = snprintf(env, sizeof(env), "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n",
	    o->bo_from, o->bo_to);
	if (n < 0 || (size_t)n >= sizeof(env))
		errx(1, "sender or recipient too long");
	iov[0] = bdat_iov(env, n);
	iov[1] = bdat_iov(cmd, cmdlen);
	iov[2] = bdat_iov(data, datalen);
	if (o->bo_pipelining) {
		if (bdat_sendv(c, iov, 3) == -1)
			return -1;
		return bconn_expect(c, 250, "MAIL") == -1 ||
		    bconn_expect(c, 250, "RCPT") == -1 ? -1 : 0;
	}
	mail = strcspn(env, "\n") + 1;
	if (bconn_send(c, env, mail) == -1 ||
	    bconn_expect(c, 250, "MAIL") == -1 ||
	    bconn_send(c, env + mail, n - mail) == -1 ||
	    bconn_expect(c, 250, "RCPT") == -1)
		return -1;
	return bdat_sendv(c, iov + 1, 2);
}

/* RFC 3030 2: BDAT <size> [LAST], then exactly size octets. */
static int
bdat_chunks(struct bconn *c, const struct bdat_opts *o)
{
	struct iovec	 iov[2];
	char		 cmd[64];
	size_t		 off, len, step;
	int		 n, ahead = 0, first = 1;

	step = o->bo_chunk > 0 ? (size_t)o->bo_chunk : o->bo_len;
	for (off = 0; off < o->bo_len; off += len) {
		len = o->bo_len - off < step ? o->bo_len - off : step;
		n = snprintf(cmd, sizeof(cmd), "BDAT %zu%s\r\n", len,
		    off + len == o->bo_len ? " LAST" : "");
		iov[0] = bdat_iov(cmd, n);
		iov[1] = bdat_iov(o->bo_msg + off, len);
		if (first ? bdat_envelope(c, o, cmd, n, o->bo_msg, len) :
		    bdat_sendv(c, iov, 2))
			return -1;
		first = 0;
		ahead++;
		/* Without PIPELINING every chunk waits for its reply. */
		while (ahead >= (o->bo_pipelining ? BDAT_WINDOW : 1)) {
			if (bconn_expect(c, 250, "BDAT") == -1)
				return -1;
			ahead--;
		}
	}
	while (ahead-- > 0)
		if (bconn_expect(c, 250, "BDAT") == -1)
			return -1;
	return 0;
}

static int
bdat_data(struct bconn *c, const struct bdat_opts *o)
{
	if (bdat_envelope(c, o, "DATA\r\n", 6, NULL, 0) == -1 ||
	    bconn_expect(c, 354, "DATA") == -1 ||
	    bconn_send(c, o->bo_msg, o->bo_len + 3) == -1)
		return -1;
	return bconn_expect(c, 250, "end of data");
}

/* One session of msgs messages: the number the server accepted. */
static int
bdat_session(struct bconn *c, const struct bdat_opts *o, long long msgs,
    int rfd)
{
	struct bdat_rec	 r = { 0 };
	char		 ehlo[300];
	int		 rc = 0;

	snprintf(ehlo, sizeof(ehlo), "EHLO %s", o->bo_helo);
	if (bconn_expect(c, 220, "greeting") == -1 ||
	    bconn_cmd(c, ehlo) == -1 || bconn_expect(c, 250, "EHLO") == -1)
		return 1;
	for (; r.br_sent < msgs; r.br_sent++) {
		if ((o->bo_data ? bdat_data(c, o) : bdat_chunks(c, o)) == -1) {
			rc = 1;
			break;
		}
	}
	if (rc == 0 && (bconn_cmd(c, "QUIT") == -1 ||
	    bconn_expect(c, 221, "QUIT") == -1))
		rc = 1;
	if (bench_record(rfd, &r, sizeof(r)) == -1)
		rc = 1;
	return rc;
}

static int
bdat_worker(int i, int rfd, void *arg)
{
	const struct bdat_opts	*o = arg;
	struct bconn		 c;
	long long		 msgs;
	int			 fd, rc;

	msgs = o->bo_msgs / o->bo_sessions + (i < o->bo_msgs % o->bo_sessions);
	if (msgs == 0)
		return 0;
	if ((fd = bench_connect(o->bo_target)) == -1)
		return 1;
	bconn_init(&c, fd);
	rc = bdat_session(&c, o, msgs, rfd);
	close(fd);
	return rc;
}

static void
bdat_count(const void *rec, void *arg)
{
	struct bdat_rec	 r;

	memcpy(&r, rec, sizeof(r));
	*(long long *)arg += r.br_sent;
}

/* What the server offers, asked once before the workers start. */
static void
bdat_probe(struct bdat_opts *o)
{
	struct bconn	 c;
	char		 ehlo[300];
	int		 fd;

	if ((fd = bench_connect(o->bo_target)) == -1)
		exit(1);
	bconn_init(&c, fd);
	snprintf(ehlo, sizeof(ehlo), "EHLO %s", o->bo_helo);
	if (bconn_expect(&c, 220, "greeting") == -1 ||
	    bconn_cmd(&c, ehlo) == -1 || bconn_expect(&c, 250, "EHLO") == -1)
		exit(1);
	o->bo_pipelining = bconn_has_ext(&c, "PIPELINING");
	if (!o->bo_data && !bconn_has_ext(&c, "CHUNKING")) {
		fprintf(stderr, "bdat-client: %s does not offer CHUNKING "
		    "(-D sends with DATA)\n", o->bo_target);
		exit(EX_UNAVAILABLE);
	}
	if (bconn_cmd(&c, "QUIT") == 0)
		(void)bconn_reply(&c);
	close(fd);
}

/* The options: sets o and returns the message length. */
static long long
bdat_options(int argc, char *argv[], struct bdat_opts *o)
{
	long long	 len = 1048576;
	int		 ch;

	while ((ch = getopt(argc, argv, "c:Df:H:l:m:s:t:")) != -1) {
		switch (ch) {
		case 'c':
			o->bo_chunk = bench_number(optarg, 1, BDAT_MAXLEN,
			    "-c");
			break;
		case 'D':
			o->bo_data = 1;
			break;
		case 'f':
			o->bo_from = optarg;
			break;
		case 'H':
			o->bo_helo = optarg;
			break;
		case 'l':
			len = bench_number(optarg, 1, BDAT_MAXLEN, "-l");
			break;
		case 'm':
			o->bo_msgs = bench_number(optarg, 1, 1LL << 40, "-m");
			break;
		case 's':
			o->bo_sessions = bench_number(optarg, 1,
			    BENCH_MAXWORKERS, "-s");
			break;
		case 't':
			o->bo_to = optarg;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();
	o->bo_target = argv[optind];
	return len;
}

int
main(int argc, char *argv[])
{
	struct bdat_opts o = { .bo_helo = "bench.example",
	    .bo_from = "sender@bench.example", .bo_to = "rcpt@bench.example",
	    .bo_msgs = 100, .bo_sessions = 1 };
	long long	 len, sent = 0;
	double		 t0, t;
	int		 failed;

	len = bdat_options(argc, argv, &o);
	o.bo_len = len;
	o.bo_msg = bdat_message(&o, len);
	bdat_probe(&o);
	t0 = bench_now();
	failed = bench_workers(o.bo_sessions, bdat_worker, &o,
	    sizeof(struct bdat_rec), bdat_count, &sent);
	t = bench_now() - t0;
	printf("bdat-client: %lld messages of %lld octets, %d sessions, ",
	    sent, len, o.bo_sessions);
	if (o.bo_data)
		printf("DATA");
	else
		printf("BDAT chunks of %lld",
		    o.bo_chunk > 0 ? o.bo_chunk : len);
	printf(": %.3f s, %.1f msgs/s\n", t, sent / t);
	free(o.bo_msg);
	if (failed > 0 || sent != o.bo_msgs) {
		fprintf(stderr, "bdat-client: %d sessions failed, "
		    "%lld of %lld messages accepted\n", failed, sent,
		    o.bo_msgs);
		return 1;
	}
	return 0;
}
