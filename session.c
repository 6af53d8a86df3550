/*
 * session.c: one SMTP or LMTP session in a child process: the blocking
 * line reader, the command table and state machine, the DATA reader and
 * the reply queue.  smtpd.8 DIAGNOSTICS lists every reply.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtpd.h"
#include "internal.h"

#define OBUF_SIZE	8192		/* queued replies */
#define CMD_SIZE_EXTRA	26		/* MAIL allowance with SIZE */
#define CMD_UTF8_EXTRA	10		/* MAIL allowance with SMTPUTF8 */
#define CMD_UNKNOWN_MAX	5		/* 5th unknown verb: 502, close */
#define IBUF_EXTRA	16384		/* input buffer beyond max-line-length */
#define MAX_BUDGETS	32		/* command-limit verbs per session */
/*
 * A verb, whole: a line that reaches its budget or the echo of an unknown
 * verb is at most 512 octets (RFC 5321 4.5.3.1.4; MAIL is known).
 */
#define CMD_VERB_MAX	(CMD_LINE_MAX + 1)
/* An unknown verb in the -v log: lower case, which no verb can be. */
#define REPLY_HIDDEN	"(not logged)"
#define SPOOL_KEEP	(64 * 1024)	/* spool memory the next session gets */
#define RCPT_KEEP	1024		/* recipient slots the next one gets */
#define BDAT_DIGITS_MAX	19		/* RFC 3030 chunk size, ASCII digits */
#define CHUNK_DIRECT_MIN	1024	/* chunk rest read straight to the spool */

enum session_state {
	S_INIT,		/* greeted, no HELO/EHLO/LHLO yet */
	S_HELO,		/* HELO/EHLO/LHLO done, no transaction */
	S_MAIL,		/* MAIL accepted */
	S_RCPT		/* at least one recipient */
};

static const char *state_names[] = { "INIT", "HELO", "MAIL", "RCPT" };
static const int state_scores[] = { SS_INIT, SS_HELO, SS_MAIL, SS_RCPT };

enum getline_result {
	LINE_OK,
	LINE_TOOLONG,
	LINE_END		/* EOF, timeout, error or shutdown */
};

struct budget {
	char			 b_verb[CMD_VERB_MAX];
	long long		 b_left;
};

/* RFC 3030 CHUNKING: the BDAT chunks of one transaction. */
struct chunking {
	unsigned long long	 ch_left;	/* octets of this chunk unread */
	int			 ch_last;	/* this chunk is the LAST */
	int			 ch_cut;	/* the client left mid-chunk */
	int			 ch_active;	/* the transaction had a BDAT */
	int			 ch_failed;	/* 503 until RSET */
	unsigned int		 ch_count;	/* chunks taken */
	long long		 ch_size;	/* octets of the message */
	struct content		 ch_content;	/* the message's content rules */
};

struct session {
	const struct config	*s_conf;
	const struct listener	*s_listener;
	int			 s_fd;
	int			 s_rcvto;	/* its SO_RCVTIMEO, ms; 0: none */
	enum session_state	 s_state;
	int			 s_closing;	/* QUIT, 421,
	    502: stop reading */
	int			 s_dead;	/* the client cannot be written */
	int			 s_eof;
	int			 s_acked;	/* we wrote after the last read */
	int			 s_quickack;	/* TCP_QUICKACK since the write */
	int			 s_tls;		/* TLS active */
	struct tls_conn		*s_tlsc;	/* NULL: plain socket */
	struct policy_conn	*s_policy;	/* the policy server, if any */
	int			 s_rejected;	/* refused at connect: QUIT only */
	int			 s_authfail;	/* failed AUTH attempts */
	int			 s_skip;	/* discarding an over-long line */
	int			 s_longbdat;	/* and it is a BDAT line */
	int			 s_indata;	/* reading a message */
	int			 s_nocode;	/* replies without RFC 2034 code */
	int			 s_external;	/* the delivery program's reply */
	char			*s_hide;	/* the client text a reply repeats */
	struct chunking		 s_chunk;
	char			*s_ibuf;
	size_t			 s_isize;
	size_t			 s_ipos;	/* first unconsumed octet */
	size_t			 s_ilen;	/* end of the buffered input */
	char			 s_obuf[OBUF_SIZE];
	size_t			 s_olen;
	long long		 s_deadline;	/* util_now_ms() clock */
	long long		 s_end;		/* accept + max-session-time */
	int			 s_waitcmd;	/* waiting for a command line */
	struct client		 s_client;
	struct envelope		 s_env;
	struct spool		 s_spool;
	int			 s_unknown;	/* unrecognised commands */
	int			 s_junk;	/* junk commands since a 250 message */
	/*
	 * MAX_BUDGETS of them (16 KiB, whole verbs), made at the first one
	 * command-limit needs and kept for the next sessions; s_nbudgets
	 * hold anything.
	 */
	struct budget		*s_budgets;
	int			 s_nbudgets;
	char			 s_verb[CMD_VERB_MAX];
	unsigned int		 s_ncmds;
	unsigned int		 s_nmsgs;
	int			 s_msgreply;	/* replies answer a message */
	enum score_counter	 s_outcome;	/* how the session ended */
};

/* Command flags, checked from the table before the handler runs. */
#define CMD_F_HELO	0x01	/* 503 before HELO/EHLO/LHLO */
#define CMD_F_AUTH	0x02	/* 530 under require-auth until AUTH */
#define CMD_F_PRE_TLS	0x04	/* allowed before STARTTLS (require-starttls) */
#define CMD_F_NOARG	0x08	/* an argument is a 501 */
#define CMD_F_HELP	0x10	/* listed by HELP */
#define CMD_F_LMTP	0x20	/* LMTP listeners only */
#define CMD_F_TIMER	0x40	/* dispatching it restarts the timer */
#define CMD_F_AUTHL	0x80	/* listeners with `auth` only */
#define CMD_F_JUNK	0x100	/* counts for junk-command-limit */
#define CMD_F_CHUNK	0x200	/* `chunking yes` only; octets follow */
#define CMD_F_NOCODE	0x400	/* replies carry no enhanced code */

struct command {
	const char	*cmd_verb;
	void		(*cmd_handler)(struct session *, char *);
	int		 cmd_flags;
	const char	*cmd_syntax;	/* HELP topic text and 501 text */
};

volatile sig_atomic_t session_quit;
/* The socket of a wait for a command, which SIGTERM cuts short. */
static volatile sig_atomic_t session_cutfd = -1;
int	(*session_peer_check)(const char *);
int	(*session_auth_check)(const char *);
void	(*session_auth_ended)(const char *, int);

