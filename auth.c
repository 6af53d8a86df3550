/*
 * auth.c: what the AUTH command (RFC 4954) needs
 * besides its dialogue: strict base64, the PLAIN value, and the credential
 * backends: a passwd file of crypt(3) hashes, or a DJB checkpassword
 * program run without a shell under a time limit.  The checks run in the
 * broker's AUTH workers (broker.c), never in a session child.
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <paths.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "smtpd.h"
#include "internal.h"

#define AUTH_CP_FD	3	/* checkpassword reads its input here */
#define AUTH_CP_INMAX	(2 * AUTH_FIELD_MAX + 32)	/* < PIPE_BUF */
#define AUTH_ERRLEN	128
/*
 * For unknown users when the file has no usable hash: Debian's default
 * method and cost (yescrypt), so that the miss costs a hash all the same.
 */
#define AUTH_DUMMY	"$y$j9T$aP.JxCxJBCMVWKLdYgaDp1"

/* One user of the passwd file. */
struct authuser {
	char		*au_user;
	char		*au_hash;
	int		 au_line;
	int		 au_locked;	/* `!...`, `*...`: never matches */
};

struct authdb {
	struct authuser	*ad_users;	/* sorted by name, then line */
	size_t		 ad_n;
	size_t		 ad_cap;
	char		*ad_file;
	const char	*ad_dummy;	/* hashed for unknown users */
};

static int	 auth_timeout_ms = AUTH_TIMEOUT * 1000;

static void	 auth_error(const char *, int, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));

/* Tests shorten the checkpassword time limit; declared in the test only. */
void		 auth_test_timeout(int);

void
auth_test_timeout(int ms)
{
	auth_timeout_ms = ms;
}

