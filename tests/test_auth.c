/*
 * test_auth.c: unit tests of auth.c: the strict base64 decoder
 * (RFC 4648, RFC 4954 4), the PLAIN split, the passwd file loader with every
 * error and its file:line message, crypt(3) checks, and checkpassword
 * programs (input on fd 3, environment, exit statuses, time limit).
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <crypt.h>
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

#include "../smtpd.h"
#include "../internal.h"
#include "testlib.h"

/* In auth.c, for tests only. */
void		 auth_test_timeout(int);

static char	 tmpdir[64];
static struct config conf;

/* ---- helpers ---- */

static double
now_sec(void)
{
	return util_now_ms() / 1000.0;
}

/* The whole content of a file (NUL-terminated, *lenp octets). */
static char *
read_file(const char *path, size_t *lenp)
{
	char	*buf;
	FILE	*f;
	size_t	 len = 0, cap = 4096, n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	buf = xmalloc(cap);
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len == 1)
			buf = xreallocarray(buf, cap *= 2, 1);
	}
	fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

/* A file of the temp dir holding text, with mode; returns its path. */
static char *
write_file(const char *name, const char *text, mode_t mode)
{
	char	*path;
	FILE	*f;

	xasprintf(&path, "%s/%s", tmpdir, name);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

/* A crypt(3) hash of pass made with a fresh salt of the method prefix. */
static char *
make_hash(const char *prefix, const char *pass)
{
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data	*cd;
	char			*h;

	assert_non_null(crypt_gensalt_rn(prefix, 0, NULL, 0, salt,
	    sizeof(salt)));
	cd = xcalloc(1, sizeof(*cd));
	assert_non_null(crypt_rn(pass, salt, cd, sizeof(*cd)));
	h = xstrdup(cd->output);
	free(cd);
	return h;
}

/* conf as a passwd backend on file text; *logp what it logged. */
static int
load_passwd(const char *text, mode_t mode, char **logp)
{
	int	 rv;

	auth_config_free(&conf);
	free(conf.c_auth.au_path);
	conf.c_auth.au_backend = AUTH_PASSWD;
	conf.c_auth.au_path = write_file("passwd", text, mode);
	capture_start();
	rv = auth_config_load(&conf);
	*logp = capture_end();
	return rv;
}

/* The text must fail to load, with "passwd:line: msg" in the log. */
static void
expect_bad(const char *text, int line, const char *msg)
{
	char	*log, want[1024];

	assert_int_equal(load_passwd(text, 0600, &log), -1);
	assert_null(conf.c_auth.au_db);
	snprintf(want, sizeof(want), "%s:%d: %s", conf.c_auth.au_path, line,
	    msg);
	assert_has(log, want);
	free(log);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_auth.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	memset(&conf, 0, sizeof(conf));
	return 0;
}

static int
teardown(void **state)
{
	char	 cmd[128];

	(void)state;
	auth_config_free(&conf);
	free(conf.c_auth.au_path);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- base64 (RFC 4648, RFC 4954 4) ---- */

static void
b64_ok(const char *in, const void *want, size_t wantlen)
{
	unsigned char	 out[64];
	size_t		 len = 99;

	if (auth_b64_decode(in, out, sizeof(out), &len) != 0) {
		print_error("\"%s\" refused\n", in);
		fail();
	}
	assert_int_equal(len, wantlen);
	assert_memory_equal(out, want, wantlen);
}

static void
b64_bad(const char *in)
{
	unsigned char	 out[64];
	size_t		 len;

	if (auth_b64_decode(in, out, sizeof(out), &len) != -1) {
		print_error("\"%s\" accepted\n", in);
		fail();
	}
}

static void
test_b64_valid(void **state)
{
	(void)state;
	b64_ok("", "", 0);
	b64_ok("=", "", 0);		/* RFC 4954 4: the empty response */
	b64_ok("QUJD", "ABC", 3);
	b64_ok("QUI=", "AB", 2);
	b64_ok("QQ==", "A", 1);
	b64_ok("AB==", "\0", 1);	/* unused bits are not checked */
	b64_ok("AAAA", "\0\0\0", 3);
	b64_ok("+/+/", "\xfb\xff\xbf", 3);
	b64_ok("AGFsaWNlAHNlY3JldA==", "\0alice\0secret", 13);
	b64_ok("VXNlciBOYW1lAA==", "User Name", 10);
	b64_ok("UGFzc3dvcmQA", "Password", 9);
	b64_ok("YWxpY2U=", "alice", 5);
}

static void
test_b64_malformed(void **state)
{
	static const char *const bad[] = {
		/* padding does not complete the group */
		"AB", "AB=", "ABC", "A", "A=", "QUJDQ", "QUJDQU", "QUJDQUI",
		/* `=` first */
		"==", "=A", "====", "=AAA", "=QUJD",
		/* something but `=` after a `=` */
		"AB=C", "A=AA", "QQ==QUJD", "QQ=A", "A===",
		/* surplus `=` after a complete group */
		"AAAA=", "AAAA==", "AAAA====", "QUJD=",
		/* characters outside the alphabet */
		"*", "AA*A", "AA A", " AAA", "AAA ", "AA-_", "AA.A",
		"AAA\n", "AA\rA", "QUJ\xc3", "AB%3"
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		b64_bad(bad[i]);
}

/* The output and its NUL must fit: *outlen < outsz. */
static void
test_b64_bounds(void **state)
{
	unsigned char	 out[8];
	size_t		 len;

	(void)state;
	memset(out, 'x', sizeof(out));
	assert_int_equal(auth_b64_decode("QUJD", out, 3, &len), -2);
	assert_int_equal(out[0], 'x');		/* nothing written */
	/* Too long and not base64: not base64. */
	assert_int_equal(auth_b64_decode("QU!D", out, 3, &len), -1);
	assert_int_equal(auth_b64_decode("QUJD", out, 4, &len), 0);
	assert_int_equal(len, 3);
	assert_int_equal(auth_b64_decode("QQ==", out, 1, &len), -2);
	assert_int_equal(auth_b64_decode("QQ==", out, 2, &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(auth_b64_decode("QUI=", out, 2, &len), -2);
	assert_int_equal(auth_b64_decode("QUI=", out, 3, &len), 0);
	assert_int_equal(auth_b64_decode("", out, 0, &len), -2);
	assert_int_equal(auth_b64_decode("", out, 1, &len), 0);
	assert_int_equal(auth_b64_decode("=", out, 0, &len), -2);
	assert_int_equal(auth_b64_decode("=", out, 1, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(auth_b64_decode("QUJDREVG", out, 6, &len), -2);
	assert_int_equal(auth_b64_decode("QUJDREVG", out, 7, &len), 0);
	assert_memory_equal(out, "ABCDEF", 6);
}

/* ---- PLAIN (RFC 4616) ---- */

static int
plain(const char *val, size_t len, const char **u, const char **p)
{
	static unsigned char	 buf[64];

	memcpy(buf, val, len);
	memset(buf + len, 'x', sizeof(buf) - len);
	return auth_plain_split(buf, len, u, p);
}

static void
test_plain_split(void **state)
{
	const char	*u, *p;

	(void)state;
	assert_int_equal(plain("\0alice\0secret", 13, &u, &p), 0);
	assert_string_equal(u, "alice");
	assert_string_equal(p, "secret");
	assert_int_equal(plain("admin\0alice\0s e", 15, &u, &p), 0);
	assert_string_equal(u, "alice");
	assert_string_equal(p, "s e");
	assert_int_equal(plain("\0\0", 2, &u, &p), 0);	/* empty parts */
	assert_string_equal(u, "");
	assert_string_equal(p, "");
	assert_int_equal(plain("", 0, &u, &p), -1);
	assert_null(u);
	assert_int_equal(plain("alice", 5, &u, &p), -1);
	assert_int_equal(plain("alice\0secret", 12, &u, &p), -1);
	assert_int_equal(plain("\0alice\0secret\0", 14, &u, &p), -1);
	assert_int_equal(plain("a\0b\0c\0d", 7, &u, &p), -1);
	assert_int_equal(plain("\0", 1, &u, &p), -1);
}

/* ---- passwd file ---- */

static void
test_passwd_good(void **state)
{
	char	*h6, *hy, *hb, *text, *log, longu[AUTH_FIELD_MAX + 1];

	(void)state;
	h6 = make_hash("$6$", "secret");
	hy = make_hash("$y$", "p4ss word");
	hb = make_hash("$2b$", "bpass");
	xasprintf(&text, "# users\n\n   \n\t# indented comment\n"
	    "alice:%s\nbob:%s\ncarol:%s:19000:0:99999:7:::\n"
	    "dave:!%s\nerin:*\nfrank:%s", h6, hy, h6, h6, hb);
	assert_int_equal(load_passwd(text, 0600, &log), 0);
	assert_string_equal(log, "");
	assert_non_null(conf.c_auth.au_db);
	assert_int_equal(auth_check(&conf, "alice", "secret"), AUTH_OK);
	assert_int_equal(auth_check(&conf, "alice", "Secret"), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "alice", ""), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "Alice", "secret"), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "bob", "p4ss word"), AUTH_OK);
	assert_int_equal(auth_check(&conf, "bob", "secret"), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "carol", "secret"), AUTH_OK);
	assert_int_equal(auth_check(&conf, "dave", "secret"), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "erin", ""), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "erin", "*"), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "frank", "bpass"), AUTH_OK);
	assert_int_equal(auth_check(&conf, "zed", "secret"), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "", ""), AUTH_FAILED);
	memset(longu, 'a', sizeof(longu) - 1);
	longu[AUTH_FIELD_MAX] = '\0';
	assert_int_equal(auth_check(&conf, longu, "secret"), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "alice", longu), AUTH_FAILED);
	/* Group-readable is fine: only others are refused. */
	free(log);
	assert_int_equal(load_passwd(text, 0640, &log), 0);
	auth_config_free(&conf);
	assert_null(conf.c_auth.au_db);
	free(log);
	free(text);
	free(h6);
	free(hy);
	free(hb);
}

