/*
 * broker.c: the delivery broker, forked by the master, never chrooted,
 * reading no network input.  Each session child has a SOCK_SEQPACKET
 * socket to it (the master makes the pair and passes the broker's end);
 * the child sends one request at a time, the message as a descriptor and
 * the envelope in the datagram (or, when large, in an anonymous file),
 * and the broker runs the delivery program as deliver-user (exec.c) and
 * answers with how it ended.  It also checks AUTH credentials on a few
 * worker processes of its own, the only processes that hold the passwd
 * file, and remembers which child authenticated as whom: that name, not
 * the child's word, is %{user}.
 * The child side of the exchange is here too, so one file owns the
 * protocol.
 */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <errno.h>
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
#include <unistd.h>

#include "smtpd.h"

#define BROKER_GROUPS_MAX	256	/* supplementary groups of a user */
#define BROKER_FD_RESERVE	16	/* descriptors kept for programs */
#define BROKER_WORKERS		3	/* AUTH checks at once */
#define BROKER_WORKER_SOON	1000	/* ms: a worker dead sooner never ran */
#define BROKER_WORKER_WAIT_MAX	60000	/* ms: longest wait to start it again */
#define BROKER_EVENTS		64	/* children's events read at once */
#define BROKER_LEFT_MS		1000	/* ms between looks at the left ones */
#define BROKER_CTL_BATCH	64	/* the master's messages read at once */

/* One session child, as the broker sees it. */
struct bclient {
	TAILQ_ENTRY(bclient)	 bc_entry;
	int			 bc_fd;
	struct bjob		*bc_job;	/* the delivery in flight */
	struct bauth		*bc_auth;	/* the AUTH check in flight */
	char			 bc_user[AUTH_FIELD_MAX]; /* it proved */
	long long		 bc_hold;	/* ms: a failed verdict is due */
	uint32_t		 bc_hold_id;	/* the request it answers */
	int			 bc_watched;	/* in the epoll set */
};
TAILQ_HEAD(bclientlist, bclient);

/*
 * One running program; bj_client is NULL once its child is gone or was
 * answered before the program was reaped (bj_released).
 */
struct bjob {
	TAILQ_ENTRY(bjob)	 bj_entry;
	struct bclient		*bj_client;
	uint32_t		 bj_id;
	int			 bj_released;
	struct exec_job		 bj_exec;
};
TAILQ_HEAD(bjoblist, bjob);

/* One AUTH check; ba_client is NULL once its child is gone. */
struct bauth {
	TAILQ_ENTRY(bauth)	 bq_entry;
	struct bclient		*bq_client;
	struct broker_auth	 bq_req;
};
TAILQ_HEAD(bauthlist, bauth);

/* An AUTH worker: a process of the sessions' user with the passwd file. */
struct bworker {
	pid_t			 bw_pid;
	int			 bw_fd;		/* -1: none */
	struct bauth		*bw_auth;	/* the check it runs */
	long long		 bw_started;	/* ms of its last start */
	long long		 bw_again;	/* ms of the next; 0: none due */
	int			 bw_wait;	/* ms waited for that one */
};

/* What a poll entry of the broker stands for; none: the epoll set. */
struct bpollref {
	struct bjob		*bp_job;
	struct bworker		*bp_worker;
};

/* Room for the control message of a datagram's two descriptors. */
union broker_cmsg {
	struct cmsghdr	 hdr;
	char		 buf[CMSG_SPACE(2 * sizeof(int))];
};

/* The envelope fields in the order the request file holds them. */
enum {
	BEF_SENDER, BEF_ADDR, BEF_PORT, BEF_HELO, BEF_TLS, BEF_ID,
	BEF_NFIXED
};

static const size_t broker_field_max[BEF_NFIXED] = {
	BROKER_FIELD_MAX,
	sizeof(((struct client *)0)->ci_addr),
	sizeof(((struct client *)0)->ci_port),
	sizeof(((struct client *)0)->ci_helo),
	sizeof(((struct client *)0)->ci_tls),
	MSG_ID_LEN
};

static const struct config	*bconf;
static int			 bctl = -1;
static int			 bepfd = -1;	/* children that may ask */
static struct bclientlist	 bclients =
				    TAILQ_HEAD_INITIALIZER(bclients);
static struct bjoblist		 bjobs = TAILQ_HEAD_INITIALIZER(bjobs);
static int			 breleased;	/* bjobs answered, not reaped */
static struct bauthlist		 bauths = TAILQ_HEAD_INITIALIZER(bauths);
static struct bworker		 bworkers[BROKER_WORKERS];
/* Checkpassword programs killed and not gone (BR_LEFT). */
struct bleft {
	int			 bl_pidfd;
	pid_t			 bl_pid;
};
static struct bleft		*bleft;
static int			 bnleft, bleftcap;
static long long		 bleft_next;	/* ms of the next look */
static int			 bnholds;	/* clients with bc_hold set */
static const struct exec_ident	*bsessions;	/* NULL: as we are */
static struct exec_ident	*bidents;	/* per listener */
static int			*bidents_ok;
static long long		 bfdmax;	/* RLIMIT_NOFILE */

/* In a session child: its socket to the broker, the last request id. */
static int			 broker_sock = -1;
static uint32_t			 broker_seq;
/* Since the last BR_FORGET, AUTH was asked: the broker may hold a user. */
static int			 broker_asked;

/*
 * The request's envelope, parsed in place: BEF_NFIXED strings, then
 * one per recipient, each ending in NUL, nothing after the last.  Every
 * string is bounded and checked as the session bounds and checks it; the
 * values go into argv and the environment as they are, as the session
 * would have put them.  Returns 0, or -1 with *why.
 */
int
broker_env_parse(char *buf, size_t len, size_t nrcpts, struct broker_env *be,
    const char **why)
{
	const char	*f[BEF_NFIXED];
	char		*p = buf, *end = buf + len, *nul;
	size_t		 i, max;

	memset(be, 0, sizeof(*be));
	*why = "bad recipient count";
	if (nrcpts == 0 || nrcpts > MAX_RCPT)
		return -1;
	be->be_rcpts = xreallocarray(NULL, nrcpts, sizeof(*be->be_rcpts));
	for (i = 0; i < BEF_NFIXED + nrcpts; i++) {
		max = i < BEF_NFIXED ? broker_field_max[i] : BROKER_FIELD_MAX;
		*why = "short envelope";
		if ((nul = memchr(p, '\0', (size_t)(end - p))) == NULL)
			goto fail;
		*why = "envelope field too long";
		if ((size_t)(nul - p) >= max)
			goto fail;
		/*
		 * No control character, and no leading '-' (smtpd.8): each
		 * may become a word of its own in the program's argv
		 * (%{sender}, %{client}, %{id}, ...).  A session refuses
		 * such names from its client, and the address, port, TLS
		 * cipher and message id never look so: a child that sends
		 * one is not trusted to have checked anything.
		 */
		*why = "envelope field a session would have refused";
		if (util_arg_unsafe(p))
			goto fail;
		if (i < BEF_NFIXED)
			f[i] = p;
		else
			be->be_rcpts[i - BEF_NFIXED] = p;
		p = nul + 1;
	}
	*why = "trailing octets in the envelope";
	if (p != end)
		goto fail;
	be->be_sender = f[BEF_SENDER];
	be->be_addr = f[BEF_ADDR];
	be->be_port = f[BEF_PORT];
	be->be_helo = f[BEF_HELO];
	be->be_tls = f[BEF_TLS];
	be->be_id = f[BEF_ID];
	be->be_nrcpts = nrcpts;
	return 0;
 fail:
	free(be->be_rcpts);
	be->be_rcpts = NULL;
	return -1;
}

