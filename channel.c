/*
 * channel.c: the messages between the master and a child over their
 * socketpair (SOCK_SEQPACKET: one message a packet).  Each message is a
 * header {type, length, id} and a payload of exactly that length, checked
 * on receipt; a client socket travels with CHAN_HANDOFF (SCM_RIGHTS).  A
 * question of the child carries a new id and its answer the same id, so
 * an answer that comes after the child stopped waiting is recognised and
 * dropped, never taken for something else.  New message types go into
 * enum chan_type (smtpd.h) with their payload size in chan_sizes.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"

/* Payload sizes: exact, or CHAN_VAR for a string of 1..CHAN_PAYLOAD_MAX. */
#define CHAN_VAR	((size_t)-1)
static const struct {
	const char	*cs_name;
	size_t		 cs_size;
} chan_sizes[CHAN_NTYPES] = {
	[CHAN_HANDOFF] = { "handoff", sizeof(struct handoff) },
	[CHAN_IDLE] = { "idle", 0 },
	[CHAN_PEER] = { "peer", CHAN_VAR },
	[CHAN_PEER_ANSWER] = { "peer answer", 1 },
	[CHAN_AUTH_ASK] = { "auth ask", CHAN_VAR },
	[CHAN_AUTH_ANSWER] = { "auth answer", 1 },
	[CHAN_AUTH_FAILED] = { "auth failed", CHAN_VAR },
	[CHAN_AUTH_DONE] = { "auth done", CHAN_VAR }
};

static uint32_t	 chan_lastid;

const char *
chan_name(int type)
{
	if (type <= 0 || type >= CHAN_NTYPES || chan_sizes[type].cs_name ==
	    NULL)
		return "unknown";
	return chan_sizes[type].cs_name;
}

/* The message in buf (size octets); its length, or -1 if it cannot be. */
ssize_t
chan_encode(unsigned char *buf, size_t size, int type, uint32_t id,
    const void *data, size_t len)
{
	struct chan_hdr	 h;

	if (type <= 0 || type >= CHAN_NTYPES || len > CHAN_PAYLOAD_MAX ||
	    sizeof(h) + len > size)
		return -1;
	h.ch_type = (uint16_t)type;
	h.ch_len = (uint16_t)len;
	h.ch_id = id;
	memcpy(buf, &h, sizeof(h));
	if (len > 0)
		memcpy(buf + sizeof(h), data, len);
	return (ssize_t)(sizeof(h) + len);
}

/*
 * The n octets at buf as a message: a known type, the length the header
 * says, the payload size the type has.  A string payload ends in NUL in
 * m (one more octet than it has).  0, or -1 and why.
 */
int
chan_decode(const unsigned char *buf, size_t n, struct chan_msg *m,
    const char **why)
{
	size_t	 want;

	memset(&m->cm_hdr, 0, sizeof(m->cm_hdr));
	*why = "short header";
	if (n < sizeof(m->cm_hdr))
		return -1;
	memcpy(&m->cm_hdr, buf, sizeof(m->cm_hdr));
	*why = "unknown type";
	if (m->cm_hdr.ch_type == 0 || m->cm_hdr.ch_type >= CHAN_NTYPES ||
	    chan_sizes[m->cm_hdr.ch_type].cs_name == NULL)
		return -1;
	want = chan_sizes[m->cm_hdr.ch_type].cs_size;
	*why = "bad length";
	if (m->cm_hdr.ch_len != n - sizeof(m->cm_hdr) ||
	    m->cm_hdr.ch_len > CHAN_PAYLOAD_MAX ||
	    (want != CHAN_VAR && m->cm_hdr.ch_len != want) ||
	    (want == CHAN_VAR && m->cm_hdr.ch_len == 0))
		return -1;
	memcpy(m->cm_data, buf + sizeof(m->cm_hdr), m->cm_hdr.ch_len);
	m->cm_data[m->cm_hdr.ch_len] = '\0';
	*why = "NUL in a string";
	if (want == CHAN_VAR && strlen((char *)m->cm_data) !=
	    m->cm_hdr.ch_len)
		return -1;
	*why = NULL;
	return 0;
}