/* An empty file loads: nobody can log in. */
static void
test_passwd_empty(void **state)
{
	char	*log;

	(void)state;
	assert_int_equal(load_passwd("# nobody yet\n", 0600, &log), 0);
	assert_int_equal(auth_check(&conf, "alice", "x"), AUTH_FAILED);
	free(log);
	assert_int_equal(load_passwd("", 0600, &log), 0);
	assert_int_equal(auth_check(&conf, "alice", ""), AUTH_FAILED);
	free(log);
}

static void
test_passwd_malformed(void **state)
{
	char	 line[MAX_CONF_LINE + 64], *h, *log;

	(void)state;
	h = make_hash("$6$", "x");
	expect_bad("alice\n", 1, "no ':' after the user name");
	expect_bad("# c\nalice:$6$aa$bb\n:$6$aa$bb\n", 3, "empty user name");
	expect_bad("alice:\n", 1, "empty password hash");
	expect_bad("alice::1:2\n", 1, "empty password hash");
	expect_bad("alice:$6$aa$bb\r\n", 1, "control character \\x0d");
	expect_bad("al\tice:$6$aa$bb\n", 1, "control character \\x09");
	expect_bad("alice:$6$a\x7f$bb\n", 1, "control character \\x7f");
	expect_bad("alice:nonsense hash\n", 1, "not a crypt(3) password hash");
	expect_bad("alice:??\n", 1, "not a crypt(3) password hash");
	/* A user name of AUTH_FIELD_MAX characters is one too many. */
	memset(line, 'u', AUTH_FIELD_MAX);
	snprintf(line + AUTH_FIELD_MAX, sizeof(line) - AUTH_FIELD_MAX,
	    ":%s\n", h);
	expect_bad(line, 1, "user name longer than 511 characters");
	memmove(line, line + 1, strlen(line));
	assert_int_equal(load_passwd(line, 0600, &log), 0);
	free(log);
	line[AUTH_FIELD_MAX - 1] = '\0';
	assert_int_equal(auth_check(&conf, line, "x"), AUTH_OK);
	memset(line, 'h', sizeof(line));
	memcpy(line, "alice:", 6);
	line[MAX_CONF_LINE + 1] = '\n';
	line[MAX_CONF_LINE + 2] = '\0';
	expect_bad(line, 1, "line too long");
	free(h);
}

