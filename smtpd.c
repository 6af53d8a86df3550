/*
 * smtpd.c: main() and the master process: options, configuration, the
 * listening sockets, the pool of pre-forked children and the hand-off of
 * each accepted connection to one of them, signals, reload and shutdown.
 * The child side ends in session_run(); it never sees a listening socket.
 */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>

#include <err.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "smtpd.h"

#define LISTEN_BACKLOG		512
#define ACCEPT_PAUSE_MS		1000	/* accept() out of descriptors */
#define SPAWN_QUICK_MS		1000	/* dying sooner: failed at start */
#define SPAWN_BACKOFF_MIN_MS	250
#define SPAWN_BACKOFF_MAX_MS	30000
#define REFUSE_TEXT		"Service not available, too many connections"
#define CHILD_MMAP_MIN		(64 * 1024)	/* M_MMAP_THRESHOLD */
#define MASTER_EVENTS		256	/* epoll events read at once */
#define CHILD_TRIM_MIN		(64 * 1024)	/* M_TRIM_THRESHOLD */
#define CHILD_TOP_PAD		(16 * 1024)	/* M_TOP_PAD */
#define CHILD_NOBROKER		3	/* a child's exit status: broker gone */

/*
 * Where a child is in its life, as the master sees it.  A child is
 * handed connections only when CH_IDLE; ch_fd is open in the first two.
 */
enum child_state {
	CH_IDLE,		/* waits for a connection */
	CH_BUSY,		/* runs a session */
	CH_GONE,		/* closed its socket: exiting or dead */
	CH_RETIRED		/* we closed its socket: exits when idle */
};
#define CH_NSTATES		(CH_RETIRED + 1)

struct child;
struct bold;
TAILQ_HEAD(childlist, child);

/* What an entry of the poll set or the epoll set stands for. */
struct pollref {
	struct listener		*pr_listener;
	int			 pr_lidx;
	int			 pr_fidx;
	struct child		*pr_child;
	struct bold		*pr_bold;	/* PC_BROKER: NULL, the current */
	int			 pr_control;	/* PC_* */
};
#define PC_NONE			(-2)
#define PC_LISTEN		(-1)	/* else the control client's index */
#define PC_UPGRADE		(-3)	/* the new master says it is ready */
#define PC_BROKER		(-4)	/* the broker takes what is queued */

/* One pre-forked child, as the master sees it. */
struct child {
	TAILQ_ENTRY(child)	 ch_entry;
	TAILQ_ENTRY(child)	 ch_qentry;	/* in pool_q[ch_state] */
	pid_t			 ch_pid;
	int			 ch_fd;		/* socketpair; -1 once closed */
	enum child_state	 ch_state;
	unsigned int		 ch_gen;	/* configuration generation */
	long long		 ch_born;	/* monotonic ms */
	long long		 ch_idle_at;	/* monotonic ms it became idle */
	char			 ch_addr[64];	/* peer of the busy session */
	char			 ch_auth[64];	/* its AUTH check in progress */
	pid_t			 ch_broker;	/* the broker it was given */
	int			 ch_slot;	/* in the scoreboard, or -1 */
	int			 ch_metrics;	/* busy with a metrics scrape */
	uint32_t		 ch_sent;	/* connections handed over */
	int			 ch_notify;	/* asked for CHAN_IDLE (score.c) */
	int			 ch_bfd;	/* broker's end, not passed yet */
	struct childlist	*ch_bq;		/* the queue it waits in */
	TAILQ_ENTRY(child)	 ch_bentry;
	struct pollref		 ch_ref;	/* its entry in the epoll set */
};

/*
 * A broker replaced at a reload whose socket had no room yet for all its
 * children's ends: the socket stays open until they are passed.
 */
struct bold {
	TAILQ_ENTRY(bold)	 bo_entry;
	pid_t			 bo_pid;
	int			 bo_ctl;
	struct childlist	 bo_wait;
};
TAILQ_HEAD(boldlist, bold);


static struct config	*conf;
static char		*conffile;	/* absolute; NULL: built-in default */
static unsigned int	 gen;		/* bumped by each reload */
static int		 debug;
static int		 as_root;	/* started as root: chroot and drop */
static int		 checking;	/* smtpd -n: no warnings of the start */
static uid_t		 run_uid;
static gid_t		 run_gid;
static char		*pidfile;	/* written by us, removed at exit */
static time_t		 conf_loaded;	/* when conf was read */
static struct upgrade_fds inherited;	/* from the master we replace */
static pid_t		 upgrade_pid;	/* the new master we started */
static pid_t		 predecessor;	/* the master we replace, our parent */
static int		 upgrade_fd = -1; /* its pipe, until it is ready */
static int		 upgrade_tickets = -1; /* its ticket keys, until then */
static long long	 upgrade_deadline;
static int		 ready_sent;	/* the pool was up once */
static long long	 status_next;	/* the next STATUS= for systemd */
static char		 status_last[128];

static struct childlist	 children = TAILQ_HEAD_INITIALIZER(children);
/*
 * The same children by state (pool_state), so that what the master does
 * for each connection costs in the busy children, not in the pool.
 */
static struct childlist	 pool_q[CH_NSTATES] = {
	TAILQ_HEAD_INITIALIZER(pool_q[CH_IDLE]),
	TAILQ_HEAD_INITIALIZER(pool_q[CH_BUSY]),
	TAILQ_HEAD_INITIALIZER(pool_q[CH_GONE]),
	TAILQ_HEAD_INITIALIZER(pool_q[CH_RETIRED])
};
static int		 pool_n[CH_NSTATES];
static int		 pool_scrapes;	/* busy with a metrics scrape */
static int		 spawn_fails;	/* children that died at start */
static long long	 spawn_after;	/* back-off: no fork before */
static long long	 accept_after;	/* accept() ran out of resources */
static long long	 shrink_at;	/* next pool_shrink; 0: none due */
static sigset_t		 child_waitmask; /* a child's, with SIGTERM let in */
static int		 quitting;
static long long	 quit_deadline;
static int		 quit_termed;	/* busy children got SIGTERM */
static long long	 tickets_at;	/* next TLS ticket key; 0: none */
static long long	 tickets_left = -1; /* the old master's, at an upgrade */

static pid_t		 broker_pid = -1; /* the current delivery broker */
static int		 broker_ctl = -1; /* our socket to it */
/*
 * The children whose broker's end the broker's socket had no room for (a
 * broker busy with programs reads it late, and the socket's buffer holds
 * some 280): each end is passed, in order, as soon as there is room
 * (bq_flush).  Their children serve their sessions meanwhile; a request
 * one sends waits in its socket until the broker has the other end.  One
 * end a child at most, closed when the child is reaped.
 */
static struct childlist	 bwait = TAILQ_HEAD_INITIALIZER(bwait);
static struct boldlist	 bolds = TAILQ_HEAD_INITIALIZER(bolds);
static long long	 broker_born;
static long long	 broker_after;	/* back-off: no fork before */

static struct pollfd	*pfds;
static struct pollref	*prefs;
static size_t		 pcap;

/*
 * The children's sockets and the listeners are in an epoll set: a
 * poll() of hundreds of descriptors at every wake-up was most of the
 * master's work.  poll() watches the epoll descriptor, the signal pipe
 * and the control sockets.
 */
static int		 epfd = -1;
static struct pollref	*lrefs;		/* listeners in the epoll set */
static size_t		 nlrefs;
static int		 ep_listening;

static int		 sigpipe[2] = { -1, -1 };
static int		 child_fd = -1;	/* in a child: the master's socket */
static int		 child_exit;	/* in a child: its exit status */
static int		 sched_ours;	/* started in the default class */
static int		 dispatch_fd = -1; /* the client being handed out */
static volatile sig_atomic_t sig_term, sig_hup, sig_chld, sig_usr2;

extern char		**environ;

static void	 usage(void) __attribute__((__noreturn__));
static void	 child_main(int, int) __attribute__((__noreturn__));
static void	 master_upgrade_reaped(int);
static void	 master_drop_later(int);
static void	 master_upgrade_abort(void);
static void	 master_notify_status(const char *);
static void	 master_listen_sync(int);
static void	 master_broker(void);
static void	 master_broker_exited(int);
static void	 master_broker_check(void);
static int	 master_broker_running(void);
static void	 master_renew(void);
static void	 pool_auth(struct child *, const struct chan_msg *);
static void	 pool_auth_end(struct child *, const char *);

static void
usage(void)
{
	fprintf(stderr, "usage: smtpd [-dnv] [-f file]\n"
	    "       smtpd -s [-v] [-f file]\n");
	exit(1);
}

/*
 * Listeners.
 */

/* The listener at a position of the list: the hand-off names it so. */
static struct listener *
listener_at(const struct config *c, int idx)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &c->c_listeners, l_entry)
		if (idx-- == 0)
			return l;
	return NULL;
}

/* Whether a and b are the same `listen` address, as written. */
static int
listener_same(const struct listener *a, const struct listener *b)
{
	return a->l_unix == b->l_unix && a->l_port == b->l_port &&
	    strcmp(a->l_addr, b->l_addr) == 0;
}

/* The listener of c that owns the same socket as l, with its fds open. */
static struct listener *
listener_find(const struct config *c, const struct listener *l)
{
	struct listener	*o;

	TAILQ_FOREACH(o, &c->c_listeners, l_entry) {
		if (o->l_nfds > 0 && listener_same(o, l))
			return o;
	}
	return NULL;
}

/* Whether c has a listener written as l is. */
static int
listener_named(const struct config *c, const struct listener *l)
{
	struct listener	*o;

	TAILQ_FOREACH(o, &c->c_listeners, l_entry)
		if (listener_same(o, l))
			return 1;
	return 0;
}

static void
listener_close(struct listener *l, int unlink_path)
{
	int	 i;

	/* A socket systemd made stays its own. */
	if (l->l_unix && l->l_nfds > 0 && unlink_path && !l->l_activated)
		(void)unlink(l->l_addr);
	for (i = 0; i < l->l_nfds; i++) {
		(void)close(l->l_fds[i]);
		l->l_fds[i] = -1;
	}
	l->l_nfds = 0;
}

static void
listeners_close(struct config *c, int unlink_path)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &c->c_listeners, l_entry)
		listener_close(l, unlink_path);
}

/*
 * A session gathers its replies and writes them at once, so Nagle saves
 * nothing: it would only hold the reply to a BDAT chunk behind the
 * client's delayed ACK of the replies before it.  Set on the listener,
 * TCP_NODELAY is inherited by every socket accept() returns (Linux and
 * the BSDs), which spares each session the call.  Not for UNIX sockets.
 */
static void
listener_nodelay(int fd)
{
	int	 on = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/*
 * One TCP socket.  optional: the host may lack IPv6; then `*` and
 * `localhost` quietly listen on IPv4 only.
 */
static int
listener_bind_inet(struct listener *l, int family, const char *host,
    int optional, char *why, size_t whylen)
{
	struct addrinfo	 hints, *res;
	char		 port[8];
	int		 fd, on = 1, error;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	(void)snprintf(port, sizeof(port), "%d", l->l_port);
	if ((error = getaddrinfo(host, port, &hints, &res)) != 0) {
		(void)snprintf(why, whylen, "%s", gai_strerror(error));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)) == -1 || (res->ai_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
	    sizeof(on)) == -1) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1) {
		error = errno;
		if (fd != -1)
			(void)close(fd);
		freeaddrinfo(res);
		if (optional && (error == EAFNOSUPPORT ||
		    error == EADDRNOTAVAIL)) {
			log_debug("%s: no IPv6 here, skipped", l->l_name);
			return 0;
		}
		(void)snprintf(why, whylen, "%s", strerror(error));
		return -1;
	}
	freeaddrinfo(res);
	listener_nodelay(fd);
	l->l_fds[l->l_nfds++] = fd;
	return 0;
}

