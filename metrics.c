/*
 * metrics.c: a connection of a `metrics` listener, in a child: one HTTP/1.1
 * request (RFC 9112), GET /metrics answered with the scoreboard in the
 * Prometheus text exposition format, then close.  Bounded in size and time.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"

#define METRICS_PATH		"/metrics"
#define METRICS_TYPE		"text/plain; version=0.0.4"

/*
 * The request line and headers, up to the empty line, into buf: the
 * length read, or -1 (closed, timed out); -2 when they do not fit or
 * hold a NUL.
 */
static ssize_t
metrics_read(int fd, char *buf, size_t size, long long deadline)
{
	size_t	 len = 0;
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
		if (strstr(buf, "\r\n\r\n") != NULL ||
		    strstr(buf, "\n\n") != NULL)
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

/* The status code the request line earns (RFC 9112 3). */
static int
metrics_check(char *req)
{
	char	*method, *target, *version, *end;

	req[strcspn(req, "\r\n")] = '\0';
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
	if (strcmp(method, "GET") != 0)
		return 405;
	end = target + strcspn(target, "?");
	if ((size_t)(end - target) != strlen(METRICS_PATH) ||
	    strncmp(target, METRICS_PATH, strlen(METRICS_PATH)) != 0)
		return 404;
	return 200;
}

static void
metrics_reply(int fd, int code, long long deadline)
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
	    code == 405 ? "Allow: GET\r\n" : "");
	metrics_write(fd, head, (size_t)n, deadline);
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
	int		 fl;

	score_session(addr, SS_METRICS);
	deadline = util_now_ms() + METRICS_TIMEOUT * 1000LL;
	if ((fl = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	n = metrics_read(fd, buf, sizeof(buf), deadline);
	if (n == -2)
		metrics_reply(fd, 400, deadline);
	else if (n > 0)
		metrics_reply(fd, metrics_check(buf), deadline);
	/* The client reads to EOF; a reset could lose the reply's end. */
	(void)shutdown(fd, SHUT_WR);
	(void)close(fd);
	score_state(SS_IDLE);
}
