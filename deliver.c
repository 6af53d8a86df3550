/*
 * deliver.c: the spool of one message (memory, then an unlinked file) and
 * its delivery: the built-in sinks, or the delivery program run by the
 * broker (broker.c) as deliver-user, its input a complete anonymous file
 * made here, its argv and environment built here, its exit status
 * mapped to the SMTP reply (smtpd.conf.5, DELIVERY COMMAND).
 */

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtpd.h"
#include "internal.h"

#define REPLY_TEMPFAIL	\
    "451 4.3.0 Delivery failed temporarily, try again later"
#define REPLY_NOSPOOL	"452 4.3.1 Insufficient system storage"
#define REPLY_E2BIG	\
    "554 5.3.4 Delivery failed: message too big for the program"
#define DELIVER_IOBUF	16384	/* spool chunk, output scratch */
#define RECEIVED_MAX	998	/* RFC 5322 2.1.1: octets per line */

/*
 * Reply classes, ranked so that SMTP keeps the worst of several runs
 * (smtpd.conf(5), One run per recipient).
 */
enum deliver_class {
	DC_OK,		/* 2xx */
	DC_PERM,	/* 5xx */
	DC_TEMP		/* 4xx */
};

/* sysexits.h status to reply (smtpd.conf.5); anything else is 451. */
static const struct {
	int		 de_status;
	const char	*de_reply;
} deliver_exits[] = {
	{ 65, "554 5.6.0 Delivery failed: data format error" },
	{ 67, "550 5.1.1 Delivery failed: no such user" },
	{ 68, "550 5.1.2 Delivery failed: host unknown" },
	{ 69, "554 5.3.0 Delivery failed: service unavailable" },
	{ 77, "554 5.7.1 Delivery failed: permission denied" }
};

/* One run of the delivery program for some of the recipients. */
struct deliver_job {
	char	*const	*dj_rcpts;
	size_t		 dj_nrcpts;
	char		*dj_hdr;	/* Received: header, or NULL */
	size_t		 dj_hdrlen;
	int		 dj_exited;
	int		 dj_status;	/* from waitpid */
	int		 dj_timedout;
	int		 dj_noinput;	/* its input file could not be made */
	int		 dj_nobroker;	/* no answer from the broker */
	int		 dj_error;	/* errno: failed spawn or I/O */
	struct exec_out	 dj_out;
	struct exec_out	 dj_err;
	long long	 dj_start;	/* util_now_ms() clock */
	enum deliver_class dj_class;
	char		 dj_reply[REPLY_MAX];
};

/* The placeholders, in enum placeholder order (smtpd.conf.5). */
static const char *const placeholders[PH_COUNT] = {
	"%{sender}", "%{recipients}", "%{recipient}", "%{client}",
	"%{helo}", "%{user}", "%{id}"
};

static int	 spool_open(const char *);
static int	 spool_spill(struct spool *);
static int	 spool_copy(struct spool *, int);
static ssize_t	 spool_chunk(struct spool *, long long, char *, size_t,
		    const char **);
static void	 deliver_print(const struct client *,
		    const struct envelope *, struct spool *);
static void	 deliver_sink(const struct config *, const struct client *,
		    const struct envelope *, struct spool *,
		    struct deliver_job *);
static char	*deliver_expand(const char *, const char *const *);
static int	 deliver_is_rcpts(const char *);
static size_t	 deliver_fold(FILE *, const char *, size_t);
static size_t	 deliver_run_max(const char *);
static void	 deliver_helo_token(const char *, int, char *, size_t);
static int	 deliver_for_clause(const char *, int);
static void	 deliver_received(const struct config *,
		    const struct client *, const struct envelope *,
		    struct deliver_job *);
static int	 deliver_input(struct deliver_job *, struct spool *,
		    const char *);
static int	 deliver_start(const struct config *, const struct client *,
		    const struct envelope *, struct spool *,
		    struct deliver_job *);
static void	 deliver_answer(struct deliver_job *,
		    const struct broker_result *);
static size_t	 deliver_override(struct deliver_job *);
static void	 deliver_result(struct deliver_job *, const char *);
static void	 deliver_log_output(const struct client *,
		    const struct envelope *, const struct exec_out *, size_t,
		    const char *);
static void	 deliver_log(const struct client *, const struct envelope *,
		    const struct spool *, const struct deliver_job *);
static int	 deliver_run(const struct config *, const struct client *,
		    const struct envelope *, struct spool *,
		    struct deliver_job *);
static int	 deliver_one(const struct config *, const struct client *,
		    const struct envelope *, struct spool *,
		    struct deliver_job *);

void
spool_init(struct spool *sp, const char *dir)
{
	memset(sp, 0, sizeof(*sp));
	sp->sp_fd = -1;
	sp->sp_dir = dir != NULL ? dir : DEF_SPOOL;
}

/* Where a log line about the spool names its session. */
static const char *
spool_sid(const struct spool *sp)
{
	return sp->sp_sid != NULL ? sp->sp_sid : "-";
}

