/*
 * test_deliver.c: the spool and deliver_message() against small /bin/sh
 * programs written into a temporary directory (the program may be a
 * script; smtpd itself never starts it through a shell), each run by a
 * broker of its own (as root: as the fallback deliver-user, nobody).
 */

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpd.h"
#include "internal.h"

#define MAXREPLIES	8
#define ID		"4f1a2b.1"
#define R_OK250		"250 OK id=" ID
#define R_TEMP	\
    "451 4.3.0 Delivery failed temporarily, try again later"

static char		 tdir[64];
static struct config	 tc;
static struct listener	 tl;
static struct client	 tcl;
static struct envelope	 te;
static struct spool	 tsp;
static char		*targv[16];
static char		*trcpts[8];
static char		 treplies[MAXREPLIES][REPLY_MAX];
static int		 tnreplies;

static int
reply_cb(void *arg, const char *reply)
{
	(void)arg;
	if (reply == NULL)
		return 0;	/* SMTP: another run per recipient may start */
	assert_true(tnreplies < MAXREPLIES);
	assert_null(strpbrk(reply, "\r\n"));
	strlcpy(treplies[tnreplies++], reply, REPLY_MAX);
	return 0;
}

static int
setup(void **state)
{
	(void)state;
	strlcpy(tdir, "/tmp/test_deliver.XXXXXX", sizeof(tdir));
	assert_non_null(mkdtemp(tdir));
	/* Programs run as the deliver-user, not as the test. */
	assert_int_equal(chmod(tdir, 0777), 0);
	memset(&tc, 0, sizeof(tc));
	memset(&tl, 0, sizeof(tl));
	strlcpy(tl.l_name, "test", sizeof(tl.l_name));
	TAILQ_INIT(&tc.c_listeners);
	TAILQ_INSERT_TAIL(&tc.c_listeners, &tl, l_entry);
	tc.c_nlisteners = 1;
	tc.c_dlv.dl_mode = DELIVER_PROGRAM;
	tc.c_dlv.dl_argv = targv;
	tc.c_dlv.dl_timeout = 10;
	tc.c_hostname = (char *)(uintptr_t)"mx.example.org";
	memset(&tcl, 0, sizeof(tcl));
	strlcpy(tcl.ci_addr, "192.0.2.7", sizeof(tcl.ci_addr));
	strlcpy(tcl.ci_port, "51514", sizeof(tcl.ci_port));
	strlcpy(tcl.ci_helo, "client.example", sizeof(tcl.ci_helo));
	strlcpy(tcl.ci_sid, "4f1a2b", sizeof(tcl.ci_sid));
	tcl.ci_esmtp = 1;
	memset(&te, 0, sizeof(te));
	te.e_sender = (char *)(uintptr_t)"a@example.org";
	trcpts[0] = (char *)(uintptr_t)"b@example.net";
	te.e_rcpts = trcpts;
	te.e_nrcpts = 1;
	strlcpy(te.e_id, ID, sizeof(te.e_id));
	spool_init(&tsp, tdir);
	tnreplies = 0;
	return 0;
}

static int
teardown(void **state)
{
	char	*cmd;

	(void)state;
	spool_reset(&tsp);
	xasprintf(&cmd, "rm -rf '%s'", tdir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

/* tdir/name: a /bin/sh script; the path stays valid until the next call. */
static const char *
script(const char *name, const char *body)
{
	static char	 path[256];
	FILE		*f;

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "#!/bin/sh\n%s\n", body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0755), 0);
	return path;
}

/* The deliver argv, NULL-terminated; words are copied. */
static void
set_argv(const char *a0, ...)
{
	va_list		 ap;
	const char	*a;
	int		 n = 0;

	while (targv[n] != NULL)
		free(targv[n++]);
	n = 0;
	va_start(ap, a0);
	for (a = a0; a != NULL; a = va_arg(ap, const char *))
		targv[n++] = xstrdup(a);
	va_end(ap);
	targv[n] = NULL;
}

static void
set_rcpts(const char *r0, ...)
{
	va_list		 ap;
	const char	*r;

	te.e_nrcpts = 0;
	va_start(ap, r0);
	for (r = r0; r != NULL; r = va_arg(ap, const char *))
		trcpts[te.e_nrcpts++] = (char *)(uintptr_t)r;
	va_end(ap);
}

static char *
tpath(const char *name)
{
	static char	 path[256];

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	return path;
}

static char *
slurp(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*buf;
	size_t	 len;

	assert_non_null(f = fopen(path, "r"));
	buf = xmalloc(64 * 1024 * 1024);
	len = fread(buf, 1, 64 * 1024 * 1024 - 1, f);
	buf[len] = '\0';
	fclose(f);
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

/* The file name of the test directory holds the n octets of want. */
static void
assert_file_equal(const char *name, const char *want, size_t n)
{
	char	*got;
	size_t	 len;

	got = slurp(tpath(name), &len);
	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);
	free(got);
}

static void
message(const char *s)
{
	assert_int_equal(spool_write(&tsp, s, strlen(s)), 0);
}

/* deliver_message() with a broker of its own, as a session child has. */
static int
deliver_brokered(void)
{
	char	*cp[] = { (char *)(uintptr_t)"/bin/true", NULL };
	pid_t	 pid;
	int	 rv;

	/*
	 * %{user} is what the broker saw the child prove, never what the
	 * child says: tcl's user authenticates first (checkpassword
	 * /bin/true takes anyone).
	 */
	tc.c_auth.au_backend = tcl.ci_user[0] != '\0' ? AUTH_CHECKPASSWORD :
	    AUTH_NONE;
	tc.c_auth.au_argv = cp;
	assert_true((pid = broker_local(&tc)) != -1);
	if (tcl.ci_user[0] != '\0')
		assert_int_equal(broker_auth(tcl.ci_user, "pw", 0), AUTH_OK);
	rv = deliver_message(&tc, &tcl, &te, &tsp, reply_cb, NULL);
	assert_int_equal(broker_local_end(pid), 0);
	tc.c_auth.au_backend = AUTH_NONE;
	tc.c_auth.au_argv = NULL;
	return rv;
}

static int
deliver(void)
{
	tnreplies = 0;
	return deliver_brokered();
}

static double
now(void)
{
	return util_now_ms() / 1000.0;
}