/* The envelope of one run in a memory stream; its length in *lenp. */
char *
broker_env_encode(const struct client *cl, const struct envelope *e,
    char *const *rcpts, size_t nrcpts, size_t *lenp)
{
	const char	*f[BEF_NFIXED];
	FILE		*fp;
	char		*buf;
	size_t		 i;

	f[BEF_SENDER] = e->e_sender;
	f[BEF_ADDR] = cl->ci_addr;
	f[BEF_PORT] = cl->ci_port;
	f[BEF_HELO] = cl->ci_helo;
	f[BEF_TLS] = cl->ci_tls;
	f[BEF_ID] = e->e_id;
	if ((fp = open_memstream(&buf, lenp)) == NULL)
		fatal("open_memstream");
	for (i = 0; i < BEF_NFIXED; i++)
		fwrite(f[i], 1, strlen(f[i]) + 1, fp);
	for (i = 0; i < nrcpts; i++)
		fwrite(rcpts[i], 1, strlen(rcpts[i]) + 1, fp);
	if (fclose(fp) == EOF)
		fatal("open_memstream");
	return buf;
}

/*
 * The fixed part of a request: its size, type, the descriptors that came
 * with it, the bounds of its counts.  Returns 0, or -1 with *why.
 */
int
broker_msg_check(const struct broker_msg *bm, size_t len, int nfds,
    int nlisteners, const char **why)
{
	*why = "bad request size";
	if (len < sizeof(*bm))
		return -1;
	*why = "unknown request type";
	if (bm->bm_type != BR_DELIVER)
		return -1;
	*why = "request without its descriptors";
	if (nfds != 1 && nfds != 2)
		return -1;
	*why = "no such listener";
	if (bm->bm_listener < 0 || bm->bm_listener >= nlisteners)
		return -1;
	*why = "bad recipient count";
	if (bm->bm_nrcpts == 0 || bm->bm_nrcpts > MAX_RCPT)
		return -1;
	*why = "envelope too large";
	if (bm->bm_envlen > (size_t)(BEF_NFIXED + bm->bm_nrcpts) *
	    BROKER_FIELD_MAX)
		return -1;
	/* One descriptor: the envelope is the rest of the datagram. */
	*why = "bad request size";
	if (nfds == 1 ? bm->bm_envlen > BROKER_ENV_INLINE ||
	    len != sizeof(*bm) + bm->bm_envlen : len != sizeof(*bm))
		return -1;
	return 0;
}

/*
 * Why the message descriptor fd of a request is not one the broker gives
 * a program, or NULL: a regular file that the child made (uid, the
 * sessions' user), open for reading.  A child taken over could send
 * instead a descriptor opened with O_PATH, which needs no permission on
 * the file, of a file it cannot read (the mail store of deliver-user): a
 * program that opens /dev/stdin would open that file again with its own
 * rights, and deliver it.
 */
const char *
broker_msg_file(int fd, uid_t uid)
{
	struct stat	 st;
	int		 fl;

	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		return "the message is not a regular file";
	if ((fl = fcntl(fd, F_GETFL)) == -1 || (fl & O_PATH) != 0 ||
	    ((fl & O_ACCMODE) != O_RDONLY && (fl & O_ACCMODE) != O_RDWR))
		return "the message is not open for reading";
	if (st.st_uid != uid)
		return "the message is not a file of the sessions' user";
	return NULL;
}

/*
 * Why a request that arrived on fd at now is not run, or NULL.  Its child
 * stops waiting BROKER_SLACK seconds after the program's deliver-timeout
 * (the client is told 451 and sends the message again), or is gone: a
 * broker that was stalled must not deliver such a message later.
 */
const char *
broker_msg_late(const struct broker_msg *bm, int fd, long long now)
{
	struct pollfd	 pfd;

	if (now > bm->bm_startby)
		return "it came too late to be run";
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP))
		return "its child is gone";
	return NULL;
}

/*
 * Who runs programs for listener l: its deliver-user, else the global
 * one, else the default, which falls back to DEF_USER_FALLBACK when the
 * system has no such user.  Never uid 0.  Returns 0, or -1 with err.
 */
int
broker_ident(const struct config *c, const struct listener *l,
    struct exec_ident *id, char *err, size_t errlen)
{
	const char	*name;
	struct passwd	*pw;
	gid_t		 groups[BROKER_GROUPS_MAX];
	int		 n = BROKER_GROUPS_MAX;

	memset(id, 0, sizeof(*id));
	name = l != NULL && l->l_deliver_user != NULL ? l->l_deliver_user :
	    c->c_dlv.dl_user;
	if (name == NULL && (pw = getpwnam(DEF_DELIVER_USER)) == NULL)
		name = DEF_USER_FALLBACK;
	else if (name == NULL)
		name = DEF_DELIVER_USER;
	if ((pw = getpwnam(name)) == NULL) {
		snprintf(err, errlen, "deliver-user %s: no such user", name);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "deliver-user %s: has uid 0; refusing "
		    "to run programs as root", name);
		return -1;
	}
	if (getgrouplist(name, pw->pw_gid, groups, &n) == -1) {
		snprintf(err, errlen, "deliver-user %s: more than %d groups",
		    name, BROKER_GROUPS_MAX);
		return -1;
	}
	id->ei_change = 1;
	id->ei_uid = pw->pw_uid;
	id->ei_gid = pw->pw_gid;
	id->ei_groups = xreallocarray(NULL, (size_t)n, sizeof(gid_t));
	memcpy(id->ei_groups, groups, (size_t)n * sizeof(gid_t));
	id->ei_ngroups = n;
	id->ei_home = xstrdup(pw->pw_dir);
	id->ei_name = xstrdup(name);
	return 0;
}

void
broker_ident_free(struct exec_ident *id)
{
	free(id->ei_groups);
	free(id->ei_home);
	free(id->ei_name);
	memset(id, 0, sizeof(*id));
}

/* Every listener's user; not started as root, programs run as we do. */
static void
broker_idents(void)
{
	const struct listener	*l;
	char			 err[256];
	int			 i = 0, root = geteuid() == 0;

	bidents = xcalloc((size_t)bconf->c_nlisteners + 1, sizeof(*bidents));
	bidents_ok = xcalloc((size_t)bconf->c_nlisteners + 1, sizeof(int));
	TAILQ_FOREACH(l, &bconf->c_listeners, l_entry) {
		if (!root)
			bidents_ok[i] = 1;
		else if (broker_ident(bconf, l, &bidents[i], err,
		    sizeof(err)) == -1)
			log_warnx("listener %s: %s", l->l_name, err);
		else
			bidents_ok[i] = 1;
		i++;
	}
}