void
spool_reset(struct spool *sp)
{
	spool_clear(sp, 0);
}

/*
 * Empty for the next message.  The memory buffer stays unless it is
 * larger than keep: growing it again for every message is heap churn.
 */
void
spool_clear(struct spool *sp, size_t keep)
{
	char		*buf = sp->sp_buf;
	const char	*sid = sp->sp_sid;
	size_t		 cap = sp->sp_cap;

	if (cap > keep) {
		free(buf);
		buf = NULL;
		cap = 0;
	}
	/* The file was unlinked at creation: closing it frees the space. */
	if (sp->sp_fd != -1)
		close(sp->sp_fd);
	spool_init(sp, sp->sp_dir);
	sp->sp_sid = sid;
	sp->sp_buf = buf;
	sp->sp_cap = cap;
}

/* An anonymous file in dir, so that nothing remains after a crash. */
static int
spool_open(const char *dir)
{
	char	*path;
	int	 fd;

	if ((fd = os_tmpfile(dir)) != -1)
		return fd;
	/* No O_TMPFILE in this kernel or file system: name it, unlink it. */
	xasprintf(&path, "%s/smtpd-spool.XXXXXXXXXX", dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) != -1 && unlink(path) == -1) {
		close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

/*
 * Whether a spool file can be made in dir, as spool_spill() will make
 * it: 0, an errno value, or UTIL_PROBE_NOTDIR (for util_probe()).
 */
int
spool_probe(const char *dir)
{
	struct stat	 st;
	int		 fd;

	if (stat(dir, &st) == -1)
		return errno;
	if (!S_ISDIR(st.st_mode))
		return UTIL_PROBE_NOTDIR;
	if ((fd = spool_open(dir)) == -1)
		return errno;
	(void)close(fd);
	return 0;
}

int
spool_append(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The message outgrew SPOOL_MEM_MAX: move what we have to a file.  The
 * memory buffer stays, as the write buffer of the file: DATA arrives a
 * line at a time, and a write(2) per line is what made large messages
 * slow.
 */
static int
spool_spill(struct spool *sp)
{
	if ((sp->sp_fd = spool_open(sp->sp_dir)) == -1) {
		log_warn("%s spool file in %s", spool_sid(sp), sp->sp_dir);
		return -1;
	}
	return spool_flush(sp);
}

/* Write out what the file mode has buffered; not again once one failed. */
int
spool_flush(struct spool *sp)
{
	if (sp->sp_error)
		return -1;
	if (sp->sp_fd == -1 || sp->sp_len == 0)
		return 0;
	if (spool_append(sp->sp_fd, sp->sp_buf, sp->sp_len) == -1) {
		log_warn("%s spool write", spool_sid(sp));
		sp->sp_error = 1;
		return -1;
	}
	sp->sp_len = 0;
	return 0;
}

/* Room for len more octets in memory, within SPOOL_MEM_MAX. */
static int
spool_grow(struct spool *sp, size_t len)
{
	size_t	 cap;
	char	*p;

	if (sp->sp_len + len <= sp->sp_cap)
		return 0;
	cap = sp->sp_cap == 0 ? 8192 : sp->sp_cap;
	while (cap < sp->sp_len + len)
		cap *= 2;
	if (cap > SPOOL_MEM_MAX)
		cap = SPOOL_MEM_MAX;
	if ((p = realloc(sp->sp_buf, cap)) == NULL) {
		log_warn("%s spool", spool_sid(sp));
		return -1;
	}
	sp->sp_buf = p;
	sp->sp_cap = cap;
	return 0;
}

/*
 * len more octets of the message.  Once a write failed nothing more is
 * kept, but every octet is still counted in sp_size, for the deliver
 * line of the 452 that follows.
 */
int
spool_write(struct spool *sp, const void *buf, size_t len)
{
	if (sp->sp_error)
		goto lost;
	if (len > SPOOL_MEM_MAX - sp->sp_len) {
		if ((sp->sp_fd == -1 ? spool_spill(sp) : spool_flush(sp)) == -1)
			goto fail;
		if (len > SPOOL_MEM_MAX - sp->sp_len) {
			/* Larger than the buffer itself: straight to the file. */
			if (spool_append(sp->sp_fd, buf, len) == -1) {
				log_warn("%s spool write", spool_sid(sp));
				goto fail;
			}
			sp->sp_size += (long long)len;
			return 0;
		}
	}
	if (spool_grow(sp, len) == -1)
		goto fail;
	memcpy(sp->sp_buf + sp->sp_len, buf, len);
	sp->sp_len += len;
	sp->sp_size += (long long)len;
	return 0;
 fail:
	sp->sp_error = 1;
 lost:
	sp->sp_size += (long long)len;
	return -1;
}

/*
 * Room at the end of the spool for up to len octets that the caller
 * writes there itself (a BDAT chunk read straight from the socket, with
 * no copy through the input buffer): where, and in *room how many fit.
 * NULL when the spool failed.  spool_commit() then counts what came.
 */
char *
spool_reserve(struct spool *sp, size_t len, size_t *room)
{
	if (sp->sp_error)
		return NULL;
	if (sp->sp_len == SPOOL_MEM_MAX &&
	    (sp->sp_fd == -1 ? spool_spill(sp) : spool_flush(sp)) == -1)
		goto fail;
	if (len > SPOOL_MEM_MAX - sp->sp_len)
		len = SPOOL_MEM_MAX - sp->sp_len;
	if (spool_grow(sp, len) == -1)
		goto fail;
	*room = len;
	return sp->sp_buf + sp->sp_len;
 fail:
	sp->sp_error = 1;
	return NULL;
}

void
spool_commit(struct spool *sp, size_t n)
{
	sp->sp_len += n;
	sp->sp_size += (long long)n;
}

/*
 * The spooled octets from off on: a pointer into memory, or a chunk of the
 * file read into buf.  Returns the length, 0 at the end, -1 on error.
 */
static ssize_t
spool_chunk(struct spool *sp, long long off, char *buf, size_t size,
    const char **data)
{
	long long	 left = sp->sp_size - off;
	ssize_t		 n;

	if (left <= 0)
		return 0;
	if (sp->sp_fd == -1) {
		*data = sp->sp_buf + off;
		return (ssize_t)left;
	}
	if ((long long)size > left)
		size = (size_t)left;
	while ((n = pread(sp->sp_fd, buf, size, (off_t)off)) == -1 &&
	    errno == EINTR)
		;
	*data = buf;
	if (n == 0)
		errno = EIO;	/* the file cannot be shorter */
	return n == 0 ? -1 : n;
}

/*
 * Append the spool file to fd, in the kernel where the file systems allow
 * it, else through a bounded buffer: never the whole message in memory.
 */
static int
spool_copy(struct spool *sp, int fd)
{
	char		 buf[DELIVER_IOBUF];
	const char	*p;
	long long	 off = 0;
	off_t		 in;
	ssize_t		 n;
	int		 kernel = 1;

	while (off < sp->sp_size) {
		if (kernel) {
			/* Our own offset: the spool's is left alone. */
			in = (off_t)off;
			n = copy_file_range(sp->sp_fd, &in, fd, NULL,
			    (size_t)(sp->sp_size - off), 0);
			if (n > 0)
				off += n;
			else if (n == -1 && (errno == EXDEV ||
			    errno == ENOSYS || errno == EINVAL ||
			    errno == EOPNOTSUPP))
				kernel = 0;
			else if (n == 0) {
				errno = EIO;	/* the file cannot be shorter */
				return -1;
			} else if (errno != EINTR)
				return -1;
			continue;
		}
		if ((n = spool_chunk(sp, off, buf, sizeof(buf), &p)) == -1 ||
		    spool_append(fd, p, (size_t)n) == -1)
			return -1;
		off += n;
	}
	return 0;
}

/*
 * The built-in debugging sink, in the shape of aiosmtpd's Debugging
 * handler: lines printed with LF whatever ended them (str.splitlines()).
 */
static void
deliver_print(const struct client *cl, const struct envelope *e,
    struct spool *sp)
{
	char		 buf[DELIVER_IOBUF];
	const char	*p;
	long long	 off = 0;
	ssize_t		 n, i;
	size_t		 r;
	int		 cr = 0, bol = 1;

	printf("---------- MESSAGE FOLLOWS ----------\n");
	printf("X-Peer: %s\nX-MailFrom: %s\nX-RcptTo: ", cl->ci_addr,
	    e->e_sender);
	for (r = 0; r < e->e_nrcpts; r++)
		printf("%s%s", r > 0 ? ", " : "", e->e_rcpts[r]);
	printf("\n");
	while ((n = spool_chunk(sp, off, buf, sizeof(buf), &p)) > 0) {
		for (i = 0; i < n; i++) {
			if (p[i] == '\n' && cr)
				;	/* the LF of a CRLF */
			else if (p[i] == '\r' || p[i] == '\n')
				putchar('\n');
			else
				putchar(p[i]);
			cr = p[i] == '\r';
			bol = p[i] == '\r' || p[i] == '\n';
		}
		off += n;
	}
	if (!bol)
		putchar('\n');
	printf("------------ END MESSAGE ------------\n");
	fflush(stdout);
}

/* DELIVER_DISCARD and DELIVER_STDOUT: accepted as soon as it is here. */
static void
deliver_sink(const struct config *c, const struct client *cl,
    const struct envelope *e, struct spool *sp, struct deliver_job *dj)
{
	/* In LMTP one copy, not one per recipient. */
	if (c->c_dlv.dl_mode == DELIVER_STDOUT && dj->dj_rcpts == e->e_rcpts)
		deliver_print(cl, e, sp);
	dj->dj_exited = 1;
	dj->dj_status = 0;
	deliver_result(dj, e->e_id);
}

/* The placeholder spelt by the len octets at s (braces included), or -1. */
int
deliver_placeholder(const char *s, size_t len)
{
	int	 i;

	for (i = 0; i < PH_COUNT; i++)
		if (strlen(placeholders[i]) == len &&
		    strncmp(placeholders[i], s, len) == 0)
			return i;
	return -1;
}

const char *
deliver_placeholder_name(int ph)
{
	if (ph < 0 || ph >= PH_COUNT)
		fatalx("%s: bad placeholder %d", __func__, ph);
	return placeholders[ph];
}

/* One word of the deliver string with its placeholders replaced. */
static char *
deliver_expand(const char *word, const char *const *vals)
{
	FILE		*f;
	char		*s;
	const char	*p, *q;
	size_t		 len;
	int		 ph;

	if ((f = open_memstream(&s, &len)) == NULL)
		fatal("open_memstream");
	for (p = word; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] == '{' &&
		    (q = strchr(p + 2, '}')) != NULL &&
		    (ph = deliver_placeholder(p, (size_t)(q - p) + 1)) != -1 &&
		    vals[ph] != NULL) {
			fputs(vals[ph], f);
			p = q;
			continue;
		}
		fputc(*p, f);
	}
	if (fclose(f) == EOF)
		fatal("open_memstream");
	return s;
}