static void	 session_reply(struct session *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static int	 reply_format(struct session *, char *, const char *, va_list)
		    __attribute__((__format__ (printf, 3, 0)));
static void	 session_reply_log(struct session *, const char *, int,
		    const char *, va_list)
		    __attribute__((__format__ (printf, 4, 0)));
static int	 chunk_announce(struct session *, const char *, size_t);
static void	 chunk_malformed(struct session *);
static void	 chunk_read(struct session *, int);
static void	 cmd_auth(struct session *, char *);
static void	 cmd_bdat(struct session *, char *);
static void	 cmd_helo(struct session *, char *);
static void	 cmd_ehlo(struct session *, char *);
static void	 cmd_mail(struct session *, char *);
static void	 cmd_rcpt(struct session *, char *);
static void	 cmd_data(struct session *, char *);
static void	 cmd_rset(struct session *, char *);
static void	 cmd_noop(struct session *, char *);
static void	 cmd_quit(struct session *, char *);
static void	 cmd_vrfy(struct session *, char *);
static void	 cmd_expn(struct session *, char *);
static void	 cmd_help(struct session *, char *);
static void	 cmd_starttls(struct session *, char *);
static void	 session_free(struct session *);
static void	 session_shutdown(struct session *);

/*
 * The command table, in ASCII order (HELP lists it in this order).
 * RFC 5321 4.1.4: HELO/EHLO may come at any time; MAIL, RCPT and DATA
 * need them first.
 */
static const struct command commands[] = {
	{ "AUTH", cmd_auth, CMD_F_AUTHL | CMD_F_HELP | CMD_F_TIMER,
	    "Syntax: AUTH <mechanism>" },
	{ "BDAT", cmd_bdat, CMD_F_CHUNK | CMD_F_HELO | CMD_F_AUTH |
	    CMD_F_TIMER, "Syntax: BDAT <size> [LAST]" },
	{ "DATA", cmd_data, CMD_F_HELO | CMD_F_AUTH | CMD_F_HELP |
	    CMD_F_TIMER, "Syntax: DATA" },
	{ "EHLO", cmd_ehlo, CMD_F_PRE_TLS | CMD_F_HELP | CMD_F_TIMER |
	    CMD_F_NOCODE, "Syntax: EHLO hostname" },
	{ "EXPN", cmd_expn, CMD_F_TIMER | CMD_F_JUNK, NULL },
	{ "HELO", cmd_helo, CMD_F_HELP | CMD_F_TIMER | CMD_F_NOCODE,
	    "Syntax: HELO hostname" },
	{ "HELP", cmd_help, CMD_F_AUTH | CMD_F_HELP | CMD_F_TIMER |
	    CMD_F_JUNK, "Syntax: HELP [command]" },
	{ "LHLO", cmd_ehlo, CMD_F_PRE_TLS | CMD_F_HELP | CMD_F_LMTP |
	    CMD_F_TIMER | CMD_F_NOCODE, "Syntax: LHLO hostname" },
	{ "MAIL", cmd_mail, CMD_F_HELO | CMD_F_AUTH | CMD_F_HELP |
	    CMD_F_TIMER, "Syntax: MAIL FROM: <address>" },
	{ "NOOP", cmd_noop, CMD_F_PRE_TLS | CMD_F_HELP | CMD_F_TIMER |
	    CMD_F_JUNK, "Syntax: NOOP [ignored]" },
	{ "QUIT", cmd_quit, CMD_F_PRE_TLS | CMD_F_NOARG | CMD_F_HELP |
	    CMD_F_TIMER, "Syntax: QUIT" },
	{ "RCPT", cmd_rcpt, CMD_F_HELO | CMD_F_AUTH | CMD_F_HELP |
	    CMD_F_TIMER, "Syntax: RCPT TO: <address>" },
	{ "RSET", cmd_rset, CMD_F_NOARG | CMD_F_HELP | CMD_F_TIMER |
	    CMD_F_JUNK, "Syntax: RSET" },
	{ "STARTTLS", cmd_starttls, CMD_F_PRE_TLS | CMD_F_NOARG |
	    CMD_F_HELP | CMD_F_TIMER, "Syntax: STARTTLS" },
	{ "VRFY", cmd_vrfy, CMD_F_AUTH | CMD_F_HELP | CMD_F_TIMER |
	    CMD_F_JUNK, "Syntax: VRFY <address>" },
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

#define MAIL_PARAMS	" [SP <mail-parameters>]"
#define WHITESPACE	" \t\r\n\v\f"

/*
 * Helpers
 */

static int
session_lmtp(const struct session *s)
{
	return (s->s_listener->l_flags & LF_LMTP) != 0;
}

static void
session_set_state(struct session *s, enum session_state st)
{
	if (s->s_state != st)
		log_debug("%s state %s -> %s", s->s_client.ci_sid,
		    state_names[s->s_state], state_names[st]);
	s->s_state = st;
	score_state(state_scores[st]);
}

/* Forget the transaction: RSET, HELO/EHLO/LHLO, end of DATA. */
static void
session_reset_envelope(struct session *s)
{
	struct envelope	*e = &s->s_env;
	size_t		 i;

	free(e->e_sender);
	e->e_sender = NULL;
	for (i = 0; i < e->e_nrcpts; i++)
		free(e->e_rcpts[i]);
	e->e_nrcpts = 0;
	e->e_rcptlen = 0;
	free(e->e_prepend);
	e->e_prepend = NULL;
	e->e_instance[0] = '\0';
	e->e_body8 = 0;
	e->e_smtputf8 = 0;
	/* A chunked message ends with its transaction. */
	s->s_chunk.ch_active = s->s_chunk.ch_failed = 0;
	s->s_chunk.ch_count = 0;
	s->s_chunk.ch_size = 0;
	spool_clear(&s->s_spool, SIZE_MAX);
	if (s->s_state > S_HELO)
		session_set_state(s, S_HELO);
}

/* Client text in a reply: control characters shown as '?'. */
static char *
session_echo_mask(char *s)
{
	char	*p;

	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return s;
}

/*
 * The `timeout` starts again, but never reaches past one `timeout` after
 * max-session-time: a message that is still arriving then is read to its
 * end only if its end comes by that time, so a client that sends a line
 * now and then cannot hold its child for ever.
 */
static void
deadline_restart(struct session *s)
{
	long long	 t = s->s_conf->c_lim.lim_timeout * 1000LL;

	s->s_deadline = util_now_ms() + t;
	if (s->s_conf->c_lim.lim_session > 0 && s->s_deadline > s->s_end + t)
		s->s_deadline = s->s_end + t;
}

static void
deadline_extend(struct session *s, long long ms)
{
	s->s_deadline += ms;
}

static int
deadline_ms(const struct session *s)
{
	return util_ms_left(s->s_deadline);
}

static int
session_expired(const struct session *s)
{
	return s->s_conf->c_lim.lim_session > 0 && util_ms_left(s->s_end) == 0;
}

/*
 * A 421 that another gave (the policy server, the delivery program's
 * output) closes the connection after its reply, as a 421 says it does
 * (RFC 5321 3.8); Postfix's smtpd does the same.
 */
static void
reply_421_closes(struct session *s, const char *reply)
{
	if (strncmp(reply, "421", 3) == 0)
		s->s_closing = 1;
}

/* max-session-time has passed: the session ends with a 421. */
static void
session_timeup(struct session *s)
{
	log_info("%s session time limit reached (%ds)", s->s_client.ci_sid,
	    s->s_conf->c_lim.lim_session);
	session_reply(s,
	    "421 4.4.2 Error: session time limit reached, goodbye.");
	s->s_closing = 1;
}

/*
 * The wait ran out.  A wait for a command that max-session-time ended
 * gets its 421 from the caller; a message that had not ended one
 * `timeout` after it (deadline_restart) is a timeout of its own.
 */
static void
session_timedout(struct session *s)
{
	if (s->s_waitcmd && session_expired(s))
		return;
	if (session_expired(s))
		log_info("%s session time limit reached (%ds), message "
		    "unfinished", s->s_client.ci_sid,
		    s->s_conf->c_lim.lim_session);
	else
		log_info("%s timeout", s->s_client.ci_sid);
	s->s_outcome = SC_SESS_TIMEOUT;
}

/*
 * How long to wait for input: the `timeout`, but a wait for a command
 * also ends with max-session-time, not with the client's next line.
 */
static int
session_wait_ms(const struct session *s)
{
	int	 ms = deadline_ms(s), left;

	if (s->s_waitcmd && s->s_conf->c_lim.lim_session > 0 &&
	    (left = util_ms_left(s->s_end)) < ms)
		ms = left;
	return ms;
}

/*
 * One read/write layer for plain sockets and TLS, so the line reader,
 * the reply queue and the DATA reader work the same over both.  The
 * socket is a blocking one, and every operation on it says
 * MSG_DONTWAIT but io_read_wait(), the wait for the client.
 */

static ssize_t
io_read(struct session *s, void *buf, size_t len)
{
	if (s->s_tlsc != NULL)
		return tls_read(s->s_tlsc, buf, len);
	return recv(s->s_fd, buf, len, MSG_DONTWAIT);
}

/* A read that blocks until input comes, bounded by SO_RCVTIMEO. */
static ssize_t
io_read_wait(struct session *s, void *buf, size_t len)
{
	if (s->s_tlsc != NULL)
		return tls_read_wait(s->s_tlsc, buf, len);
	return recv(s->s_fd, buf, len, 0);
}

static ssize_t
io_write(struct session *s, const void *buf, size_t len)
{
	if (s->s_tlsc != NULL)
		return tls_write(s->s_tlsc, buf, len);
	return send(s->s_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* What to poll for before retrying an operation that said EAGAIN. */
static short
io_want(struct session *s, short plain)
{
	int	 want;

	if (s->s_tlsc != NULL && (want = tls_want(s->s_tlsc)) != 0)
		return (short)want;
	return plain;
}

/*
 * Output: every reply is queued here; the queue is written when the
 * session is about to wait for input (RFC 2920) or is full.
 */

/*
 * SIGTERM (shutdown) during a session.  A child keeps it blocked while
 * idle and says so (session_sigmask); a session lets it in (with
 * SA_RESTART, which restarts every system call but the waits: poll(2),
 * and a recv(2) under SO_RCVTIMEO, fail with EINTR).  A signal that
 * comes between the last look at session_quit and the start of a wait
 * must not be slept through until the timeout:
 * - the wait for a command (session_recv) names its socket in
 *   session_cutfd first, and session_interrupt() cuts that socket's
 *   SO_RCVTIMEO to a tick, so the recv(2) returns at once;
 * - session_poll() blocks SIGTERM from its look to its ppoll(), which
 *   lets it in.
 * Otherwise (the tests) the caller's signal mask is left alone.
 */
static sigset_t	 session_waitmask;	/* SIGTERM let in */
static int	 session_held;		/* SIGTERM blocked by our caller */

void
session_sigmask(const sigset_t *waitmask)
{
	session_waitmask = *waitmask;
	session_held = 1;
}

/* SIGTERM blocked; the mask before in old when not NULL. */
static void
session_sigblock(sigset_t *old)
{
	sigset_t	 term;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &term, old) == -1)
		fatal("sigprocmask");
}

static void
session_signals(int start)
{
	if (!session_held) {
		if (start && sigprocmask(SIG_SETMASK, NULL,
		    &session_waitmask) == -1)
			fatal("sigprocmask");
		return;
	}
	if (!start)
		session_sigblock(NULL);
	else if (sigprocmask(SIG_SETMASK, &session_waitmask, NULL) == -1)
		fatal("sigprocmask");
}

/* The child's SIGTERM handler: async-signal-safe. */
void
session_interrupt(void)
{
	static const struct timeval	 tick = { 0, 1 };
	int				 fd = session_cutfd, saved = errno;

	session_quit = 1;
	if (fd != -1)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick,
		    sizeof(tick));
	errno = saved;
}

/*
 * poll() on one descriptor, SIGTERM let in.  With stop, a shutdown
 * already under way returns EINTR without waiting.
 */
static int
session_poll(struct pollfd *pfd, int ms, int stop)
{
	struct timespec	 ts;
	sigset_t	 old;
	int		 r, saved;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	if (!stop)
		return ppoll(pfd, 1, &ts, &session_waitmask);
	session_sigblock(&old);
	if (session_quit) {
		r = -1;
		errno = EINTR;
	} else
		r = ppoll(pfd, 1, &ts, &session_waitmask);
	saved = errno;
	if (sigprocmask(SIG_SETMASK, &old, NULL) == -1)
		fatal("sigprocmask");
	errno = saved;
	return r;
}

static void
session_flush(struct session *s)
{
	struct pollfd	 pfd;
	size_t		 off = 0;
	ssize_t		 n;
	int		 r;

	while (off < s->s_olen && !s->s_dead) {
		n = io_write(s, s->s_obuf + off, s->s_olen - off);
		if (n > 0) {
			off += (size_t)n;
			s->s_acked = 1;
			s->s_quickack = 0;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			pfd.fd = s->s_fd;
			pfd.events = io_want(s, POLLOUT);
			/* A signal (shutdown) loses none of the replies. */
			if ((r = session_poll(&pfd,
			    s->s_conf->c_lim.lim_timeout * 1000, 0)) > 0 ||
			    (r == -1 && errno == EINTR))
				continue;
		}
		/* Gone or stalled: keep handling what arrived, write nothing. */
		log_debug("%s write failed", s->s_client.ci_sid);
		s->s_dead = 1;
	}
	s->s_olen = 0;
}

/*
 * RFC 3463 codes for the replies that come without one (RFC 2034): by
 * reply code, and for 250 by the command it answers; any other reply
 * gets its class's X.0.0.
 */
static const struct status_code {
	int		 sc_reply;
	const char	*sc_verb;	/* NULL: any command */
	const char	*sc_code;
} status_codes[] = {
	{ 250, "MAIL", "2.1.0" },
	{ 250, "RCPT", "2.1.5" },
	{ 421, NULL, "4.7.0" },
	{ 454, NULL, "4.7.0" },
	{ 500, NULL, "5.5.2" },
	{ 501, NULL, "5.5.4" },
	{ 502, NULL, "5.5.1" },
	{ 503, NULL, "5.5.1" },
	{ 504, NULL, "5.5.4" },
	{ 530, NULL, "5.7.0" },
	{ 552, NULL, "5.3.4" },
	{ 555, NULL, "5.5.4" }
};

/* The class's X.0.0 (RFC 3463 3.1); NULL for a 1xx or 3xx reply. */
static const char *
status_class_code(int reply)
{
	switch (reply / 100) {
	case 2:
		return "2.0.0";
	case 4:
		return "4.0.0";
	case 5:
		return "5.0.0";
	default:
		return NULL;
	}
}

/* The code of a reply to the command verb (NULL: no command). */
const char *
session_status_code(int reply, const char *verb)
{
	size_t	 i;

	for (i = 0; i < NITEMS(status_codes); i++)
		if (status_codes[i].sc_reply == reply &&
		    (status_codes[i].sc_verb == NULL || (verb != NULL &&
		    strcmp(status_codes[i].sc_verb, verb) == 0)))
			return status_codes[i].sc_code;
	return status_class_code(reply);
}

/* The text already begins with an RFC 3463 code: class.subject.detail. */
static int
reply_has_code(const char *text, size_t len)
{
	size_t	 i = 0, part, digits;

	for (part = 0; part < 3; part++) {
		for (digits = 0; i < len && text[i] >= '0' && text[i] <= '9' &&
		    digits < 3; i++)
			digits++;
		if (digits == 0 || (part == 0 && digits != 1))
			return 0;
		if (part < 2 && (i == len || text[i++] != '.'))
			return 0;
	}
	return i == len || text[i] == ' ';
}

/*
 * `enhanced-status-codes yes': insert the code after "NNN " of the reply
 * of len octets at r, within max octets.  The greeting and the replies to
 * HELO, EHLO and LHLO have none (RFC 2034 3); the delivery program's own
 * reply gets its class's code.
 */
static size_t
reply_add_code(struct session *s, char *r, size_t len, size_t max)
{
	const char	*code;
	size_t		 clen;
	int		 reply;

	if (!s->s_conf->c_enhanced || s->s_nocode || len < 4 ||
	    r[3] != ' ' || reply_has_code(r + 4, len - 4))
		return len;
	reply = (r[0] - '0') * 100 + (r[1] - '0') * 10 + (r[2] - '0');
	code = s->s_external ? status_class_code(reply) :
	    session_status_code(reply, s->s_verb);
	if (code == NULL || len + (clen = strlen(code) + 1) > max)
		return len;
	memmove(r + 4 + clen, r + 4, len - 4);
	memcpy(r + 4, code, clen - 1);
	r[4 + clen - 1] = ' ';
	return len + clen;
}

/*
 * A reply line is cut to REPLY_LINE_MAX octets with its CRLF (RFC 5321
 * 4.5.3.1.5): a long echo of the client's text (an unknown verb, VRFY's
 * argument), or a long reply of a policy server or a delivery program.
 * The cut does not split a UTF-8 sequence.
 */
static int
reply_cut(const char *r, int len)
{
	if (len <= REPLY_LINE_MAX - 2)
		return len;
	len = REPLY_LINE_MAX - 2;
	while (len > 0 && ((unsigned char)r[len] & 0xc0) == 0x80)
		len--;
	return len;
}

/* One reply line into r (REPLY_MAX octets), its code added and cut. */
static int
reply_format(struct session *s, char *r, const char *fmt, va_list ap)
{
	int	 n;

	n = vsnprintf(r, REPLY_MAX - 2, fmt, ap);
	if (n < 0)
		fatalx("%s: bad reply format", __func__);
	if (n > REPLY_MAX - 3)
		n = REPLY_MAX - 3;
	return reply_cut(r, (int)reply_add_code(s, r, (size_t)n,
	    REPLY_MAX - 3));
}

/*
 * The -v line of reply r, escaped: it may repeat client text.  The text
 * in s_hide (an unknown verb) is left out, formatted again from fmt and
 * ap: such a "verb" may be an AUTH response sent when no exchange was
 * under way, as by a client that pipelined AUTH, and AUTH responses are
 * never logged (smtpd.8 Logging).
 */
static void
session_reply_log(struct session *s, const char *r, int n, const char *fmt,
    va_list ap)
{
	char	 lr[REPLY_MAX], esc[4 * REPLY_LINE_MAX];

	if (s->s_hide != NULL) {
		strlcpy(s->s_hide, REPLY_HIDDEN, CMD_VERB_MAX);
		n = reply_format(s, lr, fmt, ap);
		r = lr;
	}
	log_debug("%s > %s", s->s_client.ci_sid,
	    log_escape(r, (size_t)n, esc, sizeof(esc)));
}

/*
 * Every reply of a session is formatted and queued here.  RFC 3030 2:
 * whatever the reply to a BDAT, the octets of its chunk are not
 * commands; they are read (and dropped) before the reply is queued.
 */
static void
session_reply(struct session *s, const char *fmt, ...)
{
	va_list	 ap;
	char	*r;
	int	 n;

	if (s->s_chunk.ch_left > 0)
		chunk_read(s, 0);
	if (s->s_chunk.ch_cut)
		return;
	if (s->s_olen + REPLY_MAX > sizeof(s->s_obuf))
		session_flush(s);
	r = s->s_obuf + s->s_olen;
	va_start(ap, fmt);
	n = reply_format(s, r, fmt, ap);
	va_end(ap);
	if (log_getverbose()) {
		va_start(ap, fmt);
		session_reply_log(s, r, n, fmt, ap);
		va_end(ap);
	}
	if (s->s_msgreply)
		score_reply(r);
	s->s_olen += (size_t)n;
	s->s_obuf[s->s_olen++] = '\r';
	s->s_obuf[s->s_olen++] = '\n';
}

/*
 * The replies of a message's delivery.  On LMTP each recipient's is sent
 * when it is known (RFC 2033 4.2): a client waits for each with a time
 * limit, and one that gave up would send the message again to all.
 */
static int
session_reply_cb(void *arg, const char *line)
{
	struct session	*s = arg;

	/* SMTP, before another run per recipient (smtpd.conf.5). */
	if (line == NULL)
		return session_expired(s) ? -2 : 0;
	/* A message went through: the junk count starts again (Postfix). */
	if (line[0] == '2')
		s->s_junk = 0;
	/* RFC 3463 3.1: the program's reply gets only its class's code. */
	s->s_external = 1;
	session_reply(s, "%s", line);
	s->s_external = 0;
	reply_421_closes(s, line);
	if (!s->s_client.ci_lmtp)
		return 0;
	session_flush(s);
	if (s->s_dead)
		return -1;
	/*
	 * A 421 tells the client that the connection closes: it takes the
	 * recipients still unanswered as not delivered and sends the
	 * message to them again.  A run after it would give them a copy
	 * each time.
	 */
	if (s->s_closing)
		return -3;
	/* The run that was going finished; no other starts (smtpd.conf.5). */
	return session_expired(s) ? -2 : 0;
}

/*
 * About to wait for input with nothing sent since the last read: the
 * client may hold its next segment until we acknowledge the last one
 * (Nagle), and our delayed ACK would keep it waiting up to 40 ms (after
 * a TLS handshake, within a message that takes more than one read).
 * TCP_QUICKACK sends the ACK now, and later ones at once until we
 * write again; it is not sticky beyond that.
 */
static void
session_ack(struct session *s)
{
	int	 on = 1;

	if (s->s_acked || s->s_quickack || s->s_listener->l_unix)
		return;
	s->s_quickack = 1;
	(void)setsockopt(s->s_fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
}

/*
 * The socket's SO_RCVTIMEO for a wait of ms.  It is the same `timeout`
 * from one command to the next, so the one set last is kept unless it
 * would end the wait late (by more than RCVTO_LATE_MS) or early (by more
 * than RCVTO_EARLY_MS: the caller would then poll for the rest,
 * session_read).
 */
#define RCVTO_LATE_MS	100
#define RCVTO_EARLY_MS	1000

static int
session_rcvtimeo(struct session *s, int ms)
{
	struct timeval	 tv;

	if (s->s_rcvto != 0 && s->s_rcvto <= ms + RCVTO_LATE_MS &&
	    s->s_rcvto >= ms - RCVTO_EARLY_MS)
		return 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	if (setsockopt(s->s_fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)) == -1)
		return -1;
	s->s_rcvto = ms;
	return 0;
}

/*
 * Wait for the client with one blocking read, where a poll() and a read
 * would take two system calls.  EAGAIN when SO_RCVTIMEO ran out, which
 * may be before the wait's end, or when the socket cannot block: the
 * caller polls.  EINTR for a signal.  SIGTERM while waiting for a
 * command ends the wait (session_interrupt); a message in transfer is
 * read on.
 */
static ssize_t
session_recv(struct session *s, void *buf, size_t len)
{
	ssize_t	 n;
	int	 ms = session_wait_ms(s);

	if (ms == 0 || session_rcvtimeo(s, ms) == -1) {
		errno = EAGAIN;
		return -1;
	}
	if (!s->s_indata) {
		session_cutfd = s->s_fd;
		if (session_quit) {
			session_cutfd = -1;
			errno = EINTR;
			return -1;
		}
	}
	n = io_read_wait(s, buf, len);
	session_cutfd = -1;
	/* It may have cut the SO_RCVTIMEO after the read: set it again. */
	if (session_quit)
		s->s_rcvto = 0;
	return n;
}

/*
 * Input.  session_read() flushes the queued replies, then reads at most
 * len octets into buf, waiting (bounded by the timeout) only when
 * nothing is there.  Returns the number of octets read, 0 at EOF, -1
 * when the session must end (timeout, error, shutdown).
 */
static ssize_t
session_read(struct session *s, void *buf, size_t len)
{
	enum { READ_NOW, READ_WAIT, READ_POLL } how;
	struct pollfd	 pfd;
	ssize_t		 n;
	int		 r;

	/*
	 * Read first: a message in transfer, pipelined commands and TLS
	 * records read ahead are there already.  A client that has just
	 * been sent replies has not answered them yet: wait at once.
	 */
	how = s->s_olen > 0 && (s->s_tlsc == NULL ||
	    !tls_pending(s->s_tlsc)) ? READ_WAIT : READ_NOW;
	session_flush(s);
	if (s->s_eof)
		return 0;
	pfd.fd = s->s_fd;
	pfd.events = POLLIN;
	for (;;) {
		/* A message in transfer is finished first. */
		if (session_quit && !s->s_indata)
			return -1;
		if (s->s_waitcmd && session_expired(s))
			return -1;
		if (how != READ_NOW)
			session_ack(s);
		if (how == READ_POLL) {
			r = session_poll(&pfd, session_wait_ms(s),
			    !s->s_indata);
			if (r == -1 && errno == EINTR)
				continue;
			if (r == 0) {
				session_timedout(s);
				return -1;
			}
		}
		n = how == READ_WAIT ? session_recv(s, buf, len) :
		    io_read(s, buf, len);
		if (n == -1 && errno == EAGAIN) {
			pfd.events = io_want(s, POLLIN);
			how = how == READ_NOW ? READ_WAIT : READ_POLL;
		}
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1) {
			log_debug("%s read: %s", s->s_client.ci_sid,
			    strerror(errno));
			return -1;
		}
		if (n == 0)
			s->s_eof = 1;
		else
			score_received((size_t)n);
		s->s_acked = 0;
		return n;
	}
}