/* `owner` and `group` of a UNIX socket listener; (uid_t)-1: unchanged. */
static int
listener_ids(const struct listener *l, uid_t *uid, gid_t *gid, char *why,
    size_t whylen)
{
	struct passwd	*pw;
	struct group	*gr;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (l->l_owner != NULL) {
		if ((pw = getpwnam(l->l_owner)) == NULL) {
			(void)snprintf(why, whylen, "no user %s", l->l_owner);
			return -1;
		}
		*uid = pw->pw_uid;
	}
	if (l->l_group != NULL) {
		if ((gr = getgrnam(l->l_group)) == NULL) {
			(void)snprintf(why, whylen, "no group %s", l->l_group);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

/*
 * Root gives the socket at path a mode and an owner by its name, so no
 * one but root and the socket's owner may be able to put something else
 * there: every directory from "/" to the socket's must belong to one of
 * them and be writable by no one else, unless it is sticky (like /tmp:
 * others cannot rename or remove what is not theirs).
 */
static int
listener_dir_safe(const char *path, uid_t owner, char *why, size_t whylen)
{
	struct stat	 st;
	char		 dir[PATH_MAX], *real, *p;

	(void)strlcpy(dir, path, sizeof(dir));
	if ((p = strrchr(dir, '/')) != NULL)
		*(p == dir ? p + 1 : p) = '\0';
	if ((real = realpath(p != NULL ? dir : ".", NULL)) == NULL) {
		(void)snprintf(why, whylen, "%.200s: %s", dir,
		    strerror(errno));
		return -1;
	}
	for (;;) {
		if (stat(real, &st) == -1)
			(void)snprintf(why, whylen, "%.200s: %s", real,
			    strerror(errno));
		else if (st.st_uid != 0 && st.st_uid != owner)
			(void)snprintf(why, whylen, "directory %.150s belongs "
			    "to "
			    "uid %d, not to root or the socket's owner", real,
			    (int)st.st_uid);
		else if ((st.st_mode & (S_IWGRP | S_IWOTH)) &&
		    !(st.st_mode & S_ISVTX))
			(void)snprintf(why, whylen, "directory %.150s is "
			    "writable "
			    "by others than its owner", real);
		else if (strcmp(real, "/") != 0) {
			p = strrchr(real, '/');
			*(p == real ? p + 1 : p) = '\0';
			continue;
		} else {
			free(real);
			return 0;
		}
		free(real);
		return -1;
	}
}

/*
 * Owner, group and (unless (mode_t)-1) mode of the socket at path,
 * through a descriptor of the file itself: a symbolic link or any other
 * file swapped in for the socket is refused, never followed.
 */
static int
listener_perms(const char *path, uid_t uid, gid_t gid, mode_t mode,
    char *why, size_t whylen)
{
	struct stat	 st;
	char		 self[64];
	int		 fd, r = -1;

	if ((fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		(void)snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	(void)snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode))
		(void)snprintf(why, whylen, "not a socket any more");
	else if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    fchownat(fd, "", uid, gid, AT_EMPTY_PATH) == -1)
		(void)snprintf(why, whylen, "chown: %s", strerror(errno));
	else if (mode != (mode_t)-1 && chmod(self, mode) == -1)
		(void)snprintf(why, whylen, "chmod: %s", strerror(errno));
	else
		r = 0;
	(void)close(fd);
	return r;
}

/* The owner of l's socket, and whether its directories are safe for it. */
static int
listener_unix_check(const struct listener *l, uid_t *uid, gid_t *gid,
    char *why, size_t whylen)
{
	if (listener_ids(l, uid, gid, why, whylen) == -1)
		return -1;
	return listener_dir_safe(l->l_addr, *uid == (uid_t)-1 ? 0 : *uid, why,
	    whylen);
}

/* A reload keeps the socket of o for l: mode, owner and group as l says. */
static int
listener_unix_update(const struct listener *l, const struct listener *o,
    char *why, size_t whylen)
{
	uid_t	 uid;
	gid_t	 gid;

	if (l->l_mode == o->l_mode &&
	    (l->l_owner == NULL) == (o->l_owner == NULL) &&
	    (l->l_owner == NULL || strcmp(l->l_owner, o->l_owner) == 0) &&
	    (l->l_group == NULL) == (o->l_group == NULL) &&
	    (l->l_group == NULL || strcmp(l->l_group, o->l_group) == 0))
		return 0;
	if (listener_unix_check(l, &uid, &gid, why, whylen) == -1 ||
	    listener_perms(l->l_addr, uid, gid, l->l_mode, why, whylen) == -1)
		return -1;
	log_info("%s: mode %04o%s%s%s%s", l->l_name, (unsigned int)l->l_mode,
	    l->l_owner != NULL ? " owner " : "",
	    l->l_owner != NULL ? l->l_owner : "",
	    l->l_group != NULL ? " group " : "",
	    l->l_group != NULL ? l->l_group : "");
	return 0;
}

static int
listener_bind_unix(struct listener *l, char *why, size_t whylen)
{
	struct sockaddr_un	 sun;
	mode_t			 omask;
	uid_t			 uid;
	gid_t			 gid;
	int			 fd, r;

	if (util_sockaddr_un(&sun, l->l_addr) == -1) {
		(void)snprintf(why, whylen, "socket path too long");
		return -1;
	}
	if (listener_unix_check(l, &uid, &gid, why, whylen) == -1 ||
	    util_unlink_stale(&sun, why, whylen) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		(void)snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Created with its mode: nothing is changed through the name. */
	omask = umask(~l->l_mode & 0777);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	(void)umask(omask);
	if (r == -1)
		(void)snprintf(why, whylen, "%s", strerror(errno));
	else if (listener_perms(sun.sun_path, uid, gid, (mode_t)-1, why,
	    whylen) == -1 || (listen(fd, LISTEN_BACKLOG) == -1 &&
	    snprintf(why, whylen, "%s", strerror(errno)) >= 0)) {
		(void)unlink(sun.sun_path);
		r = -1;
	}
	if (r == -1) {
		(void)close(fd);
		return -1;
	}
	l->l_fds[l->l_nfds++] = fd;
	return 0;
}

/*
 * Whether l holds a socket of family af already (inherited ones count):
 * an IPv6 socket that is not IPV6_V6ONLY (systemd's dual-stack one)
 * takes IPv4 too.
 */
static int
listener_has_family(const struct listener *l, int af)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 i, v6only;

	for (i = 0; i < l->l_nfds; i++) {
		len = sizeof(ss);
		if (getsockname(l->l_fds[i], (struct sockaddr *)&ss,
		    &len) == -1)
			continue;
		if (ss.ss_family == af)
			return 1;
		len = sizeof(v6only);
		if (af == AF_INET && ss.ss_family == AF_INET6 &&
		    getsockopt(l->l_fds[i], IPPROTO_IPV6, IPV6_V6ONLY,
		    &v6only, &len) == 0 && !v6only)
			return 1;
	}
	return 0;
}

/*
 * `*` and `localhost`: a socket of each family, those l does not hold
 * yet (an older master's configuration may have named one of them).
 */
static int
listener_bind_both(struct listener *l, char *why, size_t whylen)
{
	const char	*hosts[2];

	(void)net_listen_hosts(l->l_addr, hosts);
	if (!listener_has_family(l, AF_INET) && listener_bind_inet(l,
	    AF_INET, hosts[0], 0, why, whylen) == -1)
		return -1;
	if (!listener_has_family(l, AF_INET6) && listener_bind_inet(l,
	    AF_INET6, hosts[1], 1, why, whylen) == -1)
		return -1;
	return 0;
}

/*
 * Opens the sockets of l it does not hold yet; on failure err names the
 * file and line.
 */
static int
listener_bind(const struct config *c, struct listener *l, char *err,
    size_t errlen)
{
	const char	*hosts[2];
	char		 why[256];
	int		 r = 0, had = l->l_nfds;

	/* A line with systemd's sockets has what the unit gives it. */
	if (had > 0 && l->l_activated)
		return 0;
	if (!l->l_unix && net_listen_hosts(l->l_addr, hosts) == 2)
		r = listener_bind_both(l, why, sizeof(why));
	else if (had > 0)
		return 0;
	else if (l->l_unix)
		r = listener_bind_unix(l, why, sizeof(why));
	else
		r = listener_bind_inet(l, AF_UNSPEC, l->l_addr, 0, why,
		    sizeof(why));
	if (r == -1) {
		listener_close(l, 0);
		if (c->c_file != NULL)
			(void)snprintf(err, errlen, "%s:%d: listen on %s: %s",
			    c->c_file, l->l_line, l->l_name, why);
		else
			(void)snprintf(err, errlen, "built-in default: "
			    "listen on %s: %s", l->l_name, why);
		return -1;
	}
	if (l->l_nfds > had)
		log_info("listening on %s", l->l_name);
	return 0;
}

/*
 * Whether the address of listener l names host, a numeric address.  A
 * systemd socket on an IPv4-mapped address (ListenStream=
 * [::ffff:192.0.2.1]:25, not IPv6-only) is the IPv4 address's: `listen
 * on` refuses the mapped spelling.
 */
static int
listener_addr_is(const struct listener *l, const char *host)
{
	struct in6_addr	 a, b;		/* either family's */
	const char	*hosts[2];
	int		 af, i, n;

	af = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
	memset(&b, 0, sizeof(b));
	if (inet_pton(af, host, &b) != 1)
		return 0;
	if (af == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&b)) {
		memmove(b.s6_addr, b.s6_addr + 12, 4);
		memset(b.s6_addr + 4, 0, sizeof(b) - 4);
		af = AF_INET;
	}
	n = net_listen_hosts(l->l_addr, hosts);
	for (i = 0; i < n; i++) {
		memset(&a, 0, sizeof(a));
		if (inet_pton(af, hosts[i], &a) == 1 &&
		    memcmp(&a, &b, sizeof(a)) == 0)
			return 1;
	}
	return 0;
}

/*
 * The listener whose `listen` line names the address fd is bound to;
 * name gets that address.  systemd's one dual-stack socket (::) and two
 * separate ones both belong to `listen on *`.
 */
static struct listener *
listener_match(const struct config *c, int fd, char *name, size_t len)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ss;
	struct listener		*l;
	socklen_t		 sslen = sizeof(ss);
	char			 host[64], port[8];
	int			 pnum;

	memset(&ss, 0, sizeof(ss));
	(void)snprintf(name, len, "descriptor %d", fd);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1)
		return NULL;
	util_sockaddr_str((struct sockaddr *)&ss, sslen, host, sizeof(host),
	    port, sizeof(port));
	if (ss.ss_family == AF_UNIX)
		(void)snprintf(name, len, "%.*s", (int)sizeof(sun->sun_path),
		    sun->sun_path);
	else
		(void)snprintf(name, len, "%s:%s", host, port);
	pnum = (int)strtonum(port, 1, 65535, NULL);
	TAILQ_FOREACH(l, &c->c_listeners, l_entry) {
		if (ss.ss_family == AF_UNIX ? l->l_unix &&
		    strncmp(sun->sun_path, l->l_addr, sizeof(sun->sun_path))
		    == 0 : !l->l_unix && l->l_port == pnum &&
		    listener_addr_is(l, host))
			return l;
	}
	return NULL;
}

/* A stream socket in the listening state: what accept() takes. */
static int
listener_listening(int fd)
{
	int		 type = 0, on = 0;
	socklen_t	 len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM)
		return 0;
	len = sizeof(on);
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 &&
	    on != 0;
}

/*
 * A socket from systemd (activated) or from the master we replace joins
 * the listener of its address, keeping its mode and owner.  One that no
 * `listen` line names is an error if systemd made it; the old master's
 * is closed (the new configuration dropped it).
 */
static int
listener_adopt(const struct config *c, int fd, int activated, char *err,
    size_t errlen)
{
	struct listener	*l;
	char		 name[128];
	int		 fl;

	l = listener_match(c, fd, name, sizeof(name));
	/* accept() on anything else fails at once, again and again. */
	if (!listener_listening(fd)) {
		(void)snprintf(err, errlen, "socket %s from %s: not a "
		    "listening stream socket", name, activated ? "systemd" :
		    "the old master");
		return -1;
	}
	if (l == NULL || l->l_nfds == LISTENER_MAXFD) {
		if (!activated) {
			log_info("%s: no longer listened on", name);
			master_drop_later(fd);
			(void)close(fd);
			return 0;
		}
		(void)snprintf(err, errlen, "socket %s from systemd: no "
		    "\"listen on\" line names it", name);
		return -1;
	}
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		(void)snprintf(err, errlen, "socket %s: %s", name,
		    strerror(errno));
		return -1;
	}
	if (!l->l_unix)
		listener_nodelay(fd);
	l->l_fds[l->l_nfds++] = fd;
	l->l_activated |= activated;
	log_info("listening on %s (inherited%s)", l->l_name,
	    activated ? " from systemd" : "");
	return 0;
}

/*
 * Configuration.
 */