/* Whether word is exactly %{recipients}: one argument per recipient. */
static int
deliver_is_rcpts(const char *word)
{
	return deliver_placeholder(word, strlen(word)) == PH_RECIPIENTS;
}

/*
 * argv of one run: %{recipients} as a word by itself becomes one argument
 * per recipient of the run; every other word stays one argument, so an
 * empty sender is an empty argument, never a missing one.
 */
char **
deliver_argv(const struct config *c, const struct client *cl,
    const struct envelope *e, char *const *rcpts, size_t nrcpts)
{
	const char	 *vals[PH_COUNT] = {
		[PH_SENDER] = e->e_sender,
		[PH_RECIPIENT] = nrcpts > 0 ? rcpts[0] : "",
		[PH_CLIENT] = cl->ci_addr,
		[PH_HELO] = cl->ci_helo,
		[PH_USER] = cl->ci_user,
		[PH_ID] = e->e_id
	};
	char		**argv;
	size_t		  i, n = 0, w, size = 1;

	/* Each %{recipients} word (there may be several) takes them all. */
	for (w = 0; c->c_dlv.dl_argv[w] != NULL; w++)
		size += deliver_is_rcpts(c->c_dlv.dl_argv[w]) ?
		    nrcpts : 1;
	argv = xreallocarray(NULL, size, sizeof(*argv));
	for (w = 0; c->c_dlv.dl_argv[w] != NULL; w++) {
		if (deliver_is_rcpts(c->c_dlv.dl_argv[w])) {
			for (i = 0; i < nrcpts; i++)
				argv[n++] = xstrdup(rcpts[i]);
		} else
			argv[n++] = deliver_expand(c->c_dlv.dl_argv[w], vals);
	}
	argv[n] = NULL;
	return argv;
}

