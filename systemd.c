/*
 * systemd.c: the two systemd interfaces smtpd speaks without libsystemd:
 * readiness notification (sd_notify(3): datagrams on $NOTIFY_SOCKET) and
 * socket activation (sd_listen_fds(3): $LISTEN_PID, $LISTEN_FDS).
 * Both variables are taken out of the environment at start, so that no
 * child can notify and no program inherits them.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"

#define SD_LISTEN_FDS_START	3

static char	*notify_path;		/* $NOTIFY_SOCKET, or NULL */
static int	 listen_fds;		/* sockets systemd passed */

/*
 * At start, before anything else opens a descriptor: what systemd gave
 * this process (LISTEN_PID names it, not a parent that passed it on).
 */
void
systemd_init(void)
{
	const char	*s, *errstr;
	long long	 pid, n;

	if ((s = getenv("NOTIFY_SOCKET")) != NULL && *s != '\0')
		notify_path = xstrdup(s);
	(void)unsetenv("NOTIFY_SOCKET");
	s = getenv("LISTEN_PID");
	pid = s != NULL ? strtonum(s, 1, INT_MAX, &errstr) : 0;
	s = getenv("LISTEN_FDS");
	n = s != NULL ? strtonum(s, 1, MAX_LISTENERS * LISTENER_MAXFD,
	    &errstr) : 0;
	if (pid == (long long)getpid() && n > 0)
		listen_fds = (int)n;
	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDS");
	(void)unsetenv("LISTEN_FDNAMES");
}

/* The sockets of socket activation: descriptors 3 to 3 + n - 1. */
int
systemd_listen_fds(int *first)
{
	*first = SD_LISTEN_FDS_START;
	return listen_fds;
}

/* $NOTIFY_SOCKET, for the master that replaces this one. */
const char *
systemd_notify_socket(void)
{
	return notify_path;
}

/* A path, or an abstract socket when it begins with '@'. */
static socklen_t
systemd_addr(struct sockaddr_un *sun)
{
	size_t	 len = strlen(notify_path);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (len >= sizeof(sun->sun_path))
		return 0;
	memcpy(sun->sun_path, notify_path, len);
	if (sun->sun_path[0] == '@')
		sun->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

/*
 * One notification, "KEY=VALUE" lines; nothing without $NOTIFY_SOCKET.
 * Best effort: systemd not listening is no reason to stop serving.
 */
void
systemd_notify(const char *fmt, ...)
{
	struct sockaddr_un	 sun;
	socklen_t		 len;
	va_list			 ap;
	char			 msg[512];
	int			 fd, n;

	if (notify_path == NULL || (len = systemd_addr(&sun)) == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("notify: socket");
		return;
	}
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sun,
	    len) == -1)
		log_warn("notify %s", notify_path);
	(void)close(fd);
}