/* A NUL in a line is a control character, not its end. */
static void
test_passwd_nul(void **state)
{
	char	*path, *log, want[256];
	FILE	*f;

	(void)state;
	auth_config_free(&conf);
	free(conf.c_auth.au_path);
	path = write_file("passwd", "", 0600);
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite("# x\n\0alice:$6$aa$bb\n", 1, 20, f);
	fclose(f);
	conf.c_auth.au_backend = AUTH_PASSWD;
	conf.c_auth.au_path = path;
	capture_start();
	assert_int_equal(auth_config_load(&conf), -1);
	log = capture_end();
	snprintf(want, sizeof(want), "%s:2: control character \\x00", path);
	assert_has(log, want);
	free(log);
}

/* Every error of the file is reported, each with its own line. */
static void
test_passwd_all_errors(void **state)
{
	char	*h, *text, *log, want[256];
	int	 i;
	/* "LINE: message" after the file's name. */
	static const char *const errs[] = {
		"2: no ':' after the user name",
		"4: empty user name",
		"5: empty password hash",
		"6: duplicate user \"alice\" (first on line 1)",
		"7: not a crypt(3) password hash",
		"8: duplicate user \"alice\" (first on line 1)",
		"9: duplicate user \"bob\" (first on line 3)",
	};

	(void)state;
	h = make_hash("$6$", "x");
	xasprintf(&text, "alice:%s\nnocolon\nbob:%s\n:%s\ncarol:\n"
	    "alice:%s\ndave:??\nalice:%s\nbob:*\n", h, h, h, h, h);
	assert_int_equal(load_passwd(text, 0600, &log), -1);
	assert_null(conf.c_auth.au_db);
	for (i = 0; i < (int)(sizeof(errs) / sizeof(errs[0])); i++) {
		snprintf(want, sizeof(want), "%s:%s", conf.c_auth.au_path,
		    errs[i]);
		assert_has(log, want);
	}
	/* Hashes are secrets: never in the log. */
	assert_null(strstr(log, h));
	free(log);
	free(text);
	free(h);
}