/* The account sessions run as; only asked when started as root. */
static int
master_user(const struct config *c, uid_t *uid, gid_t *gid,
    const char **namep, char *err, size_t errlen)
{
	const char	*name, *why = NULL;
	struct passwd	*pw;
	char		 where[PATH_MAX + 16] = "";

	name = c->c_user != NULL ? c->c_user : DEF_USER;
	if ((pw = getpwnam(name)) == NULL && c->c_user == NULL)
		pw = getpwnam(name = DEF_USER_FALLBACK);
	if (pw == NULL)
		why = "no such user";
	else if (pw->pw_uid == 0)
		why = "has uid 0; refusing to run sessions as root";
	if (why != NULL) {
		if (c->c_user_line > 0 && c->c_file != NULL)
			(void)snprintf(where, sizeof(where), "%s:%d: ",
			    c->c_file, c->c_user_line);
		(void)snprintf(err, errlen, "%suser %s: %s", where, name, why);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	*namep = name;
	log_debug("sessions run as %s (uid %d, gid %d)", name,
	    (int)pw->pw_uid, (int)pw->pw_gid);
	return 0;
}

/*
 * The directory the children confine themselves to must be one, or every
 * child would die at its chroot() and no client be served.
 */
static int
master_chroot(const struct config *c, char *err, size_t errlen)
{
	struct stat	 st;
	const char	*why;

	if (c->c_chroot == NULL)
		return 0;
	if (stat(c->c_chroot, &st) == -1)
		why = strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		why = "not a directory";
	else
		return 0;
	(void)snprintf(err, errlen, "%s:%d: chroot %s: %s", c->c_file,
	    c->c_chroot_line, c->c_chroot, why);
	return -1;
}

/*
 * The spool directory as the children will use it (as user, with id;
 * NULL: as we are, inside the chroot): there they write a message that
 * outgrows memory, which would get a 452 at every try of its sender.
 */
static int
master_spool(const struct config *c, const char *user,
    const struct exec_ident *id, char *err, size_t errlen)
{
	const char	*dir, *root = as_root ? c->c_chroot : NULL;
	char		 why[256], where[PATH_MAX + 16] = "";
	int		 line;

	dir = c->c_dlv.dl_spool != NULL ? c->c_dlv.dl_spool : DEF_SPOOL;
	if (util_probe(dir, root, id, spool_probe, why, sizeof(why)) == 0)
		return 0;
	/* The default spool fails for the chroot's sake: name its line. */
	line = c->c_spool_line > 0 ? c->c_spool_line :
	    root != NULL ? c->c_chroot_line : 0;
	if (line > 0 && c->c_file != NULL)
		(void)snprintf(where, sizeof(where), "%s:%d: ", c->c_file,
		    line);
	(void)snprintf(err, errlen, "%sspool %s%s: %s for user %s%s%s", where,
	    dir, c->c_spool_line == 0 ? " (the default)" : "", why, user,
	    root != NULL ? " in chroot " : "", root != NULL ? root : "");
	return -1;
}

/*
 * Without a deliver line every message goes to the standard output sink,
 * answered 250 and printed: only with -d, and not under a service
 * manager, whose unit runs -d to stay in the foreground (the shipped
 * smtpd.service does) and would print every message into its journal.
 * NULL, or why it may not run.
 */
static const char *
master_sink_refused(const struct config *c)
{
	if (c->c_dlv.dl_mode != DELIVER_STDOUT)
		return NULL;
	if (systemd_notify_socket() != NULL)
		return "the standard output sink is for a terminal, not for a "
		    "service ($NOTIFY_SOCKET is set)";
	if (!debug)
		return "the standard output sink needs -d";
	return NULL;
}

/*
 * The pidfile's directory must take it, or the file be there for us (not
 * started as root, master_pidfile_inplace): an rc script that finds no
 * pid takes a running daemon for a stopped one, and the start has gone
 * to the background before it writes the file.  At the start and with
 * -n; a reload that cannot move it keeps the old one (pidfile_update).
 */
static int
master_pidfile_check(const struct config *c, char *err, size_t errlen)
{
	const char	*path, *why = NULL;
	char		 dir[PATH_MAX], where[PATH_MAX + 16] = "";
	struct stat	 st;
	int		 dirlen, save;

	/* Not started as root, the default is no promise: as before. */
	path = c->c_pidfile != NULL ? c->c_pidfile : debug || !as_root ?
	    NULL : DEF_PIDFILE;
	if (path == NULL)
		return 0;
	/* An absolute path (config_check_path): "/" for "/x.pid". */
	dirlen = (int)(strrchr(path, '/') - path);
	(void)snprintf(dir, sizeof(dir), "%.*s", dirlen > 0 ? dirlen : 1, path);
	if (stat(dir, &st) == -1)
		why = strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		why = "not a directory";
	else if (access(dir, W_OK) == -1) {
		save = errno;
		if (access(path, W_OK) == -1)
			why = strerror(save);
	}
	if (why == NULL)
		return 0;
	if (c->c_pidfile_line > 0 && c->c_file != NULL)
		(void)snprintf(where, sizeof(where), "%s:%d: ", c->c_file,
		    c->c_pidfile_line);
	(void)snprintf(err, errlen, "%spidfile %s: %.*s: %s", where, path,
	    dirlen > 0 ? dirlen : 1, path, why);
	return -1;
}

/*
 * A program of the configuration (at line) that user (id; NULL: we) will
 * run, inside root when it is not NULL: it must be there and executable
 * for them, or every session would fail on it later.
 */
static int
master_program(const struct config *c, const char *what, char *path,
    int line, const char *user, const struct exec_ident *id,
    const char *root, char *err, size_t errlen)
{
	char		 why[256];

	if (util_exec_check(path, root, id, why, sizeof(why)) == 0)
		return 0;
	(void)snprintf(err, errlen, "%s:%d: %s: %s: %s for user %s%s%s",
	    c->c_file, line, what, path, why, user,
	    root != NULL ? " in chroot " : "", root != NULL ? root : "");
	return -1;
}

/*
 * The delivery program as each listener's deliver-user will start it
 * (with that user's groups, outside the chroot: the broker is not
 * chrooted); as ourselves when not started as root.  A deliver-user that
 * is the sessions' (uid) would let a broken session child reach the
 * stored mail: allowed, with a warning at start and reload.
 */
static int
master_deliver_program(const struct config *c, uid_t uid, char *err,
    size_t errlen)
{
	const struct listener	*l = NULL;
	struct exec_ident	 id;
	int			 rv;

	if (c->c_dlv.dl_mode != DELIVER_PROGRAM)
		return 0;
	if (!as_root)
		return master_program(c, "deliver", c->c_dlv.dl_argv[0],
		    c->c_dlv.dl_line, "(ourselves)", NULL, NULL, err, errlen);
	/* The global user, then the listeners that name their own. */
	do {
		if (l != NULL && l->l_deliver_user == NULL)
			goto next;
		if (broker_ident(c, l, &id, err, errlen) == -1)
			return -1;
		if (id.ei_uid == uid && !checking)
			log_warnx("%s: deliver-user %s is the sessions' user",
			    l != NULL ? l->l_name : "deliver", id.ei_name);
		rv = master_program(c, "deliver", c->c_dlv.dl_argv[0],
		    c->c_dlv.dl_line, id.ei_name, &id, NULL, err, errlen);
		broker_ident_free(&id);
		if (rv == -1)
			return -1;
 next:
		l = l == NULL ? TAILQ_FIRST(&c->c_listeners) :
		    TAILQ_NEXT(l, l_entry);
	} while (l != NULL);
	return 0;
}

/*
 * What a configuration needs of the system beyond its syntax, checked at
 * the start, with -n and at a reload.  Who runs the programs, and
 * whether they can: the session user when started as root (then uid and
 * gid are theirs), ourselves otherwise; the delivery program, its
 * deliver-user.  Both are started by the broker (checkpassword by its
 * AUTH workers), outside the chroot.  The spool the children write.
 */
static int
master_programs(const struct config *c, uid_t *uid, gid_t *gid, char *err,
    size_t errlen)
{
	const char		*user = "(ourselves)";
	struct exec_ident	 id, *idp = NULL;

	if (as_root && (master_user(c, uid, gid, &user, err, errlen) == -1 ||
	    master_chroot(c, err, errlen) == -1))
		return -1;
	if (!as_root) {
		*uid = geteuid();
		*gid = getegid();
	} else {
		/* The children drop to exactly uid and gid. */
		memset(&id, 0, sizeof(id));
		id.ei_change = 1;
		id.ei_uid = *uid;
		id.ei_gid = *gid;
		id.ei_groups = gid;
		id.ei_ngroups = 1;
		idp = &id;
	}
	if (master_spool(c, user, idp, err, errlen) == -1 ||
	    master_deliver_program(c, *uid, err, errlen) == -1)
		return -1;
	if (c->c_auth.au_backend != AUTH_CHECKPASSWORD)
		return 0;
	if (master_program(c, "auth checkpassword", c->c_auth.au_argv[0],
	    c->c_auth.au_line, user, idp, NULL, err, errlen) == -1)
		return -1;
	/* The program runs as the children's user: see child_main(). */
	if (as_root && !checking && !os_landlock_available())
		log_warnx("auth checkpassword: no Landlock in this kernel: a "
		    "session child taken over could read what the program "
		    "reads, or change its verdict, through /proc");
	return 0;
}

/*
 * The delivery broker, which inherits the limit, needs the most: a
 * socket for every child and, for the delivery or AUTH check each may
 * have running, up to RLIMIT_PER_RUN more (the message, the envelope,
 * the program's pipes, its pidfd, and a pipe while it starts).  The
 * master holds two per child.
 */
#define RLIMIT_PER_RUN	8

static void
master_rlimit(const struct config *c)
{
	struct rlimit	 rl;
	rlim_t		 want;

	want = (rlim_t)c->c_lim.lim_maxclients * (1 + RLIMIT_PER_RUN) + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY &&
		    rl.rlim_max < want ? rl.rlim_max : want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit RLIMIT_NOFILE");
		else if (rl.rlim_cur < want)
			log_warnx("max-clients %d needs %llu open files, the "
			    "limit is %llu", c->c_lim.lim_maxclients,
			    (unsigned long long)want,
			    (unsigned long long)rl.rlim_cur);
	}
}

/* The pidfile the configuration asks for: none with -d unless named. */
static const char *
master_pidfile_path(void)
{
	if (conf->c_pidfile != NULL)
		return conf->c_pidfile;
	return debug ? NULL : DEF_PIDFILE;
}

/* The pidfile written where it is (truncated first): the fallback. */
static void
master_pidfile_inplace(const char *path)
{
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd == -1 || dprintf(fd, "%ld\n", (long)getpid()) < 0) {
		log_warn("pidfile %s", path);
		if (fd != -1)
			(void)close(fd);
		return;
	}
	(void)close(fd);
	pidfile = xstrdup(path);
}

static void
master_pidfile(const char *path)
{
	char	*tmp;
	int	 fd, rv = 0;

	/*
	 * Written beside it and renamed over it, so that whoever reads it
	 * (an rc script, systemd) finds our pid or the one before, never an
	 * empty file; a link at path is replaced, not followed.
	 */
	(void)xasprintf(&tmp, "%s.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		free(tmp);
		/* Not started as root: a file made for us, in place. */
		master_pidfile_inplace(path);
		return;
	}
	if (fchmod(fd, 0644) == -1 ||
	    dprintf(fd, "%ld\n", (long)getpid()) < 0)
		rv = -1;
	if (close(fd) == -1 || (rv == 0 && rename(tmp, path) == -1))
		rv = -1;
	if (rv == -1) {
		log_warn("pidfile %s", path);
		(void)unlink(tmp);
	} else
		pidfile = xstrdup(path);
	free(tmp);
}

/*
 * The paths of the UNIX sockets an upgrade handed us that our
 * configuration no longer names: removed once we are ready, since until
 * then the old master serves on them (and goes on if we fail).
 */
static char	*dropped[MAX_LISTENERS * LISTENER_MAXFD + 1];
static int	 ndropped;

static void
master_drop_later(int fd)
{
	char	*path;

	if ((size_t)ndropped < NITEMS(dropped) &&
	    (path = util_unix_bound_path(fd)) != NULL)
		dropped[ndropped++] = path;
}

static void
master_drop_now(void)
{
	while (ndropped > 0) {
		ndropped--;
		(void)unlink(dropped[ndropped]);
		free(dropped[ndropped]);
	}
}

/*
 * After an upgrade, the old master's pidfile where ours is not: it holds
 * the pid of a master that is about to exit (it leaves the file to us).
 */
static void
master_pidfile_old(void)
{
	const char	*old = inherited.uf_pidfile;
	char		 buf[32];
	ssize_t		 n;
	int		 fd;

	if (old[0] == '\0' || (pidfile != NULL && strcmp(old, pidfile) == 0))
		return;
	if ((fd = open(old, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (predecessor > 0 && strtol(buf, NULL, 10) == (long)predecessor &&
	    unlink(old) == 0)
		log_info("the old master's pidfile %s removed", old);
}

/*
 * The pidfile where the configuration wants it (a reload moved it; with
 * again, written anew even where it is): the new one is written, then
 * the old one goes.  One that cannot be written leaves the old in place.
 */
static void
master_pidfile_update(int again)
{
	const char	*want = master_pidfile_path();
	char		*old = pidfile;

	if (!again && old != NULL && want != NULL && strcmp(old, want) == 0)
		return;
	pidfile = NULL;
	if (want != NULL) {
		master_pidfile(want);
		if (pidfile == NULL) {
			if (old != NULL)
				log_warnx("pidfile stays at %s", old);
			pidfile = old;
			return;
		}
	}
	if (old != NULL && (pidfile == NULL || strcmp(old, pidfile) != 0) &&
	    unlink(old) == -1)
		log_warn("unlink %s", old);
	free(old);
}

static const char *
master_hostname(void)
{
	static char	 name[256];

	if (conf->c_hostname != NULL)
		return conf->c_hostname;
	if (gethostname(name, sizeof(name)) == -1)
		(void)strlcpy(name, "localhost", sizeof(name));
	return name;
}

/*
 * RFC 5321 3.8: 421, then close; best effort, never blocking.  RFC 2034:
 * with the code the session's replies have, when they have one.
 */
static void
refuse_421(int fd, const char *text)
{
	char	 buf[REPLY_MAX];
	int	 n;

	n = snprintf(buf, sizeof(buf), "421 %s%s%s %s\r\n",
	    conf->c_enhanced ? session_status_code(421, NULL) : "",
	    conf->c_enhanced ? " " : "", master_hostname(), text);
	if (n > 0 && (size_t)n < sizeof(buf))
		(void)send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)close(fd);
}

/*
 * The child side: from fork() to exit, never returning to the master.
 */

static void
child_sighandler(int sig)
{
	(void)sig;
	session_interrupt();
}

static void
child_signals(void)
{
	sigset_t	 term;

	/*
	 * poll() and a recv(2) under SO_RCVTIMEO still fail with EINTR,
	 * which is how a session notices.
	 */
	util_signals(child_sighandler, SA_RESTART, SIGTERM, 0);
	/* SIGUSR2 is the master's: `systemctl kill` signals every process. */
	util_signals(SIG_IGN, 0, SIGHUP, SIGINT, SIGUSR2, SIGPIPE, 0);
	util_signals(SIG_DFL, 0, SIGCHLD, 0);
	/*
	 * The master forked with every signal blocked.  SIGTERM stays so
	 * while the child is idle, let in only by the mask of the ppoll()
	 * that waits (child_wait): one that comes between sessions ends
	 * the next wait at once instead of being slept through.  A session
	 * lets it in (session.c).
	 */
	util_sigunblock();
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &term, &child_waitmask) == -1)
		fatal("sigprocmask");
	session_sigmask(&child_waitmask);
}

/* Nothing of the master's survives in a child but its own socket. */
static void
child_closefds(int self)
{
	struct child	*ch;
	struct bold	*bo;

	listeners_close(conf, 0);
	control_close(0);
	progs_drop();
	TAILQ_FOREACH(ch, &children, ch_entry) {
		if (ch->ch_fd != -1 && ch->ch_fd != self)
			(void)close(ch->ch_fd);
		if (ch->ch_bfd != -1)
			(void)close(ch->ch_bfd);
	}
	TAILQ_FOREACH(bo, &bolds, bo_entry)
		(void)close(bo->bo_ctl);
	(void)close(sigpipe[0]);
	(void)close(sigpipe[1]);
	if (epfd != -1)
		(void)close(epfd);
	/* Only the master hands the broker its children. */
	if (broker_ctl != -1)
		(void)close(broker_ctl);
	/*
	 * Forked to take a connection the master holds: the child gets its
	 * own copy over the socketpair, and this one would keep the client
	 * connected after the session.
	 */
	if (dispatch_fd != -1)
		(void)close(dispatch_fd);
	/* Else the old master would not see the new one die. */
	if (inherited.uf_ready != -1)
		(void)close(inherited.uf_ready);
	if (upgrade_fd != -1)
		(void)close(upgrade_fd);
	if (upgrade_tickets != -1)
		(void)close(upgrade_tickets);
}

/* chroot and drop to the user, before any client socket arrives. */
static void
child_drop(void)
{
	uid_t	 ru, eu, su;
	gid_t	 rg, eg, sg;

	if (!as_root)
		return;
	if (conf->c_chroot != NULL && (chroot(conf->c_chroot) == -1 ||
	    chdir("/") == -1))
		fatal("chroot %s", conf->c_chroot);
	if (setgroups(1, &run_gid) == -1 ||
	    setresgid(run_gid, run_gid, run_gid) == -1 ||
	    setresuid(run_uid, run_uid, run_uid) == -1)
		fatal("cannot drop privileges");
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1)
		fatal("getresuid");
	if (ru != run_uid || eu != run_uid || su != run_uid ||
	    rg != run_gid || eg != run_gid || sg != run_gid)
		fatalx("privileges not dropped");
}

/*
 * The broker closed our socket (it died, or had no room for it): nothing
 * can be delivered.  The exit status tells the master that this is no
 * failure of the child's, which a back-off would answer.
 */
static void
child_no_broker(void)
{
	if (child_exit != CHILD_NOBROKER)
		log_warnx("no delivery broker; exiting");
	child_exit = CHILD_NOBROKER;
}

static int
child_broker_gone(void)
{
	struct pollfd	 pfd;

	pfd.fd = broker_socket();
	pfd.events = 0;
	if (child_exit || (poll(&pfd, 1, 0) == 1 &&
	    (pfd.revents & (POLLHUP | POLLERR))))
		child_no_broker();
	return child_exit;
}

/*
 * Wait for the master's next message.  SIGTERM is blocked except inside
 * ppoll() (child_signals), so one that comes while idle is never slept
 * through.  A child whose broker is gone (it died, or had no room for
 * our socket) could deliver nothing: it exits, and the master makes a
 * new one.
 */
static int
child_wait(int fd)
{
	struct pollfd	 pfd[2];

	for (;;) {
		if (session_quit)
			return -1;
		pfd[0].fd = fd;
		pfd[1].fd = broker_socket();
		pfd[0].events = POLLIN;
		pfd[1].events = 0;
		if (ppoll(pfd, 2, NULL, &child_waitmask) >= 0)
			break;
		if (errno != EINTR)
			fatal("ppoll");
	}
	/* A client already sent to us is served all the same. */
	if (pfd[1].revents & (POLLHUP | POLLERR)) {
		child_no_broker();
		return pfd[0].revents != 0 ? 0 : -1;
	}
	return 0;
}

