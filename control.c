/*
 * control.c: the master's control socket, which answers `smtpd -s` with
 * the status of the daemon, and that client side.  The master never
 * blocks on a control client: a few at a time, non-blocking, each within
 * CONTROL_TIMEOUT.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtpd.h"

#define CONTROL_REQ_MAX		64
#define CONTROL_REQ_STATUS	"status"
#define CONTROL_REQ_VERBOSE	"status verbose"

struct control_client {
	int			 cc_fd;		/* -1: a free entry */
	char			 cc_req[CONTROL_REQ_MAX];
	size_t			 cc_reqlen;
	char			*cc_out;	/* NULL while reading */
	size_t			 cc_outlen;
	size_t			 cc_off;
	long long		 cc_deadline;	/* monotonic ms */
};

static struct control_client	 clients[CONTROL_MAX_CLIENTS];
static int			 control_sock = -1;
static char			*control_path;
static control_status_cb	 control_status;
static int			 clients_ready;
static long long		 accept_after;	/* out of descriptors */

/* As the SMTP listeners: a second without accept() when it ran out. */
#define CONTROL_PAUSE_MS	1000

static void	 control_drop(struct control_client *);

/* The directory of path, made if it is missing (mode 0755). */
static int
control_mkdir(const char *path)
{
	char	*copy, *dir;
	int	 r = 0;

	copy = xstrdup(path);
	dir = dirname(copy);
	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		log_warn("control: mkdir %s", dir);
		r = -1;
	}
	free(copy);
	return r;
}

static int
control_bind(const char *path)
{
	struct sockaddr_un	 sun;
	char			 why[256];
	mode_t			 omask;
	int			 fd, r;

	if (util_sockaddr_un(&sun, path) == -1) {
		log_warnx("control %s: path too long", path);
		return -1;
	}
	if (control_mkdir(path) == -1)
		return -1;
	if (util_unlink_stale(&sun, why, sizeof(why)) == -1) {
		log_warnx("control %s: %s", path, why);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_warn("control: socket");
		return -1;
	}
	/* 0600: the status names clients; only our user may ask. */
	omask = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	(void)umask(omask);
	if (r == -1 || listen(fd, CONTROL_MAX_CLIENTS) == -1) {
		log_warn("control %s", path);
		if (r == 0)
			(void)unlink(path);
		(void)close(fd);
		return -1;
	}
	return fd;
}

/*
 * The control socket at path; inherited: the one of the master we
 * replace (-1: none), bound to its path.  -1 if there is none now.
 */
int
control_open(const char *path, int inherited, control_status_cb cb)
{
	size_t	 i;

	control_status = cb;
	for (i = 0; i < CONTROL_MAX_CLIENTS && !clients_ready; i++)
		clients[i].cc_fd = -1;
	clients_ready = 1;
	if (inherited != -1 && util_unix_path_is(inherited, path)) {
		control_sock = inherited;
		(void)fcntl(control_sock, F_SETFD, FD_CLOEXEC);
	} else {
		/* The old master's, at a path we no longer use. */
		if (inherited != -1)
			(void)close(inherited);
		if ((control_sock = control_bind(path)) == -1)
			return -1;
	}
	free(control_path);
	control_path = xstrdup(path);
	log_debug("control socket %s", path);
	return 0;
}

/* A reload that names another path moves the socket there. */
void
control_reopen(const char *path)
{
	int	 fd;

	if (control_path != NULL && strcmp(path, control_path) == 0)
		return;
	if ((fd = control_bind(path)) == -1) {
		log_warnx("control socket stays at %s",
		    control_path != NULL ? control_path : "(none)");
		return;
	}
	control_close(1);
	control_sock = fd;
	control_path = xstrdup(path);
}

/* unlink_path 0: the socket now belongs to the master we handed it to. */
void
control_close(int unlink_path)
{
	size_t	 i;

	for (i = 0; i < CONTROL_MAX_CLIENTS; i++)
		control_drop(&clients[i]);
	if (control_sock != -1) {
		if (unlink_path && control_path != NULL)
			(void)unlink(control_path);
		(void)close(control_sock);
		control_sock = -1;
	}
	free(control_path);
	control_path = NULL;
}

int
control_fd(void)
{
	return control_sock;
}

/* The socket to poll for connections: none while accept() rests. */
int
control_listen_fd(long long now)
{
	return now < accept_after ? -1 : control_sock;
}

static void
control_drop(struct control_client *cc)
{
	if (cc->cc_fd == -1)
		return;
	(void)close(cc->cc_fd);
	cc->cc_fd = -1;
	free(cc->cc_out);
	cc->cc_out = NULL;
}