/* "file:line: msg", "file: msg" without a line, "msg" without a file. */
static void
auth_error(const char *file, int line, const char *fmt, ...)
{
	char	 msg[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (file == NULL)
		log_warnx("%s", msg);
	else if (line > 0)
		log_warnx("%s:%d: %s", file, line, msg);
	else
		log_warnx("%s: %s", file, msg);
}

static int
auth_user_cmp(const void *a, const void *b)
{
	const struct authuser	*ua = a, *ub = b;
	int			 d;

	if ((d = strcmp(ua->au_user, ub->au_user)) != 0)
		return d;
	return (ua->au_line > ub->au_line) - (ua->au_line < ub->au_line);
}

static int
auth_user_find(const void *key, const void *elem)
{
	const struct authuser	*u = elem;

	return strcmp(key, u->au_user);
}

static void
auth_db_free(struct authdb *db)
{
	size_t	 i;

	if (db == NULL)
		return;
	for (i = 0; i < db->ad_n; i++) {
		free(db->ad_users[i].au_user);
		explicit_bzero(db->ad_users[i].au_hash,
		    strlen(db->ad_users[i].au_hash));
		free(db->ad_users[i].au_hash);
	}
	free(db->ad_users);
	free(db->ad_file);
	free(db);
}

/* 1 for a blank line or a `#` comment. */
static int
auth_db_skip(const char *line)
{
	line += strspn(line, " \t");
	return *line == '\0' || *line == '#';
}

/* Length and control characters of a whole line; -1 with err. */
static int
auth_db_raw(const char *line, size_t len, char *err, size_t errlen)
{
	size_t	 i;

	if (len > MAX_CONF_LINE) {
		snprintf(err, errlen, "line too long");
		return -1;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) {
			snprintf(err, errlen, "control character \\x%02x",
			    (unsigned char)line[i]);
			return -1;
		}
	return 0;
}

/*
 * One line `user:hash` without its newline, split in place.  The hash ends
 * at the next ':' if there is one: a copy of /etc/shadow (user:hash:
 * lastchange:...) works as it is, and its locked accounts (`!` or `*`
 * before the hash) load and never match.  Returns 0, or -1 with err.
 */
static int
auth_db_parse(char *line, size_t len, struct authuser *au, char *err,
    size_t errlen)
{
	char	*hash;
	size_t	 ulen;

	if (auth_db_raw(line, len, err, errlen) == -1)
		return -1;
	if ((hash = strchr(line, ':')) == NULL) {
		snprintf(err, errlen, "no ':' after the user name");
		return -1;
	}
	*hash++ = '\0';
	hash[strcspn(hash, ":")] = '\0';
	if ((ulen = strlen(line)) == 0)
		snprintf(err, errlen, "empty user name");
	else if (ulen >= AUTH_FIELD_MAX)
		snprintf(err, errlen, "user name longer than %d characters",
		    AUTH_FIELD_MAX - 1);
	else if (*hash == '\0')
		snprintf(err, errlen, "empty password hash");
	else if (strlen(hash) >= CRYPT_OUTPUT_SIZE)
		snprintf(err, errlen, "password hash too long");
	else if (*hash != '!' && *hash != '*' &&
	    crypt_checksalt(hash) == CRYPT_SALT_INVALID)
		snprintf(err, errlen, "not a crypt(3) password hash");
	else {
		au->au_user = xstrdup(line);
		au->au_hash = xstrdup(hash);
		au->au_locked = *hash == '!' || *hash == '*';
		return 0;
	}
	return -1;
}

static void
auth_db_add(struct authdb *db, const struct authuser *au)
{
	if (db->ad_n == db->ad_cap) {
		db->ad_cap = db->ad_cap == 0 ? 16 : db->ad_cap * 2;
		db->ad_users = xreallocarray(db->ad_users, db->ad_cap,
		    sizeof(*db->ad_users));
	}
	db->ad_users[db->ad_n++] = *au;
}

/* Every line of the file into db; returns the number of errors. */
static int
auth_db_read(struct authdb *db, FILE *f)
{
	struct authuser	 au;
	char		*line, err[AUTH_ERRLEN];
	size_t		 cap = MAX_CONF_LINE + 2;
	ssize_t		 n;
	int		 lineno = 0, errors = 0;

	/*
	 * Room for any valid line: getline() never moves a line that holds
	 * a hash to a larger buffer, freeing the old one unwiped.
	 */
	line = xmalloc(cap);
	while ((n = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		/* A NUL is not the end of the line: the parser reports it. */
		if (strlen(line) == (size_t)n && auth_db_skip(line))
			continue;
		if (auth_db_parse(line, (size_t)n, &au, err,
		    sizeof(err)) == -1) {
			auth_error(db->ad_file, lineno, "%s", err);
			errors++;
			continue;
		}
		au.au_line = lineno;
		auth_db_add(db, &au);
	}
	if (ferror(f)) {
		auth_error(db->ad_file, 0, "read: %s", strerror(errno));
		errors++;
	}
	/* XXX a buffer getline() outgrew (too long a line) is not wiped. */
	explicit_bzero(line, cap);
	free(line);
	return errors;
}

/*
 * Sort for bsearch(), report duplicate users, and choose the setting that
 * unknown users are hashed with: a real user's hash, so that a miss costs
 * what a hit costs (same method and parameters; a mixed file is as good
 * as its first usable hash).  Returns the number of errors.
 */
static int
auth_db_index(struct authdb *db)
{
	const struct authuser	*u = db->ad_users;
	size_t			 i, first = 0;
	int			 errors = 0;

	if (db->ad_n > 0)
		qsort(db->ad_users, db->ad_n, sizeof(*u), auth_user_cmp);
	for (i = 1; i < db->ad_n; i++) {
		if (strcmp(u[first].au_user, u[i].au_user) != 0) {
			first = i;
			continue;
		}
		auth_error(db->ad_file, u[i].au_line, "duplicate user \"%s\" "
		    "(first on line %d)", u[i].au_user, u[first].au_line);
		errors++;
	}
	db->ad_dummy = AUTH_DUMMY;
	for (i = 0; i < db->ad_n; i++)
		if (!u[i].au_locked) {
			db->ad_dummy = u[i].au_hash;
			break;
		}
	return errors;
}

/*
 * The passwd file must be a regular file that others can neither read
 * nor write: the hashes are secrets and offline guessing is cheap.
 */
static FILE *
auth_db_open(const struct config *c, const char *path)
{
	struct stat	 st;
	FILE		*f;
	int		 fd;

	if ((fd = util_open_regular(path, &st)) == -1) {
		auth_error(c->c_file, c->c_auth.au_line, "auth passwd: %s: %s",
		    path, strerror(errno));
		return NULL;
	}
	if (fd == -2) {
		auth_error(c->c_file, c->c_auth.au_line,
		    "passwd file %s is not a regular file", path);
		return NULL;
	}
	if (st.st_mode & S_IRWXO)
		auth_error(c->c_file, c->c_auth.au_line, "passwd file %s is %s "
		    "by others (mode %04o)", path, (st.st_mode & S_IROTH) ?
		    "readable" : (st.st_mode & S_IWOTH) ? "writable" :
		    "accessible", (unsigned int)(st.st_mode & 07777));
	else if ((f = fdopen(fd, "r")) == NULL)
		fatal("fdopen");
	else
		return f;
	close(fd);
	return NULL;
}

static int
auth_db_load(struct config *c)
{
	struct authdb	*db;
	FILE		*f;
	char		*iobuf;
	int		 errors;

	if (c->c_auth.au_path == NULL) {
		auth_error(c->c_file, c->c_auth.au_line,
		    "auth passwd: no file");
		return -1;
	}
	if ((f = auth_db_open(c, c->c_auth.au_path)) == NULL)
		return -1;
	/* stdio's own buffer would be freed with the hashes in it. */
	iobuf = xmalloc(BUFSIZ);
	setvbuf(f, iobuf, _IOFBF, BUFSIZ);
	db = xcalloc(1, sizeof(*db));
	db->ad_file = xstrdup(c->c_auth.au_path);
	errors = auth_db_read(db, f);
	fclose(f);
	explicit_bzero(iobuf, BUFSIZ);
	free(iobuf);
	errors += auth_db_index(db);
	if (errors > 0) {
		auth_db_free(db);
		return -1;
	}
	log_debug("auth: %zu users in %s", db->ad_n, db->ad_file);
	c->c_auth.au_db = db;
	return 0;
}

/*
 * config.c split the command line and checked that the program is an
 * absolute path (execve() needs no PATH search).
 */
static int
auth_cp_config(const struct config *c)
{
	if (c->c_auth.au_argv == NULL || c->c_auth.au_argv[0] == NULL) {
		auth_error(c->c_file, c->c_auth.au_line,
		    "auth checkpassword: no program");
		return -1;
	}
	return 0;
}

int
auth_config_load(struct config *c)
{
	auth_config_free(c);
	switch (c->c_auth.au_backend) {
	case AUTH_NONE:
		return 0;
	case AUTH_PASSWD:
		return auth_db_load(c);
	case AUTH_CHECKPASSWORD:
		return auth_cp_config(c);
	}
	fatalx("%s: bad backend %d", __func__, (int)c->c_auth.au_backend);
}

void
auth_config_free(struct config *c)
{
	auth_db_free(c->c_auth.au_db);
	c->c_auth.au_db = NULL;
}

/* RFC 4648 section 4: the value of a base64 character, or -1. */
static int
auth_b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/*
 * Strict base64 (RFC 4648): whole groups of four, `=` only as the
 * padding of the last one (so never first, and nothing else after it).
 * RFC 4954 section 4: "=" alone is the empty response.  Bits of the last character
 * that padding leaves unused are not checked, as CPython does not.
 * Returns 0, -1 for what is not base64, or -2 for base64 whose value
 * would not fit in outsz - 1 octets (nothing is written then).
 */
int
auth_b64_decode(const char *in, unsigned char *out, size_t outsz,
    size_t *outlen)
{
	size_t		 len, pad = 0, i, o = 0;
	unsigned int	 acc = 0;
	int		 v;

	*outlen = 0;
	len = strcmp(in, "=") == 0 ? 0 : strlen(in);
	if (len % 4 != 0)
		return -1;
	while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
		pad++;
	if (len / 4 * 3 - pad >= outsz) {
		for (i = 0; i < len - pad; i++)
			if (auth_b64_value((unsigned char)in[i]) == -1)
				return -1;
		return -2;
	}
	for (i = 0; i < len - pad; i++) {
		if ((v = auth_b64_value((unsigned char)in[i])) == -1) {
			explicit_bzero(out, o);
			return -1;
		}
		acc = acc << 6 | (unsigned int)v;
		if (i % 4 == 3) {
			out[o++] = (unsigned char)(acc >> 16);
			out[o++] = (unsigned char)(acc >> 8);
			out[o++] = (unsigned char)acc;
			acc = 0;
		}
	}
	if (pad == 1) {
		out[o++] = (unsigned char)(acc >> 10);
		out[o++] = (unsigned char)(acc >> 2);
	} else if (pad == 2)
		out[o++] = (unsigned char)(acc >> 4);
	*outlen = o;
	return 0;
}

/*
 * RFC 4616 section 2: [authzid] NUL authcid NUL passwd, so exactly two
 * NULs; the authzid (empty or not) is ignored.
 */
int
auth_plain_split(unsigned char *buf, size_t len, const char **user,
    const char **pass)
{
	unsigned char	*u, *p;

	*user = *pass = NULL;
	buf[len] = '\0';
	if ((u = memchr(buf, '\0', len)) == NULL)
		return -1;
	u++;
	if ((p = memchr(u, '\0', len - (size_t)(u - buf))) == NULL)
		return -1;
	p++;
	if (memchr(p, '\0', len - (size_t)(p - buf)) != NULL)
		return -1;
	*user = (const char *)u;
	*pass = (const char *)p;
	return 0;
}

/*
 * A miss (unknown or locked user) hashes the password too, with a real
 * hash of the file as the setting, so that its time tells nothing.
 */
static int
auth_db_check(const struct config *c, const char *user, const char *pass)
{
	const struct authdb	*db = c->c_auth.au_db;
	const struct authuser	*u = NULL;
	struct crypt_data	*cd;
	const char		*h;
	size_t			 len;
	int			 rv = AUTH_FAILED;

	if (db == NULL) {
		log_info("auth: backend failure: no passwd file loaded");
		return AUTH_TEMPFAIL;
	}
	if (db->ad_n > 0)
		u = bsearch(user, db->ad_users, db->ad_n, sizeof(*u),
		    auth_user_find);
	cd = xcalloc(1, sizeof(*cd));
	if (u == NULL || u->au_locked)
		(void)crypt_rn(pass, db->ad_dummy, cd, sizeof(*cd));
	else if ((h = crypt_rn(pass, u->au_hash, cd, sizeof(*cd))) == NULL)
		log_info("auth: backend failure: %s:%d: crypt(3) cannot use "
		    "the hash", db->ad_file, u->au_line);
	else if ((len = strlen(h)) == strlen(u->au_hash) &&
	    CRYPTO_memcmp(h, u->au_hash, len) == 0)
		rv = AUTH_OK;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rv;
}

/*
 * The checkpassword input, user NUL password NUL timestamp NUL, already
 * in a pipe: less than PIPE_BUF octets, so the write neither blocks nor
 * meets a reader that is gone (no SIGPIPE).  Returns the read end, above
 * AUTH_CP_FD (the child's dup2()s must not clobber it) and close-on-exec,
 * or -1.
 */
static int
auth_cp_input(const char *user, const char *pass)
{
	char	 buf[AUTH_CP_INMAX];
	int	 p[2], fd = -1, len, save;

	len = snprintf(buf, sizeof(buf), "%s%c%s%c%lld%c", user, '\0', pass,
	    '\0', (long long)time(NULL), '\0');
	if (len < 0 || (size_t)len >= sizeof(buf))
		fatalx("%s: input too long", __func__);
	if (pipe2(p, O_CLOEXEC) == -1)
		goto done;
	if (write(p[1], buf, (size_t)len) == len)
		fd = fcntl(p[0], F_DUPFD_CLOEXEC, AUTH_CP_FD + 1);
	save = errno;
	close(p[0]);
	close(p[1]);
	errno = save;
 done:
	explicit_bzero(buf, sizeof(buf));
	if (fd == -1)
		log_info("auth: backend failure: checkpassword input: %s",
		    strerror(errno));
	return fd;
}

static pid_t	 auth_cp_stuck;	/* a run killed and not gone: we end */
static int	 auth_cp_left = -1;	/* its pidfd, or -1 */

/*
 * The program as exec.c starts every program: in a session of its own,
 * with default signals; stdin, stdout and stderr on /dev/null, the input
 * on descriptor 3 and nothing else; PATH alone in the environment.  It
 * runs as we do (the broker's AUTH workers are the sessions' user).
 */
static void
auth_cp_run(char *const argv[], int in, struct exec_job *ej)
{
	static char		 path[] = "PATH=" _PATH_DEFPATH;
	char			*envp[] = { path, NULL };
	struct exec_spec	 es;

	memset(&es, 0, sizeof(es));
	es.es_argv = argv;
	es.es_envp = envp;
	es.es_stdin = -1;
	es.es_fd3 = in;
	es.es_timeout = auth_timeout_ms;
	exec_init(ej);
	if (exec_start(ej, &es) == 0 && exec_wait(ej) == -1) {
		auth_cp_stuck = ej->ej_pid;
		/* Still our child, not reaped: its pid is its own. */
		auth_cp_left = os_pidfd_open(ej->ej_pid);
	}
}

/*
 * Whether a checkpassword program killed at its deadline is not gone:
 * the process that ran it (an AUTH worker) exits without a verdict, so
 * that init reaps the program, and another worker takes its place.
 * Returns the program's pid, or 0; *pidfd: its pidfd, for the broker to
 * count it until it is reaped (-1 without pidfd_open).
 */
pid_t
auth_left_behind(int *pidfd)
{
	*pidfd = auth_cp_left;
	return auth_cp_stuck;
}

/* The DJB interface: 0 good, 1 bad, anything else temporary. */
static int
auth_cp_result(const char *prog, const struct exec_job *ej)
{
	int	 st = ej->ej_status;

	if (ej->ej_timedout) {
		log_info("auth: backend failure: checkpassword timed out");
		return AUTH_TEMPFAIL;
	}
	if (!ej->ej_exited) {
		log_info("auth: backend failure: checkpassword %s: %s",
		    prog, strerror(ej->ej_error));
		return AUTH_TEMPFAIL;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return AUTH_OK;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
		return AUTH_FAILED;
	if (WIFEXITED(st))
		log_info("auth: backend failure: checkpassword %s exited %d",
		    prog, WEXITSTATUS(st));
	else
		log_info("auth: backend failure: checkpassword %s killed by "
		    "signal %d", prog, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return AUTH_TEMPFAIL;
}

static int
auth_cp_check(const struct config *c, const char *user, const char *pass)
{
	struct exec_job	 ej;
	int		 in;

	if (c->c_auth.au_argv == NULL || c->c_auth.au_argv[0] == NULL) {
		log_info("auth: backend failure: no checkpassword program");
		return AUTH_TEMPFAIL;
	}
	if ((in = auth_cp_input(user, pass)) == -1)
		return AUTH_TEMPFAIL;
	auth_cp_run(c->c_auth.au_argv, in, &ej);
	close(in);
	return auth_cp_result(c->c_auth.au_argv[0], &ej);
}

/*
 * The user and the password are C strings: the caller refuses a decoded
 * LOGIN response that holds a NUL (PLAIN's split cannot yield one).
 */
int
auth_check(const struct config *c, const char *user, const char *pass)
{
	if (user == NULL || pass == NULL ||
	    strnlen(user, AUTH_FIELD_MAX) == AUTH_FIELD_MAX ||
	    strnlen(pass, AUTH_FIELD_MAX) == AUTH_FIELD_MAX)
		return AUTH_FAILED;
	switch (c->c_auth.au_backend) {
	case AUTH_PASSWD:
		return auth_db_check(c, user, pass);
	case AUTH_CHECKPASSWORD:
		return auth_cp_check(c, user, pass);
	case AUTH_NONE:
		break;
	}
	/* aiosmtpd without an authenticator: every attempt is 535. */
	return AUTH_FAILED;
}