/*
 * SIGTERM came with connections already handed to us (the master had
 * counted us idle): each gets the 421 a session would give.
 */
static void
child_refuse_pending(int fd)
{
	struct chan_msg	 m;

	while (chan_recv(fd, &m) > 0)
		if (m.cm_fd != -1)
			refuse_421(m.cm_fd, "Service shutting down");
}

/* The next client socket, or -1 when the master says we are done. */
static int
child_recv(int fd, struct handoff *h)
{
	struct chan_msg	 m;
	int		 r;

	for (;;) {
		if (child_wait(fd) == -1) {
			if (session_quit)
				child_refuse_pending(fd);
			return -1;
		}
		if ((r = chan_recv(fd, &m)) == 0 ||
		    (r == -1 && errno != EAGAIN && errno != EINTR &&
		    errno != EBADMSG)) {
			if (r == -1 && errno != ECONNRESET)
				log_warn("%s: recvmsg", __func__);
			return -1;
		}
		if (r == -1)
			continue;
		if (m.cm_hdr.ch_type != CHAN_HANDOFF) {
			/* An answer that came too late, for instance. */
			chan_drop(&m, "not a hand-off");
			continue;
		}
		memcpy(h, m.cm_data, sizeof(*h));
		if (h->h_peerlen <= sizeof(h->h_peer))
			return m.cm_fd;
		chan_drop(&m, "bad address length");
	}
}

/*
 * session.c asks before the greeting whether the client a PROXY header
 * named is over max-clients-per-address: only the master can count.
 */
static int
child_peer_check(const char *addr)
{
	struct chan_msg	 m;

	if (chan_ask(child_fd, CHAN_PEER, addr, CHAN_PEER_ANSWER,
	    CHAN_ANSWER_MS, &m) == -1)
		return -1;
	return m.cm_data[0] ? 0 : -1;
}

/* Before the backend is asked: may this client try AUTH? */
static int
child_auth_check(const char *addr)
{
	struct chan_msg	 m;

	if (chan_ask(child_fd, CHAN_AUTH_ASK, addr, CHAN_AUTH_ANSWER,
	    CHAN_ANSWER_MS, &m) == -1)
		return 0;	/* the master is busy: not throttled */
	return m.cm_data[0] ? 0 : -1;
}

/* The check child_auth_check() let through ended: a 535 counts. */
static void
child_auth_ended(const char *addr, int failed)
{
	if (chan_send(child_fd, failed ? CHAN_AUTH_FAILED : CHAN_AUTH_DONE,
	    0, addr, strlen(addr), -1) == -1)
		log_warn("%s: send", __func__);
}

/*
 * The heap of a child that runs one session after another: a session
 * reuses what the last one freed (no trimming after each), buffers as
 * large as CHILD_MMAP_MIN are mappings of their own that free() unmaps,
 * and the heap is trimmed only when CHILD_TRIM_MIN is free at its top,
 * down to CHILD_TOP_PAD.  glibc's default pad (128 KiB) kept that much
 * of what a large session had written, in every child that had served
 * one; an ordinary session does not move the top at all.  The fixed
 * values also stop glibc from raising them as it goes.
 */
static void
child_malloc(void)
{
#ifdef __GLIBC__
	(void)mallopt(M_MMAP_THRESHOLD, CHILD_MMAP_MIN);
	(void)mallopt(M_TRIM_THRESHOLD, CHILD_TRIM_MIN);
	(void)mallopt(M_TOP_PAD, CHILD_TOP_PAD);
#endif
}

/*
 * batch-scheduling (smtpd.conf.5): the batch class, if the master was
 * started in the default one.  The master looked before any fork: a
 * class with SCHED_RESET_ON_FORK is back to the default in a child.
 */
static void
child_sched(void)
{
	if (conf->c_batch && sched_ours && os_sched_batch() == -1)
		log_debug("child: scheduling class: %s", strerror(errno));
}

static void
child_main(int fd, int broker)
{
	struct handoff	 h;
	struct listener	*l;
	const void	*board;
	char		 addr[64], port[8];
	size_t		 boardlen;
	uint32_t	 done;
	int		 cfd, n;

	log_procinit("child");
	child_sched();
	child_malloc();
	child_fd = fd;
	broker_attach(broker);
	session_peer_check = child_peer_check;
	session_auth_check = child_auth_check;
	session_auth_ended = child_auth_ended;
	child_closefds(fd);
	child_signals();
	child_drop();
	/*
	 * No way into another process of our user: a checkpassword program
	 * runs as that user, readable and traceable by it (smtpd.8).
	 */
	if (os_landlock() == -1 && errno != ENOSYS)
		fatal("landlock");
	/* Where the kernel (or a sanitizer build) has none, without it. */
	score_mapped(&board, &boardlen);
	if (os_sandbox(getpid(), board, boardlen) == -1 && errno != ENOSYS)
		fatal("seccomp");
	for (n = 1; ; n++) {
		setproctitle("%s", "idle");
		if ((cfd = child_recv(fd, &h)) == -1)
			break;
		if ((l = listener_at(conf, h.h_listener)) == NULL ||
		    h.h_fd < 0 || h.h_fd >= LISTENER_MAXFD)
			fatalx("%s: no listener %d/%d", __func__,
			    h.h_listener, h.h_fd);
		util_sockaddr_str((struct sockaddr *)&h.h_peer, h.h_peerlen,
		    addr, sizeof(addr), port, sizeof(port));
		setproctitle("%s", addr[0] != '\0' ? addr : l->l_name);
		if (l->l_flags & LF_METRICS)
			metrics_serve(cfd, addr);
		else
			session_run(conf, l, cfd, (struct sockaddr *)&h.h_peer,
			    h.h_peerlen);
		/* The last session: exit without asking for another. */
		if (session_quit || child_broker_gone() ||
		    (conf->c_lim.lim_maxsessions > 0 &&
		    n >= conf->c_lim.lim_maxsessions))
			break;
		/* Told only when the master waits for it (score_ended). */
		if (score_ended(&done) &&
		    chan_send(fd, CHAN_IDLE, done, NULL, 0, -1) == -1)
			break;
	}
	exit(child_exit);
}

/*
 * The pool, as the master keeps it.
 */

/* Children that die at once, repeatedly, must not spin the CPU. */
static void
pool_backoff(const char *why)
{
	long long	 delay;

	if (spawn_fails < 16)
		spawn_fails++;
	delay = (long long)SPAWN_BACKOFF_MIN_MS << (spawn_fails - 1);
	if (delay > SPAWN_BACKOFF_MAX_MS)
		delay = SPAWN_BACKOFF_MAX_MS;
	spawn_after = util_now_ms() + delay;
	log_warnx("%s; next fork in %lld ms", why, delay);
}

/* In the epoll set or out of it; the set exists once the master runs. */
static void
master_epoll(int op, int fd, struct pollref *ref)
{
	struct epoll_event	 ev;

	if (epfd == -1)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = ref;
	if (epoll_ctl(epfd, op, fd, &ev) == -1)
		fatal("epoll_ctl");
}

/* The child's end out of its queue, closed: passed, or not needed. */
static void
bq_unlink(struct child *ch)
{
	if (ch->ch_bfd == -1)
		return;
	(void)close(ch->ch_bfd);
	ch->ch_bfd = -1;
	TAILQ_REMOVE(ch->ch_bq, ch, ch_bentry);
	ch->ch_bq = NULL;
}

/* Its broker is gone: its children learn it from their sockets' EOF. */
static void
bq_drop(struct childlist *q)
{
	struct child	*ch;

	while ((ch = TAILQ_FIRST(q)) != NULL)
		bq_unlink(ch);
}

/*
 * As many of q's ends as ctl takes now: 0 when none is left, 1 when some
 * wait for room, -1 when the broker cannot take them (q is dropped).
 */
static int
bq_flush(int ctl, struct childlist *q)
{
	struct child	*ch;

	while ((ch = TAILQ_FIRST(q)) != NULL) {
		if (broker_pass(ctl, ch->ch_bfd) == -1) {
			if (errno == EAGAIN)
				return 1;
			/* A broker that died says so when it is reaped. */
			if (errno != EPIPE && errno != ECONNRESET)
				log_warn("delivery broker");
			bq_drop(q);
			return -1;
		}
		bq_unlink(ch);
	}
	return 0;
}

/* A replaced broker's leftovers wait for room in its socket. */
static void
bq_keep(void)
{
	struct bold	*bo;
	struct child	*ch;

	bo = xcalloc(1, sizeof(*bo));
	bo->bo_pid = broker_pid;
	bo->bo_ctl = broker_ctl;
	TAILQ_INIT(&bo->bo_wait);
	while ((ch = TAILQ_FIRST(&bwait)) != NULL) {
		TAILQ_REMOVE(&bwait, ch, ch_bentry);
		TAILQ_INSERT_TAIL(&bo->bo_wait, ch, ch_bentry);
		ch->ch_bq = &bo->bo_wait;
	}
	TAILQ_INSERT_TAIL(&bolds, bo, bo_entry);
}

static void
bq_old_free(struct bold *bo)
{
	bq_drop(&bo->bo_wait);
	(void)close(bo->bo_ctl);
	TAILQ_REMOVE(&bolds, bo, bo_entry);
	free(bo);
}

/* The socket has room (poll): the current broker's queue, or an old one. */
static void
bq_ready(struct bold *bo)
{
	if (bo == NULL)
		(void)bq_flush(broker_ctl, &bwait);
	else if (bq_flush(bo->bo_ctl, &bo->bo_wait) != 1)
		bq_old_free(bo);
}

/* A replaced broker exited: what it was still to get goes. */
static void
bq_old_gone(pid_t pid)
{
	struct bold	*bo;

	TAILQ_FOREACH(bo, &bolds, bo_entry)
		if (bo->bo_pid == pid) {
			bq_old_free(bo);
			return;
		}
}

/*
 * The sockets of a new child: sv to us, bsv to the broker, whose end is
 * passed to the broker before the child exists (bsv[0] is -1 then), or
 * waits in bwait once it does when the broker has no room now.  A child
 * made while there is no broker, or while its death is not reaped yet,
 * could deliver nothing: then none is made, without a back-off (the
 * master refuses a connection it has no child for; the client comes
 * back).
 */
static int
pool_sockets(int sv[2], int bsv[2])
{
	master_broker_check();
	if (broker_ctl == -1)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, bsv) == -1) {
		(void)close(sv[0]);
		(void)close(sv[1]);
		goto fail;
	}
	if (!TAILQ_EMPTY(&bwait)) {
		/* In order, behind those; unless it died (not reaped yet). */
		if (master_broker_running())
			return 0;
		errno = EPIPE;
	} else if (broker_pass(broker_ctl, bsv[0]) == 0) {
		(void)close(bsv[0]);
		bsv[0] = -1;
		return 0;
	} else if (errno == EAGAIN)
		return 0;
	log_warn("delivery broker");
	(void)close(sv[0]);
	(void)close(sv[1]);
	(void)close(bsv[0]);
	(void)close(bsv[1]);
	return -1;
 fail:
	log_warn("socketpair");
	pool_backoff("cannot make a child");
	return -1;
}

/* Out of its state's queue: a new state follows, or the child goes. */
static void
pool_unqueue(struct child *ch)
{
	if (ch->ch_state == CH_BUSY && ch->ch_metrics)
		pool_scrapes--;
	ch->ch_metrics = 0;
	TAILQ_REMOVE(&pool_q[ch->ch_state], ch, ch_qentry);
	pool_n[ch->ch_state]--;
}

/*
 * Every change of ch_state after the child's start (pool_spawn) is made
 * here.  The child that became idle last
 * is the first handed a connection (master_dispatch): its memory is the
 * most likely to be in the caches still.
 */
static void
pool_state(struct child *ch, enum child_state st)
{
	pool_unqueue(ch);
	ch->ch_state = st;
	if (st == CH_IDLE) {
		ch->ch_idle_at = util_now_ms();
		TAILQ_INSERT_HEAD(&pool_q[st], ch, ch_qentry);
	} else
		TAILQ_INSERT_TAIL(&pool_q[st], ch, ch_qentry);
	pool_n[st]++;
}

/* A child takes a connection: a session from addr, or a scrape. */
static void
pool_busy(struct child *ch, const char *addr, int metrics)
{
	pool_state(ch, CH_BUSY);
	ch->ch_metrics = metrics;
	pool_scrapes += metrics;
	(void)strlcpy(ch->ch_addr, addr, sizeof(ch->ch_addr));
}

/* The master's end of a child's socket. */
static void
pool_close(struct child *ch)
{
	pool_auth_end(ch, NULL);	/* a check it cannot end now */
	if (ch->ch_fd == -1)
		return;
	master_epoll(EPOLL_CTL_DEL, ch->ch_fd, NULL);
	(void)close(ch->ch_fd);
	ch->ch_fd = -1;
}

static struct child *
pool_spawn(void)
{
	struct child	*ch;
	sigset_t	 all, old;
	pid_t		 pid;
	int		 sv[2], bsv[2], slot;

	if (pool_sockets(sv, bsv) == -1)
		return NULL;
	/* The child installs its own handlers before taking any signal. */
	sigfillset(&all);
	(void)sigprocmask(SIG_BLOCK, &all, &old);
	slot = score_claim();
	if ((pid = fork()) == 0) {
		(void)close(sv[0]);
		if (bsv[0] != -1)
			(void)close(bsv[0]);
		score_child(slot);
		child_main(sv[1], bsv[1]);
	}
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	(void)close(sv[1]);
	(void)close(bsv[1]);
	if (pid == -1) {
		log_warn("fork");
		(void)close(sv[0]);
		if (bsv[0] != -1)
			(void)close(bsv[0]);
		score_release(slot);
		pool_backoff("cannot make a child");
		return NULL;
	}
	score_count(SC_CHILD_STARTED);
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl");
	ch = xcalloc(1, sizeof(*ch));
	ch->ch_pid = pid;
	ch->ch_fd = sv[0];
	ch->ch_gen = gen;
	ch->ch_broker = broker_pid;
	ch->ch_born = ch->ch_idle_at = util_now_ms();
	ch->ch_slot = slot;
	ch->ch_ref.pr_child = ch;
	ch->ch_ref.pr_control = PC_NONE;
	ch->ch_bfd = bsv[0];
	if (ch->ch_bfd != -1) {
		ch->ch_bq = &bwait;
		TAILQ_INSERT_TAIL(&bwait, ch, ch_bentry);
	}
	master_epoll(EPOLL_CTL_ADD, ch->ch_fd, &ch->ch_ref);
	TAILQ_INSERT_TAIL(&children, ch, ch_entry);
	ch->ch_state = CH_IDLE;
	TAILQ_INSERT_TAIL(&pool_q[CH_IDLE], ch, ch_qentry);
	pool_n[CH_IDLE]++;
	log_debug("child %ld started", (long)pid);
	return ch;
}