void
control_accept(void)
{
	struct control_client	*cc = NULL;
	struct sockaddr_un	 sun;
	socklen_t		 len = sizeof(sun);
	size_t			 i;
	int			 fd;

	if ((fd = accept4(control_sock, (struct sockaddr *)&sun, &len,
	    SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
		if (errno == EAGAIN || errno == EINTR ||
		    errno == ECONNABORTED)
			return;
		log_warn("control: accept");
		/*
		 * The connection stays in the backlog, so the socket stays
		 * readable: polled at once, accept() would fail again.
		 */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			accept_after = util_now_ms() + CONTROL_PAUSE_MS;
		return;
	}
	for (i = 0; i < CONTROL_MAX_CLIENTS && cc == NULL; i++)
		if (clients[i].cc_fd == -1)
			cc = &clients[i];
	if (cc == NULL) {
		log_warnx("control: too many clients");
		(void)close(fd);
		return;
	}
	memset(cc, 0, sizeof(*cc));
	cc->cc_fd = fd;
	cc->cc_deadline = util_now_ms() + CONTROL_TIMEOUT * 1000LL;
}

/* The request is one line; the answer is the whole status. */
static void
control_answer(struct control_client *cc)
{
	FILE	*fp;
	int	 verbose;

	cc->cc_req[cc->cc_reqlen] = '\0';
	cc->cc_req[strcspn(cc->cc_req, "\r\n")] = '\0';
	verbose = strcmp(cc->cc_req, CONTROL_REQ_VERBOSE) == 0;
	if ((fp = open_memstream(&cc->cc_out, &cc->cc_outlen)) == NULL)
		fatal("open_memstream");
	if (!verbose && strcmp(cc->cc_req, CONTROL_REQ_STATUS) != 0)
		fprintf(fp, "unknown request\n");
	else
		control_status(fp, verbose);
	if (fclose(fp) == EOF)
		fatal("open_memstream");
}

static void
control_read(struct control_client *cc)
{
	ssize_t	 n;

	n = read(cc->cc_fd, cc->cc_req + cc->cc_reqlen,
	    sizeof(cc->cc_req) - 1 - cc->cc_reqlen);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		control_drop(cc);
		return;
	}
	cc->cc_reqlen += (size_t)n;
	if (memchr(cc->cc_req, '\n', cc->cc_reqlen) == NULL &&
	    cc->cc_reqlen < sizeof(cc->cc_req) - 1)
		return;
	control_answer(cc);
}

/* As much as the socket takes now; the rest when poll says so. */
static void
control_write(struct control_client *cc)
{
	ssize_t	 n;

	while (cc->cc_off < cc->cc_outlen) {
		n = send(cc->cc_fd, cc->cc_out + cc->cc_off,
		    cc->cc_outlen - cc->cc_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		cc->cc_off += (size_t)n;
	}
	control_drop(cc);
}

/* The descriptor of client i and what to poll it for; -1: none. */
int
control_client_fd(int i, short *events)
{
	if (i < 0 || i >= CONTROL_MAX_CLIENTS || clients[i].cc_fd == -1)
		return -1;
	*events = clients[i].cc_out == NULL ? POLLIN : POLLOUT;
	return clients[i].cc_fd;
}

void
control_client_io(int i)
{
	struct control_client	*cc = &clients[i];

	if (cc->cc_fd == -1)
		return;
	if (cc->cc_out == NULL)
		control_read(cc);
	if (cc->cc_fd != -1 && cc->cc_out != NULL)
		control_write(cc);
}

/* Clients past their time are dropped; the next deadline, or 0. */
long long
control_expire(long long now)
{
	long long	 next = accept_after > now ? accept_after : 0;
	size_t		 i;

	for (i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (clients[i].cc_fd == -1)
			continue;
		if (clients[i].cc_deadline <= now) {
			log_debug("control: client timed out");
			control_drop(&clients[i]);
		} else if (next == 0 || clients[i].cc_deadline < next)
			next = clients[i].cc_deadline;
	}
	return next;
}

/*
 * The busy sessions (every child with verbose) from the scoreboard, then
 * the totals; the master prints its own lines first.
 */
void
control_print_sessions(FILE *fp, int verbose)
{
	struct score_view	 v;
	time_t			 now = time(NULL);
	long long		 age;
	int			 i, header = 0;

	for (i = 0; i < score_nslots(); i++) {
		if (score_slot(i, &v) == -1 ||
		    (!verbose && v.sv_state == SS_IDLE))
			continue;
		if (!header++)
			fprintf(fp, "\n%-8s %-8s %-40s %9s %8s%s\n", "PID",
			    "STATE", "CLIENT", "SINCE", "MESSAGES",
			    verbose ? "    OCTETS" : "");
		age = v.sv_state == SS_IDLE ? 0 : (long long)now - v.sv_since;
		fprintf(fp, "%-8d %-8s %-40s %8llds %8u", v.sv_pid,
		    score_state_name(v.sv_state), v.sv_state == SS_IDLE ? "-" :
		    v.sv_addr[0] != '\0' ? v.sv_addr : "local",
		    age < 0 ? 0 : age, v.sv_msgs);
		if (verbose)
			fprintf(fp, " %9llu", v.sv_bytes);
		fputc('\n', fp);
	}
	fputc('\n', fp);
	score_print_totals(fp);
}

/* The daemon's control socket, or -1 after saying why not. */
static int
control_connect(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	if (util_sockaddr_un(&sun, path) == -1) {
		fprintf(stderr, "smtpd: %s: path too long\n", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "smtpd: no daemon answers on %s: %s\n", path,
		    strerror(errno));
		if (fd != -1)
			(void)close(fd);
		return -1;
	}
	return fd;
}

/*
 * smtpd -s: asks the daemon at path and copies its answer to standard
 * output.  Returns the exit status.
 */
int
control_query(const char *path, int verbose)
{
	struct pollfd		 pfd;
	char			 buf[4096];
	const char		*req;
	long long		 deadline;
	ssize_t			 n;
	int			 fd;

	if ((fd = control_connect(path)) == -1)
		return 1;
	req = verbose ? CONTROL_REQ_VERBOSE "\n" : CONTROL_REQ_STATUS "\n";
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto fail;
	deadline = util_now_ms() + CONTROL_TIMEOUT * 1000LL;
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		errno = ETIMEDOUT;
		if (util_now_ms() >= deadline || poll(&pfd, 1,
		    (int)(deadline - util_now_ms())) == 0)
			break;
		if ((n = read(fd, buf, sizeof(buf))) == 0) {
			(void)close(fd);
			return fflush(stdout) == 0 ? 0 : 1;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	}
fail:
	fprintf(stderr, "smtpd: no answer from the daemon on %s: %s\n", path,
	    strerror(errno));
	(void)close(fd);
	return 1;
}