static int
count_fds(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	assert_non_null(d = opendir("/proc/self/fd"));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
count_dir(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
test_spool_memory(void **state)
{
	(void)state;
	message("Subject: x\r\n\r\n");
	message("body\r\n");
	assert_int_equal(tsp.sp_fd, -1);
	assert_int_equal(tsp.sp_size, 20);
	assert_memory_equal(tsp.sp_buf, "Subject: x\r\n\r\nbody\r\n", 20);
	assert_int_equal(tsp.sp_error, 0);
	spool_reset(&tsp);
	assert_int_equal(tsp.sp_size, 0);
	/* Once on disk, the memory is the file's write buffer. */
	assert_int_equal(spool_flush(&tsp), 0);
	assert_int_equal(tsp.sp_len, 0);
	message("next");
	assert_int_equal(tsp.sp_size, 4);
}

/* Past SPOOL_MEM_MAX the message moves to an unlinked file. */
static void
test_spool_file(void **state)
{
	char		 chunk[1000], *back;
	long long	 i, total = 0;
	int		 fds;

	(void)state;
	fds = count_fds();
	for (i = 0; total <= SPOOL_MEM_MAX + 5000; i++) {
		memset(chunk, 'a' + (int)(i % 26), sizeof(chunk));
		assert_int_equal(spool_write(&tsp, chunk, sizeof(chunk)), 0);
		total += sizeof(chunk);
	}
	assert_int_not_equal(tsp.sp_fd, -1);
	/* Once on disk, the memory is the file's write buffer. */
	assert_int_equal(spool_flush(&tsp), 0);
	assert_int_equal(tsp.sp_len, 0);
	assert_int_equal(tsp.sp_size, total);
	assert_int_equal(count_fds(), fds + 1);
	/* Unlinked from the start. */
	assert_int_equal(count_dir(tdir), 0);
	back = xmalloc((size_t)total);
	assert_int_equal(pread(tsp.sp_fd, back, (size_t)total, 0), total);
	for (i = 0; i < total; i++)
		if (back[i] != 'a' + (int)(i / 1000 % 26))
			fail_msg("spool byte %lld", i);
	free(back);
	spool_reset(&tsp);
	assert_int_equal(tsp.sp_fd, -1);
	assert_int_equal(count_fds(), fds);
	assert_int_equal(count_dir(tdir), 0);
}

/* A write failure sticks and gives 452 without running anything. */
static void
test_spool_error(void **state)
{
	char	*big;

	(void)state;
	spool_init(&tsp, "/nonexistent/dir");
	big = xcalloc(1, SPOOL_MEM_MAX + 1);
	assert_int_equal(spool_write(&tsp, big, SPOOL_MEM_MAX + 1), -1);
	assert_int_equal(tsp.sp_error, 1);
	assert_int_equal(spool_write(&tsp, "x", 1), -1);
	free(big);
	set_argv(script("p", "touch ran"), NULL);
	assert_int_equal(deliver(), -1);
	assert_int_equal(tnreplies, 1);
	assert_string_equal(treplies[0],
	    "452 4.3.1 Insufficient system storage");
	assert_int_equal(access(tpath("ran"), F_OK), -1);
	spool_reset(&tsp);
	spool_init(&tsp, tdir);
}

static void
test_exit_status(void **state)
{
	static const struct {
		const char	*status;
		const char	*reply;
	} t[] = {
		{ "0", R_OK250 },
		{ "67", "550 5.1.1 Delivery failed: no such user" },
		{ "68", "550 5.1.2 Delivery failed: host unknown" },
		{ "65", "554 5.6.0 Delivery failed: data format error" },
		{ "77", "554 5.7.1 Delivery failed: permission denied" },
		{ "69", "554 5.3.0 Delivery failed: service unavailable" },
		{ "75", R_TEMP },
		{ "1", R_TEMP },
		{ "64", R_TEMP },
		{ "255", R_TEMP }
	};
	size_t	 i;

	(void)state;
	message("x\r\n");
	set_argv(script("p", "cat >/dev/null; exit $1"), "0", NULL);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		free(targv[1]);
		targv[1] = xstrdup(t[i].status);
		assert_int_equal(deliver(), 0);
		assert_int_equal(tnreplies, 1);
		assert_string_equal(treplies[0], t[i].reply);
	}
}

/* The program's own reply (smtpd.conf.5). */
static void
test_override(void **state)
{
	static const struct {
		const char	*out;
		const char	*status;
		const char	*reply;
	} t[] = {
		{ "250 2.0.0 stored as 42", "0", "250 2.0.0 stored as 42" },
		{ "250 fine\r", "0", "250 fine" },
		{ "251 fine", "0", "251 fine" },
		{ "550 5.1.1 <b@example.net> unknown", "67",
		    "550 5.1.1 <b@example.net> unknown" },
		{ "554 no way", "77", "554 no way" },
		{ "451 4.2.0 busy", "75", "451 4.2.0 busy" },
		{ "452 4.2.2 mailbox full", "1", "452 4.2.2 mailbox full" },
		{ "550 nope", "0", R_OK250 },
		{ "250 fine", "67",
		    "550 5.1.1 Delivery failed: no such user" },
		{ "499 x", "65",
		    "554 5.6.0 Delivery failed: data format error" },
		{ "250", "0", R_OK250 },
		{ "250 ", "0", R_OK250 },
		{ "250-multi", "0", R_OK250 },
		{ "25x fine", "0", R_OK250 },
		{ "free text", "0", R_OK250 },
		{ "250 a\tb", "0", R_OK250 },
		{ "250 a\x7f" "b", "0", R_OK250 },
		{ "250 caf\xc3\xa9", "0", R_OK250 },
		{ "", "75", R_TEMP },
		{ "451 later", "0", R_OK250 }
	};
	size_t	 i;

	(void)state;
	message("x\r\n");
	set_argv(script("p", "printf '%s\\nsecond line\\n' \"$2\"; exit $1"),
	    "0", "", NULL);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		free(targv[1]);
		free(targv[2]);
		targv[1] = xstrdup(t[i].status);
		targv[2] = xstrdup(t[i].out);
		assert_int_equal(deliver(), 0);
		assert_int_equal(tnreplies, 1);
		assert_string_equal(treplies[0], t[i].reply);
	}
}

