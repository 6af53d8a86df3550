/*
 * metrics.c: a connection of a `metrics` listener, in a child: one HTTP/1.1
 * request (RFC 9112), GET or HEAD /metrics answered with the scoreboard
 * in the Prometheus text exposition format, then close.  Bounded in size
 * and time.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "smtpd.h"

#define METRICS_PATH		"/metrics"
#define METRICS_TYPE		"text/plain; version=0.0.4"

/*
 * The request line and headers, up to the empty line, into buf: the
 * length read, or -1 (closed, timed out); -2 when they do not fit or
 * hold a NUL.  Empty lines before the request line are passed over
 * (RFC 9112 2.2).
 */
static ssize_t
metrics_read(int fd, char *buf, size_t size, long long deadline)
{
	size_t	 len = 0, start;
	ssize_t	 n;

	while (len < size - 1) {
		if (util_wait(fd, POLLIN, deadline) == -1)
			return -1;
		n = read(fd, buf + len, size - 1 - len);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		/* No request holds a NUL; it would hide what follows. */
		if (memchr(buf + len, '\0', (size_t)n) != NULL)
			return -2;
		len += (size_t)n;
		buf[len] = '\0';
		start = strspn(buf, "\r\n");
		if (strstr(buf + start, "\r\n\r\n") != NULL ||
		    strstr(buf + start, "\n\n") != NULL)
			return (ssize_t)len;
	}
	return -2;
}

static void
metrics_write(int fd, const char *buf, size_t len, long long deadline)
{
	ssize_t	 n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && (errno == EINTR || errno == EAGAIN)) {
			if (util_wait(fd, POLLOUT, deadline) == -1)
				return;
			continue;
		}
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/*
 * The Host header fields of the headers at h: an HTTP/1.1 request has
 * exactly one (RFC 9112 3.2), whatever it names.
 */
static int
metrics_hosts(const char *h)
{
	int	 n = 0;

	while (*h != '\0' && *h != '\r' && *h != '\n') {
		if (strncasecmp(h, "host:", 5) == 0)
			n++;
		h += strcspn(h, "\n");
		if (*h == '\n')
			h++;
	}
	return n;
}

/*
 * The path of a request target: origin-form as it is, absolute-form
 * ("http://host:port/metrics", which a server must take: RFC 9112 3.2.2)
 * from the first '/' after the authority; NULL for another form.
 */
static const char *
metrics_path(const char *target)
{
	const char	*p;

	if (target[0] == '/')
		return target;
	if (strncasecmp(target, "http://", 7) != 0)
		return NULL;
	p = target + 7 + strcspn(target + 7, "/?");
	return *p == '/' ? p : NULL;
}

/*
 * The status code the request earns (RFC 9112 3); *head is set for a HEAD
 * request, which gets the headers of its GET.
 */
static int
metrics_check(char *req, int *head)
{
	const char	*path, *end;
	char		*method, *target, *version, *hdrs;

	req += strspn(req, "\r\n");
	hdrs = req + strcspn(req, "\r\n");
	if (*hdrs == '\r')
		*hdrs++ = '\0';
	if (*hdrs == '\n')
		*hdrs++ = '\0';
	method = req;
	if ((target = strchr(method, ' ')) == NULL)
		return 400;
	*target++ = '\0';
	if ((version = strchr(target, ' ')) == NULL)
		return 400;
	*version++ = '\0';
	if (strcmp(version, "HTTP/1.1") != 0 &&
	    strcmp(version, "HTTP/1.0") != 0)
		return 400;
	if (*method == '\0' || *target == '\0')
		return 400;
	if (strcmp(version, "HTTP/1.1") == 0 && metrics_hosts(hdrs) != 1)
		return 400;
	*head = strcmp(method, "HEAD") == 0;
	if (strcmp(method, "GET") != 0 && !*head)
		return 405;
	if ((path = metrics_path(target)) == NULL)
		return 400;
	end = path + strcspn(path, "?");
	if ((size_t)(end - path) != strlen(METRICS_PATH) ||
	    strncmp(path, METRICS_PATH, strlen(METRICS_PATH)) != 0)
		return 404;
	return 200;
}

/* The reply, its body left out for HEAD (RFC 9110 9.3.2). */
static void
metrics_reply(int fd, int code, int head_only, long long deadline)
{
	char		*body = NULL, *head = NULL;
	size_t		 blen = 0;
	FILE		*fp;
	const char	*reason;
	int		 n;

	if ((fp = open_memstream(&body, &blen)) == NULL)
		fatal("open_memstream");
	if (code == 200)
		score_print_metrics(fp);
	else
		fprintf(fp, "%d\n", code);
	if (fclose(fp) == EOF)
		fatal("open_memstream");
	reason = code == 200 ? "OK" : code == 400 ? "Bad Request" :
	    code == 404 ? "Not Found" : "Method Not Allowed";
	n = xasprintf(&head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", code, reason,
	    code == 200 ? METRICS_TYPE : "text/plain", blen,
	    code == 405 ? "Allow: GET, HEAD\r\n" : "");
	metrics_write(fd, head, (size_t)n, deadline);
	if (!head_only)
		metrics_write(fd, body, blen, deadline);
	free(head);
	free(body);
}

/*
 * One scrape on fd from addr, which is closed at the end; the scoreboard
 * shows it (smtpd -s) as a session of its own.
 */
void
metrics_serve(int fd, const char *addr)
{
	char		 buf[METRICS_REQ_MAX + 1];
	long long	 deadline;
	ssize_t		 n;
	int		 fl, code, head = 0;

	score_session(addr, SS_METRICS);
	deadline = util_now_ms() + METRICS_TIMEOUT * 1000LL;
	if ((fl = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	n = metrics_read(fd, buf, sizeof(buf), deadline);
	if (n == -2)
		metrics_reply(fd, 400, 0, deadline);
	else if (n > 0) {
		code = metrics_check(buf, &head);
		metrics_reply(fd, code, head, deadline);
	}
	/* The client reads to EOF; a reset could lose the reply's end. */
	(void)shutdown(fd, SHUT_WR);
	(void)close(fd);
	score_state(SS_IDLE);
}
