/*
 * log.c: logging to syslog (facility mail) or to stderr in debug mode, in
 * the shape of OpenBSD's log.h, and escaping of client text for the logs.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "smtpd.h"

static int	 log_debugmode = 1;	/* stderr until log_init says */
static int	 log_verbose;
static const char *log_procname = "smtpd";
static pid_t	 log_pid;

static void	 log_vwrite(int, const char *, va_list)
		    __attribute__((__format__ (printf, 2, 0)));
static void	 log_verr(int, int, const char *, va_list)
		    __attribute__((__format__ (printf, 3, 0)));

void
log_init(int debug, int facility)
{
	log_debugmode = debug;
	if (!debug)
		openlog("smtpd", LOG_PID | LOG_NDELAY, facility);
	tzset();
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

/* Whether debug lines are logged: work done only for them can be skipped. */
int
log_getverbose(void)
{
	return log_verbose;
}

/* The process role, shown in stderr lines ("master", "child"). */
void
log_procinit(const char *name)
{
	log_procname = name;
	log_pid = getpid();	/* a new process after fork() */
}

static void
log_vwrite(int pri, const char *fmt, va_list ap)
{
	char	 buf[2048];
	ssize_t	 w;
	int	 saved = errno, n;

	if (log_debugmode) {
		if (log_pid == 0)
			log_pid = getpid();
		n = snprintf(buf, sizeof(buf), "smtpd[%d]: ", (int)log_pid);
		n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
		if ((size_t)n > sizeof(buf) - 2)
			n = sizeof(buf) - 2;
		buf[n++] = '\n';
		/*
		 * One write per line so that processes do not interleave;
		 * a line that stderr does not take is lost.
		 */
		w = write(STDERR_FILENO, buf, (size_t)n);
		(void)w;
	} else
		vsyslog(pri, fmt, ap);
	errno = saved;
}

/* A line with the errno text appended when errnum is not 0. */
static void
log_verr(int pri, int errnum, const char *fmt, va_list ap)
{
	char	 buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (errnum != 0)
		log_at(pri, 0, "%s: %s", buf, strerror(errnum));
	else
		log_at(pri, 0, "%s", buf);
}

/*
 * log_warn, log_warnx, log_info and log_debug (smtpd.h): one line at
 * priority pri, debug lines only with -v; errno is kept.
 */
void
log_at(int pri, int flags, const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	if (pri == LOG_DEBUG && log_verbose == 0)
		return;
	va_start(ap, fmt);
	if (flags & LOG_F_ERRNO)
		log_verr(pri, saved, fmt, ap);
	else
		log_vwrite(pri, fmt, ap);
	va_end(ap);
	errno = saved;
}

/* fatal and fatalx: cannot continue, log the role and the reason, exit 1. */
void
log_fatal(int flags, const char *fmt, ...)
{
	char	 buf[1024];
	va_list	 ap;
	int	 errnum = (flags & LOG_F_ERRNO) ? errno : 0;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_at(LOG_WARNING, 0, "%s: fatal: %s%s%s", log_procname, buf,
	    errnum != 0 ? ": " : "", errnum != 0 ? strerror(errnum) : "");
	exit(1);
}

/*
 * Client text for a log line: printable ASCII as is, everything else as
 * \xNN, cut to what fits in out (with "..." when cut).
 */
const char *
log_escape(const char *s, size_t len, char *out, size_t outlen)
{
	size_t	 i, o = 0;
	unsigned char c;

	if (outlen == 0)
		return out;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (o + 8 >= outlen) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}