/* Every argument arrives byte-exact as one argument: no shell. */
static void
test_argv(void **state)
{
	const char	*want =
	    "[-f]\n[]\n[--]\n[\"a b;c\"@example.net]\n"
	    "[$(touch pwned)`id`|&;<>*?'\\x@y.org]\n"
	    "[id=4f1a2b.1]\n[192.0.2.7/client.example/alice]\n"
	    "[x%{nope}y]\n[r=\"a b;c\"@example.net]\n";
	char		*got;

	(void)state;
	message("x\r\n");
	te.e_sender = (char *)(uintptr_t)"";
	set_rcpts("\"a b;c\"@example.net",
	    "$(touch pwned)`id`|&;<>*?'\\x@y.org", NULL);
	strlcpy(tcl.ci_user, "alice", sizeof(tcl.ci_user));
	/* The program's cwd is the deliver-user's home: a full path. */
	set_argv(script("p", "for a; do printf '[%s]\\n' \"$a\"; done "
	    ">\"${0%/p}/args\""),
	    "-f", "%{sender}", "--", "%{recipients}", "id=%{id}",
	    "%{client}/%{helo}/%{user}", "x%{nope}y", "r=%{recipient}", NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_OK250);
	got = slurp(tpath("args"), NULL);
	assert_string_equal(got, want);
	free(got);
	assert_int_equal(access(tpath("pwned"), F_OK), -1);
	assert_int_equal(access("/pwned", F_OK), -1);
}

/* /proc/PID/environ is what execve() got, untouched by the shell. */
static void
test_env(void **state)
{
	const char	 want[] =
	    "PATH=/usr/bin:/bin:/test\0SMTPD_SENDER=\0"
	    "SMTPD_RECIPIENTS=b@example.net\nc@example.net\0"
	    "SMTPD_CLIENT_ADDR=192.0.2.7\0SMTPD_CLIENT_PORT=51514\0"
	    "SMTPD_HELO=client.example\0SMTPD_AUTH_USER=alice\0"
	    "SMTPD_TLS=TLSv1.3 TLS_AES_256_GCM_SHA384\0SMTPD_ID=4f1a2b.1\0"
	    "SMTPD_BODY=8BITMIME\0SMTPD_SMTPUTF8=1\0";
	char		*got;
	size_t		 len;

	(void)state;
	setenv("SECRET", "1", 1);
	setenv("PATH", "/usr/bin:/bin:/test", 1);
	message("x\r\n");
	te.e_sender = (char *)(uintptr_t)"";
	te.e_body8 = te.e_smtputf8 = 1;
	set_rcpts("b@example.net", "c@example.net", NULL);
	strlcpy(tcl.ci_user, "alice", sizeof(tcl.ci_user));
	strlcpy(tcl.ci_tls, "TLSv1.3 TLS_AES_256_GCM_SHA384",
	    sizeof(tcl.ci_tls));
	set_argv(script("p", "cat /proc/$$/environ >\"$1\""), tpath("env"),
	    NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_OK250);
	assert_file_equal("env", want, sizeof(want) - 1);
	unsetenv("SECRET");
	/* Without PATH in our environment the child gets the default. */
	unsetenv("PATH");
	assert_int_equal(deliver(), 0);
	got = slurp(tpath("env"), &len);
	assert_true(len > 19);
	assert_memory_equal(got, "PATH=/usr/bin:/bin", 19);
	free(got);
	setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1);
}

/* What follows the expected start: an RFC 5322 date, CRLF, the message. */
static void
check_received(const char *got, size_t len, const char *start,
    const char *msg)
{
	struct tm	 tm;
	const char	*p;

	assert_true(len > strlen(start));
	assert_memory_equal(got, start, strlen(start));
	memset(&tm, 0, sizeof(tm));
	p = strptime(got + strlen(start), "%a, %d %b %Y %H:%M:%S %z", &tm);
	assert_non_null(p);
	assert_memory_equal(p, "\r\n", 2);
	assert_string_equal(p + 2, msg);
}

/* One run of the program that saves its input: the header starts so. */
static void
received_is(const char *start, const char *msg)
{
	char	*got;
	size_t	 len;

	assert_int_equal(deliver(), 0);
	got = slurp(tpath("in"), &len);
	check_received(got, len, start, msg);
	free(got);
}

/* msg to a program that copies it, with the Received header on. */
static void
received_setup(const char *msg)
{
	message(msg);
	tc.c_dlv.dl_received = 1;
	set_argv(script("p", "cat >\"$1\""), tpath("in"), NULL);
}

#define RECEIVED_FROM(addr) \
	"Received: from client.example ([" addr "])\r\n\tby mx.example.org " \
	"(smtpd) with "

static void
test_stdin_received(void **state)
{
	const char	*msg =
	    "Subject: t\r\n\r\n.dot\nbare LF\rbare CR \xe9\r\n";

	(void)state;
	message(msg);
	tc.c_dlv.dl_received = 1;
	strlcpy(tcl.ci_user, "alice", sizeof(tcl.ci_user));
	strlcpy(tcl.ci_tls, "TLSv1.3 X", sizeof(tcl.ci_tls));
	set_argv(script("p", "cat >\"$1\""), tpath("in"), NULL);
	received_is(RECEIVED_FROM("192.0.2.7") "ESMTPSA id 4f1a2b.1\r\n"
	    "\tfor <b@example.net>; ", msg);

	/* HELO in TLS, after AUTH: SMTP (RFC 3848 has no SMTPSA). */
	tcl.ci_esmtp = 0;
	received_is(RECEIVED_FROM("192.0.2.7") "SMTP id 4f1a2b.1\r\n"
	    "\tfor <b@example.net>; ", msg);

	/* HELO, no TLS or AUTH, IPv6, two recipients: no `for'. */
	tcl.ci_user[0] = tcl.ci_tls[0] = '\0';
	strlcpy(tcl.ci_addr, "2001:db8::1", sizeof(tcl.ci_addr));
	set_rcpts("b@example.net", "c@example.net", NULL);
	received_is(RECEIVED_FROM("IPv6:2001:db8::1") "SMTP id 4f1a2b.1;\r\n"
	    "\t", msg);

	/* LMTP: one run per recipient, each with its own `for'. */
	tcl.ci_lmtp = 1;
	set_rcpts("c@example.net", NULL);
	received_is(RECEIVED_FROM("IPv6:2001:db8::1") "LMTP id 4f1a2b.1\r\n"
	    "\tfor <c@example.net>; ", msg);

	/* SMTPUTF8 (RFC 6531 3.7.3): UTF8LMTP, UTF8SMTPSA; after HELO SMTP. */
	te.e_smtputf8 = 1;
	received_is(RECEIVED_FROM("IPv6:2001:db8::1") "UTF8LMTP id 4f1a2b.1"
	    "\r\n\tfor <c@example.net>; ", msg);
	tcl.ci_lmtp = 0;
	tcl.ci_esmtp = 1;
	strlcpy(tcl.ci_user, "alice", sizeof(tcl.ci_user));
	strlcpy(tcl.ci_tls, "TLSv1.3 X", sizeof(tcl.ci_tls));
	received_is(RECEIVED_FROM("IPv6:2001:db8::1") "UTF8SMTPSA id 4f1a2b.1"
	    "\r\n\tfor <c@example.net>; ", msg);
	tcl.ci_esmtp = 0;
	received_is(RECEIVED_FROM("IPv6:2001:db8::1") "SMTP id 4f1a2b.1\r\n"
	    "\tfor <c@example.net>; ", msg);

	/* A link-local client's scope zone is not part of the literal. */
	strlcpy(tcl.ci_addr, "fe80::1%eth0", sizeof(tcl.ci_addr));
	received_is(RECEIVED_FROM("IPv6:fe80::1") "SMTP id 4f1a2b.1\r\n"
	    "\tfor <c@example.net>; ", msg);
}