/* Descriptors that came with a message, as many as fit in fds. */
static int
broker_cmsg_fds(struct msghdr *msg, int *fds, int max)
{
	struct cmsghdr	*cmsg;
	size_t		 i, n;
	int		 got = 0, fd;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int),
			    sizeof(fd));
			if (got < max)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	return got;
}

/* A message of one buffer, no control data yet. */
static void
broker_msghdr(struct msghdr *msg, struct iovec *iov, void *buf, size_t len)
{
	memset(msg, 0, sizeof(*msg));
	iov->iov_base = buf;
	iov->iov_len = len;
	msg->msg_iov = iov;
	msg->msg_iovlen = 1;
}

/* One datagram and up to two descriptors; the length, 0 at EOF, or -1. */
static ssize_t
broker_recv(int fd, void *buf, size_t len, int *fds, int *nfds)
{
	union broker_cmsg	 cm;
	struct msghdr	 msg;
	struct iovec	 iov;
	ssize_t		 n;

	broker_msghdr(&msg, &iov, buf, len);
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	*nfds = 0;
	if ((n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) == -1)
		return -1;
	*nfds = broker_cmsg_fds(&msg, fds, 2);
	/* A longer message than ours is not ours: too long by one. */
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return (ssize_t)len + 1;
	return n;
}

/* A datagram with descriptors; 0 or -1. */
static int
broker_send(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
	union broker_cmsg	 cm;
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;

	broker_msghdr(&msg, &iov, (void *)(uintptr_t)buf, len);
	if (nfds > 0) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, (size_t)nfds * sizeof(int));
	}
	if (sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
		return -1;
	return 0;
}

/*
 * The master hands the broker's end of a new child's socket over (EOF:
 * the master is gone or replaced us at a reload, so no new child comes).
 */
int
broker_pass(int sock, int fd)
{
	uint32_t	 type = BR_CLIENT;

	return broker_send(sock, &type, sizeof(type), &fd, fd == -1 ? 0 : 1);
}

/*
 * The children's sockets are in an epoll set, each while its child may
 * send a request (none in flight): a poll() of every child's socket at
 * each wake-up cost the broker hundreds of microseconds a delivery with
 * a thousand children.  Called whenever bc_job or bc_auth changes.
 */
static void
broker_client_watch(struct bclient *bc)
{
	struct epoll_event	 ev;
	int			 want;

	want = bc->bc_job == NULL && bc->bc_auth == NULL && bc->bc_hold == 0;
	if (want == bc->bc_watched)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = bc;
	if (epoll_ctl(bepfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, bc->bc_fd,
	    &ev) == -1)
		fatal("epoll_ctl");
	bc->bc_watched = want;
}

static void
broker_client_new(int fd)
{
	struct bclient	*bc;

	bc = xcalloc(1, sizeof(*bc));
	bc->bc_fd = fd;
	TAILQ_INSERT_TAIL(&bclients, bc, bc_entry);
	broker_client_watch(bc);
}

/* One message of the master's; -1 when there is none to read. */
static int
broker_ctl_one(void)
{
	uint32_t	 type;
	ssize_t		 n;
	int		 fds[2], nfds, i;

	n = broker_recv(bctl, &type, sizeof(type), fds, &nfds);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return -1;
	if (n <= 0) {
		close(bctl);
		bctl = -1;
		return -1;
	}
	if (n != sizeof(type) || type != BR_CLIENT || nfds != 1) {
		log_warnx("master: unexpected message dropped");
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		return 0;
	}
	/*
	 * Children that took every descriptor would leave none to run
	 * their programs: one too many is refused, and exits (smtpd.c).
	 */
	if (fds[0] >= bfdmax - BROKER_FD_RESERVE) {
		log_warnx("no room for another child: %s (%d descriptors "
		    "are kept for programs)", strerror(EMFILE),
		    BROKER_FD_RESERVE);
		close(fds[0]);
		return 0;
	}
	broker_client_new(fds[0]);
	return 0;
}

/*
 * New children, as many as wait (up to BROKER_CTL_BATCH a round), so
 * that the master's socket has room for the next ones (what does not
 * fit, the master queues).
 */
static void
broker_ctl_read(void)
{
	int	 i;

	for (i = 0; i < BROKER_CTL_BATCH && bctl != -1; i++)
		if (broker_ctl_one() == -1)
			break;
}

static void
broker_client_free(struct bclient *bc)
{
	if (bc->bc_hold != 0)
		bnholds--;
	if (bc->bc_job != NULL)
		bc->bc_job->bj_client = NULL;
	if (bc->bc_auth != NULL)
		bc->bc_auth->bq_client = NULL;
	/* Before the close: a worker forked meanwhile may hold a copy. */
	if (bc->bc_watched && epoll_ctl(bepfd, EPOLL_CTL_DEL, bc->bc_fd,
	    NULL) == -1)
		fatal("epoll_ctl");
	close(bc->bc_fd);
	TAILQ_REMOVE(&bclients, bc, bc_entry);
	free(bc);
}

/*
 * The answer to request id: how the program ended, what it said.  Only
 * the octets of output there are go over the socket.
 */
static void
broker_answer(struct bclient *bc, uint32_t id, const struct exec_job *ej)
{
	static struct broker_result	 br;
	size_t				 outlen, errlen;

	outlen = ej->ej_out.eo_len;
	errlen = ej->ej_err.eo_len;
	memset(&br, 0, BROKER_RESULT_HDR);
	br.br_type = BR_RESULT;
	br.br_id = id;
	br.br_exited = ej->ej_exited;
	br.br_status = ej->ej_status;
	br.br_timedout = ej->ej_timedout;
	br.br_error = ej->ej_error;
	br.br_outlen = (uint32_t)outlen;
	br.br_errlen = (uint32_t)errlen;
	memcpy(br.br_text, ej->ej_out.eo_buf, outlen);
	memcpy(br.br_text + outlen, ej->ej_err.eo_buf, errlen);
	if (broker_send(bc->bc_fd, &br, BROKER_RESULT_HDR + outlen + errlen,
	    NULL, 0) == -1) {
		log_warn("answer to a child");
		broker_client_free(bc);
	}
}

/* The answer to a request that started nothing. */
static void
broker_refuse(struct bclient *bc, uint32_t id, int error)
{
	struct exec_job	 ej;

	exec_init(&ej);
	ej.ej_error = error;
	broker_answer(bc, id, &ej);
}