/*
 * Closing its socket tells a child to exit once it is idle.  What it
 * sent that we have not read goes with the socket, but for the AUTH
 * failures it reported: they still count (anvil.c).
 */
static void
pool_retire(struct child *ch)
{
	struct chan_msg	 m;

	while (ch->ch_fd != -1 && chan_recv(ch->ch_fd, &m) > 0) {
		if (m.cm_hdr.ch_type == CHAN_AUTH_FAILED ||
		    m.cm_hdr.ch_type == CHAN_AUTH_DONE)
			pool_auth(ch, &m);
		else if (m.cm_fd != -1)
			(void)close(m.cm_fd);
	}
	pool_close(ch);
	pool_state(ch, CH_RETIRED);
}

/* The child's socket is dead: it is exiting, and is reaped later. */
static void
pool_gone(struct child *ch)
{
	pool_close(ch);
	pool_state(ch, CH_GONE);
}

/* The child's session ended: it is idle again. */
static void
pool_idle_again(struct child *ch)
{
	ch->ch_addr[0] = '\0';
	pool_state(ch, CH_IDLE);
	spawn_fails = 0;
	/* An older generation never gets another connection. */
	if (ch->ch_gen != gen || quitting)
		pool_retire(ch);
}

/*
 * A busy child that has ended every connection it was handed is idle,
 * whether or not it said so (score_ended).
 */
static void
pool_sync(struct child *ch)
{
	uint32_t	 done;

	if (ch->ch_state == CH_BUSY && score_done(ch->ch_slot, ch->ch_pid,
	    &done) == 0 && done == ch->ch_sent)
		pool_idle_again(ch);
}

/* pool_sync for every busy child: the only ones it can change. */
static void
pool_sync_busy(void)
{
	struct child	*ch, *next;

	for (ch = TAILQ_FIRST(&pool_q[CH_BUSY]); ch != NULL; ch = next) {
		next = TAILQ_NEXT(ch, ch_qentry);
		pool_sync(ch);
	}
}

/* Idle and busy children, for the status lines. */
static void
pool_tally(int *idle, int *busy)
{
	pool_sync_busy();
	*idle = pool_n[CH_IDLE];
	*busy = pool_n[CH_BUSY];
}

/*
 * Busy children say when they end a connection (CHAN_IDLE) only while
 * we wait for that: at shutdown, for an older generation, or while the
 * listeners are out of the poll set for want of a child.  Returns 1 when
 * one turned out idle meanwhile: the caller looks again before sleeping.
 */
static int
pool_notify(void)
{
	struct child	*ch, *next;
	int		 want, changed = 0;

	for (ch = TAILQ_FIRST(&pool_q[CH_BUSY]); ch != NULL; ch = next) {
		next = TAILQ_NEXT(ch, ch_qentry);
		if (ch->ch_slot == -1)
			continue;
		want = quitting || ch->ch_gen != gen || !ep_listening;
		if (want == ch->ch_notify)
			continue;
		ch->ch_notify = want;
		score_notify(ch->ch_slot, want);
		pool_sync(ch);
		changed |= ch->ch_state != CH_BUSY;
	}
	return changed;
}

/*
 * Counts idle children, the active ones (all but those told to exit, and
 * those busy with a scrape, which is no client for max-clients), and
 * those that closed their socket by themselves and wait to be reaped.
 * Every idle child is of this generation: one of an older one is retired
 * when it becomes idle (pool_idle_again), or at the reload (master_renew).
 */
static void
pool_count(int *idle, int *active, int *dying)
{
	pool_sync_busy();
	*idle = pool_n[CH_IDLE];
	*dying = pool_n[CH_GONE];
	*active = pool_n[CH_IDLE] + pool_n[CH_BUSY] - pool_scrapes + *dying;
}

static struct child *
pool_idle(void)
{
	if (TAILQ_EMPTY(&pool_q[CH_IDLE]))
		pool_sync_busy();
	return TAILQ_FIRST(&pool_q[CH_IDLE]);
}

/*
 * Sessions of the master we replace, while it finishes them: all (addr
 * NULL), or those from addr.  They count for the limits as ours do.
 */
static int
pool_older(const char *addr)
{
	if (predecessor > 0 && getppid() != predecessor)
		predecessor = 0;	/* it has exited */
	return predecessor > 0 ? score_sessions_of((int)predecessor, addr) :
	    0;
}

static int
pool_peer_count(const char *addr)
{
	struct child	*ch;
	int		 n = pool_older(addr);

	pool_sync_busy();
	TAILQ_FOREACH(ch, &pool_q[CH_BUSY], ch_qentry)
		if (strcmp(ch->ch_addr, addr) == 0)
			n++;
	return n;
}

/*
 * Children forked for metrics scrapes while max-clients were busy are
 * more than max-clients once idle: the extra ones go.
 */
static void
pool_trim(int *idle, int *active)
{
	struct child	*ch;

	/* The tail first: idle the longest, or never used (pool_state). */
	while (*active > conf->c_lim.lim_maxclients && *idle > 0 &&
	    (ch = TAILQ_LAST(&pool_q[CH_IDLE], childlist)) != NULL) {
		pool_retire(ch);
		(*active)--;
		(*idle)--;
	}
}

/* Keep prefork idle children ready, within max-clients. */
static void
pool_topup(void)
{
	int	 idle, active, dying;

	if (quitting)
		return;
	pool_count(&idle, &active, &dying);
	pool_trim(&idle, &active);
	/* Reap first: a child dying at start means back-off. */
	if (util_now_ms() < spawn_after || dying > 0)
		return;
	while (idle < conf->c_lim.lim_prefork &&
	    active < conf->c_lim.lim_maxclients) {
		if (pool_spawn() == NULL)
			return;
		idle++;
		active++;
	}
}

/*
 * A pool that a burst of sessions grew shrinks back: beyond prefork, the
 * children idle for prefork-idle-time exit, from the tail of the idle
 * queue (those idle the longest, and fresh ones never used).
 * Busy children are looked at first, since one that ended its session
 * says so only when asked (pool_sync).  Sets shrink_at to when to look
 * again: the next child due, or a whole prefork-idle-time later while
 * children beyond prefork are busy; none when the pool is at prefork.
 */
static void
pool_shrink(long long now)
{
	struct child	*ch, *prev;
	long long	 max = conf->c_lim.lim_prefork_idle * 1000LL, due = 0;
	int		 prefork = conf->c_lim.lim_prefork;

	shrink_at = 0;
	if (max == 0 || quitting)
		return;
	pool_sync_busy();
	/* From the tail: idle the longest (a fresh child waits there too). */
	for (ch = TAILQ_LAST(&pool_q[CH_IDLE], childlist);
	    ch != NULL && pool_n[CH_IDLE] > prefork; ch = prev) {
		prev = TAILQ_PREV(ch, childlist, ch_qentry);
		if (now - ch->ch_idle_at >= max) {
			log_debug("child %ld idle for %llds beyond prefork: "
			    "retired", (long)ch->ch_pid,
			    (now - ch->ch_idle_at) / 1000);
			pool_retire(ch);
		} else if (due == 0 || ch->ch_idle_at + max < due)
			due = ch->ch_idle_at + max;
	}
	if (pool_n[CH_IDLE] <= prefork)
		due = 0;
	if (due == 0 && pool_n[CH_IDLE] + pool_n[CH_BUSY] > prefork)
		due = now + max;
	shrink_at = due;
}

/* Arms pool_shrink when the pool has grown beyond prefork. */
static void
pool_shrink_timer(long long now)
{
	if (shrink_at != 0 && now >= shrink_at)
		pool_shrink(now);
	else if (shrink_at == 0 && !quitting &&
	    conf->c_lim.lim_prefork_idle > 0 &&
	    pool_n[CH_IDLE] + pool_n[CH_BUSY] > conf->c_lim.lim_prefork)
		shrink_at = now + conf->c_lim.lim_prefork_idle * 1000LL;
}

/* The broker runs; one that died is left unreaped (WNOWAIT). */
static int
master_broker_running(void)
{
	struct pollfd	 pfd;
	siginfo_t	 si;

	if (broker_pid == -1 || broker_ctl == -1)
		return 0;
	/* One being killed has closed its end before it is a zombie. */
	pfd.fd = broker_ctl;
	pfd.events = 0;
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)))
		return 0;
	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)broker_pid, &si,
	    WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

static void
pool_exited(struct child *ch, int status)
{
	long long	 age = util_now_ms() - ch->ch_born;
	int		 bad = 0;

	if (WIFSIGNALED(status)) {
		log_warnx("child %ld exited on signal %d (%s)",
		    (long)ch->ch_pid, WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
		bad = 1;
	} else if (WIFEXITED(status) &&
	    WEXITSTATUS(status) == CHILD_NOBROKER) {
		/*
		 * Its broker died, maybe before we reaped the broker: the
		 * broker's restart is what backs off (master_broker).  A
		 * broker that runs had no room for it: a new child would
		 * fare no better, so that backs off here.
		 */
		bad = ch->ch_broker == broker_pid && master_broker_running();
		log_info("child %ld exited: %s", (long)ch->ch_pid, bad ?
		    "the delivery broker had no room for it" :
		    "no delivery broker");
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		log_warnx("child %ld exited with status %d",
		    (long)ch->ch_pid, WEXITSTATUS(status));
		bad = 1;
	} else
		log_debug("child %ld exited", (long)ch->ch_pid);
	if (bad)
		score_count(SC_CHILD_FAILED);
	/* One of an older generation was retired (a reload): no back-off. */
	if (bad && ch->ch_state != CH_RETIRED && ch->ch_gen == gen &&
	    !quitting && age < SPAWN_QUICK_MS)
		pool_backoff("children fail at startup");
	else if (age >= SPAWN_QUICK_MS)
		spawn_fails = 0;
}

static void
pool_remove(struct child *ch)
{
	score_release(ch->ch_slot);
	pool_close(ch);
	bq_unlink(ch);
	pool_unqueue(ch);
	TAILQ_REMOVE(&children, ch, ch_entry);
	free(ch);
}

static void
pool_reap(void)
{
	struct child	*ch;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (progs_broker_gone(pid) && pid != broker_pid) {
			bq_old_gone(pid);
			continue;	/* one of a previous configuration */
		}
		if (pid == broker_pid) {
			master_broker_exited(status);
			continue;
		}
		TAILQ_FOREACH(ch, &children, ch_entry)
			if (ch->ch_pid == pid)
				break;
		if (ch == NULL) {
			if (pid == upgrade_pid)
				master_upgrade_reaped(status);
			continue;
		}
		pool_exited(ch, status);
		pool_remove(ch);
	}
}

/*
 * A child behind a proxy-protocol listener names its real client: the
 * address counts for max-clients-per-address from now on.
 */
static void
pool_peer(struct child *ch, const struct chan_msg *m)
{
	unsigned char	 ok;

	net_client_key((const char *)m->cm_data, ch->ch_addr,
	    sizeof(ch->ch_addr));
	ok = pool_peer_count(ch->ch_addr) <= conf->c_lim.lim_maxperaddr;
	if (chan_send(ch->ch_fd, CHAN_PEER_ANSWER, m->cm_hdr.ch_id, &ok, 1,
	    -1) == -1)
		log_warn("%s: send to child %ld", __func__, (long)ch->ch_pid);
}

/*
 * The child's AUTH check in progress ends (it said so, or it is gone);
 * failed, the address of a 535, counts.
 */
static void
pool_auth_end(struct child *ch, const char *failed)
{
	long long	 now = util_now_ms();

	if (ch->ch_auth[0] != '\0')
		anvil_end(ch->ch_auth, now);
	ch->ch_auth[0] = '\0';
	if (failed != NULL)
		anvil_failed(failed, conf->c_auth.au_maxfail_addr, now);
}

/*
 * AUTH failures per address (anvil.c): may a check begin, and how one
 * ended.  A check counts from its start, so that parallel sessions
 * cannot try more passwords than one.
 */
static void
pool_auth(struct child *ch, const struct chan_msg *m)
{
	const char	*addr = (const char *)m->cm_data;
	unsigned char	 ok;

	if (m->cm_hdr.ch_type != CHAN_AUTH_ASK) {
		pool_auth_end(ch, m->cm_hdr.ch_type == CHAN_AUTH_FAILED ?
		    addr : NULL);
		return;
	}
	pool_auth_end(ch, NULL);	/* one at a time */
	ok = anvil_begin(addr, conf->c_auth.au_maxfail_addr, util_now_ms());
	if (ok)
		strlcpy(ch->ch_auth, addr, sizeof(ch->ch_auth));
	if (chan_send(ch->ch_fd, CHAN_AUTH_ANSWER, m->cm_hdr.ch_id, &ok, 1,
	    -1) == -1)
		log_warn("%s: send to child %ld", __func__, (long)ch->ch_pid);
}

/* A child wrote.  EOF: it is exiting or died. */
static void
pool_report(struct child *ch)
{
	struct chan_msg	 m;
	int		 r;

	if (ch->ch_state != CH_IDLE && ch->ch_state != CH_BUSY)
		return;
	if ((r = chan_recv(ch->ch_fd, &m)) == -1 && (errno == EINTR ||
	    errno == EAGAIN || errno == EBADMSG))
		return;
	if (r <= 0) {
		/* The slot itself goes when the child is reaped. */
		ch->ch_addr[0] = '\0';
		pool_gone(ch);
		return;
	}
	if (ch->ch_state == CH_BUSY && m.cm_hdr.ch_type == CHAN_PEER)
		pool_peer(ch, &m);
	else if ((ch->ch_state == CH_BUSY && m.cm_hdr.ch_type ==
	    CHAN_AUTH_ASK) || m.cm_hdr.ch_type == CHAN_AUTH_FAILED ||
	    m.cm_hdr.ch_type == CHAN_AUTH_DONE)
		pool_auth(ch, &m);
	else if (m.cm_hdr.ch_type != CHAN_IDLE)
		chan_drop(&m, "not expected from a child");
	/* One we already saw in the scoreboard is old news. */
	else if (ch->ch_state == CH_BUSY && (ch->ch_slot == -1 ||
	    m.cm_hdr.ch_id == ch->ch_sent))
		pool_idle_again(ch);
}

/*
 * The delivery broker.
 */

/* The broker's AUTH workers and checkpassword run as the sessions. */
static void __attribute__((__noreturn__))
broker_child(int fd)
{
	struct exec_ident	 sessions;

	log_procinit("broker");
	progs_forked(0);
	/* It counts nothing: the board is the master's and the children's. */
	score_forget();
	child_closefds(-1);
	setproctitle("%s", "broker");
	memset(&sessions, 0, sizeof(sessions));
	sessions.ei_change = 1;
	sessions.ei_uid = run_uid;
	sessions.ei_gid = run_gid;
	sessions.ei_groups = &run_gid;
	sessions.ei_ngroups = 1;
	broker_main(conf, fd, -1, as_root ? &sessions : NULL);
	exit(0);
}