/* The longest line of the header (up to the empty line), CRLF excluded. */
static size_t
longest_line(const char *s)
{
	const char	*nl;
	size_t		 max = 0;

	while ((nl = strstr(s, "\r\n")) != NULL && nl != s) {
		if ((size_t)(nl - s) > max)
			max = (size_t)(nl - s);
		s = nl + 2;
	}
	return max;
}

/*
 * RFC 5322 2.1.1, 2.2.3: no line over 998 octets, whatever the address:
 * folded before white space, and without the optional `for' when the
 * address has a longer run without any.
 */
static void
test_received_fold(void **state)
{
	char	*rcpt, *got, *want;
	size_t	 len, i;

	(void)state;
	message("\r\nx\r\n");
	tc.c_dlv.dl_received = 1;
	set_argv(script("p", "cat >\"$1\""), tpath("in"), NULL);
	/* RCPT TO:<\\...@a>: 500 backslashes, normalised to 1000. */
	rcpt = xmalloc(1100);
	rcpt[0] = '"';
	memset(rcpt + 1, '\\', 1000);
	strlcpy(rcpt + 1001, "\"@a", 1100 - 1001);
	set_rcpts(rcpt, NULL);
	assert_int_equal(deliver(), 0);
	got = slurp(tpath("in"), &len);
	assert_true(longest_line(got) <= 998);
	assert_null(strstr(got, "for <"));
	check_received(got, len, "Received: from client.example "
	    "([192.0.2.7])\r\n\tby mx.example.org (smtpd) with ESMTP "
	    "id 4f1a2b.1;\r\n\t", "\r\nx\r\n");
	free(got);
	/* With white space: folded, and unfolding gives the address back. */
	rcpt[0] = '"';
	for (i = 1; i < 1000; i++)
		rcpt[i] = i % 100 == 0 ? ' ' : 'q';
	strlcpy(rcpt + 1000, "\"@a", 1100 - 1000);
	assert_int_equal(deliver(), 0);
	got = slurp(tpath("in"), &len);
	assert_true(longest_line(got) <= 998);
	assert_non_null(strstr(got, "\r\n\tby"));
	xasprintf(&want, "\tfor <%s>;", rcpt);
	for (i = 0; got[i] != '\0'; i++)
		if (strncmp(got + i, "\r\n ", 3) == 0)
			memmove(got + i, got + i + 2, strlen(got + i + 2) + 1);
	assert_non_null(strstr(got, want));
	free(want);
	free(got);
	/*
	 * No white space: " <ADDRESS>;" fits a line up to an address of
	 * 994 octets (998 in all); at 995 the `for' is left out.
	 */
	for (len = 994; len <= 995; len++) {
		memset(rcpt, 'q', len - 2);
		strlcpy(rcpt + len - 2, "@a", 3);
		assert_int_equal(deliver(), 0);
		got = slurp(tpath("in"), &i);
		assert_true(longest_line(got) <= 998);
		if (len == 994)
			assert_non_null(strstr(got, "\r\n <qqq"));
		else
			assert_null(strstr(got, "for <"));
		free(got);
	}
	free(rcpt);
}

/*
 * The HELO name is the client's text: it cannot open a comment that
 * hides the address (`EHLO x ([192.0.2.1]) ('), nor add clauses or a
 * date of its own; the specials and white space become `?', the octets
 * of domains and address literals stay.
 */
#define RECEIVED_HELO(helo) \
	"Received: from " helo " ([192.0.2.7])\r\n\tby mx.example.org " \
	"(smtpd) with ESMTP id 4f1a2b.1\r\n\tfor <b@example.net>; "

static void
test_received_helo(void **state)
{
	(void)state;
	received_setup("x\r\n");
	strlcpy(tcl.ci_helo, "relay.example ([192.0.2.1]) (",
	    sizeof(tcl.ci_helo));
	received_is(RECEIVED_HELO("relay.example??[192.0.2.1]???"), "x\r\n");
	strlcpy(tcl.ci_helo, "a b;c\\d\"e<f>g@h,i", sizeof(tcl.ci_helo));
	received_is(RECEIVED_HELO("a?b?c?d?e?f?g?h?i"), "x\r\n");
	strlcpy(tcl.ci_helo, "[IPv6:2001:db8::1]", sizeof(tcl.ci_helo));
	received_is(RECEIVED_HELO("[IPv6:2001:db8::1]"), "x\r\n");
}

/*
 * A message whose first line begins with white space would unfold into
 * the header field above it (RFC 5322 2.2.3): the client's text inside
 * our Received: or the policy server's PREPEND.  An empty line keeps it
 * out; without a header of ours the message arrives as it is.
 */