/* One fixed input buffer per session: read as much as fits. */
static ssize_t
session_fill(struct session *s)
{
	ssize_t	 n;

	if (s->s_ipos > 0) {
		memmove(s->s_ibuf, s->s_ibuf + s->s_ipos,
		    s->s_ilen - s->s_ipos);
		s->s_ilen -= s->s_ipos;
		s->s_ipos = 0;
	}
	if ((n = session_read(s, s->s_ibuf + s->s_ilen,
	    s->s_isize - s->s_ilen)) > 0)
		s->s_ilen += (size_t)n;
	return n;
}

/* A line too long to be a command: is it a BDAT (see chunk_malformed)? */
static int
line_bdat(const struct session *s, const char *p, size_t len)
{
	return s->s_conf->c_chunking && len >= 5 &&
	    strncasecmp(p, "BDAT ", 5) == 0;
}

/*
 * The next command line, without the CR and LF characters at its end
 * (RFC 5321 2.3.8).  A line that does not fit max-line-length is
 * read to its LF and discarded, so the session stays in sync.
 */
static enum getline_result
session_getline(struct session *s, char **linep, size_t *lenp)
{
	size_t	 maxline = (size_t)s->s_conf->c_lim.lim_maxline;
	size_t	 avail, len;
	char	*p, *nl, *z;

	for (;;) {
		p = s->s_ibuf + s->s_ipos;
		avail = s->s_ilen - s->s_ipos;
		if ((nl = memchr(p, '\n', avail)) != NULL) {
			len = (size_t)(nl - p) + 1;
			s->s_ipos += len;
			if (s->s_skip || len > maxline) {
				if (!s->s_skip)
					s->s_longbdat = line_bdat(s, p, len);
				s->s_skip = 0;
				return LINE_TOOLONG;
			}
			while (len > 0 && (p[len - 1] == '\r' ||
			    p[len - 1] == '\n'))
				len--;
			p[len] = '\0';
			/*
			 * A NUL would cut the line short in C strings; DEL
			 * is a control character to every check as NUL is.
			 */
			while ((z = memchr(p, '\0', len)) != NULL)
				*z = 0x7f;
			*linep = p;
			*lenp = len;
			return LINE_OK;
		}
		if (avail >= maxline) {
			if (!s->s_skip)
				s->s_longbdat = line_bdat(s, p, avail);
			s->s_skip = 1;
			s->s_ipos = s->s_ilen;
		}
		if (session_fill(s) <= 0)
			return LINE_END;
	}
}

/*
 * Command dispatch (RFC 5321 4.1.1)
 */

static const struct command *
command_find(const struct session *s, const char *verb)
{
	size_t	 i;

	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].cmd_verb, verb) != 0)
			continue;
		if ((commands[i].cmd_flags & CMD_F_LMTP) && !session_lmtp(s))
			return NULL;
		if ((commands[i].cmd_flags & CMD_F_CHUNK) &&
		    !s->s_conf->c_chunking)
			return NULL;
		/* Unlike aiosmtpd, no AUTH verb without a backend. */
		if ((commands[i].cmd_flags & CMD_F_AUTHL) &&
		    (s->s_listener->l_flags & LF_AUTH) == 0)
			return NULL;
		return &commands[i];
	}
	return NULL;
}

/* Is the command offered here (HELP lists it, HELP CMD explains it)? */
static int
command_listed(const struct session *s, const struct command *cmd)
{
	if ((cmd->cmd_flags & CMD_F_HELP) == 0)
		return 0;
	if (session_lmtp(s) && (strcmp(cmd->cmd_verb, "HELO") == 0 ||
	    strcmp(cmd->cmd_verb, "EHLO") == 0))
		return 0;
	if ((cmd->cmd_flags & CMD_F_LMTP) && !session_lmtp(s))
		return 0;
	if ((cmd->cmd_flags & CMD_F_AUTHL) &&
	    (s->s_listener->l_flags & LF_AUTH) == 0)
		return 0;
	if (strcmp(cmd->cmd_verb, "STARTTLS") == 0 &&
	    (s->s_listener->l_flags & (LF_STARTTLS | LF_REQ_STARTTLS)) == 0)
		return 0;
	return 1;
}

/* The command line limit, with RFC 1870/6531 MAIL allowances. */
static size_t
command_max_len(const struct session *s, const char *verb)
{
	size_t	 max = CMD_LINE_MAX;

	if (s->s_client.ci_esmtp && strcmp(verb, "MAIL") == 0) {
		if (s->s_conf->c_lim.lim_maxmsgsize != 0)
			max += CMD_SIZE_EXTRA;
		if (s->s_conf->c_smtputf8)
			max += CMD_UTF8_EXTRA;
	}
	return max;
}

/* 1 when the verb's command-limit budget is used up. */
static int
command_over_budget(struct session *s, const char *verb)
{
	struct budget	*b = NULL;
	long long	 max;
	int		 i;

	for (i = 0; i < s->s_nbudgets; i++)
		if (strcmp(s->s_budgets[i].b_verb, verb) == 0)
			b = &s->s_budgets[i];
	if (b == NULL) {
		if ((max = config_cmdlimit(s->s_conf, verb)) == -1)
			return 0;
		/*
		 * Only unknown verbs come this far (five close a session,
		 * but a refused client's are all answered 503): untracked.
		 */
		if (s->s_nbudgets == MAX_BUDGETS)
			return 0;
		if (s->s_budgets == NULL)
			s->s_budgets = xcalloc(MAX_BUDGETS,
			    sizeof(*s->s_budgets));
		b = &s->s_budgets[s->s_nbudgets++];
		strlcpy(b->b_verb, verb, sizeof(b->b_verb));
		b->b_left = max;
	}
	if (b->b_left == 0)
		return 1;
	b->b_left--;
	return 0;
}

static int
command_limits_on(const struct session *s)
{
	return s->s_conf->c_lim.lim_cmdlimit != -1 ||
	    s->s_conf->c_lim.lim_ncmdlimits > 0;
}

/* Split a line into the upper-cased verb and the trimmed argument. */
static char *
command_split(struct session *s, char *line, int *nonascii)
{
	char	*arg, *end;
	size_t	 i, vlen;

	arg = strchr(line, ' ');
	vlen = arg != NULL ? (size_t)(arg - line) : strlen(line);
	*nonascii = 0;
	for (i = 0; i < vlen; i++)
		if ((unsigned char)line[i] >= 0x80)
			*nonascii = 1;
	/* Only a line the length check refuses has a longer verb. */
	if (vlen >= sizeof(s->s_verb))
		vlen = sizeof(s->s_verb) - 1;
	for (i = 0; i < vlen; i++)
		s->s_verb[i] = (char)((line[i] >= 'a' && line[i] <= 'z') ?
		    line[i] - 'a' + 'A' : line[i]);
	s->s_verb[vlen] = '\0';
	if (arg == NULL)
		return NULL;
	arg += strspn(arg, WHITESPACE);
	end = arg + strlen(arg);
	while (end > arg && strchr(WHITESPACE, end[-1]) != NULL)
		*--end = '\0';
	return *arg == '\0' ? NULL : arg;
}

