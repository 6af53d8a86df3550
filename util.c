/*
 * util.c: allocation wrappers that exit on failure, and small helpers
 * shared by the master and the children.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd.h"

void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		fatal("malloc");
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void	*p;

	if ((p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size)) == NULL)
		fatal("calloc");
	return p;
}

void *
xreallocarray(void *old, size_t nmemb, size_t size)
{
	void	*p;

	if ((p = reallocarray(old, nmemb == 0 ? 1 : nmemb, size)) == NULL)
		fatal("reallocarray");
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n == -1)
		fatal("vasprintf");
	return n;
}

/*
 * Numeric host and port of a socket address; a UNIX socket peer has an
 * empty address and port.
 */
void
util_sockaddr_str(const struct sockaddr *sa, socklen_t salen, char *host,
    size_t hostlen, char *port, size_t portlen)
{
	host[0] = '\0';
	port[0] = '\0';
	if (sa == NULL || salen == 0 || sa->sa_family == AF_UNIX)
		return;
	if (getnameinfo(sa, salen, host, hostlen, port, portlen,
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		host[0] = '\0';
		port[0] = '\0';
	}
}

/*
 * A session id unique on the host for as long as logs are kept, ordered
 * by time like Postfix's long queue ids: the microseconds since the epoch
 * (SID_TIME_DIGITS digits, enough until the year 3000), then random bits
 * (SID_RAND_DIGITS digits) for the sessions that start in the same
 * microsecond in other children; base 32 in the Crockford alphabet, whose
 * digits sort as their values do, so ids of one length sort by time.
 */
void
util_session_id(char *buf, size_t len)
{
	static const char	 digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	struct timespec		 ts;
	unsigned long long	 v;
	uint32_t		 r = arc4random();
	char			 id[SID_TIME_DIGITS + SID_RAND_DIGITS + 1];
	int			 i;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		fatal("clock_gettime");
	v = (unsigned long long)ts.tv_sec * 1000000 +
	    (unsigned long long)ts.tv_nsec / 1000;
	for (i = SID_TIME_DIGITS - 1; i >= 0; i--, v >>= 5)
		id[i] = digits[v & 31];
	for (i = SID_TIME_DIGITS; i < SID_TIME_DIGITS + SID_RAND_DIGITS;
	    i++, r >>= 5)
		id[i] = digits[r & 31];
	id[i] = '\0';
	(void)strlcpy(buf, id, len);
}

/* A control character (C0 or DEL) in s. */
int
util_has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/*
 * A value the client chose that reaches the Received header and the
 * delivery program's argv (%{helo}, %{user}, the addresses): it must
 * neither break a line nor look like an option.
 */
int
util_arg_unsafe(const char *s)
{
	return s[0] == '-' || util_has_ctl(s);
}

/* Milliseconds of CLOCK_MONOTONIC, for deadlines. */
long long
util_now_ms(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds from now to deadline (util_now_ms's clock), 0 if past. */
int
util_ms_left(long long deadline)
{
	long long	 ms = deadline - util_now_ms();

	if (ms <= 0)
		return 0;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/*
 * fd, moved above the standard descriptors if it is one of them: else the
 * child's dup2() onto 0-2 could overwrite it before it is used.  On error
 * fd is closed.
 */
int
util_fd_above(int fd)
{
	int	 nfd, save;

	if (fd > STDERR_FILENO)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	save = errno;
	close(fd);
	errno = save;
	return nfd;
}

/*
 * Bumped by each util_signals(), so exec.c knows its list is stale; from
 * 1, so that a process lists its signals once even without a call.
 */
unsigned int	 util_signals_gen = 1;

/*
 * The handler (or SIG_IGN, SIG_DFL) and flags of each signal of the list,
 * which ends with 0; fatal when one cannot be set.
 */
void
util_signals(void (*handler)(int), int flags, ...)
{
	struct sigaction	 sa;
	va_list			 ap;
	int			 sig;

	util_signals_gen++;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = handler;
	sa.sa_flags = flags;
	va_start(ap, flags);
	while ((sig = va_arg(ap, int)) != 0)
		if (sigaction(sig, &sa, NULL) == -1)
			fatal("sigaction");
	va_end(ap);
}

/* Every signal let in: a new process starts with the master's blocked. */
void
util_sigunblock(void)
{
	sigset_t	 none;

	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) == -1)
		fatal("sigprocmask");
}

/* The address of the UNIX socket path; -1 when it does not fit. */
int
util_sockaddr_un(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlcpy(sun->sun_path, path, sizeof(sun->sun_path)) >=
	    sizeof(sun->sun_path))
		return -1;
	return 0;
}

/*
 * A socket left behind by a server that is gone may be removed; a file
 * that is no socket, or a socket that still accepts, is someone else's.
 */
int
util_unlink_stale(const struct sockaddr_un *sun, char *why,
    size_t whylen)
{
	struct stat	 st;
	int		 fd, live;

	if (lstat(sun->sun_path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		(void)snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		(void)snprintf(why, whylen, "exists and is not a socket");
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		(void)snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0 ||
	    errno == EAGAIN;
	(void)close(fd);
	if (live || unlink(sun->sun_path) == -1) {
		(void)snprintf(why, whylen, "%s",
		    strerror(live ? EADDRINUSE : errno));
		return -1;
	}
	return 0;
}

/* Whether fd is a UNIX socket bound to path. */
int
util_unix_path_is(int fd, const char *path)
{
	struct sockaddr_un	 sun;
	socklen_t		 len = sizeof(sun);

	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == -1 ||
	    sun.sun_family != AF_UNIX)
		return 0;
	return strncmp(sun.sun_path, path, sizeof(sun.sun_path)) == 0;
}

/* The absolute path a UNIX socket is bound to (a copy), or NULL. */
char *
util_unix_bound_path(int fd)
{
	struct sockaddr_un	 sun;
	socklen_t		 len = sizeof(sun);

	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == 0 &&
	    sun.sun_family == AF_UNIX && sun.sun_path[0] == '/' &&
	    memchr(sun.sun_path, '\0', sizeof(sun.sun_path)) != NULL)
		return xstrdup(sun.sun_path);
	return NULL;
}

/* Waits for events on fd until the deadline: 0, or -1 with errno. */
int
util_wait(int fd, short events, long long deadline)
{
	struct pollfd	 pfd;
	long long	 left;
	int		 n;

	pfd.fd = fd;
	pfd.events = events;
	for (;;) {
		if ((left = deadline - util_now_ms()) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

/*
 * path open for reading, only when it is a regular file, without waiting
 * in open(): a FIFO would wait there for a writer, and the master, which
 * reads the configuration's files at the start and at a reload, with
 * it.  The descriptor, its stat in *st; -1 with errno when it cannot be
 * opened, -2 when it is no regular file.
 */
int
util_open_regular(const char *path, struct stat *st)
{
	int	 fd, save;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, st) == -1) {
		save = errno;
		close(fd);
		errno = save;
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return -2;
	}
	return fd;
}

#define PROBE_NOTREG		254	/* exit status: not a regular file */
#define PROBE_NOUSER		253	/* exit status: could not drop */
#define PROBE_NOROOT		252	/* exit status: could not chroot */
/* 251: UTIL_PROBE_NOTDIR */
#define PROBE_INTERP		250	/* the #! interpreter cannot run */
#define PROBE_INTERP_CR		249	/* the #! line ends in a CR */
#define PROBE_HUNG		248	/* no answer within util_probe_wait_ms */
#define PROBE_NOEXEC		247	/* not to be executed by the user */

long long	util_probe_wait_ms = 10000;	/* tests shorten it */
#define SHEBANG_MAX		256	/* octets of a #! line looked at */

/*
 * The #! line of the script at path: the interpreter it names into buf
 * (empty when none), and in *cr whether the line ends in a CR.  -1 when
 * path is no script or cannot be read (execve(2) says then).
 */
static int
util_shebang(const char *path, char *buf, size_t len, int *cr)
{
	char		 line[SHEBANG_MAX];
	const char	*nl;
	ssize_t		 n;
	size_t		 i, j = 0, eol;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, line, sizeof(line));
	(void)close(fd);
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return -1;
	nl = memchr(line, '\n', (size_t)n);
	eol = nl != NULL ? (size_t)(nl - line) : (size_t)n;
	*cr = eol > 2 && line[eol - 1] == '\r';
	for (i = 2; i < eol && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	while (i < eol && j + 1 < len && line[i] != ' ' && line[i] != '\t' &&
	    line[i] != '\r' && line[i] != '\0')
		buf[j++] = line[i++];
	buf[j] = '\0';
	return 0;
}

/*
 * A script's interpreter as execve(2) will look for it.  A CR at the end
 * of the #! line (a script saved with CRLF line ends) is part of the
 * interpreter's name or of its argument, and the script fails either
 * way; a missing interpreter fails with ENOENT as if the script itself
 * were missing.
 */
static int
util_interp_probe(const char *path)
{
	char		 interp[SHEBANG_MAX];
	struct stat	 st;
	int		 cr;

	if (util_shebang(path, interp, sizeof(interp), &cr) == -1)
		return 0;
	if (cr)
		return PROBE_INTERP_CR;
	if (interp[0] == '\0' || stat(interp, &st) == -1 ||
	    !S_ISREG(st.st_mode) ||
	    faccessat(AT_FDCWD, interp, X_OK, AT_EACCESS) == -1)
		return PROBE_INTERP;
	return 0;
}

/* 0, an errno value, or PROBE_*: as the current process can see. */
static int
util_exec_probe(const char *path)
{
	struct stat	 st;

	if (stat(path, &st) == -1 ||
	    (S_ISREG(st.st_mode) &&
	    faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == -1))
		return errno == EACCES ? PROBE_NOEXEC : errno;
	if (!S_ISREG(st.st_mode))
		return PROBE_NOTREG;
	return util_interp_probe(path);
}

/* Why the interpreter of path (inside root) failed util_interp_probe(). */
static void
util_interp_why(const char *path, const char *root, int r, char *why,
    size_t whylen)
{
	char	 full[PATH_MAX], interp[SHEBANG_MAX];
	int	 cr;

	(void)snprintf(full, sizeof(full), "%s%s", root != NULL ? root : "",
	    path);
	if (util_shebang(full, interp, sizeof(interp), &cr) == -1)
		interp[0] = '\0';
	if (r == PROBE_INTERP_CR)
		(void)snprintf(why, whylen, "its #! line ends in a CR (a "
		    "script with CRLF line ends)");
	else if (interp[0] == '\0')
		(void)snprintf(why, whylen, "its #! line names no interpreter");
	else
		(void)snprintf(why, whylen, "its interpreter %s is missing or "
		    "not executable", interp);
}

/* The probe in a process that took the identity id, as root. */
static int
util_probe_as(const char *path, const char *root,
    const struct exec_ident *id, int (*probe)(const char *))
{
	pid_t	 pid;
	int	 status, fd, hung;

	if ((pid = fork()) == -1)
		return errno;
	if (pid == 0) {
		if (root != NULL && (chroot(root) == -1 || chdir("/") == -1))
			_exit(PROBE_NOROOT);
		if (setgroups((size_t)id->ei_ngroups, id->ei_groups) == -1 ||
		    setresgid(id->ei_gid, id->ei_gid, id->ei_gid) == -1 ||
		    setresuid(id->ei_uid, id->ei_uid, id->ei_uid) == -1)
			_exit(PROBE_NOUSER);
		_exit(probe(path));
	}
	/*
	 * The master probes at a reload too: a spool or a program on a file
	 * system that hangs (NFS, FUSE) must not hold it, and its clients,
	 * for good.  A probe that does not answer is killed and left to the
	 * master's reaper (one stuck in the kernel exits when it can).
	 */
	if ((fd = os_pidfd_open(pid)) != -1) {
		hung = util_wait(fd, POLLIN, util_now_ms() +
		    util_probe_wait_ms) == -1 && errno == ETIMEDOUT;
		(void)close(fd);
		if (hung) {
			(void)kill(pid, SIGKILL);
			(void)waitpid(pid, &status, WNOHANG);
			return PROBE_HUNG;
		}
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : PROBE_NOUSER;
}

/*
 * Whether the identity id (its uid, gid and groups, as the program or
 * the session will have them; NULL: ourselves) passes probe on path,
 * looked up inside root (the chroot, or NULL).  Started as root, a
 * process of its own takes that identity and asks the kernel, which
 * knows every rule (modes of the file and of each directory above it,
 * ACLs, read-only and noexec mounts); otherwise the user can only be
 * ourselves.  probe returns 0, an errno value or a PROBE_* status.  0,
 * or -1 and why.
 */
int
util_probe(const char *path, const char *root, const struct exec_ident *id,
    int (*probe)(const char *), char *why, size_t whylen)
{
	int	 r;

	if (geteuid() == 0 && id != NULL)
		r = util_probe_as(path, root, id, probe);
	else
		r = probe(path);
	if (r == 0)
		return 0;
	if (r == PROBE_NOTREG)
		(void)snprintf(why, whylen, "not a regular file");
	else if (r == UTIL_PROBE_NOTDIR)
		(void)snprintf(why, whylen, "not a directory");
	else if (r == PROBE_NOROOT)
		(void)snprintf(why, whylen, "cannot enter the chroot");
	else if (r == PROBE_NOUSER)
		(void)snprintf(why, whylen, "cannot take the user's identity");
	else if (r == PROBE_HUNG)
		(void)snprintf(why, whylen, "no answer within %lld s (a "
		    "file system that hangs?)", (util_probe_wait_ms + 999) / 1000);
	else if (r == PROBE_INTERP || r == PROBE_INTERP_CR)
		util_interp_why(path, root, r, why, whylen);
	else if (r == PROBE_NOEXEC)
		(void)snprintf(why, whylen, "not executable");
	else
		(void)snprintf(why, whylen, "%s", strerror(r));
	return -1;
}

/*
 * Whether the identity id can execute path (util_probe): a regular file
 * it may execute, and for a script an interpreter that is there.
 */
int
util_exec_check(const char *path, const char *root,
    const struct exec_ident *id, char *why, size_t whylen)
{
	return util_probe(path, root, id, util_exec_probe, why, whylen);
}