static void
test_received_leading_space(void **state)
{
	static const char	 tab[] = "\tfrom trusted.example; forged\r\n"
	    "Subject: x\r\n\r\nb\r\n";
	char			 prepend[] = "X-Policy: yes\r\n", *buf;
	size_t			 n = SPOOL_MEM_MAX + 10;

	(void)state;
	received_setup(tab);
	received_is(RECEIVED_HELO("client.example"), "\r\n" "\tfrom "
	    "trusted.example; forged\r\nSubject: x\r\n\r\nb\r\n");
	te.e_prepend = prepend;
	received_is(RECEIVED_HELO("client.example"), "X-Policy: yes\r\n"
	    "\r\n" "\tfrom trusted.example; forged\r\nSubject: x\r\n"
	    "\r\nb\r\n");
	tc.c_dlv.dl_received = 0;
	assert_int_equal(deliver(), 0);
	assert_file_equal("in", "X-Policy: yes\r\n\r\n\tfrom "
	    "trusted.example; forged\r\nSubject: x\r\n\r\nb\r\n",
	    sizeof(tab) - 1 + 17);
	te.e_prepend = NULL;
	assert_int_equal(deliver(), 0);
	assert_file_equal("in", tab, sizeof(tab) - 1);

	/* A space; and a message in the spool file, not in memory. */
	spool_reset(&tsp);
	buf = xmalloc(n);
	memset(buf, 'x', n);
	buf[0] = ' ';
	memcpy(buf + n - 2, "\r\n", 2);
	assert_int_equal(spool_write(&tsp, buf, n), 0);
	assert_int_equal(spool_flush(&tsp), 0);
	assert_int_not_equal(tsp.sp_fd, -1);
	tc.c_dlv.dl_received = 1;
	te.e_prepend = prepend;
	assert_int_equal(deliver(), 0);
	free(buf);
	buf = slurp(tpath("in"), NULL);
	assert_non_null(strstr(buf, "\r\nX-Policy: yes\r\n\r\n xxx"));
	free(buf);
	te.e_prepend = NULL;
	/* A first line of text, and an empty message: nothing added. */
	spool_reset(&tsp);
	received_setup("Subject: x\r\n\r\n b\r\n");
	received_is(RECEIVED_HELO("client.example"), "Subject: x\r\n\r\n"
	    " b\r\n");
	spool_reset(&tsp);
	received_is(RECEIVED_HELO("client.example"), "");
}

/*
 * A message sent without SMTPUTF8 has a US-ASCII header (RFC 6531
 * 3.7.3), though `smtputf8 yes' lets EHLO and RCPT carry UTF-8 without
 * the MAIL parameter: the name's 8-bit octets become `?', a UTF-8
 * recipient is left out of `for'.  With SMTPUTF8 both stay.
 */
static void
test_received_8bit(void **state)
{
	(void)state;
	received_setup("x\r\n");
	strlcpy(tcl.ci_helo, "caf\xc3\xa9.example", sizeof(tcl.ci_helo));
	received_is(RECEIVED_HELO("caf??.example"), "x\r\n");
	set_rcpts("j\xc3\xbcrg@example.net", NULL);
	received_is("Received: from caf??.example ([192.0.2.7])\r\n\tby "
	    "mx.example.org (smtpd) with ESMTP id 4f1a2b.1;\r\n\t", "x\r\n");
	te.e_smtputf8 = 1;
	received_is("Received: from caf\xc3\xa9.example ([192.0.2.7])\r\n\tby "
	    "mx.example.org (smtpd) with UTF8SMTP id 4f1a2b.1\r\n\tfor "
	    "<j\xc3\xbcrg@example.net>; ", "x\r\n");
}

/* A probe that never answers, as one on a file system that hangs. */
static int
probe_hangs(const char *path)
{
	(void)path;
	for (;;)
		pause();
	return 0;
}

/*
 * The spool directory as the children will use it (util_probe with
 * spool_probe); a probe that does not answer is killed, and the master
 * that waits for it at a reload goes on.
 */
static void
test_spool_probe(void **state)
{
	struct exec_ident	 id;
	char			 why[256];
	gid_t			 gid = 65534;
	long long		 t0;

	(void)state;
	assert_int_equal(util_probe(tdir, NULL, NULL, spool_probe, why,
	    sizeof(why)), 0);
	assert_int_equal(util_probe("/nonexistent/spool", NULL, NULL,
	    spool_probe, why, sizeof(why)), -1);
	assert_string_equal(why, "No such file or directory");
	assert_int_equal(util_probe("/etc/passwd", NULL, NULL, spool_probe,
	    why, sizeof(why)), -1);
	assert_string_equal(why, "not a directory");
	if (geteuid() != 0)
		return;		/* the identity probe is root's */
	memset(&id, 0, sizeof(id));
	id.ei_change = 1;
	id.ei_uid = 65534;
	id.ei_gid = gid;
	id.ei_groups = &gid;
	id.ei_ngroups = 1;
	/* Root's 0700 directory is no spool for nobody. */
	assert_int_equal(chmod(tdir, 0700), 0);
	assert_int_equal(util_probe(tdir, NULL, &id, spool_probe, why,
	    sizeof(why)), -1);
	assert_string_equal(why, "Permission denied");
	util_probe_wait_ms = 300;
	t0 = util_now_ms();
	assert_int_equal(util_probe(tdir, NULL, &id, probe_hangs, why,
	    sizeof(why)), -1);
	util_probe_wait_ms = 10000;
	assert_true(util_now_ms() - t0 < 5000);
	assert_string_equal(why, "no answer within 1 s (a file system "
	    "that hangs?)");
}

/* Without a Received: header, a file-spooled message arrives exactly. */
static void
test_stdin_exact(void **state)
{
	char	*buf, *got;
	size_t	 i, len, n = SPOOL_MEM_MAX * 3 + 17;

	(void)state;
	buf = xmalloc(n);
	for (i = 0; i < n; i++)
		buf[i] = (char)(arc4random() & 0xff);
	assert_int_equal(spool_write(&tsp, buf, 1000), 0);
	assert_int_equal(spool_write(&tsp, buf + 1000, n - 1000), 0);
	assert_int_not_equal(tsp.sp_fd, -1);
	set_argv(script("p", "cat >\"$1\""), tpath("in"), NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_OK250);
	got = slurp(tpath("in"), &len);
	assert_int_equal(len, n);
	assert_memory_equal(got, buf, n);
	/* Twice from the same spool: nothing consumed it. */
	assert_int_equal(deliver(), 0);
	free(got);
	got = slurp(tpath("in"), &len);
	assert_int_equal(len, n);
	free(got);
	free(buf);
}