/* The environment, exactly: PATH and the SMTPD_* of smtpd.conf.5. */
char **
deliver_envp(const struct client *cl, const struct envelope *e,
    char *const *rcpts, size_t nrcpts)
{
	const char	*path;
	char		**envp, *list, *p;
	size_t		  i, len = 1;
	int		  n = 0;

	for (i = 0; i < nrcpts; i++)
		len += strlen(rcpts[i]) + 1;
	list = p = xmalloc(len);
	*p = '\0';
	for (i = 0; i < nrcpts; i++)
		p += sprintf(p, "%s%s", i > 0 ? "\n" : "", rcpts[i]);
	if ((path = getenv("PATH")) == NULL)
		path = "/usr/bin:/bin";
	envp = xreallocarray(NULL, 12, sizeof(*envp));
	xasprintf(&envp[n++], "PATH=%s", path);
	xasprintf(&envp[n++], "SMTPD_SENDER=%s", e->e_sender);
	xasprintf(&envp[n++], "SMTPD_RECIPIENTS=%s", list);
	xasprintf(&envp[n++], "SMTPD_CLIENT_ADDR=%s", cl->ci_addr);
	xasprintf(&envp[n++], "SMTPD_CLIENT_PORT=%s", cl->ci_port);
	xasprintf(&envp[n++], "SMTPD_HELO=%s", cl->ci_helo);
	xasprintf(&envp[n++], "SMTPD_AUTH_USER=%s", cl->ci_user);
	xasprintf(&envp[n++], "SMTPD_TLS=%s", cl->ci_tls);
	xasprintf(&envp[n++], "SMTPD_ID=%s", e->e_id);
	xasprintf(&envp[n++], "SMTPD_BODY=%s",
	    e->e_body8 ? "8BITMIME" : "7BIT");
	xasprintf(&envp[n++], "SMTPD_SMTPUTF8=%d", e->e_smtputf8 ? 1 : 0);
	envp[n] = NULL;
	free(list);
	return envp;
}