/*
 * A broker with the configuration of this generation: not chrooted, as
 * root (or the invoking user).  The previous one, its socket closed,
 * serves the children it has until they exit, then exits too.
 */
static void
master_broker(void)
{
	sigset_t	 all, old;
	pid_t		 pid;
	int		 sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("broker: socketpair");
		broker_after = util_now_ms() + SPAWN_QUICK_MS;
		return;
	}
	/* A child's program outlives the child that dies: room for more. */
	progs_new((size_t)conf->c_lim.lim_maxclients * 2);
	sigfillset(&all);
	(void)sigprocmask(SIG_BLOCK, &all, &old);
	if ((pid = fork()) == 0) {
		(void)close(sv[0]);
		broker_child(sv[1]);
	}
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	progs_forked(pid);
	(void)close(sv[1]);
	if (pid == -1) {
		log_warn("broker: fork");
		(void)close(sv[0]);
		broker_after = util_now_ms() + SPAWN_QUICK_MS;
		return;
	}
	if (broker_ctl != -1 && bq_flush(broker_ctl, &bwait) == 1)
		bq_keep();
	else if (broker_ctl != -1)
		(void)close(broker_ctl);
	broker_ctl = sv[0];
	broker_pid = pid;
	broker_born = util_now_ms();
	log_debug("broker %ld started", (long)pid);
}

/*
 * The broker died: its programs got SIGKILL, what they started too
 * (progs.c), its children's requests EOF (451).  Those children cannot
 * reach the next one: they are replaced.
 */
static void
master_broker_exited(int status)
{
	if (WIFSIGNALED(status))
		log_warnx("broker %ld exited on signal %d (%s)",
		    (long)broker_pid, WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		log_warnx("broker %ld exited with status %d",
		    (long)broker_pid, WEXITSTATUS(status));
	broker_pid = -1;
	if (broker_ctl != -1)
		(void)close(broker_ctl);
	broker_ctl = -1;
	bq_drop(&bwait);
	if (util_now_ms() - broker_born < SPAWN_QUICK_MS)
		broker_after = util_now_ms() + SPAWN_QUICK_MS;
	if (!quitting)
		master_renew();
}

/* The broker comes back before any child that would need it. */
static void
master_broker_check(void)
{
	if (broker_pid == -1 && !quitting && util_now_ms() >= broker_after)
		master_broker();
}

/*
 * Accepting connections.
 */

static int
master_send(struct child *ch, const struct handoff *h, int fd)
{
	if (chan_send(ch->ch_fd, CHAN_HANDOFF, 0, h, sizeof(*h), fd) == -1) {
		log_warn("send to child %ld", (long)ch->ch_pid);
		return -1;
	}
	return 0;
}

/* RFC 5321 3.8: 421, then close; best effort, the master never blocks. */
static void
master_refuse(int fd, const char *addr, const char *why)
{
	refuse_421(fd, REFUSE_TEXT);
	log_warnx("refused %s: %s", addr[0] != '\0' ? addr : "local client",
	    why);
}

static void
master_accept_error(void)
{
	switch (errno) {
	case EINTR:
	case EAGAIN:
	case ECONNABORTED:
	/* accept(2): TCP's errors of one pending connection, as EAGAIN. */
	case ENETDOWN:
	case EPROTO:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case ENETUNREACH:
		break;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		/* Resources come back as sessions end; the backlog waits. */
		log_warn("accept");
		accept_after = util_now_ms() + ACCEPT_PAUSE_MS;
		break;
	default:
		/* Whatever it is, it would come back at once: no spinning. */
		log_warn("accept");
		accept_after = util_now_ms() + ACCEPT_PAUSE_MS;
		break;
	}
}

/*
 * An idle child takes fd, or a new one when max-clients allows.  One
 * that died before we read its EOF fails the send and is passed over.
 * NULL when none could: *nochild is set when one could not be made.
 */
static struct child *
master_dispatch(const struct handoff *h, int fd, int metrics, int *nochild)
{
	struct child	*ch;
	int		 tries, idle, active, dying;

	*nochild = 0;
	for (tries = 0; tries < 3; tries++) {
		dispatch_fd = fd;
		if ((ch = pool_idle()) == NULL) {
			pool_count(&idle, &active, &dying);
			if (metrics || active < conf->c_lim.lim_maxclients)
				*nochild = (ch = pool_spawn()) == NULL;
		}
		if (ch == NULL) {
			dispatch_fd = -1;
			return NULL;
		}
		dispatch_fd = -1;
		if (master_send(ch, h, fd) == 0) {
			ch->ch_sent++;
			return ch;
		}
		pool_gone(ch);
	}
	return NULL;
}

/*
 * Children busy with sessions (metrics 0) or scrapes (1).  A child a
 * scrape made over max-clients may take a session later: the sessions
 * are what max-clients counts.
 */
static int
master_busy(int metrics)
{
	pool_sync_busy();
	return metrics ? pool_scrapes : pool_n[CH_BUSY] - pool_scrapes;
}

/*
 * A metrics connection skips the SMTP limits and never gets their 421;
 * when no child may take it, it is closed.
 */
static void
master_accept_metrics(const struct handoff *h, int fd)
{
	struct child	*ch = NULL;
	int		 nochild;

	if (master_busy(1) < METRICS_MAX_BUSY)
		ch = master_dispatch(h, fd, 1, &nochild);
	(void)close(fd);
	if (ch == NULL) {
		log_warnx("metrics: no child free for a scrape");
		return;
	}
	pool_busy(ch, "", 1);
}

/*
 * One connection: to a child, or refused.  -1 when there is none to
 * accept (EAGAIN) or accept() failed.  The socket is a blocking one: a
 * session waits for its client in a recv(2) bounded by SO_RCVTIMEO, and
 * says MSG_DONTWAIT everywhere else (session.c), as refuse_421 does.
 */
static int
master_accept(const struct listener *l, int lidx, int fidx)
{
	struct handoff	 h;
	struct child	*ch;
	const char	*counted;
	char		 addr[64], port[8], key[64];
	int		 fd, nochild;

	memset(&h, 0, sizeof(h));
	h.h_listener = lidx;
	h.h_fd = fidx;
	h.h_peerlen = sizeof(h.h_peer);
	if ((fd = accept4(l->l_fds[fidx], (struct sockaddr *)&h.h_peer,
	    &h.h_peerlen, SOCK_CLOEXEC)) == -1) {
		master_accept_error();
		return -1;
	}
	if (l->l_flags & LF_METRICS) {
		master_accept_metrics(&h, fd);
		return 0;
	}
	util_sockaddr_str((struct sockaddr *)&h.h_peer, h.h_peerlen, addr,
	    sizeof(addr), port, sizeof(port));
	/*
	 * On a proxy-protocol listener the peer is the proxy, which carries
	 * many clients: only the address its header names counts, once the
	 * child has read it (pool_peer).  An IPv4-mapped address counts as
	 * its IPv4 client (net_client_key).
	 */
	counted = "";
	if (!(l->l_flags & LF_PROXY)) {
		net_client_key(addr, key, sizeof(key));
		counted = key;
	}
	if (counted[0] != '\0' && conf->c_lim.lim_maxperaddr > 0 &&
	    pool_peer_count(counted) >= conf->c_lim.lim_maxperaddr) {
		score_count(SC_CONN_PERADDR);
		master_refuse(fd, addr, "too many connections from this "
		    "address");
		return 0;
	}
	/*
	 * Below max-clients, no child may be free when none can be made
	 * (a failed fork, the broker being restarted): the client gets the
	 * same 421, the log says which it was.
	 */
	nochild = 0;
	if (master_busy(0) + pool_older(NULL) >= conf->c_lim.lim_maxclients ||
	    (ch = master_dispatch(&h, fd, 0, &nochild)) == NULL) {
		score_count(SC_CONN_MAXCLIENTS);
		master_refuse(fd, addr, nochild ? "no child free, and none can "
		    "be started now" : "too many connections");
		return 0;
	}
	(void)close(fd);
	score_count(SC_CONN_ACCEPTED);
	pool_busy(ch, counted, 0);
	return 0;
}

/*
 * Every connection waiting on a listener, not one per wake-up, while
 * idle children are there to take them; without one, back to poll(),
 * which reads the children that have become idle meanwhile.
 */
static void
master_accept_all(const struct listener *l, int lidx, int fidx)
{
	while (master_accept(l, lidx, fidx) == 0 && !quitting &&
	    pool_idle() != NULL)
		;
}

/*
 * Signals, reload and shutdown.
 */

static void
master_sighandler(int sig)
{
	int	 saved = errno;
	ssize_t	 n;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		sig_term = 1;
		break;
	case SIGHUP:
		sig_hup = 1;
		break;
	case SIGCHLD:
		sig_chld = 1;
		break;
	case SIGUSR2:
		sig_usr2 = 1;
		break;
	}
	/* Wakes poll() even when the signal came just before it. */
	n = write(sigpipe[1], "s", 1);
	(void)n;
	errno = saved;
}