/* A program that does not read its input is judged by its status. */
static void
test_epipe(void **state)
{
	char	*buf;

	(void)state;
	buf = xmalloc(1024 * 1024);
	memset(buf, 'x', 1024 * 1024);
	assert_int_equal(spool_write(&tsp, buf, 1024 * 1024), 0);
	free(buf);
	set_argv(script("p", "exit 0"), NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_OK250);
	set_argv(script("p", "exec 0<&-; exit 67"), NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0],
	    "550 5.1.1 Delivery failed: no such user");
}

/* n random octets into the spool: a file when beyond SPOOL_MEM_MAX. */
static char *
random_message(size_t n)
{
	char	*buf;
	size_t	 i;

	buf = xmalloc(n);
	for (i = 0; i < n; i++)
		buf[i] = (char)(arc4random() & 0xff);
	assert_int_equal(spool_write(&tsp, buf, n), 0);
	return buf;
}

/*
 * The program's stdin is a regular file, whole from its start: its size
 * is the message's before the program read anything.  With the Received
 * header from memory, without it from a spool file.
 */
static void
test_stdin_file(void **state)
{
	const char	*msg = "Subject: t\r\n\r\nsmall\r\n";
	char		*buf, *got, want[64];
	size_t		 len, n = SPOOL_MEM_MAX + 4321;
	int		 fds, files;

	(void)state;
	message(msg);
	tc.c_dlv.dl_received = 1;
	set_argv(script("p", "stat -L -c '%F %s' /dev/stdin >\"$1.type\"; "
	    "cat >\"$1\""), tpath("in"), NULL);
	fds = count_fds();
	files = count_dir(tdir);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_OK250);
	got = slurp(tpath("in"), &len);
	check_received(got, len, "Received: from client.example "
	    "([192.0.2.7])\r\n\tby mx.example.org (smtpd) with ESMTP "
	    "id 4f1a2b.1\r\n\tfor <b@example.net>; ", msg);
	free(got);
	snprintf(want, sizeof(want), "regular file %zu\n", len);
	got = slurp(tpath("in.type"), NULL);
	assert_string_equal(got, want);
	free(got);
	assert_int_equal(count_fds(), fds);

	spool_reset(&tsp);
	tc.c_dlv.dl_received = 0;
	buf = random_message(n);
	assert_int_not_equal(tsp.sp_fd, -1);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_OK250);
	assert_file_equal("in", buf, n);
	snprintf(want, sizeof(want), "regular file %zu\n", n);
	got = slurp(tpath("in.type"), NULL);
	assert_string_equal(got, want);
	free(got);
	free(buf);
	assert_int_equal(count_fds(), fds + 1);		/* the spool */
	/* The input file was anonymous: only the program's output here. */
	assert_int_equal(count_dir(tdir), files + 2);
}

/* A program that reads only after a while still gets all of it. */
static void
test_stdin_late(void **state)
{
	char	*buf;
	size_t	 n = 1024 * 1024;

	(void)state;
	buf = random_message(n);
	set_argv(script("p", "sleep 0.5; cat >\"$1\""), tpath("in"), NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_OK250);
	assert_file_equal("in", buf, n);
	free(buf);
}

/*
 * The program never sees a partial message, even when the
 * session dies (SIGKILL) while the program runs: it has its own session
 * and outlives it, and then reads the whole message.
 */
static void
test_stdin_orphan(void **state)
{
	char	*buf;
	size_t	 n = SPOOL_MEM_MAX / 2;
	pid_t	 pid;
	int	 i, status;

	(void)state;
	buf = random_message(n);
	set_argv(script("p", ": >\"$1.started\"; sleep 0.5; "
	    "cat >\"$1.tmp\"; mv \"$1.tmp\" \"$1\""), tpath("in"), NULL);
	if ((pid = fork()) == 0) {
		deliver_brokered();
		_exit(0);
	}
	assert_true(pid != -1);
	for (i = 0; i < 500 && access(tpath("in.started"), F_OK) == -1; i++)
		usleep(10000);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	for (i = 0; i < 500 && access(tpath("in"), F_OK) == -1; i++)
		usleep(10000);
	assert_file_equal("in", buf, n);
	free(buf);
}

/*
 * No room for the input file: 452 and the program does not run.  A file
 * size limit stands in for a full disk (EFBIG, not ENOSPC: same path).
 */
static void
test_stdin_nospace(void **state)
{
	struct rlimit	 old, rl;
	char		*buf;
	int		 fds, rv;

	(void)state;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	set_argv(script("p", "touch \"$1\""), tpath("ran"), NULL);
	fds = count_fds();
	rl = old;
	rl.rlim_cur = 1000;
	message("Subject: t\r\n\r\n");
	buf = xcalloc(1, 2000);
	assert_int_equal(spool_write(&tsp, buf, 2000), 0);
	assert_int_equal(tsp.sp_fd, -1);
	/* Restored before an assertion can leave the test. */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	rv = deliver();
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(rv, -1);
	assert_int_equal(tnreplies, 1);
	assert_string_equal(treplies[0],
	    "452 4.3.1 Insufficient system storage");
	assert_int_equal(count_fds(), fds);
	free(buf);

	/* The same with a spool file, copied next to it. */
	spool_reset(&tsp);
	buf = random_message(SPOOL_MEM_MAX + 1);
	assert_int_not_equal(tsp.sp_fd, -1);
	rl.rlim_cur = SPOOL_MEM_MAX;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	rv = deliver();
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(rv, -1);
	assert_string_equal(treplies[0],
	    "452 4.3.1 Insufficient system storage");
	assert_int_equal(count_fds(), fds + 1);		/* the spool */
	free(buf);
	assert_int_equal(access(tpath("ran"), F_OK), -1);
	signal(SIGXFSZ, SIG_DFL);
}

/* Much output before reading the input must not deadlock. */
static void
test_big_output(void **state)
{
	char	*buf;

	(void)state;
	buf = xmalloc(1024 * 1024);
	memset(buf, 'x', 1024 * 1024);
	assert_int_equal(spool_write(&tsp, buf, 1024 * 1024), 0);
	free(buf);
	set_argv(script("p", "echo '250 big'; head -c 1048576 /dev/zero; "
	    "head -c 1048576 /dev/zero >&2; n=$(wc -c); "
	    "[ \"$n\" = 1048576 ]"), NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], "250 big");
}