/* One message, with the descriptor passfd when it is not -1. */
int
chan_send(int fd, int type, uint32_t id, const void *data, size_t len,
    int passfd)
{
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(sizeof(int))];
	}		 cm;
	unsigned char	 buf[sizeof(struct chan_hdr) + CHAN_PAYLOAD_MAX];
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	ssize_t		 n;

	if ((n = chan_encode(buf, sizeof(buf), type, id, data, len)) == -1) {
		errno = EMSGSIZE;
		return -1;
	}
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = (size_t)n;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (passfd != -1) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &passfd, sizeof(passfd));
	}
	while ((n = sendmsg(fd, &msg, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	return n == (ssize_t)iov.iov_len ? 0 : -1;
}

/* The descriptor that came with msg, or -1. */
static int
chan_passed(struct msghdr *msg)
{
	struct cmsghdr	*cmsg;
	int		 fd = -1;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(msg, cmsg))
		if (cmsg->cmsg_level == SOL_SOCKET &&
		    cmsg->cmsg_type == SCM_RIGHTS &&
		    cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cmsg), sizeof(fd));
	return fd;
}

/*
 * The next message: 1, 0 at EOF, -1 on an error (errno; EAGAIN when
 * there is none yet).  A malformed message is logged and dropped (-1,
 * EBADMSG); a descriptor comes only with CHAN_HANDOFF (cm_fd, else -1).
 */
int
chan_recv(int fd, struct chan_msg *m)
{
	union {
		struct cmsghdr	 hdr;
		char		 buf[CMSG_SPACE(sizeof(int))];
	}		 cm;
	unsigned char	 buf[sizeof(struct chan_hdr) +
			    CHAN_PAYLOAD_MAX + 1];
	struct msghdr	 msg;
	struct iovec	 iov;
	const char	*why = NULL;
	ssize_t		 n;

	memset(&m->cm_hdr, 0, sizeof(m->cm_hdr));
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	if ((n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) <= 0)
		return n == 0 ? 0 : -1;
	m->cm_fd = chan_passed(&msg);
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		why = "truncated";
	else if (chan_decode(buf, (size_t)n, m, &why) == 0 &&
	    (m->cm_fd != -1) != (m->cm_hdr.ch_type == CHAN_HANDOFF))
		why = "a descriptor where none belongs, or none";
	else if (why == NULL)
		return 1;
	chan_drop(m, why);
	errno = EBADMSG;
	return -1;
	return 1;
}

/*
 * A question of a child and the master's answer (type answer, the same
 * id) within timeout_ms; 0 and the answer in m, or -1.  Whatever else
 * arrives meanwhile, such as the answer to an earlier question that came
 * too late, is logged and dropped.
 */
int
chan_ask(int fd, int type, const char *arg, int answer, int timeout_ms,
    struct chan_msg *m)
{
	struct pollfd	 pfd;
	long long	 deadline = util_now_ms() + timeout_ms;
	uint32_t	 id = ++chan_lastid;
	int		 r;

	if (chan_send(fd, type, id, arg, strlen(arg), -1) == -1)
		return -1;
	pfd.fd = fd;
	pfd.events = POLLIN;
	while ((r = poll(&pfd, 1, util_ms_left(deadline))) != 0) {
		if (r == -1 && errno != EINTR)
			return -1;
		if (r == -1 || (r = chan_recv(fd, m)) == -1)
			continue;
		if (r == 0)
			return -1;
		if (m->cm_hdr.ch_type == answer && m->cm_hdr.ch_id == id)
			return 0;
		chan_drop(m, "not the answer awaited");
	}
	log_warnx("channel: no %s to id %u in %d ms", chan_name(answer), id,
	    timeout_ms);
	return -1;
}

/* A message nobody waits for: logged, its descriptor closed. */
void
chan_drop(struct chan_msg *m, const char *why)
{
	log_warnx("channel: %s message id %u dropped: %s",
	    chan_name(m->cm_hdr.ch_type), m->cm_hdr.ch_id, why);
	if (m->cm_fd != -1)
		(void)close(m->cm_fd);
	m->cm_fd = -1;
}