static void
test_passwd_mode(void **state)
{
	char	*h, *text, *log, want[256];

	(void)state;
	h = make_hash("$6$", "x");
	xasprintf(&text, "alice:%s\n", h);
	assert_int_equal(load_passwd(text, 0644, &log), -1);
	snprintf(want, sizeof(want), "passwd file %s is readable by others "
	    "(mode 0644)", conf.c_auth.au_path);
	assert_has(log, want);
	assert_null(conf.c_auth.au_db);
	free(log);
	assert_int_equal(load_passwd(text, 0602, &log), -1);
	assert_has(log, "is writable by others (mode 0602)");
	free(log);
	assert_int_equal(load_passwd(text, 0601, &log), -1);
	assert_has(log, "(mode 0601)");
	free(log);
	/* With the config file known, its file:line comes first. */
	conf.c_file = xstrdup("/etc/smtpd.conf");
	conf.c_auth.au_line = 7;
	assert_int_equal(load_passwd(text, 0604, &log), -1);
	snprintf(want, sizeof(want), "/etc/smtpd.conf:7: passwd file %s is "
	    "readable by others (mode 0604)", conf.c_auth.au_path);
	assert_has(log, want);
	free(log);
	free(conf.c_file);
	conf.c_file = NULL;
	conf.c_auth.au_line = 0;
	free(text);
	free(h);
}