static int
proc_alive(pid_t pid)
{
	char	 path[64], *stat;
	int	 alive;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (access(path, F_OK) == -1)
		return 0;
	stat = slurp(path, NULL);
	/* A zombie that nobody reaps in a container is dead enough. */
	alive = strstr(stat, ") Z ") == NULL;
	free(stat);
	return alive;
}

static void
test_timeout(void **state)
{
	double	 t0;

	(void)state;
	message("x\r\n");
	tc.c_dlv.dl_timeout = 1;
	set_argv(script("p", "echo '451 4.4.0 slow'; exec sleep 30"), NULL);
	t0 = now();
	assert_int_equal(deliver(), 0);
	assert_true(now() - t0 < 2.5);
	assert_true(now() - t0 > 0.9);
	assert_string_equal(treplies[0], "451 4.4.0 slow");
	set_argv(script("p", "exec sleep 30"), NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_TEMP);
}

/* A grandchild holding the pipes: the whole group goes at the timeout. */
static void
test_timeout_group(void **state)
{
	char	*pid;
	double	 t0;

	(void)state;
	message("x\r\n");
	tc.c_dlv.dl_timeout = 1;
	set_argv(script("p", "sleep 30 & echo $! >\"$1\"; wait"),
	    tpath("pid"), NULL);
	t0 = now();
	assert_int_equal(deliver(), 0);
	assert_true(now() - t0 < 2.5);
	assert_string_equal(treplies[0], R_TEMP);
	pid = slurp(tpath("pid"), NULL);
	usleep(100000);
	assert_false(proc_alive((pid_t)atoi(pid)));
	free(pid);
}

/* The program's exit decides, even if a background child keeps stdout. */
static void
test_background(void **state)
{
	char	*pid;
	double	 t0;

	(void)state;
	message("x\r\n");
	tc.c_dlv.dl_timeout = 5;
	set_argv(script("p", "sleep 30 & echo $! >\"$1\"; exit 0"),
	    tpath("pid"), NULL);
	t0 = now();
	assert_int_equal(deliver(), 0);
	assert_true(now() - t0 < 1.0);
	assert_string_equal(treplies[0], R_OK250);
	pid = slurp(tpath("pid"), NULL);
	kill((pid_t)atoi(pid), SIGKILL);
	free(pid);
}

static void
test_signal(void **state)
{
	(void)state;
	message("x\r\n");
	set_argv(script("p", "echo '250 lies'; kill -SEGV $$"), NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_TEMP);
	/* Ignored signals in smtpd are default again in the program. */
	set_argv(script("p", "kill -PIPE $$; exit 0"), NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_TEMP);
}

static void
test_exec_failure(void **state)
{
	int	 fds;

	(void)state;
	message("x\r\n");
	fds = count_fds();
	set_argv(tpath("missing"), NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_TEMP);
	set_argv(script("p", "exit 0"), NULL);
	/* EACCES, even for root. */
	assert_int_equal(chmod(targv[0], 0644), 0);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_TEMP);
	set_argv(tdir, NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_TEMP);
	assert_int_equal(count_fds(), fds);
}

/*
 * E2BIG comes from the message (its envelope in argv), not from us: a
 * permanent failure, or the client would retry it for ever.
 */
static void
test_e2big(void **state)
{
	char		*sender, *word, *mark, *prog;
	const size_t	 slen = 1000, reps = 140;	/* 140000 > 128 KiB */
	size_t		 i;

	(void)state;
	message("x\r\n");
	sender = xmalloc(slen + 1);
	memset(sender, 's', slen);
	sender[slen] = '\0';
	te.e_sender = sender;
	word = xmalloc(reps * 9 + 1);
	for (i = 0; i < reps; i++)
		memcpy(word + i * 9, "%{sender}", 9);
	word[reps * 9] = '\0';
	mark = xstrdup(tpath("p.ran"));
	prog = xstrdup(script("p", "touch \"$0.ran\"; exit 0"));
	set_argv(prog, word, NULL);
	assert_int_equal(deliver(), 0);
	assert_int_equal(tnreplies, 1);
	assert_string_equal(treplies[0],
	    "554 5.3.4 Delivery failed: message too big for the program");
	assert_int_equal(access(mark, F_OK), -1);
	/* The same program with a short enough argument runs. */
	word[9] = '\0';
	set_argv(prog, word, NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_OK250);
	assert_int_equal(access(mark, F_OK), 0);
	free(prog);
	free(mark);
	free(word);
	free(sender);
}

static const char per_rcpt_prog[] =
    "echo \"$SMTPD_RECIPIENTS|$#|$1|$SMTPD_ID\" >>\"$0.log\"\n"
    "case $1 in\n"
    "t1*) echo '451 4.0.0 t1'; exit 75;;\n"
    "t2*) echo '452 4.0.0 t2'; exit 75;;\n"
    "p1*) echo '550 5.0.0 p1'; exit 67;;\n"
    "p2*) echo '554 5.0.0 p2'; exit 65;;\n"
    "esac\n"
    "exit 0";

/* One run per recipient: one reply from several runs. */
static void
test_per_rcpt(void **state)
{
	char	*log;

	(void)state;
	message("x\r\n");
	tc.c_dlv.dl_per_rcpt = 1;
	set_argv(script("p", per_rcpt_prog), "%{recipient}", NULL);
	set_rcpts("ok@x", "ok2@x", NULL);
	assert_int_equal(deliver(), 0);
	assert_int_equal(tnreplies, 1);
	assert_string_equal(treplies[0], R_OK250);
	log = slurp(tpath("p.log"), NULL);
	assert_string_equal(log, "ok@x|1|ok@x|" ID "\nok2@x|1|ok2@x|" ID "\n");
	free(log);
	set_rcpts("ok@x", "p1@x", "t1@x", "t2@x", NULL);
	assert_int_equal(deliver(), 0);
	assert_int_equal(tnreplies, 1);
	assert_string_equal(treplies[0], "451 4.0.0 t1");
	set_rcpts("ok@x", "p2@x", "p1@x", NULL);
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], "554 5.0.0 p2");
	/* Without per-recipient runs: one run with all of them. */
	tc.c_dlv.dl_per_rcpt = 0;
	set_argv(tpath("p"), "%{recipients}", NULL);
	set_rcpts("ok@x", "p2@x", NULL);
	unlink(tpath("p.log"));
	assert_int_equal(deliver(), 0);
	assert_string_equal(treplies[0], R_OK250);
	log = slurp(tpath("p.log"), NULL);
	assert_string_equal(log, "ok@x\np2@x|2|ok@x|" ID "\n");
	free(log);
}

