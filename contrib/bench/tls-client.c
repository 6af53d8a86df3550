/*
 * tls-client: STARTTLS sessions as a sending MTA makes them (RFC 3207):
 * connect, EHLO, STARTTLS, handshake, EHLO, QUIT, in a loop in parallel
 * processes, with full handshakes or offering the previous session for
 * resumption (-r).  Prints sessions/s, the share resumed, and how long the
 * first EHLO after the handshake waits for its reply.  Like many clients it
 * leaves Nagle's algorithm on (no TCP_NODELAY): a server that makes such a
 * client wait for a delayed ACK shows here.
 */

#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "benchio.h"

#define TLSC_MAXFAILS	10	/* failed sessions in a row end a worker */

struct tlsc_opts {
	const char	*to_target;
	const char	*to_helo;
	const char	*to_sni;
	long long	 to_sessions;	/* in all, or 0 for a duration */
	double		 to_until;	/* the duration's end, bench_now() */
	int		 to_workers;
	int		 to_resume;
};

struct tlsc_rec {
	unsigned int	 tr_ehlo_us;	/* EHLO over TLS until its reply */
	int		 tr_ok;
	int		 tr_resumed;
};

struct tlsc_sum {
	unsigned int	*ts_lat;
	size_t		 ts_n;
	size_t		 ts_cap;
	long long	 ts_failed;
	long long	 ts_resumed;
};

static void	 usage(void) __attribute__((__noreturn__));
static ssize_t	 tlsc_read(struct bconn *, void *, size_t);
static ssize_t	 tlsc_write(struct bconn *, const void *, size_t);
static int	 tlsc_plain(struct bconn *, const struct tlsc_opts *);
static SSL	*tlsc_handshake(struct bconn *, SSL_CTX *,
		    const struct tlsc_opts *, SSL_SESSION *);
static int	 tlsc_session(SSL_CTX *, const struct tlsc_opts *,
		    SSL_SESSION **, struct tlsc_rec *);
static int	 tlsc_worker(int, int, void *);
static void	 tlsc_count(const void *, void *);
static int	 tlsc_cmp(const void *, const void *);
static double	 tlsc_pct(const struct tlsc_sum *, double);

static void
usage(void)
{
	fprintf(stderr, "usage: tls-client [-r] [-H helo] [-n sessions | "
	    "-T seconds] [-P processes]\n"
	    "                  [-S servername] host:port\n");
	exit(EX_USAGE);
}

static ssize_t
tlsc_read(struct bconn *c, void *buf, size_t len)
{
	int	n;

	if ((n = SSL_read(c->bc_tls, buf, len > INT32_MAX ? INT32_MAX :
	    (int)len)) <= 0)
		return SSL_get_error(c->bc_tls, n) == SSL_ERROR_ZERO_RETURN ?
		    0 : -1;
	return n;
}

static ssize_t
tlsc_write(struct bconn *c, const void *buf, size_t len)
{
	int	n;

	if ((n = SSL_write(c->bc_tls, buf, len > INT32_MAX ? INT32_MAX :
	    (int)len)) <= 0)
		return -1;
	return n;
}

/* The plain part: greeting, EHLO, STARTTLS. */
static int
tlsc_plain(struct bconn *c, const struct tlsc_opts *o)
{
	char	ehlo[300];

	snprintf(ehlo, sizeof(ehlo), "EHLO %s", o->to_helo);
	if (bconn_expect(c, 220, "greeting") == -1 ||
	    bconn_cmd(c, ehlo) == -1 || bconn_expect(c, 250, "EHLO") == -1)
		return -1;
	if (!bconn_has_ext(c, "STARTTLS")) {
		warnx("%s does not offer STARTTLS", o->to_target);
		return -1;
	}
	if (bconn_cmd(c, "STARTTLS") == -1 ||
	    bconn_expect(c, 220, "STARTTLS") == -1)
		return -1;
	return 0;
}

static SSL *
tlsc_handshake(struct bconn *c, SSL_CTX *ctx, const struct tlsc_opts *o,
    SSL_SESSION *prev)
{
	SSL	*ssl;

	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, c->bc_fd) != 1)
		errx(1, "SSL_new failed");
	if (o->to_sni != NULL)
		SSL_set_tlsext_host_name(ssl, o->to_sni);
	if (prev != NULL)
		SSL_set_session(ssl, prev);
	if (SSL_connect(ssl) != 1) {
		warnx("TLS handshake failed: %s",
		    ERR_reason_error_string(ERR_get_error()));
		SSL_free(ssl);
		return NULL;
	}
	/* RFC 3207 4.2: nothing said before the handshake counts. */
	c->bc_tls = ssl;
	c->bc_read = tlsc_read;
	c->bc_write = tlsc_write;
	c->bc_off = c->bc_len = 0;
	return ssl;
}

/* One session; with resumption *prev becomes its session. */
static int
tlsc_session(SSL_CTX *ctx, const struct tlsc_opts *o, SSL_SESSION **prev,
    struct tlsc_rec *r)
{
	struct bconn	 c;
	SSL		*ssl = NULL;
	char		 ehlo[300];
	double		 t0;
	int		 fd, rc = -1;