void
deliver_free(char **v)
{
	size_t	 i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/*
 * RFC 5322 2.2.3: one line of the trace header, folded before white
 * space wherever it would pass RECEIVED_MAX octets.  Returns the column
 * it ends at.  A run without white space is never broken: the caller
 * keeps those short enough.
 */
static size_t
deliver_fold(FILE *f, const char *s, size_t col)
{
	size_t	 len;

	while (*s != '\0') {
		len = strspn(s, " \t");
		len += strcspn(s + len, " \t");
		if (col + len > RECEIVED_MAX && col > 1 &&
		    (*s == ' ' || *s == '\t')) {
			fputs("\r\n", f);
			col = 0;
		}
		fwrite(s, 1, len, f);
		col += len;
		s += len;
	}
	return col;
}

/* The longest run of s without white space. */
static size_t
deliver_run_max(const char *s)
{
	size_t	 len, max = 0;

	while (*s != '\0') {
		s += strspn(s, " \t");
		len = strcspn(s, " \t");
		if (len > max)
			max = len;
		s += len;
	}
	return max;
}

/*
 * The HELO name as one token of the trace header.  It is the client's
 * text, which HELO does not check: white space, a parenthesis or a
 * semicolon would let it open a comment that hides the address we saw,
 * or end the clause list early (`EHLO x ([192.0.2.1]) (').  The RFC
 * 5322 3.2.3 specials and white space become `?', except the `.', `[',
 * `]' and `:' that domains and address literals are made of; so do 8-bit
 * octets (a UTF-8 name, which `smtputf8 yes' lets EHLO give) in the
 * header of a message sent without SMTPUTF8, which must be US-ASCII
 * (RFC 6531 3.7.3).
 */
static void
deliver_helo_token(const char *helo, int utf8, char *out, size_t size)
{
	size_t	 i;

	for (i = 0; helo[i] != '\0' && i + 1 < size; i++)
		out[i] = strchr(" \t()<>@,;\\\"", helo[i]) != NULL ||
		    (!utf8 && (unsigned char)helo[i] >= 0x80) ? '?' : helo[i];
	out[i] = '\0';
}

/*
 * Whether the `for' clause may name rcpt: not when it has a run without
 * white space that no folding could fit in a line (RFC 5321 4.4 makes
 * the clause optional), nor when it is a UTF-8 address in a message
 * sent without SMTPUTF8 (`smtputf8 yes' takes one at RCPT without the
 * MAIL parameter), whose header must be US-ASCII.
 */
static int
deliver_for_clause(const char *rcpt, int utf8)
{
	const char	*p;

	if (deliver_run_max(rcpt) + 3 >= RECEIVED_MAX)
		return 0;
	for (p = rcpt; !utf8 && *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			return 0;
	return 1;
}

/*
 * RFC 5321 4.4 trace header; protocol words of RFC 3848, which has S
 * (TLS) and A (AUTH) forms of ESMTP and LMTP only: after HELO it is SMTP,
 * with TLS or AUTH or not (no SMTPS or SMTPA is registered); a message
 * sent with SMTPUTF8 is UTF8SMTP or UTF8LMTP, with the same S and A
 * (RFC 6531 3.7.3).  `for' names
 * the recipient of a one-recipient run, when it can
 * (deliver_for_clause); the date goes to a line of its own when the
 * `for' line would be long.
 */
static void
deliver_received(const struct config *c, const struct client *cl,
    const struct envelope *e, struct deliver_job *dj)
{
	char		 date[64], proto[16], helo[CMD_LINE_MAX], *line;
	struct tm	 tm;
	time_t		 now = time(NULL);
	FILE		*f;
	size_t		 col;
	int		 fold, ext = cl->ci_lmtp || cl->ci_esmtp;

	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z",
	    localtime_r(&now, &tm));
	if (!ext)
		strlcpy(proto, "SMTP", sizeof(proto));
	else
		snprintf(proto, sizeof(proto), "%s%s%s%s", e->e_smtputf8 ?
		    "UTF8" : cl->ci_lmtp ? "" : "E", cl->ci_lmtp ? "LMTP" :
		    "SMTP", cl->ci_tls[0] ? "S" : "", cl->ci_user[0] ? "A" : "");
	if ((f = open_memstream(&dj->dj_hdr, &dj->dj_hdrlen)) == NULL)
		fatal("open_memstream");
	deliver_helo_token(cl->ci_helo, e->e_smtputf8, helo, sizeof(helo));
	/* An address literal has no scope zone (fe80::1%eth0): RFC 5321 4.1.3. */
	xasprintf(&line, "Received: from %s%s%s%.*s%s", helo,
	    cl->ci_addr[0] != '\0' ? " ([" : "",
	    strchr(cl->ci_addr, ':') != NULL ? "IPv6:" : "",
	    (int)strcspn(cl->ci_addr, "%"), cl->ci_addr,
	    cl->ci_addr[0] != '\0' ? "])" : "");
	deliver_fold(f, line, 0);
	free(line);
	xasprintf(&line, "\tby %s (smtpd) with %s id %s", c->c_hostname !=
	    NULL ? c->c_hostname : "localhost", proto, e->e_id);
	fputs("\r\n", f);
	col = deliver_fold(f, line, 0);
	free(line);
	line = NULL;
	if (dj->dj_nrcpts == 1 &&
	    deliver_for_clause(dj->dj_rcpts[0], e->e_smtputf8))
		xasprintf(&line, "\tfor <%s>;", dj->dj_rcpts[0]);
	if (line != NULL) {
		fputs("\r\n", f);
		col = deliver_fold(f, line, 0);
		fold = col + 1 + strlen(date) > RECEIVED_MAX;
	} else {
		/* The date on a line of its own, as for several recipients. */
		(void)deliver_fold(f, ";", col);
		fold = 1;
	}
	free(line);
	fprintf(f, "%s%s\r\n", fold ? "\r\n\t" : " ", date);
	if (fclose(f) == EOF)
		fatal("open_memstream");
}

/*
 * Whether the message's first line begins with a space or a tab: below a
 * header of ours it would read as more of that header field (RFC 5322
 * 2.2.3, unfolding), the client's text inside our Received: or the
 * policy server's PREPEND.  The whole message is in the file or in
 * memory by now (deliver_message flushed it).
 */
static int
spool_folds(const struct spool *sp)
{
	char	 c;

	if (sp->sp_size == 0)
		return 0;
	if (sp->sp_fd == -1)
		c = sp->sp_buf[0];
	else if (pread(sp->sp_fd, &c, 1, 0) != 1)
		return 0;
	return c == ' ' || c == '\t';
}

/*
 * The program's standard input: this run's header, then the message, in
 * an anonymous file that is complete before the program starts.  Fed on
 * a pipe, a program whose session died mid-write (a crash, the SIGKILL at
 * shutdown) would see EOF on a partial message and might deliver it; the
 * program outlives the session in its own session.  A message in memory
 * goes to memory, one in a file to a file beside it, never into memory.
 * Each run has its own file: an earlier program may still be reading.
 * Returns the descriptor at offset 0, or -1 with errno.
 */
static int
deliver_input(struct deliver_job *dj, struct spool *sp, const char *prepend)
{
	int	 fd = -1, save, fold;

	if (sp->sp_fd == -1)
		fd = os_memfd("smtpd-message");
	if (fd == -1 && (sp->sp_fd != -1 || errno == ENOSYS))
		fd = spool_open(sp->sp_dir);
	if (fd == -1)
		return -1;
	/*
	 * The policy server's PREPEND headers go below Received:.  Below
	 * either, a message that begins with white space is kept out of
	 * them by an empty line (as Postfix's smtpd does): it has no
	 * header of its own then, and all of it is body.
	 */
	fold = (dj->dj_hdrlen > 0 || prepend != NULL) && spool_folds(sp);
	if (spool_append(fd, dj->dj_hdr, dj->dj_hdrlen) == -1 ||
	    (prepend != NULL && spool_append(fd, prepend,
	    strlen(prepend)) == -1) ||
	    (fold && spool_append(fd, "\r\n", 2) == -1) ||
	    (sp->sp_fd == -1 ? spool_append(fd, sp->sp_buf, sp->sp_len) :
	    spool_copy(sp, fd)) == -1 || lseek(fd, 0, SEEK_SET) == -1) {
		save = errno;
		close(fd);
		errno = save;
		return -1;
	}
	return util_fd_above(fd);
}

/*
 * One run: header, input file, then the broker runs the program and
 * tells how it ended.  dj_noinput tells a failure to make the input
 * file, dj_nobroker one to hear from the broker.
 */
static int
deliver_start(const struct config *c, const struct client *cl,
    const struct envelope *e, struct spool *sp, struct deliver_job *dj)
{
	/*
	 * One answer at a time, in storage of its own: an 8 KiB allocation
	 * per run, among the small ones the header makes, left holes in the
	 * heap that no later run could fill.
	 */
	static struct broker_result	 answer;
	struct broker_result		*br = &answer;
	int				 in, rv;

	if (c->c_dlv.dl_received)
		deliver_received(c, cl, e, dj);
	if ((in = deliver_input(dj, sp, e->e_prepend)) == -1) {
		dj->dj_error = errno;
		dj->dj_noinput = 1;
	}
	free(dj->dj_hdr);
	dj->dj_hdr = NULL;
	if (in == -1)
		return -1;
	if ((rv = broker_deliver(cl, e, dj->dj_rcpts, dj->dj_nrcpts, in,
	    c->c_dlv.dl_timeout, br)) == -1) {
		dj->dj_error = errno;
		dj->dj_nobroker = 1;
	} else
		deliver_answer(dj, br);
	close(in);
	return rv == 0 && dj->dj_error == 0 ? 0 : -1;
}

/* The broker's answer: as if the program had run here. */
static void
deliver_answer(struct deliver_job *dj, const struct broker_result *br)
{
	dj->dj_exited = br->br_exited;
	dj->dj_status = br->br_status;
	dj->dj_timedout = br->br_timedout;
	dj->dj_error = br->br_error;
	dj->dj_out.eo_len = br->br_outlen;
	dj->dj_err.eo_len = br->br_errlen;
	memcpy(dj->dj_out.eo_buf, br->br_text, br->br_outlen);
	memcpy(dj->dj_err.eo_buf, br->br_text + br->br_outlen, br->br_errlen);
}

/*
 * The program's own reply: a first stdout line `NNN text' whose first digit
 * agrees with the exit class replaces our reply.  Control characters
 * would let the program forge further reply lines: such a line is ignored.
 * Returns the length of the line taken, with its end, for the log to skip.
 */
static size_t
deliver_override(struct deliver_job *dj)
{
	static const char	 digit[] = { '2', '5', '4' };
	const char		*s = dj->dj_out.eo_buf, *nl;
	size_t			 len, i, end;

	if ((nl = memchr(s, '\n', dj->dj_out.eo_len)) == NULL)
		len = end = dj->dj_out.eo_len;
	else {
		end = (size_t)(nl - s) + 1;
		len = end - 1;
	}
	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (len < 5 || len >= sizeof(dj->dj_reply) - 2 ||
	    s[0] != digit[dj->dj_class] || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9' || s[3] != ' ')
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	memcpy(dj->dj_reply, s, len);
	dj->dj_reply[len] = '\0';
	return end;
}

/* Exit status to reply class and text (smtpd.conf.5, Exit status). */
static void
deliver_result(struct deliver_job *dj, const char *id)
{
	size_t	 i;
	int	 st = -1;

	if (dj->dj_exited && !dj->dj_timedout && WIFEXITED(dj->dj_status))
		st = WEXITSTATUS(dj->dj_status);
	dj->dj_class = DC_TEMP;
	strlcpy(dj->dj_reply, REPLY_TEMPFAIL, sizeof(dj->dj_reply));
	if (st == 0) {
		dj->dj_class = DC_OK;
		snprintf(dj->dj_reply, sizeof(dj->dj_reply), "250 OK id=%s",
		    id);
	}
	for (i = 0; i < sizeof(deliver_exits) / sizeof(deliver_exits[0]); i++)
		if (deliver_exits[i].de_status == st) {
			dj->dj_class = DC_PERM;
			strlcpy(dj->dj_reply, deliver_exits[i].de_reply,
			    sizeof(dj->dj_reply));
		}
}

/* What the program said besides the reply goes to the log, escaped. */
static void
deliver_log_output(const struct client *cl, const struct envelope *e,
    const struct exec_out *o, size_t skip, const char *name)
{
	char	 buf[1024];
	size_t	 len = o->eo_len;

	while (len > skip && (o->eo_buf[len - 1] == '\n' ||
	    o->eo_buf[len - 1] == '\r'))
		len--;
	if (len <= skip)
		return;
	log_info("%s deliver id=%s %s: %s", cl->ci_sid, e->e_id, name,
	    log_escape(o->eo_buf + skip, len - skip, buf, sizeof(buf)));
}

static void
deliver_log(const struct client *cl, const struct envelope *e,
    const struct spool *sp, const struct deliver_job *dj)
{
	char		 from[LOG_ADDR_MAX], ex[32];
	long long	 ms;
	int		 st;

	ms = util_now_ms() - dj->dj_start;
	if (dj->dj_timedout)
		st = SD_TIMEOUT;
	else if (sp->sp_error || dj->dj_noinput || dj->dj_nobroker)
		st = SD_NONE;
	else if (!dj->dj_exited)
		st = SD_EXEC;
	else if (WIFSIGNALED(dj->dj_status))
		st = SD_SIGNAL;
	else
		st = WEXITSTATUS(dj->dj_status);
	score_delivery(st, ms);
	if (st >= 0)
		snprintf(ex, sizeof(ex), "%d", st);
	else if (st == SD_SIGNAL)
		snprintf(ex, sizeof(ex), "signal%d", WTERMSIG(dj->dj_status));
	else
		strlcpy(ex, st == SD_TIMEOUT ? "timeout" : st == SD_NONE ?
		    "none" : "exec-failed", sizeof(ex));
	log_info("%s deliver id=%s from=<%s> rcpts=%zu size=%lld status=%.3s "
	    "exit=%s time=%lld.%03llds", cl->ci_sid, e->e_id,
	    log_escape(e->e_sender, strlen(e->e_sender), from, sizeof(from)),
	    dj->dj_nrcpts, sp->sp_size, dj->dj_reply, ex, ms / 1000,
	    ms % 1000);
}

/* One run of the program, from spawn to reply; -1 on an internal error. */
static int
deliver_run(const struct config *c, const struct client *cl,
    const struct envelope *e, struct spool *sp, struct deliver_job *dj)
{
	size_t	 skip;
	int	 rv = 0;

	if (c->c_dlv.dl_argv == NULL || c->c_dlv.dl_argv[0] == NULL)
		fatalx("%s: no deliver command", __func__);
	if (deliver_start(c, cl, e, sp, dj) == -1) {
		if (dj->dj_noinput) {
			log_warnx("%s deliver id=%s: message file: %s",
			    cl->ci_sid, e->e_id, strerror(dj->dj_error));
			rv = -1;
		} else if (dj->dj_nobroker) {
			log_warnx("%s deliver id=%s: broker: %s", cl->ci_sid,
			    e->e_id, strerror(dj->dj_error));
			rv = -1;
		} else {
			log_warnx("%s deliver id=%s: %s: %s", cl->ci_sid,
			    e->e_id, c->c_dlv.dl_argv[0],
			    strerror(dj->dj_error));
			/* Our shortage, not the program's failing execve(). */
			if (dj->dj_error == EMFILE || dj->dj_error == ENFILE ||
			    dj->dj_error == EAGAIN || dj->dj_error == ENOMEM)
				rv = -1;
		}
	}
	deliver_result(dj, e->e_id);
	/* No room for the message; nothing ran. */
	if (dj->dj_noinput)
		strlcpy(dj->dj_reply, REPLY_NOSPOOL, sizeof(dj->dj_reply));
	else if (!dj->dj_exited && dj->dj_error == E2BIG) {
		/*
		 * The message's own arguments or environment are more than
		 * the kernel takes: every retry would fail the same way.
		 */
		dj->dj_class = DC_PERM;
		strlcpy(dj->dj_reply, REPLY_E2BIG, sizeof(dj->dj_reply));
	}
	skip = deliver_override(dj);
	deliver_log_output(cl, e, &dj->dj_out, skip, "stdout");
	deliver_log_output(cl, e, &dj->dj_err, 0, "stderr");
	return rv;
}

/* One run for the recipients given, whatever the mode; -1: our error. */
static int
deliver_one(const struct config *c, const struct client *cl,
    const struct envelope *e, struct spool *sp, struct deliver_job *dj)
{
	int	 rv = 0;

	dj->dj_out.eo_fd = dj->dj_err.eo_fd = -1;
	dj->dj_start = util_now_ms();
	if (sp->sp_error) {
		/* 452 4.3.1: the message was never whole. */
		dj->dj_class = DC_TEMP;
		strlcpy(dj->dj_reply, REPLY_NOSPOOL, sizeof(dj->dj_reply));
		rv = -1;
	} else if (c->c_dlv.dl_mode != DELIVER_PROGRAM)
		deliver_sink(c, cl, e, sp, dj);
	else
		rv = deliver_run(c, cl, e, sp, dj);
	deliver_log(cl, e, sp, dj);
	return rv;
}

int
deliver_message(const struct config *c, const struct client *cl,
    const struct envelope *e, struct spool *sp, deliver_reply_cb cb,
    void *arg)
{
	struct deliver_job	 dj;
	char			 agg[REPLY_MAX];
	enum deliver_class	 worst = DC_OK;
	size_t			 i, nruns;
	int			 per_rcpt, stop, rv = 0;

	/* The file must hold every octet before anyone reads it. */
	(void)spool_flush(sp);
	per_rcpt = cl->ci_lmtp || (c->c_dlv.dl_mode == DELIVER_PROGRAM &&
	    c->c_dlv.dl_per_rcpt);
	nruns = per_rcpt ? e->e_nrcpts : 1;
	agg[0] = '\0';
	for (i = 0; i < nruns; i++) {
		/*
		 * SMTP, one run per recipient: no run starts once the session
		 * may not go on (max-session-time), as on LMTP; the recipients
		 * left are not delivered, and the one reply is a 451 so that
		 * the client sends the message again.
		 */
		if (!cl->ci_lmtp && i > 0 && (stop = cb(arg, NULL)) != 0) {
			log_info("%s deliver id=%s smtp: the session time is "
			    "up; %zu recipients left undelivered", cl->ci_sid,
			    e->e_id, nruns - i);
			worst = DC_TEMP;
			strlcpy(agg, REPLY_TEMPFAIL, sizeof(agg));
			break;
		}
		memset(&dj, 0, sizeof(dj));
		dj.dj_rcpts = per_rcpt ? e->e_rcpts + i : e->e_rcpts;
		dj.dj_nrcpts = per_rcpt ? 1 : e->e_nrcpts;
		if (deliver_one(c, cl, e, sp, &dj) == -1)
			rv = -1;
		if (cl->ci_lmtp) {
			if ((stop = cb(arg, dj.dj_reply)) == 0)
				continue;
			/*
			 * The client will send the message again for every
			 * recipient it has no reply for: those left are not
			 * delivered now.
			 */
			if (i + 1 < nruns)
				log_info("%s deliver id=%s lmtp: %s; %zu "
				    "recipients left undelivered", cl->ci_sid,
				    e->e_id, stop == -1 ? "the client is gone" :
				    stop == -3 ? "a 421 closes the connection" :
				    "the session time is up", nruns - i - 1);
			break;
		} else if (agg[0] == '\0' || dj.dj_class > worst) {
			/* RCPT order: the first reply of the worst class. */
			worst = dj.dj_class;
			strlcpy(agg, dj.dj_reply, sizeof(agg));
		}
	}
	if (!cl->ci_lmtp)
		cb(arg, agg[0] != '\0' ? agg : REPLY_TEMPFAIL);
	return rv;
}