static int
arg_nonascii(const char *arg)
{
	for (; arg != NULL && *arg != '\0'; arg++)
		if ((unsigned char)*arg >= 0x80)
			return 1;
	return 0;
}

/* The generic checks of the table, then the handler . */
static void
command_run(struct session *s, const struct command *cmd, char *arg)
{
	if (cmd->cmd_flags & CMD_F_TIMER)
		deadline_restart(s);
	s->s_ncmds++;
	if ((cmd->cmd_flags & CMD_F_HELO) && s->s_state == S_INIT)
		session_reply(s, "503 Error: send HELO first");
	else if ((cmd->cmd_flags & CMD_F_AUTH) &&
	    (s->s_listener->l_flags & LF_REQ_AUTH) &&
	    s->s_client.ci_user[0] == '\0')
		session_reply(s, "530 5.7.0 Authentication required");
	else if ((cmd->cmd_flags & CMD_F_NOARG) && arg != NULL)
		session_reply(s, "501 %s", cmd->cmd_syntax);
	else {
		s->s_nocode = (cmd->cmd_flags & CMD_F_NOCODE) != 0;
		cmd->cmd_handler(s, arg);
		s->s_nocode = 0;
	}
}

static void
session_not_recognized(struct session *s)
{
	char	 verb[CMD_VERB_MAX];

	strlcpy(verb, s->s_verb, sizeof(verb));
	s->s_hide = verb;
	session_reply(s, "500 Error: command \"%s\" not recognized",
	    session_echo_mask(verb));
	s->s_hide = NULL;
}

/* An unknown verb; the fifth ends the session, as in aiosmtpd. */
static void
session_unknown(struct session *s)
{
	if (++s->s_unknown >= CMD_UNKNOWN_MAX) {
		session_reply(s,
		    "502 5.5.1 Too many unrecognized commands, goodbye.");
		s->s_closing = 1;
		return;
	}
	session_not_recognized(s);
}

/*
 * As Postfix's smtpd_junk_command_limit: commands that move no mail
 * cannot hold a session for ever, one under each `timeout`.  Returns 1
 * when the session ends here.
 */
static int
session_junk(struct session *s, const struct command *cmd)
{
	int	 max = s->s_conf->c_lim.lim_junk;

	if (max == 0 || (cmd != NULL && (cmd->cmd_flags & CMD_F_JUNK) == 0) ||
	    ++s->s_junk <= max)
		return 0;
	log_info("%s junk-command-limit reached (%d)", s->s_client.ci_sid,
	    max);
	session_reply(s, "421 4.7.0 Error: too many junk commands, goodbye.");
	s->s_closing = 1;
	return 1;
}

static void
session_command(struct session *s, char *line, size_t len)
{
	const struct command	*cmd;
	char			*arg, verb[CMD_VERB_MAX];
	int			 nonascii;

	if (len == 0) {
		session_reply(s, "500 Error: bad syntax");
		return;
	}
	arg = command_split(s, line, &nonascii);
	cmd = command_find(s, s->s_verb);
	if (cmd != NULL && (cmd->cmd_flags & CMD_F_CHUNK) &&
	    chunk_announce(s, line, len) == -1) {
		chunk_malformed(s);
		return;
	}
	if (nonascii) {
		session_reply(s, "500 Error: bad syntax");
		return;
	}
	if (!s->s_conf->c_smtputf8 && arg_nonascii(arg)) {
		session_reply(s, "500 Error: strict ASCII mode");
		return;
	}
	if (len > command_max_len(s, s->s_verb)) {
		session_reply(s, "500 Command line too long");
		return;
	}
	if ((s->s_listener->l_flags & LF_REQ_STARTTLS) && !s->s_tls &&
	    (cmd == NULL || (cmd->cmd_flags & CMD_F_PRE_TLS) == 0)) {
		session_reply(s, "530 Must issue a STARTTLS command first");
		return;
	}
	if (command_limits_on(s) && command_over_budget(s, s->s_verb)) {
		strlcpy(verb, s->s_verb, sizeof(verb));
		if (cmd == NULL)
			s->s_hide = verb;
		session_reply(s, "421 4.7.0 %s sent too many times",
		    session_echo_mask(verb));
		s->s_hide = NULL;
		s->s_closing = 1;
		return;
	}
	if (s->s_rejected && (cmd == NULL || cmd->cmd_handler != cmd_quit)) {
		/* RFC 5321 3.1: refused at the greeting, wait for QUIT. */
		session_reply(s, "503 5.7.1 Error: access denied, send QUIT");
		return;
	}
	if (session_junk(s, cmd))
		return;
	if (cmd == NULL)
		session_unknown(s);
	else
		command_run(s, cmd, arg);
}

/*
 * HELO, EHLO, LHLO
 */

/*
 * An LMTP client greets with LHLO only (RFC 2033 4.1); a greeting name
 * must not break a header or argv.
 */