	if ((fd = bench_connect(o->to_target)) == -1)
		return -1;
	bconn_init(&c, fd);
	snprintf(ehlo, sizeof(ehlo), "EHLO %s", o->to_helo);
	if (tlsc_plain(&c, o) == -1 ||
	    (ssl = tlsc_handshake(&c, ctx, o, *prev)) == NULL)
		goto done;
	t0 = bench_now();
	if (bconn_cmd(&c, ehlo) == -1 || bconn_expect(&c, 250, "EHLO") == -1)
		goto done;
	r->tr_ehlo_us = (bench_now() - t0) * 1e6;
	if (bconn_cmd(&c, "QUIT") == -1 || bconn_expect(&c, 221, "QUIT") == -1)
		goto done;
	r->tr_resumed = SSL_session_reused(ssl);
	/* TLSv1.3 tickets came after the handshake: take the session now. */
	if (o->to_resume) {
		SSL_SESSION_free(*prev);
		*prev = SSL_get1_session(ssl);
	}
	SSL_shutdown(ssl);
	rc = 0;
done:
	SSL_free(ssl);
	close(fd);
	return rc;
}

static int
tlsc_worker(int i, int rfd, void *arg)
{
	const struct tlsc_opts	*o = arg;
	struct tlsc_rec		 r;
	SSL_CTX			*ctx;
	SSL_SESSION		*prev = NULL;
	long long		 n;
	int			 fails = 0;

	signal(SIGPIPE, SIG_IGN);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		errx(1, "SSL_CTX_new failed");
	n = o->to_sessions / o->to_workers +
	    (i < o->to_sessions % o->to_workers);
	while (o->to_sessions > 0 ? n-- > 0 : bench_now() < o->to_until) {
		memset(&r, 0, sizeof(r));
		r.tr_ok = tlsc_session(ctx, o, &prev, &r) == 0;
		if (bench_record(rfd, &r, sizeof(r)) == -1)
			return 1;
		fails = r.tr_ok ? 0 : fails + 1;
		if (fails >= TLSC_MAXFAILS)
			return 1;
	}
	SSL_SESSION_free(prev);
	SSL_CTX_free(ctx);
	return 0;
}

static void
tlsc_count(const void *rec, void *arg)
{
	struct tlsc_sum	*s = arg;
	struct tlsc_rec	 r;

	memcpy(&r, rec, sizeof(r));
	if (!r.tr_ok) {
		s->ts_failed++;
		return;
	}
	if (s->ts_n == s->ts_cap) {
		s->ts_cap = s->ts_cap == 0 ? 4096 : s->ts_cap * 2;
		if ((s->ts_lat = reallocarray(s->ts_lat, s->ts_cap,
		    sizeof(*s->ts_lat))) == NULL)
			err(1, "reallocarray");
	}
	s->ts_lat[s->ts_n++] = r.tr_ehlo_us;
	s->ts_resumed += r.tr_resumed;
}

static int
tlsc_cmp(const void *a, const void *b)
{
	unsigned int	x = *(const unsigned int *)a;
	unsigned int	y = *(const unsigned int *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile of the EHLO times, in milliseconds. */
static double
tlsc_pct(const struct tlsc_sum *s, double p)
{
	if (s->ts_n == 0)
		return 0;
	return s->ts_lat[(size_t)(p / 100 * (s->ts_n - 1) + 0.5)] / 1e3;
}

int
main(int argc, char *argv[])
{
	struct tlsc_opts o = { .to_helo = "client.bench.example",
	    .to_workers = 8 };
	struct tlsc_sum	 s = { NULL, 0, 0, 0, 0 };
	double		 t0, t, secs = 10;
	int		 ch, failed;

	while ((ch = getopt(argc, argv, "H:n:P:rS:T:")) != -1) {
		switch (ch) {
		case 'H':
			o.to_helo = optarg;
			break;
		case 'n':
			o.to_sessions = bench_number(optarg, 1, 1LL << 40,
			    "-n");
			break;
		case 'P':
			o.to_workers = bench_number(optarg, 1,
			    BENCH_MAXWORKERS, "-P");
			break;
		case 'r':
			o.to_resume = 1;
			break;
		case 'S':
			o.to_sni = optarg;
			break;
		case 'T':
			secs = bench_number(optarg, 1, 86400, "-T");
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();
	o.to_target = argv[optind];
	t0 = bench_now();
	o.to_until = t0 + secs;
	failed = bench_workers(o.to_workers, tlsc_worker, &o,
	    sizeof(struct tlsc_rec), tlsc_count, &s);
	t = bench_now() - t0;
	qsort(s.ts_lat, s.ts_n, sizeof(*s.ts_lat), tlsc_cmp);
	printf("tls-client: %zu sessions (%s), %d processes: %.3f s, "
	    "%.1f sessions/s, %.0f%% resumed, EHLO after the handshake: "
	    "median %.2f ms, 90%% %.2f ms\n", s.ts_n, o.to_resume ?
	    "resumption offered" : "full handshakes", o.to_workers, t,
	    s.ts_n / t, s.ts_n ? 100.0 * s.ts_resumed / s.ts_n : 0.0,
	    tlsc_pct(&s, 50), tlsc_pct(&s, 90));
	free(s.ts_lat);
	if (failed > 0 || s.ts_failed > 0 || s.ts_n == 0) {
		fprintf(stderr, "tls-client: %lld sessions failed, "
		    "%d processes gave up\n", s.ts_failed, failed);
		return 1;
	}
	return 0;
}