/* RFC 2033 4.2: one reply per recipient, in RCPT order. */
static void
test_lmtp(void **state)
{
	char	*log;

	(void)state;
	message("x\r\n");
	tcl.ci_lmtp = 1;
	set_argv(script("p", per_rcpt_prog), "%{recipients}", NULL);
	set_rcpts("ok@x", "p1@x", "t2@x", "ok@x", NULL);
	assert_int_equal(deliver(), 0);
	assert_int_equal(tnreplies, 4);
	assert_string_equal(treplies[0], R_OK250);
	assert_string_equal(treplies[1], "550 5.0.0 p1");
	assert_string_equal(treplies[2], "452 4.0.0 t2");
	assert_string_equal(treplies[3], R_OK250);
	log = slurp(tpath("p.log"), NULL);
	assert_string_equal(log, "ok@x|1|ok@x|" ID "\np1@x|1|p1@x|" ID "\n"
	    "t2@x|1|t2@x|" ID "\nok@x|1|ok@x|" ID "\n");
	free(log);
	tc.c_dlv.dl_mode = DELIVER_DISCARD;
	assert_int_equal(deliver(), 0);
	assert_int_equal(tnreplies, 4);
	assert_string_equal(treplies[3], R_OK250);
}

/* Run deliver() with fd (1 or 2) going to a file; returns what came. */
static char *
capture(int fd)
{
	int	 save, tmp;
	char	*got;

	fflush(stdout);
	assert_true((save = dup(fd)) != -1);
	tmp = open(tpath("capture"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(tmp != -1);
	assert_int_equal(dup2(tmp, fd), fd);
	close(tmp);
	assert_int_equal(deliver(), 0);
	fflush(stdout);
	assert_int_equal(dup2(save, fd), fd);
	close(save);
	got = slurp(tpath("capture"), NULL);
	return got;
}

static void
test_sinks(void **state)
{
	char	*got;

	(void)state;
	message("Subject: hi\r\n\r\nbody\r\nline2");
	set_rcpts("b@example.net", "c@example.net", NULL);
	tc.c_dlv.dl_mode = DELIVER_DISCARD;
	assert_int_equal(deliver(), 0);
	assert_int_equal(tnreplies, 1);
	assert_string_equal(treplies[0], R_OK250);
	tc.c_dlv.dl_mode = DELIVER_STDOUT;
	got = capture(STDOUT_FILENO);
	assert_string_equal(got, "---------- MESSAGE FOLLOWS ----------\n"
	    "X-Peer: 192.0.2.7\nX-MailFrom: a@example.org\n"
	    "X-RcptTo: b@example.net, c@example.net\n"
	    "Subject: hi\n\nbody\nline2\n"
	    "------------ END MESSAGE ------------\n");
	assert_int_equal(tnreplies, 1);
	assert_string_equal(treplies[0], R_OK250);
	free(got);
}

/* One log line per run; program output is logged escaped, not replied. */
static void
test_log(void **state)
{
	char	*got;

	(void)state;
	message("12345");
	te.e_sender = (char *)(uintptr_t)"a\xc3\xa9@example.org";
	set_argv(script("p", "printf '250 ok\\nmore\\001\\n'; echo oops >&2; "
	    "exit 0"), NULL);
	got = capture(STDERR_FILENO);
	assert_string_equal(treplies[0], "250 ok");
	assert_non_null(strstr(got, "4f1a2b deliver id=" ID
	    " from=<a\\xc3\\xa9@example.org> rcpts=1 size=5 status=250 exit=0 "
	    "time=0."));
	assert_non_null(strstr(got, "4f1a2b deliver id=" ID
	    " stdout: more\\x01\n"));
	assert_non_null(strstr(got, "4f1a2b deliver id=" ID
	    " stderr: oops\n"));
	free(got);
	set_argv(script("p", "kill -KILL $$"), NULL);
	got = capture(STDERR_FILENO);
	assert_non_null(strstr(got, "status=451 exit=signal9 "));
	free(got);
}

/*
 * The message is a file the child made, open for reading: not one opened
 * with O_PATH, which needs no permission on the file, of a file the child
 * cannot read (a program that opens /dev/stdin would read it with its own
 * rights), nor another user's file; the program does not run.
 */
static void
test_message_fd_refused(void **state)
{
	struct broker_result	*br;
	struct stat		 st;
	pid_t			 pid;
	int			 fd;

	(void)state;
	set_argv(script("prog", "cat /dev/stdin > \"$0.out\""), NULL);
	br = xmalloc(sizeof(*br));
	assert_true((pid = broker_local(&tc)) != -1);
	assert_true((fd = open(tpath("prog"), O_PATH | O_CLOEXEC)) != -1);
	assert_int_equal(broker_deliver(&tcl, &te, trcpts, 1, fd, 5, br), 0);
	assert_int_equal(br->br_error, EINVAL);
	assert_int_equal(br->br_exited, 0);
	close(fd);
	/* Another user's file (as root: made so). */
	if (geteuid() == 0) {
		assert_true((fd = open(tpath("other"), O_RDWR | O_CREAT |
		    O_CLOEXEC, 0600)) != -1);
		assert_int_equal(fchown(fd, 65534, 65534), 0);
		assert_int_equal(broker_deliver(&tcl, &te, trcpts, 1, fd, 5,
		    br), 0);
		assert_int_equal(br->br_error, EINVAL);
		assert_int_equal(br->br_exited, 0);
		close(fd);
	}
	assert_int_equal(broker_local_end(pid), 0);
	assert_int_equal(stat(tpath("prog.out"), &st), -1);
	free(br);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_message_fd_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_spool_memory, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_spool_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_spool_error, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_exit_status, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_override, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_argv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin_received, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_received_fold, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_received_helo, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_received_leading_space, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_received_8bit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_spool_probe, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stdin_exact, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_epipe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stdin_late, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stdin_orphan, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stdin_nospace, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_big_output, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_group, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_background, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_failure, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_e2big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_per_rcpt, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lmtp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log, setup, teardown),
	};

	/* smtpd's children ignore SIGPIPE; the program must not inherit it. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("deliver", tests, NULL, NULL);
}