static void
test_passwd_missing(void **state)
{
	char	*log;

	(void)state;
	auth_config_free(&conf);
	free(conf.c_auth.au_path);
	conf.c_auth.au_backend = AUTH_PASSWD;
	xasprintf(&conf.c_auth.au_path, "%s/nonexistent", tmpdir);
	capture_start();
	assert_int_equal(auth_config_load(&conf), -1);
	log = capture_end();
	assert_has(log, "nonexistent: No such file or directory");
	free(log);
	free(conf.c_auth.au_path);
	conf.c_auth.au_path = xstrdup(tmpdir);
	capture_start();
	assert_int_equal(auth_config_load(&conf), -1);
	log = capture_end();
	assert_has(log, "is not a regular file");
	free(log);
}

/* An unknown user costs a hash too (loosely: at least a third). */
static void
test_passwd_timing(void **state)
{
	char	*text, *log;
	double	 t0, known, unknown;
	int	 i;

	(void)state;
	xasprintf(&text, "alice:%s\n", "$6$rounds=100000$saltsalt$"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxx");
	assert_int_equal(load_passwd(text, 0600, &log), 0);
	free(log);
	free(text);
	t0 = now_sec();
	for (i = 0; i < 2; i++)
		assert_int_equal(auth_check(&conf, "alice", "x"), AUTH_FAILED);
	known = now_sec() - t0;
	t0 = now_sec();
	for (i = 0; i < 2; i++)
		assert_int_equal(auth_check(&conf, "bob", "x"), AUTH_FAILED);
	unknown = now_sec() - t0;
	if (unknown < known / 3) {
		print_error("known %.3f s, unknown %.3f s\n", known, unknown);
		fail();
	}
}

/* ---- checkpassword ---- */

/* conf as a checkpassword backend running script body (in /bin/sh). */
static void
use_script(const char *body)
{
	char	*text;

	auth_config_free(&conf);
	free(conf.c_auth.au_path);
	if (conf.c_auth.au_argv != NULL) {
		free(conf.c_auth.au_argv[0]);
		free(conf.c_auth.au_argv);
	}
	xasprintf(&text, "#!/bin/sh\nD='%s'\n%s\n", tmpdir, body);
	conf.c_auth.au_backend = AUTH_CHECKPASSWORD;
	conf.c_auth.au_path = write_file("check", text, 0700);
	conf.c_auth.au_argv = xcalloc(2, sizeof(char *));
	conf.c_auth.au_argv[0] = xstrdup(conf.c_auth.au_path);
	assert_int_equal(auth_config_load(&conf), 0);
	free(text);
}

static void
free_script(void)
{
	if (conf.c_auth.au_argv != NULL) {
		free(conf.c_auth.au_argv[0]);
		free(conf.c_auth.au_argv);
		conf.c_auth.au_argv = NULL;
	}
}

static void
test_cp_config(void **state)
{
	char	*argv[] = { NULL, NULL };

	(void)state;
	auth_config_free(&conf);
	conf.c_auth.au_backend = AUTH_NONE;
	assert_int_equal(auth_config_load(&conf), 0);
	assert_int_equal(auth_check(&conf, "a", "b"), AUTH_FAILED);
	conf.c_auth.au_backend = AUTH_CHECKPASSWORD;
	conf.c_auth.au_argv = argv;
	argv[0] = xstrdup("/bin/true");
	assert_int_equal(auth_config_load(&conf), 0);
	assert_int_equal(auth_check(&conf, "a", "b"), AUTH_OK);
	free(argv[0]);
	argv[0] = xstrdup("/bin/false");
	assert_int_equal(auth_check(&conf, "a", "b"), AUTH_FAILED);
	free(argv[0]);
	conf.c_auth.au_argv = NULL;
}

static void
test_cp_verdicts(void **state)
{
	char	*log;

	(void)state;
	use_script("set -- $(tr '\\000' ' ' <&3)\n"
	    "[ \"$1\" = alice ] && [ \"$2\" = secret ] && exit 0\n"
	    "exit 1");
	assert_int_equal(auth_check(&conf, "alice", "secret"), AUTH_OK);
	assert_int_equal(auth_check(&conf, "alice", "wrong"), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "bob", "secret"), AUTH_FAILED);
	use_script("exit 111");
	capture_start();
	assert_int_equal(auth_check(&conf, "alice", "secret"), AUTH_TEMPFAIL);
	log = capture_end();
	assert_has(log, "exited 111");
	assert_null(strstr(log, "secret"));
	free(log);
	use_script("exit 2");
	capture_start();
	assert_int_equal(auth_check(&conf, "alice", "secret"), AUTH_TEMPFAIL);
	free(capture_end());
	use_script("kill -KILL $$");
	capture_start();
	assert_int_equal(auth_check(&conf, "alice", "secret"), AUTH_TEMPFAIL);
	log = capture_end();
	assert_has(log, "killed by signal 9");
	free(log);
	/* A program that ignores its input: no SIGPIPE for us. */
	use_script("exec 3<&-\nexit 0");
	assert_int_equal(auth_check(&conf, "alice", "secret"), AUTH_OK);
	free_script();
}

