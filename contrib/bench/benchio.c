/*
 * benchio.c: the parts the bench clients share.  A connection reads SMTP
 * replies through a read callback, so the plain and the TLS stream use the
 * same reply parser; workers are forked processes that write fixed-size
 * records into one pipe, read by the parent as they come.
 */

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <netdb.h>

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "benchio.h"

double
bench_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

long long
bench_number(const char *s, long long min, long long max, const char *what)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		errx(1, "%s: %s: not a number from %lld to %lld", what, s,
		    min, max);
	return v;
}

/* "host:port", "[v6]:port": a connected TCP socket with I/O timeouts. */
int
bench_connect(const char *target)
{
	struct addrinfo	 hints, *res, *ai;
	struct timeval	 tv = { BENCH_TIMEOUT_S, 0 };
	char		 host[256], *port;
	int		 fd = -1, e;

	if (strlen(target) >= sizeof(host))
		errx(1, "%s: too long", target);
	strcpy(host, target);
	if ((port = strrchr(host, ':')) == NULL)
		errx(1, "%s: not host:port", target);
	*port++ = '\0';
	if (host[0] == '[' && port[-2] == ']') {
		port[-2] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0)
		errx(1, "%s: %s", target, gai_strerror(e));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype,
		    ai->ai_protocol)) == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		warn("connect %s", target);
		return -1;
	}
	/* A server that stops answering fails the run instead of hanging. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static ssize_t
bconn_plain_read(struct bconn *c, void *buf, size_t len)
{
	return read(c->bc_fd, buf, len);
}

static ssize_t
bconn_plain_write(struct bconn *c, const void *buf, size_t len)
{
	return write(c->bc_fd, buf, len);
}

void
bconn_init(struct bconn *c, int fd)
{
	c->bc_fd = fd;
	c->bc_tls = NULL;
	c->bc_read = bconn_plain_read;
	c->bc_write = bconn_plain_write;
	c->bc_off = c->bc_len = 0;
	c->bc_reply[0] = '\0';
}

int
bconn_send(struct bconn *c, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = c->bc_write(c, p, len)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			warnx("write: %s",
			    n == 0 ? "closed" : strerror(errno));
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int
bconn_cmd(struct bconn *c, const char *line)
{
	char	buf[1024];
	int	n;

	n = snprintf(buf, sizeof(buf), "%s\r\n", line);
	if (n < 0 || (size_t)n >= sizeof(buf))
		errx(1, "command too long: %s", line);
	return bconn_send(c, buf, n);
}

/* One line, without its CRLF, into line; -1 at EOF, error or overflow. */
static int
bconn_line(struct bconn *c, char *line, size_t size)
{
	size_t	 n = 0;
	ssize_t	 r;
	char	 ch;

	for (;;) {
		if (c->bc_off == c->bc_len) {
			r = c->bc_read(c, c->bc_buf, sizeof(c->bc_buf));
			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0)
				return -1;
			c->bc_off = 0;
			c->bc_len = r;
		}
		ch = c->bc_buf[c->bc_off++];
		if (ch == '\n')
			break;
		if (n + 1 >= size)
			return -1;
		line[n++] = ch;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return 0;
}

/* RFC 5321 4.2.1: a reply is lines "NNN-text" ending with "NNN text". */
int
bconn_reply(struct bconn *c)
{
	char	 line[1024];
	size_t	 used = 0, n;

	c->bc_reply[0] = '\0';
	for (;;) {
		if (bconn_line(c, line, sizeof(line)) == -1)
			return -1;
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5')
			return -1;
		n = strlen(line);
		if (used + n + 2 < sizeof(c->bc_reply)) {
			memcpy(c->bc_reply + used, line, n);
			used += n;
			c->bc_reply[used++] = '\n';
			c->bc_reply[used] = '\0';
		}
		if (line[3] != '-')
			break;
	}
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + line[2] - '0';
}

int
bconn_expect(struct bconn *c, int code, const char *what)
{
	int	got;

	if ((got = bconn_reply(c)) == code)
		return 0;
	if (got == -1)
		warnx("%s: no reply (%s)", what,
		    errno == EAGAIN ? "timeout" : "closed or malformed");
	else
		warnx("%s: expected %d, got: %.*s", what, code,
		    (int)strcspn(c->bc_reply, "\n"), c->bc_reply);
	return -1;
}

/* Whether the last (EHLO) reply lists the extension keyword. */
int
bconn_has_ext(const struct bconn *c, const char *kw)
{
	const char	*p = c->bc_reply;
	size_t		 len = strlen(kw);

	while ((p = strchr(p, '\n')) != NULL) {
		p++;
		if (strlen(p) > 4 + len && strncasecmp(p + 4, kw, len) == 0 &&
		    (p[4 + len] == ' ' || p[4 + len] == '\n'))
			return 1;
	}
	return 0;
}

int
bench_record(int fd, const void *rec, size_t size)
{
	return write(fd, rec, size) == (ssize_t)size ? 0 : -1;
}

static void
bench_collect(int fd, size_t size, bench_record_fn fn, void *arg)
{
	char	 buf[BENCH_RECMAX * 64];
	size_t	 have = 0, off;
	ssize_t	 n;

	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += n;
		for (off = 0; have - off >= size; off += size)
			fn(buf + off, arg);
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	close(fd);
}

/*
 * n processes run fn(i, record-fd, arg); the parent hands every record
 * to rec.  The number of workers that failed (exit status not 0).
 */
int
bench_workers(int n, bench_worker_fn fn, void *arg, size_t size,
    bench_record_fn rec, void *recarg)
{
	pid_t	 pids[BENCH_MAXWORKERS];
	int	 p[2], i, st, failed = 0;

	if (n < 1 || n > BENCH_MAXWORKERS || size == 0 || size > BENCH_RECMAX)
		errx(1, "%s: bad arguments", __func__);
	if (pipe(p) == -1)
		err(1, "pipe");
	for (i = 0; i < n; i++) {
		if ((pids[i] = fork()) == -1) {
			warn("fork");
			while (i-- > 0)
				kill(pids[i], SIGTERM);
			exit(1);
		}
		if (pids[i] == 0) {
			close(p[0]);
			_exit(fn(i, p[1], arg));
		}
	}
	close(p[1]);
	bench_collect(p[0], size, rec, recarg);
	for (i = 0; i < n; i++) {
		if (waitpid(pids[i], &st, 0) == -1 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			failed++;
	}
	return failed;
}