static int
session_greet(struct session *s, const char *arg, int esmtp)
{
	if (session_lmtp(s) && strcmp(s->s_verb, "LHLO") != 0) {
		session_not_recognized(s);
		return -1;
	}
	if (arg == NULL || util_arg_unsafe(arg)) {
		session_reply(s, "501 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return -1;
	}
	session_reset_envelope(s);
	strlcpy(s->s_client.ci_helo, arg, sizeof(s->s_client.ci_helo));
	s->s_client.ci_esmtp = esmtp;
	session_set_state(s, S_HELO);
	return 0;
}

static void
cmd_helo(struct session *s, char *arg)
{
	if (session_greet(s, arg, 0) == 0)
		session_reply(s, "250 %s", s->s_conf->c_hostname);
}

/* AUTH only on `auth` listeners (not as aiosmtpd), inside TLS. */
static int
auth_offered(const struct session *s)
{
	int	 lf = s->s_listener->l_flags;

	return (lf & LF_AUTH) && (s->s_tls || (lf & LF_AUTH_PLAIN));
}

/* The capability list, in this order (smtpd.8 DIAGNOSTICS, 250). */
static void
session_capabilities(struct session *s)
{
	const struct config	*c = s->s_conf;
	int			 lf = s->s_listener->l_flags;

	session_reply(s, "250-%s", c->c_hostname);
	if (c->c_lim.lim_maxmsgsize != 0)
		session_reply(s, "250-SIZE %lld", c->c_lim.lim_maxmsgsize);
	session_reply(s, "250-8BITMIME");
	session_reply(s, "250-PIPELINING");
	if (c->c_chunking)
		session_reply(s, "250-CHUNKING");
	if (c->c_enhanced)
		session_reply(s, "250-ENHANCEDSTATUSCODES");
	if (c->c_smtputf8)
		session_reply(s, "250-SMTPUTF8");
	if ((lf & (LF_STARTTLS | LF_REQ_STARTTLS)) && !s->s_tls)
		session_reply(s, "250-STARTTLS");
	if (auth_offered(s))
		session_reply(s, "250-AUTH%s%s",
		    (c->c_auth.au_mechs & AUTHM_LOGIN) ? " LOGIN" : "",
		    (c->c_auth.au_mechs & AUTHM_PLAIN) ? " PLAIN" : "");
	session_reply(s, "250 HELP");
}

/* EHLO and LHLO; for LHLO too, as in aiosmtpd, the 501 names EHLO. */
static void
cmd_ehlo(struct session *s, char *arg)
{
	if (session_greet(s, arg, 1) == 0)
		session_capabilities(s);
}

/*
 * AUTH (RFC 4954).  auth.c decodes and checks
 * credentials; the exchange with the client is here.
 */

#define AUTH_BUF	(3 * AUTH_FIELD_MAX + 4)
#define AUTHX_OK	0	/* user and password are filled in */
#define AUTHX_REPLIED	(-1)	/* the exchange ended with a reply */
#define AUTHX_UNUSABLE	1	/* too long: fails like bad credentials */

/*
 * A response into out (outsz octets); "=" is the empty response, as RFC
 * 4954 4 has it.  Base64 too long for out (possible with a
 * max-line-length above 2 KiB) fails as credentials too long would: a
 * LOGIN field of AUTH_BUF octets is (PLAIN decodes whole, auth_plain).
 */
static int
auth_decode(struct session *s, const char *b64, unsigned char *out,
    size_t outsz, size_t *outlen)
{
	switch (auth_b64_decode(b64, out, outsz, outlen)) {
	case -1:
		session_reply(s, "501 5.5.2 Can't decode base64");
		return AUTHX_REPLIED;
	case -2:
		out[0] = '\0';
		return AUTHX_UNUSABLE;
	}
	out[*outlen] = '\0';
	return AUTHX_OK;
}

/* The client's answer to a 334 challenge: one line, never a command. */
static int
auth_response(struct session *s, const char *challenge, unsigned char *out,
    size_t outsz, size_t *outlen)
{
	char	*line, *end;
	size_t	 len;
	int	 r;

	session_reply(s, "334 %s", challenge);
	switch (session_getline(s, &line, &len)) {
	case LINE_END:
		/*
		 * The end of shutdown-grace: the 421 a wait for a command
		 * gets (session_loop), not a close without a word.
		 */
		if (session_quit && !s->s_eof)
			session_shutdown(s);
		s->s_closing = 1;
		return AUTHX_REPLIED;
	case LINE_TOOLONG:
		session_reply(s,
		    "500 5.5.6 Authentication Exchange line is too long");
		return AUTHX_REPLIED;
	case LINE_OK:
		break;
	}
	line += strspn(line, WHITESPACE);
	for (end = line + strlen(line); end > line &&
	    strchr(WHITESPACE, end[-1]) != NULL; )
		*--end = '\0';
	if (strcmp(line, "*") == 0) {
		session_reply(s, "501 5.7.0 Auth aborted");
		r = AUTHX_REPLIED;
	} else
		r = auth_decode(s, line, out, outsz, outlen);
	explicit_bzero(line, strlen(line));
	return r;
}

/* A decoded field into a NUL-terminated buffer of AUTH_FIELD_MAX. */
static int
auth_field(char *dst, const unsigned char *src, size_t len)
{
	if (len >= AUTH_FIELD_MAX || memchr(src, '\0', len) != NULL) {
		dst[0] = '\0';
		return AUTHX_UNUSABLE;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	return AUTHX_OK;
}

/*
 * The first response: the one the AUTH line gave (ir, wiped once
 * decoded: it lies in the input buffer, which reading the next line may
 * move), else one asked for with challenge.
 */
static int
auth_first(struct session *s, char *ir, const char *challenge,
    unsigned char *out, size_t outsz, size_t *outlen)
{
	int	 r;

	if (ir == NULL)
		return auth_response(s, challenge, out, outsz, outlen);
	r = auth_decode(s, ir, out, outsz, outlen);
	explicit_bzero(ir, strlen(ir));
	return r;
}

/*
 * RFC 4616: [authzid] NUL authcid NUL password; the authzid is ignored.
 * The value is decoded whole, however long a line brought it (at most
 * max-line-length octets, session_getline): one that does not split is
 * a 501 whatever its length, and a long authzid takes nothing from good
 * credentials.
 */
static int
auth_plain(struct session *s, char *ir, char *user, char *pass)
{
	unsigned char	*buf;
	const char	*u, *p;
	size_t		 len, size;
	int		 r;

	size = (size_t)s->s_conf->c_lim.lim_maxline / 4 * 3 + 1;
	if (size < AUTH_BUF)
		size = AUTH_BUF;
	buf = xmalloc(size);
	r = auth_first(s, ir, "", buf, size, &len);
	if (r == AUTHX_OK && auth_plain_split(buf, len, &u, &p) == -1) {
		session_reply(s, "501 5.5.2 Can't split auth value");
		r = AUTHX_REPLIED;
	}
	if (r == AUTHX_OK && (auth_field(user, (const unsigned char *)u,
	    strlen(u)) != AUTHX_OK || auth_field(pass,
	    (const unsigned char *)p, strlen(p)) != AUTHX_OK))
		r = AUTHX_UNUSABLE;
	explicit_bzero(buf, size);
	free(buf);
	return r;
}

/* LOGIN: the challenges are base64 of "User Name\0" and "Password\0". */
static int
auth_login(struct session *s, char *ir, char *user, char *pass)
{
	unsigned char	 buf[AUTH_BUF];
	size_t		 len;
	int		 r, bad;

	r = auth_first(s, ir, "VXNlciBOYW1lAA==", buf, sizeof(buf), &len);
	if (r == AUTHX_REPLIED)
		return r;
	if (r == AUTHX_OK)
		bad = auth_field(user, buf, len);
	else {
		user[0] = '\0';
		bad = AUTHX_UNUSABLE;
	}
	r = auth_response(s, "UGFzc3dvcmQA", buf, sizeof(buf), &len);
	if (r == AUTHX_OK)
		r = auth_field(pass, buf, len) == AUTHX_OK ? bad :
		    AUTHX_UNUSABLE;
	explicit_bzero(buf, sizeof(buf));
	return r;
}

/*
 * auth max-failures-per-address: the master counts the failures of the
 * client's address (the one a PROXY header named) over all sessions;
 * not those of local clients or of `auth exempt` networks.
 */
static int
auth_counted(const struct session *s)
{
	const struct conf_auth	*au = &s->s_conf->c_auth;
	struct sockaddr_storage	 ss;

	return au->au_maxfail_addr > 0 && session_auth_ended != NULL &&
	    session_auth_check != NULL && s->s_client.ci_addr[0] != '\0' &&
	    !(net_sockaddr(s->s_client.ci_addr, &ss) == 0 &&
	    net_match(au->au_exempt, au->au_nexempt,
	    (struct sockaddr *)&ss));
}

static int
auth_throttled(const struct session *s)
{
	return auth_counted(s) &&
	    session_auth_check(s->s_client.ci_addr) == -1;
}

/* failure-delay where the broker does not pause: not the client's time. */
static void
auth_pause(struct session *s)
{
	long long	 start = util_now_ms();

	if (s->s_conf->c_auth.au_delay > 0)
		sleep((unsigned int)s->s_conf->c_auth.au_delay);
	deadline_extend(s, util_now_ms() - start);
}

/* The backend's verdict, bounded failures (auth max-failures). */
static void
auth_finish(struct session *s, const char *mech, const char *user,
    const char *pass, int unusable)
{
	char		 esc[128];
	long long	 start;
	int		 r;

	if (auth_throttled(s)) {
		/* Not even asked: the address failed too often lately. */
		log_info("%s auth user=%s throttled mechanism=%s",
		    s->s_client.ci_sid, log_escape(user, strlen(user), esc,
		    sizeof(esc)), mech);
		auth_pause(s);
		session_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	if (unusable) {
		/*
		 * The broker holds a failed verdict for the delay (before
		 * the 535, or the 421 of max-failures): these wait as long.
		 */
		r = AUTH_FAILED;
		auth_pause(s);
	} else {
		/* The broker checks: no session child holds the passwd file. */
		start = util_now_ms();
		r = broker_auth(user, pass, s->s_conf->c_auth.au_delay);
		/*
		 * AUTH responses do not restart the timer, but the time a
		 * slow backend (checkpassword) takes, or the broker's
		 * failure-delay, is not the client's.
		 */
		deadline_extend(s, util_now_ms() - start);
	}
	if (auth_counted(s))
		session_auth_ended(s->s_client.ci_addr, r == AUTH_FAILED);
	log_info("%s auth user=%s %s mechanism=%s", s->s_client.ci_sid,
	    log_escape(user, strlen(user), esc, sizeof(esc)),
	    r == AUTH_OK ? "ok" : r == AUTH_TEMPFAIL ? "tempfail" : "failed",
	    mech);
	score_count(r == AUTH_OK ? SC_AUTH_OK : r == AUTH_TEMPFAIL ?
	    SC_AUTH_TEMPFAIL : SC_AUTH_FAILED);
	if (r == AUTH_OK) {
		strlcpy(s->s_client.ci_user, user,
		    sizeof(s->s_client.ci_user));
		session_reply(s, "235 2.7.0 Authentication successful");
	} else if (r == AUTH_TEMPFAIL)
		session_reply(s, "454 4.7.0 Temporary authentication failure");
	else if (++s->s_authfail >= s->s_conf->c_auth.au_maxfail) {
		session_reply(s, "421 4.7.0 Too many authentication failures");
		s->s_closing = 1;
	} else
		session_reply(s,
		    "535 5.7.8 Authentication credentials invalid");
}

/* The checks, in aiosmtpd's order (smtpd.8 DIAGNOSTICS). */
static int
auth_refused(struct session *s, const char *arg)
{
	if (s->s_state == S_INIT)
		session_reply(s, "503 Error: send EHLO first");
	else if (!s->s_client.ci_esmtp)
		session_reply(s, "500 Error: command 'AUTH' not recognized");
	else if (!s->s_tls && (s->s_listener->l_flags & LF_AUTH_PLAIN) == 0)
		session_reply(s, "538 5.7.11 Encryption required for "
		    "requested authentication mechanism");
	else if (s->s_client.ci_user[0] != '\0')
		session_reply(s, "503 Already authenticated");
	else if (s->s_state >= S_MAIL)
		/* RFC 4954 4: MAIL and RCPT were judged unauthenticated. */
		session_reply(s, "503 5.5.1 Error: MAIL transaction in "
		    "progress");
	else if (arg == NULL)
		session_reply(s, "501 Not enough value");
	else
		return 0;
	return 1;
}

/*
 * arg lies in the input buffer, which the exchange's next lines may move:
 * nothing from it is used once a mechanism has begun (auth_first).
 */
static void
cmd_auth(struct session *s, char *arg)
{
	char		 user[AUTH_FIELD_MAX], pass[AUTH_FIELD_MAX], *ir, *last;
	const char	*mech;
	int		 mechs = s->s_conf->c_auth.au_mechs, r;

	if (auth_refused(s, arg))
		return;
	/* A mechanism that ends unusable may have filled in neither. */
	user[0] = pass[0] = '\0';
	mech = strtok_r(arg, WHITESPACE, &last);
	ir = strtok_r(NULL, WHITESPACE, &last);
	if (strtok_r(NULL, WHITESPACE, &last) != NULL) {
		session_reply(s, "501 Too many values");
		return;
	}
	/* Mechanism names are compared as sent, as aiosmtpd does. */
	if (strcmp(mech, "PLAIN") == 0 && (mechs & AUTHM_PLAIN)) {
		mech = "PLAIN";
		r = auth_plain(s, ir, user, pass);
	} else if (strcmp(mech, "LOGIN") == 0 && (mechs & AUTHM_LOGIN)) {
		mech = "LOGIN";
		r = auth_login(s, ir, user, pass);
	} else {
		session_reply(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	/* Refused like a HELO name, before any backend sees it. */
	if (r == AUTHX_OK && util_arg_unsafe(user))
		r = AUTHX_UNUSABLE;
	if (r != AUTHX_REPLIED)
		auth_finish(s, mech, user, pass, r == AUTHX_UNUSABLE);
	explicit_bzero(pass, sizeof(pass));
}

/*
 * MAIL and RCPT
 */

/* "FROM:" / "TO:" in any case, then the text after it, trimmed. */
static char *
strip_keyword(char *arg, const char *kw)
{
	size_t	 len = strlen(kw);

	if (arg == NULL || strncasecmp(arg, kw, len) != 0)
		return NULL;
	arg += len;
	return arg + strspn(arg, WHITESPACE);
}

/*
 * A MAIL or RCPT path or a VRFY argument, parsed and normalised by
 * addr.c, then refused for control characters, a local
 * part over max-local-part, or a normalised form that begins with '-'
 * and could pass for an option of the delivery program.  ADDR_EMPTY (a
 * bare "") is left to the caller.
 */
static int
session_path(struct session *s, char *arg, char *out, size_t outsz,
    char **rest)
{
	const char	*r;
	size_t		 locallen;
	int		 res;

	if (util_has_ctl(arg) || 2 * strlen(arg) + 8 > outsz)
		return ADDR_BAD;
	res = addr_parse(arg, out, outsz, &locallen, &r);
	if (res == ADDR_BAD || out[0] == '-' ||
	    (s->s_conf->c_lim.lim_maxlocal > 0 &&
	    locallen > (size_t)s->s_conf->c_lim.lim_maxlocal))
		return ADDR_BAD;
	r += strspn(r, WHITESPACE);
	*rest = arg + (r - arg);
	return res;
}

/* Parameters seen at MAIL; for a repeated keyword the last one counts. */
struct mail_params {
	const char	*mp_body;	/* the last BODY token */
	const char	*mp_size;
	const char	*mp_utf8;
	int		 mp_other;
};

/*
 * RFC 5321 4.1.2 esmtp-param: upper-case the parameters and check that every
 * one is KEYWORD or KEYWORD=VALUE.  Returns the number of parameters
 * (stored in tok unless it is NULL), or -1 on a syntax error.
 */
static int
params_split(char *rest, char **tok, int maxtok)
{
	char	*p, *eq, *last;
	int	 n = 0;
	size_t	 klen, i;

	for (p = rest; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	for (p = strtok_r(rest, WHITESPACE, &last); p != NULL;
	    p = strtok_r(NULL, WHITESPACE, &last)) {
		eq = strchr(p, '=');
		klen = eq != NULL ? (size_t)(eq - p) : strlen(p);
		if (klen == 0 || (eq != NULL && eq[1] == '\0'))
			return -1;
		for (i = 0; i < klen; i++)
			if (!((p[i] >= 'A' && p[i] <= 'Z') ||
			    (p[i] >= '0' && p[i] <= '9')))
				return -1;
		if (tok != NULL) {
			if (n == maxtok)
				return -1;
			tok[n] = p;
		}
		n++;
	}
	return n;
}

static int
param_is(const char *tok, const char *kw)
{
	size_t	 len = strlen(kw);

	return strncmp(tok, kw, len) == 0 &&
	    (tok[len] == '\0' || tok[len] == '=');
}

/* The value of KEYWORD=VALUE, NULL for a bare KEYWORD. */
static const char *
param_value(const char *tok)
{
	const char	*eq = strchr(tok, '=');

	return eq != NULL ? eq + 1 : NULL;
}

static int
size_too_big(const char *digits, long long max)
{
	long long	 v = 0;

	for (; *digits != '\0'; digits++) {
		if (v > (max - (*digits - '0')) / 10)
			return 1;
		v = v * 10 + (*digits - '0');
	}
	return v > max;
}

/* BODY, SMTPUTF8, SIZE, others; replies and returns -1 on a refusal. */
static int
mail_params_check(struct session *s, const struct mail_params *mp,
    const char *syntax)
{
	const char	*v;

	if (mp->mp_body != NULL && ((v = param_value(mp->mp_body)) == NULL ||
	    (strcmp(v, "7BIT") != 0 && strcmp(v, "8BITMIME") != 0))) {
		session_reply(s,
		    "501 Error: BODY can only be one of 7BIT, 8BITMIME");
		return -1;
	}
	if (mp->mp_utf8 != NULL && param_value(mp->mp_utf8) != NULL) {
		session_reply(s, "501 Error: SMTPUTF8 takes no arguments");
		return -1;
	}
	if (mp->mp_utf8 != NULL && !s->s_conf->c_smtputf8) {
		session_reply(s, "501 Error: SMTPUTF8 disabled");
		return -1;
	}
	if (mp->mp_size != NULL && ((v = param_value(mp->mp_size)) == NULL ||
	    strspn(v, "0123456789") != strlen(v))) {
		session_reply(s, "501 %s", syntax);
		return -1;
	}
	if (mp->mp_size != NULL && s->s_conf->c_lim.lim_maxmsgsize != 0 &&
	    size_too_big(param_value(mp->mp_size),
	    s->s_conf->c_lim.lim_maxmsgsize)) {
		session_reply(s, "552 Error: message size exceeds fixed "
		    "maximum message size");
		return -1;
	}
	if (mp->mp_other) {
		session_reply(s, "555 MAIL FROM parameters not recognized or "
		    "not implemented");
		return -1;
	}
	return 0;
}

static int
mail_params(struct session *s, char *rest, const char *syntax,
    struct mail_params *mp)
{
	char	*tok[CMD_LINE_MAX];
	int	 i, n;

	memset(mp, 0, sizeof(*mp));
	if ((n = params_split(rest, tok, (int)(sizeof(tok) / sizeof(tok[0]))))
	    == -1) {
		session_reply(s, "501 %s", syntax);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (param_is(tok[i], "BODY"))
			mp->mp_body = tok[i];
		else if (param_is(tok[i], "SMTPUTF8"))
			mp->mp_utf8 = tok[i];
		else if (param_is(tok[i], "SIZE"))
			mp->mp_size = tok[i];
		else
			mp->mp_other = 1;
	}
	return mail_params_check(s, mp, syntax);
}

#define ADDR_BUF_LEN	(2 * (CMD_LINE_MAX + CMD_SIZE_EXTRA + \
			    CMD_UTF8_EXTRA) + 8)

/*
 * A refusal by the tables, networks or policy server (smtpd.conf.5
 * POLICY), logged with what it refused: "reject rcpt to=<b@example.net>:
 * 550 5.1.1 <b@example.net>: User unknown", or "reject client: 554 ...".
 */
static void
session_log_refusal(const struct session *s, const char *what,
    const char *addr, const char *reply)
{
	char	 esc[REPLY_MAX], aesc[LOG_ADDR_MAX];

	log_escape(reply, strlen(reply), esc, sizeof(esc));
	if (addr == NULL)
		log_info("%s reject %s: %s", s->s_client.ci_sid, what, esc);
	else
		log_info("%s reject %s=<%s>: %s", s->s_client.ci_sid, what,
		    log_escape(addr, strlen(addr), aesc, sizeof(aesc)), esc);
}

static void
cmd_mail(struct session *s, char *arg)
{
	struct mail_params	 mp;
	const char		*syntax;
	char			 addr[ADDR_BUF_LEN], esc[LOG_ADDR_MAX], *rest;
	char			 reply[REPLY_MAX];
	int			 r;

	syntax = s->s_client.ci_esmtp ?
	    "Syntax: MAIL FROM: <address>" MAIL_PARAMS :
	    "Syntax: MAIL FROM: <address>";
	if ((arg = strip_keyword(arg, "FROM:")) == NULL || *arg == '\0') {
		session_reply(s, "501 %s", syntax);
		return;
	}
	if ((r = session_path(s, arg, addr, sizeof(addr), &rest)) ==
	    ADDR_BAD) {
		session_reply(s, "553 5.1.3 Error: malformed address");
		return;
	}
	/* A bare "" names no sender, and is not the null path <>. */
	if (r == ADDR_EMPTY || (!s->s_client.ci_esmtp && *rest != '\0')) {
		session_reply(s, "501 %s", syntax);
		return;
	}
	if (s->s_state >= S_MAIL) {
		session_reply(s, "503 Error: nested MAIL command");
		return;
	}
	if (mail_params(s, rest, syntax, &mp) == -1)
		return;
	if (policy_sender(s->s_conf, addr, reply, sizeof(reply)) == -1) {
		session_log_refusal(s, "mail from", addr, reply);
		session_reply(s, "%s", reply);
		return;
	}
	s->s_env.e_sender = xstrdup(addr);
	s->s_env.e_body8 = mp.mp_body != NULL &&
	    strcmp(param_value(mp.mp_body), "8BITMIME") == 0;
	s->s_env.e_smtputf8 = mp.mp_utf8 != NULL;
	log_info("%s mail from=<%s> size=%s", s->s_client.ci_sid,
	    log_escape(addr, strlen(addr), esc, sizeof(esc)),
	    mp.mp_size != NULL ? param_value(mp.mp_size) : "0");
	session_set_state(s, S_MAIL);
	session_reply(s, "250 OK");
}

static void
envelope_add_rcpt(struct envelope *e, const char *addr)
{
	if (e->e_nrcpts == e->e_rcptcap) {
		e->e_rcptcap = e->e_rcptcap == 0 ? 8 : e->e_rcptcap * 2;
		e->e_rcpts = xreallocarray(e->e_rcpts, e->e_rcptcap,
		    sizeof(*e->e_rcpts));
	}
	e->e_rcpts[e->e_nrcpts++] = xstrdup(addr);
	e->e_rcptlen += strlen(addr) + 1;
}

static void
cmd_rcpt(struct session *s, char *arg)
{
	const char	*syntax;
	char		 addr[ADDR_BUF_LEN], esc[LOG_ADDR_MAX], *rest;
	char		 reply[REPLY_MAX];
	int		 r;

	syntax = s->s_client.ci_esmtp ?
	    "Syntax: RCPT TO: <address>" MAIL_PARAMS :
	    "Syntax: RCPT TO: <address>";
	if (s->s_state < S_MAIL) {
		session_reply(s, "503 Error: need MAIL command");
		return;
	}
	if (s->s_chunk.ch_active) {
		session_reply(s, "503 5.5.1 Error: RCPT after BDAT");
		return;
	}
	if ((arg = strip_keyword(arg, "TO:")) == NULL || *arg == '\0') {
		session_reply(s, "501 %s", syntax);
		return;
	}
	/* The null path is no recipient (aiosmtpd accepts it). */
	r = session_path(s, arg, addr, sizeof(addr), &rest);
	if (r == ADDR_BAD || r == ADDR_NULL) {
		session_reply(s, "553 5.1.3 Error: malformed address");
		return;
	}
	/* A bare "" (ADDR_EMPTY) names no recipient: 501, as aiosmtpd. */
	if (r == ADDR_EMPTY || (!s->s_client.ci_esmtp && *rest != '\0') ||
	    (r = params_split(rest, NULL, 0)) == -1) {
		session_reply(s, "501 %s", syntax);
		return;
	}
	if (r > 0) {
		session_reply(s, "555 RCPT TO parameters not recognized or "
		    "not implemented");
		return;
	}
	/*
	 * By count, and by size: the program could not be started with a
	 * SMTPD_RECIPIENTS longer than the kernel takes (E2BIG), and every
	 * retry of the client would fail the same way.
	 */
	if (s->s_env.e_nrcpts >= (size_t)s->s_conf->c_lim.lim_maxrcpt ||
	    s->s_env.e_rcptlen + strlen(addr) + 1 > RCPT_ENV_MAX) {
		session_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	/* Tables, then the policy server (smtpd.conf.5 POLICY). */
	if (policy_rcpt(s->s_policy, s->s_conf, &s->s_client, &s->s_env,
	    addr, reply, sizeof(reply)) == -1) {
		session_log_refusal(s, "rcpt to", addr, reply);
		session_reply(s, "%s", reply);
		reply_421_closes(s, reply);
		return;
	}
	envelope_add_rcpt(&s->s_env, addr);
	log_info("%s rcpt to=<%s>", s->s_client.ci_sid,
	    log_escape(addr, strlen(addr), esc, sizeof(esc)));
	session_set_state(s, S_RCPT);
	session_reply(s, "250 OK");
}

/*
 * DATA (RFC 5321 4.1.1.4, 4.5.2)
 */

enum data_error {
	DATA_OK,
	DATA_TOO_BIG,		/* 552 */
	DATA_LINE_TOO_LONG	/* 500 */
};

/*
 * DATA's own work: the final dot, transparency dots and the size as
 * received.  The content rules (line length, bare CR and LF) are
 * content.c's, shared with BDAT.
 */
struct data_reader {
	int		 d_bol;		/* at the beginning of a line */
	int		 d_cr;		/* the last octet consumed was CR */
	int		 d_lines;	/* lines completed in this scan */
	long long	 d_size;	/* octets received: CRLFs and stuffing dots */
	enum data_error	 d_error;	/* the first limit crossed */
	struct content	 d_content;
};

static void
data_start(struct session *s, struct data_reader *d, int bare)
{
	memset(d, 0, sizeof(*d));
	d->d_bol = 1;
	content_init(&d->d_content, &s->s_spool,
	    (size_t)s->s_conf->c_lim.lim_maxline, bare);
}

/*
 * n received octets of the current line, for the content rules (p is
 * NULL for a stuffing dot, which counts for the line but is not kept).
 * Only the octets before the one that passes max-message-size are
 * given, so when one run of octets crosses both limits, the one crossed
 * first decides, and the size when it is the same octet.
 */
static void
data_take(struct session *s, struct data_reader *d, const char *p,
    size_t n)
{
	long long	 max = s->s_conf->c_lim.lim_maxmsgsize;
	size_t		 keep = n;

	if (max != 0 && d->d_size + (long long)n > max)
		keep = d->d_size >= max ? 0 : (size_t)(max - d->d_size);
	if (d->d_error == DATA_OK) {
		if (p == NULL)
			content_count(&d->d_content, keep);
		else
			content_write(&d->d_content, p, keep);
		if (d->d_content.ct_toolong)
			d->d_error = DATA_LINE_TOO_LONG;
		else if (keep < n)
			d->d_error = DATA_TOO_BIG;
	}
	d->d_size += (long long)n;
}

/*
 * The start of a line: the end of data or a transparency dot (RFC 5321
 * 4.5.2).  Returns 1 at the final dot, -1 when more input is needed to
 * decide, 0 otherwise.
 */
static int
data_line_start(struct session *s, struct data_reader *d)
{
	const char	*p = s->s_ibuf + s->s_ipos;
	size_t		 n = s->s_ilen - s->s_ipos;

	d->d_bol = 0;
	if (p[0] != '.')
		return 0;
	if (n < 3 && (n == 1 || p[1] == '\r')) {
		d->d_bol = 1;
		return -1;
	}
	if (p[1] == '\r' && p[2] == '\n') {
		s->s_ipos += 3;
		return 1;
	}
	/* The stuffing dot counts as received but is not kept. */
	data_take(s, d, NULL, 1);
	s->s_ipos++;
	return 0;
}

/*
 * Consume buffered input.  Only CRLF ends a line: a bare LF or a bare CR
 * is data, so "\n.\r\n" or "\r.\r\n" never ends the message (SMTP
 * smuggling, CVE-2023-51766 and friends).  Returns 1 at the final dot.
 */
static int
data_scan(struct session *s, struct data_reader *d)
{
	const char	*p, *lf;
	size_t		 n, off;
	int		 r;

	while (s->s_ipos < s->s_ilen) {
		if (d->d_bol && (r = data_line_start(s, d)) != 0)
			return r == 1;
		p = s->s_ibuf + s->s_ipos;
		n = s->s_ilen - s->s_ipos;
		for (off = 0; (lf = memchr(p + off, '\n', n - off)) != NULL;
		    off = (size_t)(lf - p) + 1) {
			if ((lf > p && lf[-1] == '\r') || (lf == p && d->d_cr))
				break;
		}
		if (lf == NULL) {
			/* Remember a trailing CR: its LF may come next. */
			d->d_cr = p[n - 1] == '\r';
			data_take(s, d, p, n);
			s->s_ipos += n;
			break;
		}
		n = (size_t)(lf - p) + 1;
		data_take(s, d, p, n);
		s->s_ipos += n;
		d->d_cr = 0;
		d->d_bol = 1;
		d->d_lines++;
	}
	return 0;
}

/* Read the message to its final dot; 0 when the client went away. */
static int
data_read(struct session *s, struct data_reader *d)
{
	data_start(s, d, policy_bare_newline(s->s_conf, &s->s_client));
	for (;;) {
		d->d_lines = 0;
		if (data_scan(s, d)) {
			content_end(&d->d_content);
			return 1;
		}
		/* Every line restarts the timer (aiosmtpd times all of DATA). */
		if (d->d_lines > 0)
			deadline_restart(s);
		if (session_fill(s) <= 0)
			return 0;
	}
}

/* One reply for the message, or one per recipient in LMTP (RFC 2033 4.2). */
static void
data_reply_all(struct session *s, const char *reply)
{
	size_t	 i, n = session_lmtp(s) ? s->s_env.e_nrcpts : 1;

	for (i = 0; i < n; i++)
		session_reply(s, "%s", reply);
}

/*
 * A message has been received whole (size octets as received): its
 * reply, from the first rule it breaks, else from the policy server
 * and the delivery program.
 */
static void
data_finish(struct session *s, enum data_error error,
    const struct content *ct, long long size)
{
	char	 reply[REPLY_MAX], esc[REPLY_MAX];

	if (session_expired(s))
		session_timeup(s);	/* read to its end, not delivered */
	else if (error == DATA_TOO_BIG)
		data_reply_all(s, "552 Error: Too much mail data");
	else if (error == DATA_LINE_TOO_LONG)
		data_reply_all(s, "500 Line too long (see RFC5321 4.5.3.1.6)");
	else if (ct->ct_sawbare && ct->ct_bare == BARE_REJECT) {
		log_info("%s message %s refused: bare CR or LF",
		    s->s_client.ci_sid, s->s_env.e_id);
		data_reply_all(s, "550 5.5.2 Error: bare <CR> or <LF> received");
	} else if (!s->s_spool.sp_error && policy_data(s->s_policy,
	    s->s_conf, &s->s_client, &s->s_env, size, reply,
	    sizeof(reply)) == -1) {
		log_info("%s message %s refused: %s", s->s_client.ci_sid,
		    s->s_env.e_id, log_escape(reply, strlen(reply), esc,
		    sizeof(esc)));
		data_reply_all(s, reply);
		reply_421_closes(s, reply);
	} else
		/*
		 * A message the spool could not hold is answered there too
		 * (452 4.3.1), and logged and counted as a delivery of status
		 * none, without asking the policy server about it.
		 */
		deliver_message(s->s_conf, &s->s_client, &s->s_env,
		    &s->s_spool, session_reply_cb, s);
}

/* A new message of the session: its id and an empty spool. */
static void
message_begin(struct session *s)
{
	s->s_nmsgs++;
	snprintf(s->s_env.e_id, sizeof(s->s_env.e_id), "%s.%u",
	    s->s_client.ci_sid, s->s_nmsgs);
	spool_clear(&s->s_spool, SIZE_MAX);
}

/*
 * The message is complete (DATA's final dot, BDAT LAST): its replies,
 * then the transaction ends.
 */
static void
message_end(struct session *s, enum data_error error,
    const struct content *ct, long long size)
{
	score_message(size);
	s->s_msgreply = 1;
	data_finish(s, error, ct, size);
	s->s_msgreply = 0;
	/* The time the delivery took is not the client's. */
	deadline_restart(s);
	session_reset_envelope(s);
}

/* Nothing is delivered of an unfinished message. */
static void
message_abort(struct session *s, long long size)
{
	log_info("%s message %s aborted after %lld octets",
	    s->s_client.ci_sid, s->s_env.e_id, size);
	s->s_closing = 1;
	session_reset_envelope(s);
}

static void
cmd_data(struct session *s, char *arg)
{
	struct data_reader	 d;
	int			 r;

	if (s->s_chunk.ch_active) {
		session_reply(s,
		    "503 5.5.1 Error: BDAT in progress, DATA not allowed");
		return;
	}
	if (s->s_state < S_RCPT) {
		session_reply(s, "503 Error: need RCPT command");
		return;
	}
	if (arg != NULL) {
		session_reply(s, "501 Syntax: DATA");
		return;
	}
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	message_begin(s);
	s->s_indata = 1;
	score_state(SS_DATA);
	r = data_read(s, &d);
	s->s_indata = 0;
	if (r)
		message_end(s, d.d_error, &d.d_content, d.d_size);
	else
		message_abort(s, d.d_size);
}

/*
 * BDAT (RFC 3030, see smtpd(8) CHUNKING)
 */

/*
 * `BDAT <size> [LAST]': size 1 to 19 digits, LAST in any case, one SP
 * between the words and nothing else.  The line is the whole command
 * line without its CR LF.  0, or -1 when the size cannot be known.
 */
int
session_bdat_parse(const char *line, size_t len, unsigned long long *size,
    int *last)
{
	size_t	 i, digits;

	if (len < 6 || strncasecmp(line, "BDAT ", 5) != 0)
		return -1;
	*size = 0;
	for (i = 5, digits = 0; i < len && line[i] >= '0' && line[i] <= '9';
	    i++, digits++)
		*size = *size * 10 + (unsigned long long)(line[i] - '0');
	if (digits == 0 || digits > BDAT_DIGITS_MAX)
		return -1;
	*last = 0;
	if (i == len)
		return 0;
	if (len - i != 5 || strncasecmp(line + i, " LAST", 5) != 0)
		return -1;
	*last = 1;
	return 0;
}

/*
 * The line of a BDAT: from its LF on, `size' octets are chunk data
 * whatever the reply (session_reply reads them first when it is not the
 * handler that takes them).
 */
static int
chunk_announce(struct session *s, const char *line, size_t len)
{
	struct chunking	*ch = &s->s_chunk;

	if (session_bdat_parse(line, len, &ch->ch_left, &ch->ch_last) == 0)
		return 0;
	ch->ch_left = 0;
	return -1;
}

/*
 * A BDAT line whose size cannot be known, too long ones included: what
 * follows cannot be told from commands (RFC 3030 2), so before any other
 * check, and whatever it would say, the session ends.
 */
static void
chunk_malformed(struct session *s)
{
	s->s_ncmds++;
	session_reply(s, "501 Syntax: BDAT <size> [LAST]");
	s->s_closing = 1;
}

/*
 * A large chunk with nothing buffered is read straight into the spool,
 * without a copy through the input buffer, and the content rules look
 * at it there.  Never more than the chunk: what follows is commands.
 * Returns as session_read(); 0 with *direct unset when it cannot be.
 */
static ssize_t
chunk_read_spool(struct session *s, int *direct)
{
	struct chunking	*ch = &s->s_chunk;
	size_t		 want, room;
	ssize_t		 n;
	char		*p;

	*direct = 0;
	if (ch->ch_left < CHUNK_DIRECT_MIN ||
	    !content_inplace_ok(&ch->ch_content))
		return 0;
	want = ch->ch_left > SIZE_MAX ? SIZE_MAX : (size_t)ch->ch_left;
	if ((p = spool_reserve(&s->s_spool, want, &room)) == NULL)
		return 0;
	*direct = 1;
	if ((n = session_read(s, p, room)) <= 0)
		return n;
	content_scan(&ch->ch_content, p, (size_t)n);
	spool_commit(&s->s_spool, (size_t)n);
	ch->ch_size += n;
	ch->ch_left -= (size_t)n;
	return n;
}

/* Chunk octets in the input buffer: into the message, or dropped. */
static void
chunk_take(struct session *s, int keep)
{
	struct chunking	*ch = &s->s_chunk;
	size_t		 n = s->s_ilen - s->s_ipos;

	if ((unsigned long long)n > ch->ch_left)
		n = (size_t)ch->ch_left;
	if (keep) {
		/* Lines end at CRLF across chunks, as in DATA. */
		content_write(&ch->ch_content, s->s_ibuf + s->s_ipos, n);
		ch->ch_size += (long long)n;
	}
	s->s_ipos += n;
	ch->ch_left -= n;
}

/*
 * Read the rest of the chunk: into the message when keep is set, else
 * dropped.  The timeout restarts at every read, as in DATA.  When the
 * client goes away first, ch_cut is set and nothing more is said to it.
 */
static void
chunk_read(struct session *s, int keep)
{
	struct chunking	*ch = &s->s_chunk;
	ssize_t		 n;
	int		 direct = 0;

	s->s_indata = 1;
	while (ch->ch_left > 0) {
		if (s->s_ipos < s->s_ilen) {
			chunk_take(s, keep);
			continue;
		}
		n = keep ? chunk_read_spool(s, &direct) : 0;
		if (!direct)
			n = session_fill(s);
		if (n <= 0) {
			ch->ch_cut = 1;
			ch->ch_left = 0;
			s->s_closing = 1;
			break;
		}
		deadline_restart(s);
	}
	s->s_indata = 0;
}

/* The refusals of a BDAT, in this order; 0 when the chunk is taken. */
static int
chunk_refused(struct session *s)
{
	struct chunking		*ch = &s->s_chunk;
	long long		 max = s->s_conf->c_lim.lim_maxmsgsize;

	if (s->s_state < S_MAIL)
		session_reply(s, "503 Error: need MAIL command");
	else if (s->s_state < S_RCPT) {
		/* Its octets are gone: no later chunk makes a message. */
		ch->ch_active = ch->ch_failed = 1;
		session_reply(s, "503 Error: need RCPT command");
	} else if (ch->ch_failed)
		session_reply(s, "503 5.5.1 Error: transaction failed, "
		    "send RSET");
	else if (max != 0 && ch->ch_left >
	    (unsigned long long)(max - ch->ch_size)) {
		ch->ch_active = ch->ch_failed = 1;
		if (ch->ch_last && session_lmtp(s)) {
			/* RFC 2033 4.2: LAST is answered per recipient. */
			data_reply_all(s, "552 Error: Too much mail data");
			session_reset_envelope(s);
		} else
			session_reply(s, "552 Error: Too much mail data");
	} else
		return 0;
	return 1;
}

static void
cmd_bdat(struct session *s, char *arg)
{
	struct chunking	*ch = &s->s_chunk;
	unsigned long long size = ch->ch_left;

	(void)arg;
	if (chunk_refused(s))
		return;
	if (!ch->ch_active) {
		ch->ch_active = 1;
		content_init(&ch->ch_content, &s->s_spool,
		    (size_t)s->s_conf->c_lim.lim_maxline,
		    policy_bare_newline(s->s_conf, &s->s_client));
		message_begin(s);
	}
	ch->ch_count++;
	score_state(SS_DATA);
	chunk_read(s, 1);
	if (ch->ch_cut)
		message_abort(s, ch->ch_size);
	else if (!ch->ch_last) {
		score_state(state_scores[s->s_state]);
		session_reply(s, "250 OK %llu octets received", size);
	} else {
		content_end(&ch->ch_content);
		log_info("%s message %s via=BDAT chunks=%u size=%lld",
		    s->s_client.ci_sid, s->s_env.e_id, ch->ch_count,
		    ch->ch_size);
		message_end(s, ch->ch_content.ct_toolong ?
		    DATA_LINE_TOO_LONG : DATA_OK, &ch->ch_content, ch->ch_size);
	}
}

/*
 * The other commands
 */

static void
cmd_rset(struct session *s, char *arg)
{
	(void)arg;
	session_reset_envelope(s);
	session_reply(s, "250 OK");
}

static void
cmd_noop(struct session *s, char *arg)
{
	(void)arg;
	session_reply(s, "250 OK");
}

static void
cmd_quit(struct session *s, char *arg)
{
	(void)arg;
	session_reply(s, "221 Bye");
	s->s_closing = 1;
	s->s_outcome = SC_SESS_QUIT;
}

static void
cmd_vrfy(struct session *s, char *arg)
{
	char	 addr[ADDR_BUF_LEN], *rest;

	if (arg == NULL)
		session_reply(s, "501 Syntax: VRFY <address>");
	else if (session_path(s, arg, addr, sizeof(addr), &rest) == ADDR_BAD)
		session_reply(s, "502 Could not VRFY %s", session_echo_mask(arg));
	else
		session_reply(s, "252 Cannot VRFY user, but will accept "
		    "message and attempt delivery");
}

static void
cmd_expn(struct session *s, char *arg)
{
	(void)arg;
	session_reply(s, "502 EXPN not implemented");
}

static void
help_list(struct session *s, int code)
{
	char	 list[256] = "";
	size_t	 i;

	for (i = 0; i < NCOMMANDS; i++) {
		if (!command_listed(s, &commands[i]))
			continue;
		if (list[0] != '\0')
			strlcat(list, " ", sizeof(list));
		strlcat(list, commands[i].cmd_verb, sizeof(list));
	}
	session_reply(s, "%d Supported commands: %s", code, list);
}

static void
cmd_help(struct session *s, char *arg)
{
	const struct command	*cmd;
	char			*p;

	if (arg == NULL) {
		help_list(s, 250);
		return;
	}
	for (p = arg; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	cmd = command_find(s, arg);
	if (cmd == NULL || !command_listed(s, cmd)) {
		help_list(s, 501);
		return;
	}
	if (s->s_client.ci_esmtp && (strcmp(cmd->cmd_verb, "MAIL") == 0 ||
	    strcmp(cmd->cmd_verb, "RCPT") == 0))
		session_reply(s, "250 %s%s", cmd->cmd_syntax, MAIL_PARAMS);
	else
		session_reply(s, "250 %s", cmd->cmd_syntax);
}

/*
 * The handshake's wait (tls_accept): SIGTERM ends it, as it ends the wait
 * for a command, or the child would outlive the shutdown until the
 * handshake timed out; the client, in the middle of a handshake, gets no
 * reply.
 */
static int
session_tls_wait(struct pollfd *pfd, int ms)
{
	int	 r;

	if ((r = session_poll(pfd, ms, 1)) == -1 && errno == EINTR &&
	    session_quit)
		errno = ECANCELED;
	return r;
}

/* The TLS handshake on the client socket; -1: close without a reply. */
static int
session_tls_start(struct session *s)
{
	s->s_tlsc = tls_accept(s->s_conf->c_tls.tl_ctx, s->s_fd,
	    s->s_conf->c_lim.lim_timeout * 1000, s->s_client.ci_sid,
	    session_tls_wait);
	score_count(s->s_tlsc != NULL ? SC_TLS_OK : SC_TLS_FAILED);
	if (s->s_tlsc == NULL) {
		if (session_quit)
			s->s_outcome = SC_SESS_SHUTDOWN;
		return -1;
	}
	s->s_tls = 1;
	/* The client's Finished came last: nothing of ours acknowledged it. */
	s->s_acked = 0;
	strlcpy(s->s_client.ci_tls, tls_info(s->s_tlsc),
	    sizeof(s->s_client.ci_tls));
	return 0;
}

static void
cmd_starttls(struct session *s, char *arg)
{
	(void)arg;
	if ((s->s_listener->l_flags & (LF_STARTTLS | LF_REQ_STARTTLS)) == 0 ||
	    s->s_conf->c_tls.tl_ctx == NULL) {
		session_reply(s, "454 TLS not available");
		return;
	}
	if (s->s_tls) {
		session_reply(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	session_reply(s, "220 Ready to start TLS");
	session_flush(s);
	/*
	 * RFC 3207 4.2, CVE-2011-0411, CVE-2024-34083: what the client sent
	 * before the handshake is never executed inside TLS.
	 */
	s->s_ipos = s->s_ilen = 0;
	s->s_skip = 0;
	if (s->s_dead || session_tls_start(s) == -1) {
		s->s_closing = 1;
		s->s_dead = 1;
		return;
	}
	/* A new session: greeting name, ESMTP, envelope and AUTH go. */
	session_reset_envelope(s);
	session_set_state(s, S_INIT);
	s->s_client.ci_helo[0] = '\0';
	s->s_client.ci_esmtp = 0;
	s->s_client.ci_user[0] = '\0';
	broker_forget();
}

/*
 * The session
 */

/* SIGTERM: the session ends with a 421. */
static void
session_shutdown(struct session *s)
{
	session_reply(s, "421 %s Service shutting down", s->s_conf->c_hostname);
	s->s_outcome = SC_SESS_SHUTDOWN;
}

static void
session_loop(struct session *s)
{
	enum getline_result	 r;
	char			*line;
	size_t			 len;

	while (!s->s_closing) {
		/*
		 * Shutdown: after the message or delivery in progress, not
		 * another command, even one the client already sent.
		 */
		if (session_quit) {
			session_shutdown(s);
			return;
		}
		if (session_expired(s)) {
			session_timeup(s);
			return;
		}
		s->s_waitcmd = 1;
		r = session_getline(s, &line, &len);
		s->s_waitcmd = 0;
		switch (r) {
		case LINE_OK:
			session_command(s, line, len);
			break;
		case LINE_TOOLONG:
			if (s->s_longbdat)
				chunk_malformed(s);
			else
				session_reply(s, "500 Command line too long");
			break;
		case LINE_END:
			if (session_quit && !s->s_eof)
				session_shutdown(s);
			else if (session_expired(s) && !s->s_eof)
				session_timeup(s);
			return;
		}
	}
}

/*
 * The PROXY header (proxy-protocol.txt), read without taking one octet more
 * than it has: what follows may be a TLS ClientHello for OpenSSL to
 * read from the socket.  How many of the n octets peeked at after
 * `have` header octets certainly belong to the header:
 */
static size_t
proxy_take(const unsigned char *hdr, size_t have, const unsigned char *peek,
    size_t n)
{
	const unsigned char	*lf;
	size_t			 need;

	if ((have > 0 ? hdr[0] : peek[0]) == '\r') {
		/* v2: 16 octets, then as many as their length field says. */
		need = have < 16 ? 16 : 16 + ((size_t)hdr[14] << 8 | hdr[15]);
		return n < need - have ? n : need - have;
	}
	/* v1: everything through the first LF. */
	if ((lf = memchr(peek, '\n', n)) != NULL)
		return (size_t)(lf - peek) + 1;
	return n;
}

static int
proxy_read(struct session *s, unsigned char *hdr, struct proxy_info *pi,
    const char **why)
{
	struct pollfd	 pfd;
	size_t		 have = 0, take;
	ssize_t		 n;
	int		 r;

	pfd.fd = s->s_fd;
	pfd.events = POLLIN;
	*why = "timeout";
	while (session_poll(&pfd, deadline_ms(s), 1) > 0) {
		n = recv(s->s_fd, hdr + have, PROXY_MAX_LEN - have,
		    MSG_PEEK | MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			*why = n == 0 ? "connection closed" : strerror(errno);
			return -1;
		}
		take = proxy_take(hdr, have, hdr + have, (size_t)n);
		if (recv(s->s_fd, hdr + have, take, MSG_DONTWAIT) !=
		    (ssize_t)take) {
			*why = "read error";
			return -1;
		}
		have += take;
		if ((r = proxy_parse(hdr, have, pi, why)) != 0)
			return r > 0 ? 0 : -1;
		if (have == PROXY_MAX_LEN) {
			*why = "header too long";
			return -1;
		}
	}
	if (session_quit)
		*why = NULL;		/* SIGTERM ended the wait */
	return -1;
}

/*
 * No PROXY header: refused for why, or a SIGTERM came first (why NULL).
 * Then the client gets the 421 a session would, unless it waits for a
 * TLS handshake.
 */
static void
proxy_failed(struct session *s, const char *why)
{
	if (why != NULL) {
		log_info("%s proxy header from %s refused: %s",
		    s->s_client.ci_sid, s->s_client.ci_addr, why);
		score_count(SC_CONN_PROXY);
		return;
	}
	log_info("%s proxy header from %s not read: shutting down",
	    s->s_client.ci_sid, s->s_client.ci_addr);
	if (!(s->s_listener->l_flags & LF_TLS))
		session_shutdown(s);
	s->s_outcome = SC_SESS_SHUTDOWN;
}

/*
 * A proxy-protocol listener: only the `from` peers may speak; the
 * header's source becomes the client address, which the master then
 * counts for max-clients-per-address.
 */
static int
session_proxy(struct session *s, const struct sockaddr *sa)
{
	const struct listener	*l = s->s_listener;
	unsigned char		 hdr[PROXY_MAX_LEN];
	struct proxy_info	 pi;
	const char		*why;

	if (l->l_nproxy_from > 0 && (sa == NULL ||
	    !net_match(l->l_proxy_from, l->l_nproxy_from, sa))) {
		log_info("%s proxy: %s is not allowed to send a header",
		    s->s_client.ci_sid, s->s_client.ci_addr);
		score_count(SC_CONN_PROXY);
		return -1;
	}
	s->s_deadline = util_now_ms() + l->l_proxy_timeout * 1000LL;
	if (proxy_read(s, hdr, &pi, &why) == -1) {
		proxy_failed(s, why);
		return -1;
	}
	/*
	 * LOCAL, UNKNOWN, UNSPEC and UNIX headers name no client: the
	 * session keeps the proxy's own address, which is never counted
	 * (smtpd.conf(5), max-clients-per-address).
	 */
	if (pi.pi_local)
		return 0;
	util_sockaddr_str((struct sockaddr *)&pi.pi_src, pi.pi_srclen,
	    s->s_client.ci_addr, sizeof(s->s_client.ci_addr),
	    s->s_client.ci_port, sizeof(s->s_client.ci_port));
	score_client(s->s_client.ci_addr);
	if (s->s_client.ci_addr[0] != '\0' && session_peer_check != NULL &&
	    session_peer_check(s->s_client.ci_addr) == -1) {
		log_info("%s refused %s: too many connections",
		    s->s_client.ci_sid, s->s_client.ci_addr);
		session_reply(s, "421 %s Service not available, too many "
		    "connections", s->s_conf->c_hostname);
		score_count(SC_CONN_PERADDR);
		return -1;
	}
	return 0;
}

/* "addr:port" of the client for the logs, "local" on UNIX sockets. */
static const char *
session_peer(const struct session *s, char *buf, size_t len)
{
	if (s->s_client.ci_addr[0] == '\0')
		strlcpy(buf, "local", len);
	else
		snprintf(buf, len, "%s:%s", s->s_client.ci_addr,
		    s->s_client.ci_port);
	return buf;
}

/* Before the greeting: the PROXY header, then implicit TLS. */
static int
session_start(struct session *s, const struct sockaddr *sa)
{
	const struct listener	*l = s->s_listener;
	char			 peer[80], client[80];

	session_peer(s, peer, sizeof(peer));
	if ((l->l_flags & LF_PROXY) && session_proxy(s, sa) == -1)
		return -1;
	log_info("%s connect from %s (listener %s%s%s)", s->s_client.ci_sid,
	    session_peer(s, client, sizeof(client)), l->l_name,
	    (l->l_flags & LF_PROXY) ? ", via " : "",
	    (l->l_flags & LF_PROXY) ? peer : "");
	/* The timer starts after the PROXY header. */
	deadline_restart(s);
	if ((l->l_flags & LF_TLS) && session_tls_start(s) == -1)
		return -1;
	return 0;
}

/*
 * A child runs one session after another.  The session and the buffers
 * every session needs stay allocated for the next one: allocating them
 * per session, and giving the heap back after each, cost more than the
 * session itself.  What a large session grew beyond SPOOL_KEEP and
 * RCPT_KEEP is given back at its end, so an idle child stays small.
 */
static struct session	*session_spare;

static struct session *
session_new(const struct config *c, const struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct session	*s;
	struct spool	 sp;
	struct budget	*budgets;
	char		*ibuf, **rcpts;
	size_t		 isize, rcptcap;

	isize = (size_t)c->c_lim.lim_maxline + IBUF_EXTRA;
	if ((s = session_spare) != NULL && s->s_isize != isize) {
		session_free(s);
		s = NULL;
	}
	session_spare = NULL;
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->s_ibuf = xmalloc(isize);
		spool_init(&s->s_spool, NULL);
	}
	ibuf = s->s_ibuf;
	rcpts = s->s_env.e_rcpts;
	rcptcap = s->s_env.e_rcptcap;
	sp = s->s_spool;
	budgets = s->s_budgets;
	memset(s, 0, sizeof(*s));
	s->s_budgets = budgets;
	s->s_ibuf = ibuf;
	s->s_isize = isize;
	s->s_env.e_rcpts = rcpts;
	s->s_env.e_rcptcap = rcptcap;
	spool_init(&s->s_spool, c->c_dlv.dl_spool);
	s->s_spool.sp_sid = s->s_client.ci_sid;
	s->s_spool.sp_buf = sp.sp_buf;		/* emptied by spool_clear() */
	s->s_spool.sp_cap = sp.sp_cap;
	s->s_conf = c;
	s->s_listener = l;
	s->s_fd = fd;
	s->s_end = util_now_ms() + c->c_lim.lim_session * 1000LL;
	util_session_id(s->s_client.ci_sid, sizeof(s->s_client.ci_sid));
	util_sockaddr_str(sa, salen, s->s_client.ci_addr,
	    sizeof(s->s_client.ci_addr), s->s_client.ci_port,
	    sizeof(s->s_client.ci_port));
	s->s_client.ci_lmtp = (l->l_flags & LF_LMTP) != 0;
	s->s_outcome = SC_SESS_DISCONNECT;
	s->s_client.ci_listener = l->l_index;
	/* The broker forgets whom the previous session authenticated. */
	broker_forget();
	s->s_policy = policy_open(c);
	return s;
}

/* The end of a session: what is the client's goes, the buffers stay. */
static void
session_end(struct session *s)
{
	if (s->s_tlsc != NULL)
		tls_close(s->s_tlsc);
	s->s_tlsc = NULL;
	policy_close(s->s_policy);
	s->s_policy = NULL;
	/* Over: the envelope goes without a state change to log (-v). */
	s->s_state = S_INIT;
	session_reset_envelope(s);
	spool_clear(&s->s_spool, SPOOL_KEEP);
	if (s->s_env.e_rcptcap > RCPT_KEEP) {
		free(s->s_env.e_rcpts);
		s->s_env.e_rcpts = NULL;
		s->s_env.e_rcptcap = 0;
	}
	session_spare = s;
}

static void
session_free(struct session *s)
{
	spool_reset(&s->s_spool);
	free(s->s_env.e_rcpts);
	free(s->s_ibuf);
	free(s->s_budgets);
	free(s);
}

/* How the session ended, for the scoreboard; the slot is idle again. */
static void
session_score_end(const struct session *s)
{
	enum score_counter	 o = s->s_outcome;

	if (s->s_rejected)
		o = SC_SESS_REJECTED;
	else if (o == SC_SESS_DISCONNECT && s->s_closing && !s->s_eof)
		o = SC_SESS_CLOSED;
	score_count(o);
	score_state(SS_IDLE);
}

/* 220, or the refusal of a client that `reject clients` names. */
static void
session_greeting(struct session *s)
{
	char	 reply[REPLY_MAX];

	if (policy_client(s->s_conf, &s->s_client, reply, sizeof(reply)) ==
	    -1) {
		session_log_refusal(s, "client", NULL, reply);
		session_reply(s, "%s", reply);
		s->s_rejected = 1;
		return;
	}
	s->s_nocode = 1;
	session_reply(s, "220 %s %s", s->s_conf->c_hostname,
	    s->s_conf->c_banner);
	s->s_nocode = 0;
}

/*
 * One session on fd, to its end; fd is closed.  fd is a blocking socket,
 * as the master accepts it (io_read_wait); TCP_NODELAY comes from the
 * listener (listener_nodelay() in smtpd.c).
 */
void
session_run(const struct config *c, const struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct session	*s;

	session_signals(1);
	s = session_new(c, l, fd, sa, salen);
	score_session(s->s_client.ci_addr, SS_INIT);
	/*
	 * A SIGTERM that came while the master handed us this client is
	 * let in by session_signals(): 421 in place of the greeting.
	 */
	if (session_start(s, sa) != 0) {
		if (s->s_outcome != SC_SESS_SHUTDOWN)
			s->s_outcome = SC_SESS_ABORTED;
	} else if (session_quit)
		session_shutdown(s);
	else {
		session_greeting(s);
		session_loop(s);
	}
	session_flush(s);
	session_score_end(s);
	log_info("%s disconnect commands=%u messages=%u", s->s_client.ci_sid,
	    s->s_ncmds, s->s_nmsgs);
	session_end(s);
	close(fd);
	session_signals(0);
}
