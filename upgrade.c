/*
 * upgrade.c: replacing the master by a new binary in place (SIGUSR2).
 * The old master executes its binary again with the original argv,
 * handing over its sockets, scoreboard and TLS ticket keys as descriptors
 * named in the environment; the new master says on a pipe when its pool
 * is up.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"

#define ENV_LISTEN		"SMTPD_UPGRADE_LISTEN"
#define ENV_CONTROL		"SMTPD_UPGRADE_CONTROL"
#define ENV_SCORE		"SMTPD_UPGRADE_SCORE"
#define ENV_READY		"SMTPD_UPGRADE_READY"
#define ENV_TICKETS		"SMTPD_UPGRADE_TICKETS"
#define ENV_PIDFILE		"SMTPD_UPGRADE_PIDFILE"
#define ENV_NOTIFY		"NOTIFY_SOCKET"

static char	*upgrade_path;		/* the binary, as started */
static char    **upgrade_argv;		/* before setproctitle() */
static char	*upgrade_cwd;		/* where a relative -f file is */

/* Whether path names the file the kernel ran (/proc/self/exe). */
static int
upgrade_is_us(const char *path)
{
	struct stat	 a, b;

	return stat(path, &a) == 0 && stat("/proc/self/exe", &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * The path we were started by, links unresolved: argv[0] when it has a
 * slash (made absolute), else the first of $PATH that holds it, as the
 * shell found it; only when it names our own file.  NULL otherwise.
 */
static char *
upgrade_started(const char *argv0)
{
	char		*path = NULL, *dirs, *dir, *next;

	if (strchr(argv0, '/') != NULL) {
		if (argv0[0] == '/')
			path = xstrdup(argv0);
		else if (upgrade_cwd != NULL)
			(void)xasprintf(&path, "%s/%s", upgrade_cwd, argv0);
		if (path != NULL && upgrade_is_us(path))
			return path;
		free(path);
		return NULL;
	}
	if (getenv("PATH") == NULL)
		return NULL;
	dirs = xstrdup(getenv("PATH"));
	for (dir = dirs; dir != NULL; dir = next) {
		if ((next = strchr(dir, ':')) != NULL)
			*next++ = '\0';
		if (dir[0] != '/')
			continue;
		(void)xasprintf(&path, "%s/%s", dir, argv0);
		if (upgrade_is_us(path))
			break;
		free(path);
		path = NULL;
	}
	free(dirs);
	return path;
}

/*
 * At start: `install` replaces the file at the path (or the link there),
 * so the path as started is what is executed again; argv is copied
 * before setproctitle() overwrites it.
 */
void
upgrade_save(int argc, char *argv[])
{
	char	 buf[PATH_MAX];
	ssize_t	 n;
	int	 i;

	upgrade_cwd = getcwd(NULL, 0);
	if (argc > 0 && (upgrade_path = upgrade_started(argv[0])) == NULL &&
	    (n = readlink("/proc/self/exe", buf, sizeof(buf) - 1)) > 0) {
		/* Linux: the path the kernel ran, links resolved. */
		buf[n] = '\0';
		upgrade_path = xstrdup(buf);
	}
	upgrade_argv = xcalloc((size_t)argc + 1, sizeof(char *));
	for (i = 0; i < argc; i++)
		upgrade_argv[i] = xstrdup(argv[i]);
}

/* "3,4a,5": listening sockets, `a` for those systemd made. */
static void
upgrade_env_listen(const struct upgrade_fds *uf)
{
	char	 buf[MAX_LISTENERS * LISTENER_MAXFD * 16], *p = buf;
	size_t	 left = sizeof(buf);
	int	 i, n;

	buf[0] = '\0';
	for (i = 0; i < uf->uf_nlisten; i++) {
		n = snprintf(p, left, "%s%d%s", i > 0 ? "," : "",
		    uf->uf_listen[i], uf->uf_activated[i] ? "a" : "");
		if (n < 0 || (size_t)n >= left)
			break;
		p += n;
		left -= (size_t)n;
	}
	(void)setenv(ENV_LISTEN, buf, 1);
}

static void
upgrade_env_fd(const char *name, int fd)
{
	char	 buf[16];

	if (fd == -1)
		return;
	(void)snprintf(buf, sizeof(buf), "%d", fd);
	(void)setenv(name, buf, 1);
	(void)fcntl(fd, F_SETFD, 0);
}

/* Between fork and exec: the descriptors stay open across exec. */
static void
upgrade_child(const struct upgrade_fds *uf)
{
	sigset_t	 hup;
	int		 i;

	for (i = 0; i < uf->uf_nlisten; i++)
		(void)fcntl(uf->uf_listen[i], F_SETFD, 0);
	upgrade_env_listen(uf);
	upgrade_env_fd(ENV_CONTROL, uf->uf_control);
	upgrade_env_fd(ENV_SCORE, uf->uf_score);
	upgrade_env_fd(ENV_TICKETS, uf->uf_tickets);
	upgrade_env_fd(ENV_READY, uf->uf_ready);
	if (uf->uf_pidfile[0] != '\0')
		(void)setenv(ENV_PIDFILE, uf->uf_pidfile, 1);
	if (systemd_notify_socket() != NULL)
		(void)setenv(ENV_NOTIFY, systemd_notify_socket(), 1);
	/*
	 * Until the new master has its handlers, the default action of a
	 * signal to every process of the service would end it: SIGUSR2 is
	 * ignored there (an upgrade is in progress), SIGHUP waits for them
	 * (master_signals_init).  execve() keeps both.
	 */
	util_signals(SIG_IGN, 0, SIGUSR2, 0);
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	(void)sigprocmask(SIG_SETMASK, &hup, NULL);
	/* daemon() went to "/": the arguments were relative to here. */
	if (upgrade_cwd != NULL && chdir(upgrade_cwd) == -1)
		log_warn("upgrade: chdir %s", upgrade_cwd);
	execv(upgrade_path, upgrade_argv);
	log_warn("upgrade: exec %s", upgrade_path);
	_exit(127);
}

/*
 * Starts the new master with uf's descriptors (uf_ready is filled in);
 * its pid, and in *ready the pipe it writes to once ready; -1 on error.
 */
pid_t
upgrade_exec(struct upgrade_fds *uf, int *ready)
{
	int	 p[2];
	pid_t	 pid;

	if (upgrade_path == NULL) {
		log_warnx("upgrade: the path of the binary is unknown");
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("upgrade: pipe2");
		return -1;
	}
	uf->uf_ready = p[1];
	if ((pid = fork()) == 0)
		upgrade_child(uf);
	(void)close(p[1]);
	uf->uf_ready = -1;
	if (pid == -1) {
		log_warn("upgrade: fork");
		(void)close(p[0]);
		return -1;
	}
	*ready = p[0];
	return pid;
}

/* A descriptor named in the environment, if it is open. */
static int
upgrade_getfd(const char *s, int *activated)
{
	const char	*errstr;
	char		 num[16];
	size_t		 n = strspn(s, "0123456789");
	int		 fd;

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (activated != NULL)
		*activated = s[n] == 'a';
	fd = (int)strtonum(num, STDERR_FILENO + 1, INT_MAX, &errstr);
	if (errstr != NULL || fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		return -1;
	return fd;
}

static int
upgrade_env(const char *name)
{
	const char	*s = getenv(name);
	int		 fd = s != NULL ? upgrade_getfd(s, NULL) : -1;

	(void)unsetenv(name);
	return fd;
}

/*
 * At start: what the master we replace handed over, taken out of the
 * environment.  uf_ready is -1 when this is no upgrade.
 */
void
upgrade_inherit(struct upgrade_fds *uf)
{
	const char	*s;
	int		 fd;

	memset(uf, 0, sizeof(*uf));
	s = getenv(ENV_LISTEN);
	while (s != NULL && *s != '\0' &&
	    uf->uf_nlisten < MAX_LISTENERS * LISTENER_MAXFD) {
		fd = upgrade_getfd(s, &uf->uf_activated[uf->uf_nlisten]);
		if (fd != -1)
			uf->uf_listen[uf->uf_nlisten++] = fd;
		s += strcspn(s, ",");
		s += *s == ',';
	}
	(void)unsetenv(ENV_LISTEN);
	uf->uf_control = upgrade_env(ENV_CONTROL);
	uf->uf_score = upgrade_env(ENV_SCORE);
	uf->uf_tickets = upgrade_env(ENV_TICKETS);
	uf->uf_ready = upgrade_env(ENV_READY);
	if ((s = getenv(ENV_PIDFILE)) != NULL && s[0] == '/')
		(void)strlcpy(uf->uf_pidfile, s, sizeof(uf->uf_pidfile));
	(void)unsetenv(ENV_PIDFILE);
}

/* The new master's pool is up: the old one may stop accepting. */
void
upgrade_ready(struct upgrade_fds *uf)
{
	if (uf->uf_ready == -1)
		return;
	if (write(uf->uf_ready, "r", 1) != 1)
		log_warn("upgrade: ready");
	(void)close(uf->uf_ready);
	uf->uf_ready = -1;
}