/* A whole envelope file, NUL-terminated; NULL on a short read. */
static char *
broker_env_read(int fd, size_t len)
{
	struct stat	 st;
	char		*buf;
	size_t		 off = 0;
	ssize_t		 n;

	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size != (off_t)len)
		return NULL;
	buf = xmalloc(len + 1);
	while (off < len) {
		if ((n = pread(fd, buf + off, len - off, (off_t)off)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			free(buf);
			return NULL;
		}
		off += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* Start the program of a checked request; the answer's errno, or 0. */
static int
broker_run(struct bjob *bj, const struct broker_msg *bm, int msgfd,
    const struct broker_env *be, const char *user)
{
	struct exec_spec	 es;
	struct client		 cl;
	struct envelope		 e;
	char			**argv, **envp;
	int			 rv;

	memset(&cl, 0, sizeof(cl));
	memset(&e, 0, sizeof(e));
	strlcpy(cl.ci_addr, be->be_addr, sizeof(cl.ci_addr));
	strlcpy(cl.ci_port, be->be_port, sizeof(cl.ci_port));
	strlcpy(cl.ci_helo, be->be_helo, sizeof(cl.ci_helo));
	/* What this child's AUTH proved, whatever the child says. */
	strlcpy(cl.ci_user, user, sizeof(cl.ci_user));
	strlcpy(cl.ci_tls, be->be_tls, sizeof(cl.ci_tls));
	e.e_sender = (char *)(uintptr_t)be->be_sender;
	strlcpy(e.e_id, be->be_id, sizeof(e.e_id));
	e.e_body8 = (bm->bm_flags & BMF_BODY8) != 0;
	e.e_smtputf8 = (bm->bm_flags & BMF_SMTPUTF8) != 0;
	argv = deliver_argv(bconf, &cl, &e, be->be_rcpts, be->be_nrcpts);
	envp = deliver_envp(&cl, &e, be->be_rcpts, be->be_nrcpts);
	memset(&es, 0, sizeof(es));
	es.es_argv = argv;
	es.es_envp = envp;
	es.es_stdin = msgfd;
	es.es_fd3 = -1;
	es.es_capture = 1;
	es.es_timeout = bconf->c_dlv.dl_timeout * 1000;
	es.es_ident = bidents[bm->bm_listener].ei_change ?
	    &bidents[bm->bm_listener] : NULL;
	exec_init(&bj->bj_exec);
	rv = exec_start(&bj->bj_exec, &es) == -1 ? bj->bj_exec.ej_error : 0;
	if (rv == 0)
		progs_started(bj->bj_exec.ej_pid);
	deliver_free(argv);
	deliver_free(envp);
	return rv;
}

/*
 * The envelope of a checked request, NUL-terminated: after its header
 * (one descriptor came with it), or in its second descriptor's file.
 */
static char *
broker_env(const struct broker_msg *bm, const int *fds, int nfds)
{
	char	*buf;

	if (nfds == 2)
		return broker_env_read(fds[1], bm->bm_envlen);
	buf = xmalloc((size_t)bm->bm_envlen + 1);
	memcpy(buf, (const char *)(bm + 1), bm->bm_envlen);
	buf[bm->bm_envlen] = '\0';
	return buf;
}

/* A checked request: its envelope, then the program; the errno, or 0. */
static int
broker_start(struct bjob *bj, const struct broker_msg *bm, const int *fds,
    int nfds, const char *user)
{
	struct broker_env	 be;
	const char		*why;
	char			*buf;
	int			 rv;

	if (bconf->c_dlv.dl_mode != DELIVER_PROGRAM ||
	    !bidents_ok[bm->bm_listener])
		return EPERM;
	if ((why = broker_msg_file(fds[0], bsessions != NULL ?
	    bsessions->ei_uid : geteuid())) != NULL) {
		log_warnx("request: %s", why);
		return EINVAL;
	}
	if ((buf = broker_env(bm, fds, nfds)) == NULL) {
		log_warnx("request: unreadable envelope");
		return EINVAL;
	}
	if (broker_env_parse(buf, bm->bm_envlen, bm->bm_nrcpts, &be,
	    &why) == -1) {
		log_warnx("request: %s", why);
		free(buf);
		return EINVAL;
	}
	rv = broker_run(bj, bm, fds[0], &be, user);
	free(be.be_rcpts);
	free(buf);
	return rv;
}

/*
 * AUTH: checks on BROKER_WORKERS processes of the sessions' user, so that
 * crypt(3), slow on purpose, runs in parallel, and a flood from one child
 * (one check at a time each) cannot hold up the others.
 */

/* The verdict to the child that asked; AUTH_OK makes it that user. */
static void
broker_auth_answer(struct bclient *bc, uint32_t id, int result)
{
	struct broker_verdict	 bv;

	memset(&bv, 0, sizeof(bv));
	bv.bv_type = BR_VERDICT;
	bv.bv_id = id;
	bv.bv_result = result;
	if (broker_send(bc->bc_fd, &bv, sizeof(bv), NULL, 0) == -1) {
		log_warn("answer to a child");
		broker_client_free(bc);
	}
}

/* A poll() timeout: the sooner of *timeout and ms (-1: none). */
static void
broker_sooner(int *timeout, int ms)
{
	if (ms != -1 && (*timeout == -1 || ms < *timeout))
		*timeout = ms;
}

/*
 * A failed check is answered auth failure-delay later (the pause before
 * each 535, smtpd.conf.5), and its child's socket is not read meanwhile:
 * the pause is the broker's, so that a child taken over, which could skip
 * its own, tries passwords no faster than a client does.
 */
static void
broker_auth_done(struct bauth *a, int result)
{
	struct bclient	*bc = a->bq_client;

	if (bc != NULL) {
		bc->bc_auth = NULL;
		if (result == AUTH_FAILED && bconf->c_auth.au_delay > 0) {
			bc->bc_hold = util_now_ms() +
			    bconf->c_auth.au_delay * 1000LL;
			bc->bc_hold_id = a->bq_req.ba_id;
			bnholds++;
		}
		broker_client_watch(bc);
		if (result == AUTH_OK)
			strlcpy(bc->bc_user, a->bq_req.ba_user,
			    sizeof(bc->bc_user));
		if (bc->bc_hold == 0)
			broker_auth_answer(bc, a->bq_req.ba_id, result);
	}
	explicit_bzero(a, sizeof(*a));
	free(a);
}

/* The held verdicts that are due; the ms until the next one, or -1. */
static int
broker_holds_due(long long now)
{
	struct bclient	*bc, *next;
	int		 ms = -1;

	if (bnholds == 0)
		return -1;
	for (bc = TAILQ_FIRST(&bclients); bc != NULL; bc = next) {
		/* broker_auth_answer() frees a client it cannot answer. */
		next = TAILQ_NEXT(bc, bc_entry);
		if (bc->bc_hold == 0)
			continue;
		if (now < bc->bc_hold) {
			broker_sooner(&ms, (int)(bc->bc_hold - now));
			continue;
		}
		bc->bc_hold = 0;
		bnholds--;
		broker_client_watch(bc);
		broker_auth_answer(bc, bc->bc_hold_id, AUTH_FAILED);
	}
	return ms;
}

/*
 * Checkpassword programs left behind: an AUTH worker whose program was
 * killed at its deadline and is not gone (an uninterruptible sleep)
 * hands its pidfd over (BR_LEFT) and exits, and init reaps the program
 * when it ends.  Each is counted until then, so that a backend that
 * hangs cannot fill the process table: while max-clients of them are
 * there no check starts, as no delivery starts while max-clients stuck
 * programs wait (broker_release).  Without pidfds none is counted.
 */
static int
broker_left_full(void)
{
	if (bnleft == 0 || bnleft < bconf->c_lim.lim_maxclients)
		return 0;
	log_warnx("AUTH check not run: %d checkpassword programs killed at "
	    "their deadline are not gone", bnleft);
	return 1;
}

/*
 * Idle workers take the oldest waiting checks.  While no worker runs (all
 * wait to start again: broker_worker_again), or while too many programs
 * are left behind, a check fails at once rather than wait for a worker
 * that may die again, or run.
 */
static void
broker_auth_dispatch(void)
{
	struct bworker	*w;
	struct bauth	*a;
	int		 alive = 0;

	while ((a = TAILQ_FIRST(&bauths)) != NULL && broker_left_full()) {
		TAILQ_REMOVE(&bauths, a, bq_entry);
		broker_auth_done(a, AUTH_TEMPFAIL);
	}
	for (w = bworkers; w < bworkers + BROKER_WORKERS; w++) {
		if (w->bw_fd == -1)
			continue;
		alive = 1;
		if (w->bw_auth != NULL ||
		    (a = TAILQ_FIRST(&bauths)) == NULL)
			continue;
		TAILQ_REMOVE(&bauths, a, bq_entry);
		if (broker_send(w->bw_fd, &a->bq_req, sizeof(a->bq_req), NULL,
		    0) == -1) {
			log_warn("AUTH worker %ld", (long)w->bw_pid);
			broker_auth_done(a, AUTH_TEMPFAIL);
			continue;
		}
		w->bw_auth = a;
	}
	while (!alive && (a = TAILQ_FIRST(&bauths)) != NULL) {
		TAILQ_REMOVE(&bauths, a, bq_entry);
		broker_auth_done(a, AUTH_TEMPFAIL);
	}
}

/* A program left behind, counted (broker_left_full). */
static void
broker_left_add(int pidfd, pid_t pid)
{
	if (bleft == NULL) {
		bleftcap = bconf->c_lim.lim_maxclients + BROKER_WORKERS;
		bleft = xreallocarray(NULL, (size_t)bleftcap, sizeof(*bleft));
	}
	if (bnleft == bleftcap) {	/* checks stopped before */
		close(pidfd);
		return;
	}
	if (bnleft == 0)
		bleft_next = util_now_ms() + BROKER_LEFT_MS;
	bleft[bnleft].bl_pidfd = pidfd;
	bleft[bnleft++].bl_pid = pid;
}

/*
 * Once a second while some are left: those reaped meanwhile are
 * forgotten.  Returns the ms until the next look, or -1.
 */
static int
broker_left_look(long long now)
{
	int	 i, n = 0;

	if (bnleft == 0)
		return -1;
	if (now < bleft_next)
		return (int)(bleft_next - now);
	for (i = 0; i < bnleft; i++) {
		if (os_pidfd_alive(bleft[i].bl_pidfd)) {
			bleft[n++] = bleft[i];
			continue;
		}
		close(bleft[i].bl_pidfd);
		log_info("AUTH: checkpassword %ld, killed at its deadline, "
		    "is gone", (long)bleft[i].bl_pid);
	}
	bnleft = n;
	bleft_next = now + BROKER_LEFT_MS;
	return bnleft > 0 ? BROKER_LEFT_MS : -1;
}

static void
broker_auth_request(struct bclient *bc, const struct broker_auth *ba,
    size_t len)
{
	struct bauth	*a;

	if (len != sizeof(*ba) ||
	    strnlen(ba->ba_user, AUTH_FIELD_MAX) == AUTH_FIELD_MAX ||
	    strnlen(ba->ba_pass, AUTH_FIELD_MAX) == AUTH_FIELD_MAX) {
		log_warnx("AUTH request from a child: bad size or field");
		broker_auth_answer(bc, len >= 2 * sizeof(uint32_t) ?
		    ba->ba_id : 0, AUTH_TEMPFAIL);
		return;
	}
	/*
	 * A user name the session refuses before any backend (smtpd.conf.5,
	 * auth) is refused from a child too: it would become %{user}.
	 */
	if (util_arg_unsafe(ba->ba_user)) {
		log_warnx("AUTH request from a child: a user name a session "
		    "would have refused");
		broker_auth_answer(bc, ba->ba_id, AUTH_FAILED);
		return;
	}
	/* Without a backend every attempt fails, and no worker runs. */
	if (bconf->c_auth.au_backend == AUTH_NONE) {
		broker_auth_answer(bc, ba->ba_id, AUTH_FAILED);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->bq_client = bc;
	a->bq_req = *ba;
	bc->bc_auth = a;
	broker_client_watch(bc);
	TAILQ_INSERT_TAIL(&bauths, a, bq_entry);
	broker_auth_dispatch();
}

/*
 * Of the broker's descriptors a worker keeps its socket (and syslog's,
 * which is not ours to close): no child's socket, no program's pipe.
 */
static void
broker_worker_closefds(int fd)
{
	struct bclient	*bc;
	struct bjob	*bj;
	struct bworker	*w;
	int		 i;

	if (bctl != -1)
		close(bctl);
	close(bepfd);
	TAILQ_FOREACH(bc, &bclients, bc_entry)
		close(bc->bc_fd);
	for (w = bworkers; w < bworkers + BROKER_WORKERS; w++)
		if (w->bw_fd != -1 && w->bw_fd != fd)
			close(w->bw_fd);
	TAILQ_FOREACH(bj, &bjobs, bj_entry)
		exec_close_fds(&bj->bj_exec);
	for (i = 0; i < bnleft; i++)
		close(bleft[i].bl_pidfd);
}

/*
 * The worker's life: the sessions' user, one check at a time on fd
 * until EOF.
 */
static void __attribute__((__noreturn__))
broker_worker_main(int fd)
{
	struct broker_auth	 ba;
	struct broker_verdict	 bv;
	ssize_t			 n;
	pid_t			 stuck;
	int			 left;

	log_procinit("auth");
	exec_priority_drop();
	broker_worker_closefds(fd);
	if (bsessions != NULL && exec_setuser(bsessions) == -1)
		fatal("AUTH worker: cannot drop privileges");
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		fatal("prctl");
	setproctitle("%s", "auth");
	for (;;) {
		if ((n = recv(fd, &ba, sizeof(ba), 0)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		memset(&bv, 0, sizeof(bv));
		bv.bv_type = BR_VERDICT;
		bv.bv_id = ba.ba_id;
		bv.bv_result = AUTH_TEMPFAIL;
		if (n == sizeof(ba) && ba.ba_type == BR_AUTH &&
		    memchr(ba.ba_user, '\0', sizeof(ba.ba_user)) != NULL &&
		    memchr(ba.ba_pass, '\0', sizeof(ba.ba_pass)) != NULL)
			bv.bv_result = auth_check(bconf, ba.ba_user,
			    ba.ba_pass);
		explicit_bzero(&ba, sizeof(ba));
		/*
		 * Without an answer: the broker fails the check when it
		 * reads our end, and gives us no other meanwhile.  It
		 * counts the program until it is reaped.
		 */
		if ((stuck = auth_left_behind(&left)) != 0) {
			log_warnx("AUTH worker: checkpassword killed at its "
			    "deadline is not gone: this worker ends");
			bv.bv_type = BR_LEFT;
			bv.bv_result = (int32_t)stuck;
			(void)broker_send(fd, &bv, sizeof(bv), &left,
			    left == -1 ? 0 : 1);
			_exit(0);
		}
		if (send(fd, &bv, sizeof(bv), MSG_NOSIGNAL) == -1)
			_exit(1);
	}
}

static void	broker_worker_again(struct bworker *);

static void
broker_worker_start(struct bworker *w)
{
	int	 sv[2];

	w->bw_fd = -1;
	w->bw_again = 0;
	w->bw_started = util_now_ms();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("AUTH worker: socketpair");
		broker_worker_again(w);
		return;
	}
	if ((w->bw_pid = fork()) == 0) {
		close(sv[0]);
		broker_worker_main(sv[1]);
	}
	close(sv[1]);
	if (w->bw_pid == -1) {
		log_warn("AUTH worker: fork");
		close(sv[0]);
		broker_worker_again(w);
		return;
	}
	w->bw_fd = sv[0];
}

/*
 * A worker that is gone starts again: at once after a life of its own,
 * else (it died at its start, or could not be made: no fork, no user
 * change, no nice value) after a wait that doubles from 1 to 60 s, so
 * that a worker that cannot start does not spin the broker.  While none
 * runs, checks fail at once (broker_auth_dispatch).
 */
static void
broker_worker_again(struct bworker *w)
{
	long long	 now = util_now_ms();

	if (now - w->bw_started >= BROKER_WORKER_SOON) {
		w->bw_wait = 0;
		broker_worker_start(w);
		return;
	}
	w->bw_wait = w->bw_wait == 0 ? BROKER_WORKER_SOON :
	    w->bw_wait >= BROKER_WORKER_WAIT_MAX / 2 ?
	    BROKER_WORKER_WAIT_MAX : 2 * w->bw_wait;
	w->bw_again = now + w->bw_wait;
	log_warnx("AUTH worker: starting again in %d s", w->bw_wait / 1000);
}

/* The workers whose wait is over; the earliest other one's ms, or -1. */
static int
broker_workers_due(long long now)
{
	struct bworker	*w;
	int		 started = 0, ms = -1;

	for (w = bworkers; w < bworkers + BROKER_WORKERS; w++) {
		if (w->bw_fd != -1 || w->bw_again == 0)
			continue;
		if (now >= w->bw_again) {
			broker_worker_start(w);
			started = 1;
		}
		if (w->bw_again != 0)
			broker_sooner(&ms, util_ms_left(w->bw_again));
	}
	if (started)
		broker_auth_dispatch();
	return ms;
}

/* A worker answered; EOF: it died, its check failed for now. */
static void
broker_worker_read(struct bworker *w)
{
	struct broker_verdict	 bv;
	struct bauth		*a = w->bw_auth;
	ssize_t			 n;
	int			 fds[2], nfds, i, status;

	n = broker_recv(w->bw_fd, &bv, sizeof(bv), fds, &nfds);
	if (n == sizeof(bv) && bv.bv_type == BR_LEFT && nfds == 1 &&
	    bv.bv_result > 0) {
		broker_left_add(fds[0], (pid_t)bv.bv_result);
		nfds = 0;
	}
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == sizeof(bv) && bv.bv_type == BR_VERDICT && a != NULL &&
	    bv.bv_id == a->bq_req.ba_id) {
		w->bw_auth = NULL;
		broker_auth_done(a, bv.bv_result);
	} else if (n == sizeof(bv) && bv.bv_type == BR_LEFT)
		return;		/* its end follows */
	else if (n > 0)
		log_warnx("AUTH worker: unexpected answer dropped");
	else {
		log_warnx("AUTH worker %ld exited", (long)w->bw_pid);
		close(w->bw_fd);
		w->bw_fd = -1;
		while (waitpid(w->bw_pid, &status, 0) == -1 && errno == EINTR)
			;
		w->bw_auth = NULL;
		if (a != NULL)
			broker_auth_done(a, AUTH_TEMPFAIL);
		broker_worker_again(w);
	}
	broker_auth_dispatch();
}

/*
 * The passwd file is read here, not in the master, and the workers get
 * it at their fork: no session child ever holds a hash.
 */
static void
broker_workers(struct config *c)
{
	struct bworker	*w;

	for (w = bworkers; w < bworkers + BROKER_WORKERS; w++)
		w->bw_fd = -1;
	if (c->c_auth.au_backend == AUTH_NONE)
		return;
	if (c->c_auth.au_backend == AUTH_PASSWD && c->c_auth.au_db == NULL &&
	    auth_config_load(c) == -1)
		log_warnx("auth passwd: not loaded; AUTH fails temporarily");
	for (w = bworkers; w < bworkers + BROKER_WORKERS; w++)
		broker_worker_start(w);
}

static void
broker_workers_end(void)
{
	struct bworker	*w;
	int		 status;

	for (w = bworkers; w < bworkers + BROKER_WORKERS; w++) {
		if (w->bw_fd == -1)
			continue;
		close(w->bw_fd);
		while (waitpid(w->bw_pid, &status, 0) == -1 && errno == EINTR)
			;
	}
}

/* A delivery request: its program starts, or the answer says why not. */
static void
broker_deliver_request(struct bclient *bc, const struct broker_msg *bm,
    size_t len, const int *fds, int nfds)
{
	struct bjob	*bj;
	const char	*why;
	int		 error;

	bj = xcalloc(1, sizeof(*bj));
	bj->bj_id = bm->bm_id;
	if (broker_msg_check(bm, len, nfds, bconf->c_nlisteners,
	    &why) == -1) {
		log_warnx("request from a child: %s", why);
		error = EINVAL;
	} else if ((why = broker_msg_late(bm, bc->bc_fd,
	    util_now_ms())) != NULL) {
		log_warnx("delivery request not run: %s", why);
		error = ETIMEDOUT;
	} else if (breleased > 0 && breleased >= bconf->c_lim.lim_maxclients) {
		log_warnx("delivery request not run: %d programs killed at "
		    "their deadline are not gone", breleased);
		error = EAGAIN;
	} else
		error = broker_start(bj, bm, fds, nfds, bc->bc_user);
	if (error != 0) {
		broker_refuse(bc, bm->bm_id, error);
		free(bj);
		return;
	}
	bj->bj_client = bc;
	bc->bc_job = bj;
	broker_client_watch(bc);
	TAILQ_INSERT_TAIL(&bjobs, bj, bj_entry);
}

/* What a child may send, one at a time. */
union breq {
	uint32_t		 rq_type;
	struct broker_msg	 rq_deliver;	/* and its envelope */
	struct broker_auth	 rq_auth;
	char			 rq_buf[sizeof(struct broker_msg) +
				    BROKER_ENV_INLINE];
};

/* A child wrote: a request, or EOF when it exited. */
static void
broker_request(struct bclient *bc)
{
	union breq	*rq;
	ssize_t		 n;
	int		 fds[2], nfds, i;

	rq = xcalloc(1, sizeof(*rq));
	n = broker_recv(bc->bc_fd, rq, sizeof(*rq), fds, &nfds);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		nfds = 0;
	else if (n <= 0)
		broker_client_free(bc);
	else if (rq->rq_type == BR_AUTH && nfds == 0)
		broker_auth_request(bc, &rq->rq_auth, (size_t)n);
	else if (rq->rq_type == BR_FORGET && n == sizeof(rq->rq_type))
		bc->bc_user[0] = '\0';
	else
		broker_deliver_request(bc, &rq->rq_deliver, (size_t)n, fds,
		    nfds);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	/* It may hold a password. */
	explicit_bzero(rq, sizeof(*rq));
	free(rq);
}

/* The child's answer, as far as the run has got; the child is free again. */
static void
broker_reply(struct bjob *bj)
{
	struct bclient	*bc = bj->bj_client;

	if (bc == NULL)
		return;
	bj->bj_client = NULL;
	bc->bc_job = NULL;
	broker_client_watch(bc);
	broker_answer(bc, bj->bj_id, &bj->bj_exec);
}

static void
broker_finish(struct bjob *bj)
{
	TAILQ_REMOVE(&bjobs, bj, bj_entry);
	progs_ended(bj->bj_exec.ej_pid);
	if (bj->bj_released) {
		breleased--;
		log_info("program %ld reaped, %lld ms after its kill",
		    (long)bj->bj_exec.ej_pid,
		    util_now_ms() - bj->bj_exec.ej_killed);
	}
	broker_reply(bj);
	free(bj);
}

/*
 * A program killed at its deadline that is not gone a while later (in
 * an uninterruptible sleep, or a zombie held by a tracer): its child
 * gets its answer (timed out) now, and the run stays listed until it is
 * reaped, so that the master still knows its process group.  Its output
 * is closed: what still writes there would be read for nothing.  At most
 * max-clients such runs: beyond, no program is started (the table of
 * programs has room for twice max-clients).
 */
static void
broker_release(struct bjob *bj)
{
	log_warnx("program %ld killed at its deadline is not gone yet: "
	    "answered; it is reaped when it ends", (long)bj->bj_exec.ej_pid);
	bj->bj_released = 1;
	breleased++;
	broker_reply(bj);
	exec_drop_output(&bj->bj_exec);
}

static size_t
broker_pollset(struct pollfd **pfds, struct bpollref **refs, size_t *cap,
    int *timeout)
{
	struct bjob	*bj;
	struct bworker	*w;
	size_t		 n = 0, need;

	need = 2 + BROKER_WORKERS;
	TAILQ_FOREACH(bj, &bjobs, bj_entry)
		need += 3;
	if (need > *cap) {
		*cap = need * 2;
		*pfds = xreallocarray(*pfds, *cap, sizeof(**pfds));
		*refs = xreallocarray(*refs, *cap, sizeof(**refs));
	}
	*timeout = -1;
	memset(*refs, 0, need * sizeof(**refs));
	(*pfds)[n].fd = bctl;
	(*pfds)[n++].events = POLLIN;
	(*pfds)[n].fd = bepfd;
	(*pfds)[n++].events = POLLIN;
	for (w = bworkers; w < bworkers + BROKER_WORKERS; w++) {
		if (w->bw_fd == -1)
			continue;
		(*pfds)[n].fd = w->bw_fd;
		(*pfds)[n].events = POLLIN;
		(*refs)[n++].bp_worker = w;
	}
	TAILQ_FOREACH(bj, &bjobs, bj_entry) {
		exec_pollfds(&bj->bj_exec, *pfds + n);
		(*refs)[n].bp_job = bj;
		n += 3;
		broker_sooner(timeout, exec_timeout(&bj->bj_exec));
	}
	return n;
}

static void
broker_signals(void)
{
	/*
	 * SIGTERM too: a signal to every process of the service (killall,
	 * systemctl kill) shuts the master down, whose sessions finish
	 * their deliveries; a broker that died of it killed their programs
	 * midway (PR_SET_PDEATHSIG), and what they had delivered was
	 * answered 451 and sent again.  The broker ends when the master
	 * and its children are gone (broker_main).
	 */
	util_signals(SIG_IGN, 0, SIGHUP, SIGINT, SIGPIPE, SIGTERM, SIGUSR1,
	    SIGUSR2, 0);
	/* waitpid() must find the programs' status. */
	util_signals(SIG_DFL, 0, SIGCHLD, 0);
	util_sigunblock();
}

/*
 * The children that wrote, or exited.  Only a child's own request can
 * free its entry or put a request in flight (which takes it out of the
 * set), so the events read stay valid while they are handled; those not
 * read this round are there at the next poll().
 */
static void
broker_requests(void)
{
	struct epoll_event	 ev[BROKER_EVENTS];
	int			 i, n;

	if ((n = epoll_wait(bepfd, ev, BROKER_EVENTS, 0)) == -1) {
		if (errno != EINTR)
			fatal("epoll_wait");
		return;
	}
	for (i = 0; i < n; i++)
		broker_request(ev[i].data.ptr);
}

/* One round of the loop: what poll() found. */
static void
broker_events(struct pollfd *pfds, const struct bpollref *refs, size_t n)
{
	struct bjob	*bj;
	size_t		 i;
	long long	 now = util_now_ms();

	if (pfds[0].revents != 0)
		broker_ctl_read();
	if (pfds[1].revents != 0)
		broker_requests();
	for (i = 2; i < n; i++) {
		if (refs[i].bp_worker != NULL) {
			if (pfds[i].revents != 0)
				broker_worker_read(refs[i].bp_worker);
			continue;
		}
		bj = refs[i].bp_job;
		if (exec_done(&bj->bj_exec, pfds + i, now))
			broker_finish(bj);
		else if (bj->bj_client != NULL &&
		    exec_stuck(&bj->bj_exec, now))
			broker_release(bj);
		i += 2;
	}
}

/*
 * The broker's life: children's requests, programs' events, until the
 * master's socket (ctl) is closed and no child and no program is left.
 * Tests run it with ctl -1 and one child socket.
 */
void
broker_main(struct config *c, int ctl, int client,
    const struct exec_ident *sessions)
{
	struct pollfd	*pfds = NULL;
	struct bpollref	*refs = NULL;
	struct rlimit	 rl;
	size_t		 cap = 0, n;
	int		 timeout, wait;

	bconf = c;
	bctl = ctl;
	bsessions = sessions;
	bfdmax = getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY ? (long long)rl.rlim_cur : INT_MAX;
	broker_signals();
	exec_priority_raise();
	broker_idents();
	if ((bepfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	broker_workers(c);
	if (client != -1)
		broker_client_new(client);
	while (bctl != -1 || !TAILQ_EMPTY(&bclients) ||
	    !TAILQ_EMPTY(&bjobs)) {
		wait = broker_workers_due(util_now_ms());
		n = broker_pollset(&pfds, &refs, &cap, &timeout);
		broker_sooner(&timeout, wait);
		broker_sooner(&timeout, broker_holds_due(util_now_ms()));
		broker_sooner(&timeout, broker_left_look(util_now_ms()));
		if (poll(pfds, n, timeout) == -1) {
			if (errno != EINTR)
				fatal("poll");
			continue;
		}
		broker_events(pfds, refs, n);
	}
	broker_workers_end();
	while (bnleft > 0)
		close(bleft[--bnleft].bl_pidfd);
	free(bleft);
	bleft = NULL;
	free(pfds);
	free(refs);
}

/*
 * The session child's side.
 */

/*
 * A broker for this process alone, for sessions run without a master
 * (the unit tests).  Returns its pid, or -1; broker_local_end() lets it
 * finish and returns its wait status.
 */
pid_t
broker_local(struct config *c)
{
	pid_t	 pid;
	int	 sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if ((pid = fork()) == 0) {
		close(sv[0]);
		broker_main(c, -1, sv[1], NULL);
		_exit(0);
	}
	close(sv[1]);
	if (pid == -1) {
		close(sv[0]);
		return -1;
	}
	broker_attach(sv[0]);
	return pid;
}

int
broker_local_end(pid_t pid)
{
	int	 status;

	if (broker_sock != -1)
		close(broker_sock);
	broker_sock = -1;
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	return status;
}

void
broker_attach(int fd)
{
	broker_sock = fd;
}

int
broker_socket(void)
{
	return broker_sock;
}

/*
 * The answer of type to request id, min to len octets, within timeout
 * ms: its length.  The late answer of an earlier request is dropped.  A
 * signal (SIGTERM is let in during a session) does not start the time
 * again.
 */
static ssize_t
broker_wait(uint32_t type, uint32_t id, void *buf, size_t min, size_t len,
    int timeout)
{
	struct pollfd	 pfd;
	ssize_t		 n;
	uint32_t	 hdr[2];
	long long	 deadline = util_now_ms() + timeout;
	int		 fds[2], nfds, i, r;

	for (;;) {
		pfd.fd = broker_sock;
		pfd.events = POLLIN;
		if ((r = poll(&pfd, 1, util_ms_left(deadline))) == -1 &&
		    errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = broker_recv(broker_sock, buf, len, fds, &nfds);
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EPIPE;
			return -1;
		}
		memcpy(hdr, buf, sizeof(hdr));
		if ((size_t)n >= min && (size_t)n <= len && hdr[0] == type &&
		    hdr[1] == id)
			return n;
		log_warnx("broker: unexpected answer dropped");
	}
}

/*
 * AUTH: the broker's verdict on user and password (AUTH_OK, _FAILED,
 * _TEMPFAIL); it remembers the user for this child's deliveries.  Our
 * copy of the password is wiped; OpenSSL's record buffers, which held it
 * too, are out of our reach.
 */
int
broker_auth(const char *user, const char *pass, int hold)
{
	struct broker_auth	*ba;
	struct broker_verdict	 bv;
	int			 rv;

	if (broker_sock == -1)
		return AUTH_TEMPFAIL;
	broker_asked = 1;
	ba = xcalloc(1, sizeof(*ba));
	ba->ba_type = BR_AUTH;
	ba->ba_id = ++broker_seq;
	if (strlcpy(ba->ba_user, user, sizeof(ba->ba_user)) >=
	    sizeof(ba->ba_user) || strlcpy(ba->ba_pass, pass,
	    sizeof(ba->ba_pass)) >= sizeof(ba->ba_pass))
		rv = AUTH_FAILED;
	else if (broker_send(broker_sock, ba, sizeof(*ba), NULL, 0) == -1 ||
	    broker_wait(BR_VERDICT, ba->ba_id, &bv, sizeof(bv), sizeof(bv),
	    (AUTH_TIMEOUT + BROKER_SLACK + hold) * 1000) == -1) {
		log_warn("broker: AUTH");
		rv = AUTH_TEMPFAIL;
		/* A verdict still to come must not leave a user there. */
		broker_forget();
	} else
		rv = bv.bv_result == AUTH_OK || bv.bv_result == AUTH_FAILED ?
		    bv.bv_result : AUTH_TEMPFAIL;
	explicit_bzero(ba, sizeof(*ba));
	free(ba);
	return rv;
}

/*
 * A new session, or STARTTLS: the user proved before is forgotten.  The
 * broker remembers a user only after an AUTH request, so a child that
 * asked none since the last BR_FORGET has nothing to make it forget,
 * and the broker is not woken at every connection.
 */
void
broker_forget(void)
{
	uint32_t	 type = BR_FORGET;

	if (broker_sock != -1 && broker_asked &&
	    broker_send(broker_sock, &type, sizeof(type), NULL, 0) == 0)
		broker_asked = 0;
}

/*
 * The datagram of request bm (its size in *sizep): the header, then the
 * envelope env when it has no more than BROKER_ENV_INLINE octets; a
 * larger one goes in an anonymous file, *fdp (-1: none).  NULL when
 * that file cannot be made.
 */
static char *
broker_request_make(const struct broker_msg *bm, const char *env,
    size_t *sizep, int *fdp)
{
	size_t	 inl = bm->bm_envlen <= BROKER_ENV_INLINE ? bm->bm_envlen : 0;
	char	*rq;
	int	 save;

	*fdp = -1;
	if (inl == 0 && ((*fdp = os_memfd("smtpd-envelope")) == -1 ||
	    spool_append(*fdp, env, bm->bm_envlen) == -1)) {
		save = errno;
		if (*fdp != -1)
			close(*fdp);
		errno = save;
		return NULL;
	}
	rq = xmalloc(sizeof(*bm) + inl);
	memcpy(rq, bm, sizeof(*bm));
	memcpy(rq + sizeof(*bm), env, inl);
	*sizep = sizeof(*bm) + inl;
	return rq;
}

/*
 * One run by the broker: the message (msgfd, at offset 0) for rcpts.
 * Waits up to timeout seconds more than the broker allows the program.
 * Returns 0 with the answer, or -1 with errno when there is none.
 */
int
broker_deliver(const struct client *cl, const struct envelope *e,
    char *const *rcpts, size_t nrcpts, int msgfd, int timeout,
    struct broker_result *br)
{
	struct broker_msg	 bm;
	char			*env, *rq;
	size_t			 len, size;
	ssize_t			 n;
	int			 fds[2], save;

	if (broker_sock == -1) {
		errno = ENOTCONN;
		return -1;
	}
	env = broker_env_encode(cl, e, rcpts, nrcpts, &len);
	memset(&bm, 0, sizeof(bm));
	bm.bm_type = BR_DELIVER;
	bm.bm_id = ++broker_seq;
	bm.bm_listener = cl->ci_listener;
	bm.bm_flags = (e->e_body8 ? BMF_BODY8 : 0) |
	    (e->e_smtputf8 ? BMF_SMTPUTF8 : 0);
	bm.bm_nrcpts = (uint32_t)nrcpts;
	bm.bm_envlen = (uint32_t)len;
	/*
	 * Started by then, the program has its whole deliver-timeout, and
	 * 5 s for the kill at its deadline and the answer, before we stop
	 * waiting.
	 */
	bm.bm_startby = util_now_ms() + (BROKER_SLACK - 5) * 1000LL;
	rq = broker_request_make(&bm, env, &size, &fds[1]);
	free(env);
	if (rq == NULL)
		return -1;
	fds[0] = msgfd;
	/*
	 * A broker that died since our last request gets nothing: the send
	 * fails (451), and this child is retired after its session.
	 */
	save = broker_send(broker_sock, rq, size, fds, fds[1] == -1 ? 1 : 2);
	free(rq);
	if (fds[1] != -1)
		close(fds[1]);
	if (save == -1 || (n = broker_wait(BR_RESULT, bm.bm_id, br,
	    BROKER_RESULT_HDR, sizeof(*br),
	    (timeout + BROKER_SLACK) * 1000)) == -1)
		return -1;
	if (br->br_outlen > DELIVER_OUT_MAX || br->br_errlen > DELIVER_OUT_MAX ||
	    (size_t)n != BROKER_RESULT_HDR + br->br_outlen + br->br_errlen) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}