static void
master_signals_init(void)
{
	if (pipe2(sigpipe, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("pipe2");
	util_signals(master_sighandler, SA_RESTART | SA_NOCLDSTOP, SIGTERM,
	    SIGINT, SIGHUP, SIGUSR2, SIGCHLD, 0);
	util_signals(SIG_IGN, 0, SIGPIPE, 0);
	/* A SIGHUP that came while an upgrade started us is handled now. */
	util_sigunblock();
}

/*
 * A new TCP listener that names a socket of an old one which goes, in
 * other words (127.0.0.1 made localhost, 0.0.0.0 made *): it takes a
 * copy of that socket, which binding again would find in use; the old
 * listener's copy is closed with it.
 */
static void
listener_borrow(struct config *nc, struct listener *l)
{
	struct listener	*o;
	char		 name[128];
	int		 i, fd;

	if (l->l_unix)
		return;
	TAILQ_FOREACH(o, &conf->c_listeners, l_entry) {
		if (o->l_unix || listener_named(nc, o))
			continue;
		for (i = 0; i < o->l_nfds && l->l_nfds < LISTENER_MAXFD; i++) {
			if (listener_match(nc, o->l_fds[i], name,
			    sizeof(name)) != l || (fd = fcntl(o->l_fds[i],
			    F_DUPFD_CLOEXEC, 0)) == -1)
				continue;
			l->l_fds[l->l_nfds++] = fd;
			l->l_activated |= o->l_activated;
			log_info("%s: kept for listen on %s", name, l->l_name);
		}
	}
}

/* Whether a new listener took a copy of every socket of o. */
static int
listener_lent(const struct config *nc, const struct listener *o)
{
	char	 name[128];
	int	 i;

	for (i = 0; i < o->l_nfds; i++)
		if (o->l_unix ||
		    listener_match(nc, o->l_fds[i], name, sizeof(name)) == NULL)
			return 0;
	return 1;
}

/*
 * The UNIX sockets a reload keeps get the mode, owner and group of the
 * new configuration.  When one cannot, those changed before it are put
 * back as they were, so that a failed reload leaves every socket as it
 * found it.
 */
static int
master_reload_perms(const struct config *nc)
{
	struct listener	*l, *o, *u;
	struct stat	 was[MAX_LISTENERS];
	int		 saved[MAX_LISTENERS];
	char		 why[256], why2[256];

	memset(saved, 0, sizeof(saved));
	TAILQ_FOREACH(l, &nc->c_listeners, l_entry) {
		if (!l->l_unix || (o = listener_find(conf, l)) == NULL)
			continue;
		saved[l->l_index] = lstat(l->l_addr, &was[l->l_index]) == 0;
		if (listener_unix_update(l, o, why, sizeof(why)) == 0)
			continue;
		log_warnx("%s:%d: listen on %s: %s", nc->c_file, l->l_line,
		    l->l_name, why);
		TAILQ_FOREACH(u, &nc->c_listeners, l_entry) {
			if (u == l)
				break;
			if (saved[u->l_index] && listener_perms(u->l_addr,
			    was[u->l_index].st_uid, was[u->l_index].st_gid,
			    was[u->l_index].st_mode & 07777, why2,
			    sizeof(why2)) == -1)
				log_warnx("%s: cannot put back its mode and "
				    "owner: %s", u->l_name, why2);
		}
		return -1;
	}
	return 0;
}

/*
 * Sockets that stay are moved to the new listeners, new ones bound,
 * vanished ones closed.  Nothing changes unless every bind succeeded:
 * the new sockets are bound first, and the kept ones changed last.
 */
static int
master_reload_listeners(struct config *nc)
{
	struct listener	*l, *o;
	char		 err[512];
	int		 i;

	TAILQ_FOREACH(l, &nc->c_listeners, l_entry) {
		if (listener_find(conf, l) != NULL)
			continue;
		listener_borrow(nc, l);
		if (listener_bind(nc, l, err, sizeof(err)) == -1) {
			log_warnx("%s", err);
			listeners_close(nc, 1);
			return -1;
		}
	}
	if (master_reload_perms(nc) == -1) {
		listeners_close(nc, 1);
		return -1;
	}
	TAILQ_FOREACH(l, &nc->c_listeners, l_entry) {
		if (l->l_nfds > 0 || (o = listener_find(conf, l)) == NULL)
			continue;
		for (i = 0; i < o->l_nfds; i++) {
			l->l_fds[i] = o->l_fds[i];
			o->l_fds[i] = -1;
		}
		l->l_nfds = o->l_nfds;
		l->l_activated = o->l_activated;
		o->l_nfds = 0;
	}
	TAILQ_FOREACH(o, &conf->c_listeners, l_entry)
		if (o->l_nfds > 0 && !listener_lent(nc, o))
			log_info("no longer listening on %s", o->l_name);
	listeners_close(conf, 1);
	return 0;
}

/*
 * A new generation: idle children exit now, busy ones after their
 * session, and new ones start with what the master has now.
 */
static void
master_renew(void)
{
	struct child	*ch;

	gen++;
	TAILQ_FOREACH(ch, &children, ch_entry) {
		pool_sync(ch);
		if (ch->ch_state != CH_BUSY)
			pool_retire(ch);
	}
}

/*
 * The next ticket key is due TLS_TICKET_ROTATE seconds after a load, or
 * when the master we replace would have made it (its keys are ours).
 */
static void
master_tickets_timer(void)
{
	tickets_at = 0;
	if (conf->c_tls.tl_ctx != NULL && conf->c_tls.tl_tickets)
		tickets_at = util_now_ms() + (tickets_left >= 0 ? tickets_left :
		    TLS_TICKET_ROTATE * 1000LL);
	tickets_left = -1;
}

/*
 * Every TLS_TICKET_ROTATE seconds a new ticket key, and a new generation
 * of children to use it (as at a reload); the previous key still opens
 * the tickets that the older children sealed.
 */
static void
master_tickets(long long now)
{
	/* Not while an upgrade has the keys: after it, if it fails. */
	if (tickets_at == 0 || now < tickets_at || quitting ||
	    upgrade_fd != -1)
		return;
	tls_ticket_rotate();
	master_renew();
	tickets_at = now + TLS_TICKET_ROTATE * 1000LL;
	log_info("new TLS ticket key");
}

static void
master_reload(void)
{
	struct config	*nc = NULL;
	struct stat	 st;
	const char	*why;
	char		 err[512];
	uid_t		 uid = run_uid;
	gid_t		 gid = run_gid;

	if (conffile == NULL) {
		log_info("no configuration file to reload");
		return;
	}
	/*
	 * A pipe (-f /dev/stdin, a FIFO) was read once, at the start: read
	 * again it would block the master until something writes to it.
	 */
	if (stat(conffile, &st) == 0 && !S_ISREG(st.st_mode)) {
		log_warnx("%s: not a regular file, not read again", conffile);
		goto fail;
	}
	if ((nc = load_config(conffile)) == NULL)
		goto fail;
	auth_config_free(nc);	/* as in master_config() */
	if ((why = master_sink_refused(nc)) != NULL) {
		log_warnx("%s: no \"deliver\" directive; %s", conffile, why);
		goto fail;
	}
	if (master_programs(nc, &uid, &gid, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto fail;
	}
	master_listen_sync(0);
	if (master_reload_listeners(nc) == -1)
		goto fail;
	load_release(conf);
	conf = nc;
	conf_loaded = time(NULL);
	control_reopen(conf->c_control != NULL ? conf->c_control :
	    DEF_CONTROL);
	/* Not while a new master may be writing its own there. */
	if (upgrade_fd == -1)
		master_pidfile_update(0);
	run_uid = uid;
	run_gid = gid;
	/*
	 * A new configuration, a new ticket key (the last one still opens);
	 * not while a new master starts with the keys handed to it, which
	 * would not open the tickets our children sealed with a new one.
	 */
	if (upgrade_fd == -1)
		tls_ticket_rotate();
	master_renew();
	master_tickets_timer();
	shrink_at = 0;		/* armed again with prefork-idle-time's value */
	master_rlimit(conf);		/* before the broker inherits it */
	master_broker();
	score_count(SC_RELOAD_OK);
	log_info("reloaded configuration from %s", conffile);
	return;
fail:
	score_count(SC_RELOAD_FAILED);
	load_release(nc);
	log_warnx("reload failed, keeping the old configuration");
}

/*
 * SIGTERM/SIGINT: stop accepting; idle children exit on EOF, sessions in
 * progress may finish (master_shutdown_done() bounds that).
 */
static void
master_shutdown(int handover)
{
	struct child	*ch;
	int		 keep;

	if (handover)
		log_info("draining: the new master has the sockets");
	else {
		log_info("shutting down");
		systemd_notify("STOPPING=1");
	}
	/* A new master not ready yet would serve on without us: it goes. */
	if (!handover && upgrade_fd != -1) {
		log_warnx("upgrade: new master %ld stopped: shutting down",
		    (long)upgrade_pid);
		score_count(SC_UPGRADE_FAILED);
		master_upgrade_abort();
	}
	quitting = 1;
	quit_deadline = util_now_ms() +
	    conf->c_lim.lim_shutdown_grace * 1000LL;
	/*
	 * The sockets and the pidfile a new master took are its own; those
	 * of the master that started us, before we said we are ready, are
	 * still its own: it serves on when we are gone.
	 */
	keep = handover || inherited.uf_ready != -1;
	master_listen_sync(0);
	listeners_close(conf, !keep);
	control_close(!keep);
	if (handover) {
		free(pidfile);
		pidfile = NULL;
	}
	TAILQ_FOREACH(ch, &children, ch_entry) {
		pool_sync(ch);
		if (ch->ch_state != CH_BUSY)
			pool_retire(ch);
	}
}

/*
 * True when the last child is gone.  Sessions get shutdown-grace seconds
 * to end on their own; then SIGTERM makes one waiting for a command
 * answer 421 at once, and one receiving a message or delivering finish
 * that step first; SHUTDOWN_KILL seconds later what is left is killed.
 */
static int
master_shutdown_done(void)
{
	struct child	*ch;
	int		 status;

	if (TAILQ_EMPTY(&children))
		return 1;
	if (util_now_ms() < quit_deadline)
		return 0;
	if (!quit_termed) {
		quit_termed = 1;
		quit_deadline = util_now_ms() + SHUTDOWN_KILL * 1000LL;
		TAILQ_FOREACH(ch, &children, ch_entry)
			(void)kill(ch->ch_pid, SIGTERM);
		return 0;
	}
	TAILQ_FOREACH(ch, &children, ch_entry) {
		log_warnx("child %ld still running after %d seconds; killed",
		    (long)ch->ch_pid, conf->c_lim.lim_shutdown_grace +
		    SHUTDOWN_KILL);
		(void)kill(ch->ch_pid, SIGKILL);
	}
	while ((ch = TAILQ_FIRST(&children)) != NULL) {
		while (waitpid(ch->ch_pid, &status, 0) == -1 && errno == EINTR)
			;
		pool_remove(ch);
	}
	return 1;
}

/*
 * Upgrade in place (SIGUSR2).
 */

/* What became of the new master, from the SIGCHLD that reaped it. */
static void
master_upgrade_reaped(int status)
{
	if (WIFEXITED(status))
		log_warnx("upgrade: new master %ld exited with status %d",
		    (long)upgrade_pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_warnx("upgrade: new master %ld exited on signal %d",
		    (long)upgrade_pid, WTERMSIG(status));
	upgrade_pid = 0;
}

/*
 * The new master is ready or gone: the keys handed to it leave the
 * memfd.  A binary without the handover does not close it, and every
 * process it forks has it.
 */
static void
master_upgrade_tickets(void)
{
	if (upgrade_tickets == -1)
		return;
	if (ftruncate(upgrade_tickets, 0) == -1)
		log_warn("upgrade: the TLS ticket keys handed on stay");
	(void)close(upgrade_tickets);
	upgrade_tickets = -1;
}

/* The new master goes (killed if it runs); our pidfile is ours again. */
static void
master_upgrade_abort(void)
{
	if (upgrade_pid > 0)
		(void)kill(upgrade_pid, SIGKILL);
	if (upgrade_fd != -1)
		(void)close(upgrade_fd);
	upgrade_fd = -1;
	master_upgrade_tickets();
	/*
	 * The new master may have written its pid there already; a reload
	 * meanwhile may have moved it.
	 */
	master_pidfile_update(1);
}

static void
master_upgrade_fail(const char *why)
{
	log_warnx("upgrade failed: %s; this master keeps serving", why);
	score_count(SC_UPGRADE_FAILED);
	master_upgrade_abort();
}

/*
 * SIGUSR2: the binary at its path again, with the listening sockets, the
 * control socket and the scoreboard; this master serves until the new
 * one says its pool is up.
 */
static void
master_upgrade(void)
{
	struct upgrade_fds	 uf;
	struct listener		*l;
	long long		 left;
	int			 i;

	/*
	 * Only one older master's sessions count for the limits; until we
	 * said we are ready, the upgrade that started us is in progress.
	 */
	if (quitting || upgrade_fd != -1 || inherited.uf_ready != -1 ||
	    pool_older(NULL) > 0) {
		log_warnx("SIGUSR2 ignored: %s", quitting ? "shutting down" :
		    upgrade_fd != -1 || inherited.uf_ready != -1 ?
		    "an upgrade is in progress" :
		    "the previous master still has sessions");
		return;
	}
	memset(&uf, 0, sizeof(uf));
	TAILQ_FOREACH(l, &conf->c_listeners, l_entry)
		for (i = 0; i < l->l_nfds; i++) {
			uf.uf_activated[uf.uf_nlisten] = l->l_activated;
			uf.uf_listen[uf.uf_nlisten++] = l->l_fds[i];
		}
	uf.uf_control = control_fd();
	if (pidfile != NULL)
		(void)strlcpy(uf.uf_pidfile, pidfile, sizeof(uf.uf_pidfile));
	uf.uf_score = score_fd();
	left = tickets_at - util_now_ms();
	uf.uf_tickets = tickets_at == 0 ? -1 :
	    tls_ticket_export(left > 0 ? left : 0);
	upgrade_tickets = uf.uf_tickets;
	upgrade_pid = upgrade_exec(&uf, &upgrade_fd);
	if (upgrade_pid == -1) {
		upgrade_pid = 0;
		master_upgrade_fail("cannot start the new master");
		return;
	}
	log_info("upgrade: new master %ld started", (long)upgrade_pid);
	upgrade_deadline = util_now_ms() + UPGRADE_TIMEOUT * 1000LL;
}

/* The new master wrote that it is ready, or its pipe closed. */
static void
master_upgrade_io(void)
{
	ssize_t	 n;
	char	 c;

	n = read(upgrade_fd, &c, 1);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n != 1 || c != 'r') {
		master_upgrade_fail("the new master exited before it was "
		    "ready");
		return;
	}
	(void)close(upgrade_fd);
	upgrade_fd = -1;
	master_upgrade_tickets();
	score_count(SC_UPGRADE_OK);
	log_info("upgrade: new master %ld is ready", (long)upgrade_pid);
	/* systemd (NotifyAccess=main) hears from the new one from now on. */
	systemd_notify("MAINPID=%ld", (long)upgrade_pid);
	master_shutdown(1);
}

static void
master_upgrade_timer(long long now)
{
	char	 why[64];

	if (upgrade_fd == -1 || now < upgrade_deadline)
		return;
	(void)snprintf(why, sizeof(why), "the new master was not ready "
	    "within %d seconds", UPGRADE_TIMEOUT);
	master_upgrade_fail(why);
}

/*
 * systemd's STATUS=, a one-line summary: with READY=1, and when it has
 * changed, every STATUS_INTERVAL seconds.
 */
static void
master_notify_status(const char *also)
{
	char		 line[sizeof(status_last)];
	int		 idle, busy;

	/* Draining after an upgrade, this is no longer systemd's MAINPID. */
	if (systemd_notify_socket() == NULL || quitting)
		return;
	pool_tally(&idle, &busy);
	(void)snprintf(line, sizeof(line), "%d sessions, %d idle children, "
	    "%llu messages accepted", busy, idle, score_get(SC_MSG_2XX));
	status_next = util_now_ms() + STATUS_INTERVAL * 1000LL;
	if (*also == '\0' && strcmp(line, status_last) == 0)
		return;
	(void)strlcpy(status_last, line, sizeof(status_last));
	systemd_notify("%sSTATUS=%s", also, line);
}

/*
 * Once, when the pool is first up: tell the master we replace, or
 * systemd.
 */
static void
master_ready(void)
{
	if (ready_sent)
		return;
	ready_sent = 1;
	if (inherited.uf_ready != -1) {
		upgrade_ready(&inherited);
		log_info("upgrade: ready; the old master stops accepting");
		if (master_pidfile_path() != NULL)
			master_pidfile(master_pidfile_path());
		master_pidfile_old();
		master_drop_now();
		/*
		 * systemd (NotifyAccess=main) takes our notes once the old
		 * master has named us MAINPID, on reading this "ready".
		 */
		status_next = util_now_ms() + STATUS_INTERVAL * 1000LL;
	} else
		master_notify_status("READY=1\n");
}

/* The handlers' wake-up bytes: the flags say what happened. */
static void
master_sigpipe(void)
{
	char	 buf[64];

	while (read(sigpipe[0], buf, sizeof(buf)) > 0)
		;
}

static void
master_signals(void)
{
	if (sig_chld) {
		sig_chld = 0;
		pool_reap();
	}
	if (sig_term) {
		sig_term = 0;
		if (!quitting)
			master_shutdown(0);
	}
	if (sig_hup) {
		sig_hup = 0;
		if (!quitting) {
			systemd_notify("RELOADING=1\nMONOTONIC_USEC=%lld",
			    util_now_ms() * 1000);
			master_reload();
			master_notify_status("READY=1\n");
		}
	}
	if (sig_usr2) {
		sig_usr2 = 0;
		master_upgrade();
	}
}

/*
 * The poll loop.
 */

static void
master_pollfd(size_t *n, int fd, struct listener *l, int lidx, int fidx,
    struct child *ch)
{
	if (*n == pcap) {
		pcap = pcap == 0 ? 64 : pcap * 2;
		pfds = xreallocarray(pfds, pcap, sizeof(*pfds));
		prefs = xreallocarray(prefs, pcap, sizeof(*prefs));
	}
	pfds[*n].fd = fd;
	pfds[*n].events = POLLIN;
	pfds[*n].revents = 0;
	prefs[*n].pr_listener = l;
	prefs[*n].pr_lidx = lidx;
	prefs[*n].pr_fidx = fidx;
	prefs[*n].pr_child = ch;
	prefs[*n].pr_bold = NULL;
	prefs[*n].pr_control = PC_NONE;
	(*n)++;
}

/* A broker's socket, for when it has room for a child's end (bq_ready). */
static void
master_pollfd_broker(size_t *n, int fd, struct bold *bo)
{
	master_pollfd(n, fd, NULL, -1, -1, NULL);
	pfds[*n - 1].events = POLLOUT;
	prefs[*n - 1].pr_control = PC_BROKER;
	prefs[*n - 1].pr_bold = bo;
}

/* The current broker's socket while ends wait for it, and the old ones'. */
static void
master_pollset_broker(size_t *n)
{
	struct bold	*bo;

	if (!TAILQ_EMPTY(&bwait) && broker_ctl != -1)
		master_pollfd_broker(n, broker_ctl, NULL);
	TAILQ_FOREACH(bo, &bolds, bo_entry)
		master_pollfd_broker(n, bo->bo_ctl, bo);
}

/* The control socket and its clients, which the master serves too. */
static void
master_pollset_control(size_t *n, long long now)
{
	short	 events;
	int	 i, fd;

	if ((fd = control_listen_fd(now)) != -1) {
		master_pollfd(n, fd, NULL, -1, -1, NULL);
		prefs[*n - 1].pr_control = PC_LISTEN;
	}
	for (i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if ((fd = control_client_fd(i, &events)) == -1)
			continue;
		master_pollfd(n, fd, NULL, -1, -1, NULL);
		pfds[*n - 1].events = events;
		prefs[*n - 1].pr_control = i;
	}
}

/*
 * Listeners are left out while accept() is out of resources, or while
 * no child could take a connection without a fork the back-off forbids.
 */
static int
master_accepting(long long now)
{
	int	 idle, active, dying;

	if (quitting || now < accept_after)
		return 0;
	pool_count(&idle, &active, &dying);
	return idle > 0 || active >= conf->c_lim.lim_maxclients ||
	    now >= spawn_after;
}

/*
 * The listeners in the epoll set while connections can be taken, out of
 * it otherwise (and before a reload or shutdown moves or closes them).
 */
static void
master_listen_sync(int on)
{
	struct listener	*l;
	size_t		 k;
	int		 lidx = 0, i;

	if (on == ep_listening)
		return;
	ep_listening = on;
	if (!on) {
		for (k = 0; k < nlrefs; k++)
			master_epoll(EPOLL_CTL_DEL, lrefs[k].pr_listener->
			    l_fds[lrefs[k].pr_fidx], NULL);
		nlrefs = 0;
		return;
	}
	free(lrefs);
	lrefs = xcalloc(conf->c_nlisteners * LISTENER_MAXFD + 1,
	    sizeof(*lrefs));
	TAILQ_FOREACH(l, &conf->c_listeners, l_entry) {
		for (i = 0; i < l->l_nfds; i++) {
			lrefs[nlrefs].pr_listener = l;
			lrefs[nlrefs].pr_lidx = lidx;
			lrefs[nlrefs].pr_fidx = i;
			lrefs[nlrefs].pr_control = PC_NONE;
			master_epoll(EPOLL_CTL_ADD, l->l_fds[i],
			    &lrefs[nlrefs++]);
		}
		lidx++;
	}
}

static size_t
master_pollset(long long now)
{
	size_t		 n = 0;

	master_pollfd(&n, sigpipe[0], NULL, -1, -1, NULL);
	master_pollfd(&n, epfd, NULL, -1, -1, NULL);
	master_listen_sync(master_accepting(now));
	master_pollset_control(&n, now);
	if (upgrade_fd != -1) {
		master_pollfd(&n, upgrade_fd, NULL, -1, -1, NULL);
		prefs[n - 1].pr_control = PC_UPGRADE;
	}
	master_pollset_broker(&n);
	return n;
}

/* Milliseconds to the next timer, or -1 for none. */
static int
master_timeout(long long now)
{
	long long	 t = -1, at[9];
	int		 i;

	at[0] = quitting ? quit_deadline : 0;
	at[1] = accept_after;
	at[2] = spawn_after;
	at[3] = control_expire(now);
	at[4] = upgrade_fd != -1 ? upgrade_deadline : 0;
	at[5] = systemd_notify_socket() != NULL ? status_next : 0;
	at[6] = tickets_at;
	at[7] = broker_pid == -1 ? broker_after : 0;
	at[8] = shrink_at;
	for (i = 0; i < 9; i++) {
		if (at[i] <= now)
			continue;
		if (t == -1 || at[i] - now < t)
			t = at[i] - now;
	}
	return t > INT_MAX ? INT_MAX : (int)t;
}

/*
 * What the epoll set has: children first, so that those that became
 * idle take the connections waiting on the listeners.
 */
static void
master_events(void)
{
	struct epoll_event	 ev[MASTER_EVENTS];
	struct pollref		*ref;
	int			 i, n;

	if ((n = epoll_wait(epfd, ev, MASTER_EVENTS, 0)) == -1) {
		if (errno != EINTR)
			fatal("epoll_wait");
		return;
	}
	for (i = 0; i < n; i++) {
		ref = ev[i].data.ptr;
		if (ref->pr_child != NULL)
			pool_report(ref->pr_child);
	}
	for (i = 0; i < n && !quitting; i++) {
		ref = ev[i].data.ptr;
		if (ref->pr_child == NULL && ep_listening)
			master_accept_all(ref->pr_listener, ref->pr_lidx,
			    ref->pr_fidx);
	}
}

static void
master_loop(void)
{
	long long	 now;
	size_t		 i, n;

	for (;;) {
		master_signals();
		if (quitting && master_shutdown_done())
			return;
		master_tickets(util_now_ms());
		master_broker_check();
		pool_topup();
		master_ready();
		now = util_now_ms();
		pool_shrink_timer(now);
		master_upgrade_timer(now);
		if (now >= status_next)
			master_notify_status("");
		n = master_pollset(now);
		if (pool_notify())
			continue;
		if (poll(pfds, n, master_timeout(now)) == -1) {
			if (errno != EINTR)
				fatal("poll");
			continue;
		}
		if (pfds[0].revents != 0)
			master_sigpipe();
		if (pfds[1].revents != 0)
			master_events();
		for (i = 2; i < n; i++) {
			if (pfds[i].revents == 0)
				continue;
			if (prefs[i].pr_control == PC_UPGRADE)
				master_upgrade_io();
			else if (prefs[i].pr_control == PC_BROKER)
				bq_ready(prefs[i].pr_bold);
			else if (prefs[i].pr_control == PC_LISTEN)
				control_accept();
			else
				control_client_io(prefs[i].pr_control);
		}
	}
}

/*
 * The status `smtpd -s` prints: the master's own lines, then the
 * sessions and totals of the scoreboard.
 */
static void
master_status(FILE *fp, int verbose)
{
	struct tm	 tm;
	char		 when[32];
	long long	 up = (long long)time(NULL) - score_started();
	int		 idle, busy;

	pool_tally(&idle, &busy);
	fprintf(fp, "smtpd %s, pid %ld, up %lldd %02lld:%02lld:%02lld%s\n",
	    SMTPD_VERSION, (long)getpid(), up / 86400, up / 3600 % 24,
	    up / 60 % 60, up % 60, quitting ? ", shutting down" : "");
	(void)strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S",
	    localtime_r(&conf_loaded, &tm));
	fprintf(fp, "config %s, loaded %s\n", conffile != NULL ? conffile :
	    "(built-in default)", when);
	fprintf(fp, "children %d idle, %d busy\n", idle, busy);
	control_print_sessions(fp, verbose);
}

/* The control socket; a failing default one is no reason to stop. */
static void
master_control(void)
{
	const char	*path;

	path = conf->c_control != NULL ? conf->c_control : DEF_CONTROL;
	if (inherited.uf_control != -1 &&
	    !util_unix_path_is(inherited.uf_control, path))
		master_drop_later(inherited.uf_control);
	if (control_open(path, inherited.uf_control, master_status) == -1 &&
	    conf->c_control != NULL)
		fatalx("control %s: cannot listen", path);
}

/*
 * Startup.
 */

static struct config *
master_config(const char *file)
{
	struct config	*c;
	char		*abs;

	if (file == NULL && access(SMTPD_CONFIG, F_OK) == 0)
		file = SMTPD_CONFIG;
	if (file == NULL)
		return config_builtin();
	if ((c = load_config(file)) == NULL)
		return NULL;
	/*
	 * The passwd file was read to check it; only the broker keeps it
	 * (it reads it again), so that no session child inherits a hash.
	 */
	auth_config_free(c);
	/* Reloads must find the file after daemon() went to "/". */
	if ((abs = realpath(file, NULL)) != NULL)
		conffile = abs;
	else
		conffile = xstrdup(file);
	return c;
}

/* smtpd -s: the control socket the configuration names. */
static int
master_query(const char *file, int verbose)
{
	struct config	*c = NULL;
	int		 rv;

	if (file == NULL && access(SMTPD_CONFIG, F_OK) == 0)
		file = SMTPD_CONFIG;
	if (file != NULL && (c = config_load(file)) == NULL)
		return 1;
	rv = control_query(c != NULL && c->c_control != NULL ?
	    c->c_control : DEF_CONTROL, verbose);
	config_free(c);
	return rv;
}

/*
 * The sessions ask the policy server from inside the chroot: a unix: path
 * there only outside it was meant for the real root.
 */
static void
master_check_policy_path(const struct config *c)
{
	const char	*path;
	char		 in[PATH_MAX];

	if (c->c_pol.po_server == NULL ||
	    strncmp(c->c_pol.po_server, "unix:", 5) != 0)
		return;
	path = c->c_pol.po_server + 5;
	if (snprintf(in, sizeof(in), "%s%s", c->c_chroot, path) <
	    (int)sizeof(in) && access(in, F_OK) == -1 &&
	    access(path, F_OK) == 0)
		warnx("%s: policy %s exists only outside the chroot %s; the "
		    "sessions look for it inside", c->c_file != NULL ?
		    c->c_file : "smtpd.conf", c->c_pol.po_server, c->c_chroot);
}

/*
 * The broker, which starts the delivery program and checkpassword, is
 * not chrooted: their paths mean what they mean outside the chroot.  One
 * that is there only inside was meant for the sessions' root.
 */
static void
master_check_paths(const struct config *c)
{
	const char	*prog[] = { NULL, NULL, NULL };
	char		 in[PATH_MAX];
	int		 i = 0;

	if (c->c_chroot == NULL)
		return;
	if (c->c_dlv.dl_mode == DELIVER_PROGRAM && c->c_dlv.dl_argv != NULL)
		prog[i++] = c->c_dlv.dl_argv[0];
	if (c->c_auth.au_backend == AUTH_CHECKPASSWORD &&
	    c->c_auth.au_argv != NULL)
		prog[i++] = c->c_auth.au_argv[0];
	for (i = 0; prog[i] != NULL; i++) {
		if (access(prog[i], F_OK) == 0)
			continue;
		if (snprintf(in, sizeof(in), "%s%s", c->c_chroot, prog[i]) <
		    (int)sizeof(in) && access(in, F_OK) == 0)
			warnx("%s: %s exists only inside the chroot %s; it is "
			    "started outside it", c->c_file != NULL ?
			    c->c_file : "smtpd.conf", prog[i], c->c_chroot);
	}
	master_check_policy_path(c);
}

/* Everything that can refuse to start, reported on stderr. */
static void
master_check(void)
{
	const char	*why;
	char		 err[512];

	if ((why = master_sink_refused(conf)) != NULL) {
		if (conf->c_file != NULL)
			errx(1, "%s: no \"deliver\" directive; %s", conf->c_file,
			    why);
		errx(1, "no %s; the built-in default configuration: %s",
		    SMTPD_CONFIG, why);
	}
	if (master_programs(conf, &run_uid, &run_gid, err, sizeof(err)) == -1 ||
	    master_pidfile_check(conf, err, sizeof(err)) == -1)
		errx(1, "%s", err);
	if (!as_root && conf->c_chroot != NULL)
		warnx("not started as root: chroot %s ignored",
		    conf->c_chroot);
	master_check_paths(conf);
}

/* Inherited sockets first (systemd's, the old master's), then bind. */
static void
master_listen(void)
{
	struct listener	*l;
	char		 err[512];
	int		 i, first, n;

	n = systemd_listen_fds(&first);
	for (i = 0; i < n; i++)
		if (listener_adopt(conf, first + i, 1, err, sizeof(err)) == -1)
			errx(1, "%s", err);
	for (i = 0; i < inherited.uf_nlisten; i++)
		if (listener_adopt(conf, inherited.uf_listen[i],
		    inherited.uf_activated[i], err, sizeof(err)) == -1)
			errx(1, "%s", err);
	TAILQ_FOREACH(l, &conf->c_listeners, l_entry)
		if (listener_bind(conf, l, err, sizeof(err)) == -1)
			errx(1, "%s", err);
}

/* Bound as root, then into the background with the sockets. */
static void
master_start(void)
{
	log_init(debug, LOG_MAIL);
	log_procinit("master");
	master_rlimit(conf);
	master_listen();
	master_control();
	score_init(inherited.uf_score);
	if (!os_sandbox_available())
		log_warnx("no seccomp: session children run without their "
		    "system call filter");
	sched_ours = os_sched_default();
	conf_loaded = time(NULL);
	/* Our parent, unless it died before we got here. */
	if (inherited.uf_ready != -1 && getppid() != 1)
		predecessor = getppid();
	/*
	 * A new master started by SIGUSR2 is in the background already;
	 * it ran where its predecessor was started, for a relative -f.
	 */
	if (!debug && inherited.uf_ready == -1 && daemon(0, 0) == -1)
		fatal("daemon");
	if (!debug && inherited.uf_ready != -1 && chdir("/") == -1)
		fatal("chdir /");
	/* After an upgrade, the pidfile is ours once we serve. */
	if (master_pidfile_path() != NULL && inherited.uf_ready == -1)
		master_pidfile(master_pidfile_path());
	master_signals_init();
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	master_tickets_timer();
	setproctitle("%s", "master");
	log_info("startup");
	master_broker();
}

static void
master_exit(void)
{
	if (pidfile != NULL && unlink(pidfile) == -1)
		log_warn("unlink %s", pidfile);
	control_close(1);
	log_info("exiting");
	/* The broker ends when its last program has. */
	if (broker_ctl != -1)
		(void)close(broker_ctl);
	load_release(conf);
	free(conffile);
	free(pidfile);
	free(pfds);
	free(prefs);
	exit(0);
}

int
main(int argc, char *argv[])
{
	const char	*file = NULL, *why;
	char		 err[512];
	int		 ch, check = 0, status = 0, verbose = 0;

	/* Before the configuration (and the key it names) is read. */
	if (os_nodump() == -1)
		errx(1, "prctl PR_SET_DUMPABLE: %s", strerror(errno));
	upgrade_save(argc, argv);
	setproctitle_init(argc, argv, environ);
	while ((ch = getopt(argc, argv, "df:nsv")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			file = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 's':
			status = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (status && (check || debug)))
		usage();
	if (status)
		exit(master_query(file, verbose));
	log_setverbose(verbose);
	systemd_init();
	upgrade_inherit(&inherited);
	/* Before the configuration, whose TLS load keeps keys it finds. */
	tickets_left = tls_ticket_import(inherited.uf_tickets, getppid());
	inherited.uf_tickets = -1;

	if ((conf = master_config(file)) == NULL)
		exit(1);
	as_root = geteuid() == 0;
	if (check) {
		checking = 1;
		/*
		 * Valid, but a start without -d would refuse it; under a
		 * service manager -d does not help.
		 */
		if ((why = master_sink_refused(conf)) != NULL &&
		    systemd_notify_socket() != NULL)
			errx(1, "%s: no \"deliver\" directive; %s",
			    conf->c_file != NULL ? conf->c_file : SMTPD_CONFIG,
			    why);
		if (why != NULL)
			warnx("warning: no \"deliver\" directive: a start "
			    "needs -d (the standard output sink)");
		master_check_paths(conf);
		if (master_programs(conf, &run_uid, &run_gid, err,
		    sizeof(err)) == -1 ||
		    master_pidfile_check(conf, err, sizeof(err)) == -1)
			errx(1, "%s", err);
		config_print(stdout, conf);
		exit(fflush(stdout) == 0 ? 0 : 1);
	}
	master_check();
	master_start();
	master_loop();
	master_exit();
}