static void
test_cp_exec_failure(void **state)
{
	char	*log, *argv[] = { NULL, NULL };

	(void)state;
	auth_config_free(&conf);
	conf.c_auth.au_backend = AUTH_CHECKPASSWORD;
	conf.c_auth.au_argv = argv;
	xasprintf(&argv[0], "%s/nonexistent", tmpdir);
	capture_start();
	assert_int_equal(auth_check(&conf, "alice", "secret"), AUTH_TEMPFAIL);
	log = capture_end();
	assert_has(log, "No such file or directory");
	assert_null(strstr(log, "secret"));
	free(log);
	free(argv[0]);
	/* Not executable. */
	argv[0] = write_file("noexec", "#!/bin/sh\nexit 0\n", 0600);
	capture_start();
	assert_int_equal(auth_check(&conf, "alice", "secret"), AUTH_TEMPFAIL);
	log = capture_end();
	assert_has(log, "Permission denied");
	free(log);
	free(argv[0]);
	conf.c_auth.au_argv = NULL;
}

/* fd 3 carries exactly user NUL password NUL timestamp NUL. */
static void
test_cp_input(void **state)
{
	char	*out, *path, *end, user[AUTH_FIELD_MAX], pass[AUTH_FIELD_MAX];
	char	 big[AUTH_FIELD_MAX + 1];
	size_t	 len, ulen;
	long long t;

	(void)state;
	use_script("cat <&3 >\"$D/fd3\"");
	xasprintf(&path, "%s/fd3", tmpdir);
	assert_int_equal(auth_check(&conf, "alice", "pa ss:w0rd"), AUTH_OK);
	out = read_file(path, &len);
	assert_non_null(out);
	assert_true(len > 18);
	assert_memory_equal(out, "alice\0pa ss:w0rd\0", 17);
	assert_int_equal(out[len - 1], '\0');
	t = strtoll(out + 17, &end, 10);
	assert_ptr_equal(end, out + len - 1);
	assert_true(llabs(t - (long long)time(NULL)) < 60);
	free(out);
	/* The longest fields, and empty ones. */
	memset(user, 'u', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	memset(pass, 'p', sizeof(pass) - 1);
	pass[sizeof(pass) - 1] = '\0';
	ulen = strlen(user);
	assert_int_equal(auth_check(&conf, user, pass), AUTH_OK);
	out = read_file(path, &len);
	assert_non_null(out);
	assert_memory_equal(out, user, ulen + 1);
	assert_memory_equal(out + ulen + 1, pass, ulen + 1);
	free(out);
	assert_int_equal(auth_check(&conf, "", ""), AUTH_OK);
	out = read_file(path, &len);
	assert_memory_equal(out, "\0\0", 2);
	free(out);
	/* One octet more: refused without running the program. */
	unlink(path);
	memset(big, 'u', AUTH_FIELD_MAX);
	big[AUTH_FIELD_MAX] = '\0';
	assert_int_equal(auth_check(&conf, big, "x"), AUTH_FAILED);
	assert_int_equal(auth_check(&conf, "alice", big), AUTH_FAILED);
	assert_int_equal(access(path, F_OK), -1);
	free(path);
	free_script();
}

/* PATH alone in the environment; 0-2 on /dev/null; nothing above 3. */
static void
test_cp_environment(void **state)
{
	char	*out, *path;
	int	 fd;

	(void)state;
	setenv("SMTPD_TEST_SECRET", "leak", 1);
	fd = dup2(STDOUT_FILENO, 57);
	assert_int_equal(fd, 57);
	use_script("env >\"$D/env\"\n"
	    "a=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2)\n"
	    "[ -e /proc/$$/fd/57 ] && a=\"$a leaked\"\n"
	    "echo \"$a\" >\"$D/fds\"\n"
	    "exit 0");
	assert_int_equal(auth_check(&conf, "alice", "secret"), AUTH_OK);
	close(fd);
	unsetenv("SMTPD_TEST_SECRET");
	xasprintf(&path, "%s/env", tmpdir);
	out = read_file(path, NULL);
	assert_non_null(out);
	assert_has(out, "PATH=/");
	assert_null(strstr(out, "SMTPD_TEST_SECRET"));
	free(out);
	free(path);
	xasprintf(&path, "%s/fds", tmpdir);
	out = read_file(path, NULL);
	assert_non_null(out);
	assert_string_equal(out, "/dev/null\n/dev/null\n/dev/null\n");
	free(out);
	free(path);
	free_script();
}

/* 1 when the process is gone (or a zombie), within two seconds. */
static int
gone(pid_t pid)
{
	char	 path[64], *stat, *p;
	int	 i, dead = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (i = 0; i < 100 && !dead; i++) {
		if ((stat = read_file(path, NULL)) == NULL)
			return 1;
		p = strrchr(stat, ')');
		dead = p != NULL && p[1] == ' ' && p[2] == 'Z';
		free(stat);
		if (!dead)
			usleep(20000);
	}
	return dead;
}

/* Past the time limit: 454, and the whole process group is killed. */
static void
test_cp_timeout(void **state)
{
	char	*out, *path, *log;
	double	 t0, t;

	(void)state;
	auth_test_timeout(500);
	use_script("sleep 30 &\necho $! >\"$D/bg\"\nsleep 30\nexit 0");
	t0 = now_sec();
	capture_start();
	assert_int_equal(auth_check(&conf, "alice", "secret"), AUTH_TEMPFAIL);
	log = capture_end();
	t = now_sec() - t0;
	auth_test_timeout(AUTH_TIMEOUT * 1000);
	assert_true(t >= 0.45 && t < 3.0);
	assert_has(log, "checkpassword timed out");
	free(log);
	xasprintf(&path, "%s/bg", tmpdir);
	out = read_file(path, NULL);
	assert_non_null(out);
	assert_true(gone((pid_t)atoi(out)));
	free(out);
	free(path);
	free_script();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_valid),
		cmocka_unit_test(test_b64_malformed),
		cmocka_unit_test(test_b64_bounds),
		cmocka_unit_test(test_plain_split),
		cmocka_unit_test(test_passwd_good),
		cmocka_unit_test(test_passwd_empty),
		cmocka_unit_test(test_passwd_malformed),
		cmocka_unit_test(test_passwd_nul),
		cmocka_unit_test(test_passwd_all_errors),
		cmocka_unit_test(test_passwd_mode),
		cmocka_unit_test(test_passwd_missing),
		cmocka_unit_test(test_passwd_timing),
		cmocka_unit_test(test_cp_config),
		cmocka_unit_test(test_cp_verdicts),
		cmocka_unit_test(test_cp_exec_failure),
		cmocka_unit_test(test_cp_input),
		cmocka_unit_test(test_cp_environment),
		cmocka_unit_test(test_cp_timeout),
	};

	log_init(1, 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
