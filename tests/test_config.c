/*
 * test_config.c: unit tests of config.c: the keyword table, defaults,
 * every directive, every class of error with its file:line message, the
 * delivery command splitter, command-limit rules, TLS, AUTH and listener
 * options with their conflicts, and the print/parse round trip of
 * `smtpd -n`.  TLS and AUTH configs name real files (a key and
 * certificate made with openssl(1), a passwd file, modes 0600) in a temp
 * directory, so that tls.c and auth.c can load them.
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../smtpd.h"
#include "../internal.h"
#include "testlib.h"

#define LISTEN	"listen on 127.0.0.1\n"

static char	 conf_path[64];

/* The files of the TLS and AUTH configs, made by setup_files. */
static char	 tmpdir[] = "/tmp/test_config_files.XXXXXX";
static char	 cert_path[128], key_path[128], passwd_path[128];

/* Writes len bytes of text (strlen if len is 0) to a fresh temp file. */
static const char *
write_conf(const char *text, size_t len)
{
	int	 fd;

	if (len == 0)
		len = strlen(text);
	snprintf(conf_path, sizeof(conf_path), "/tmp/test_config.XXXXXX");
	fd = mkstemp(conf_path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return conf_path;
}

/* The whole content of a file, NUL-terminated; the caller frees it. */
static char *
read_all(int fd)
{
	char	*buf;
	off_t	 size;

	size = lseek(fd, 0, SEEK_END);
	assert_true(size >= 0);
	buf = xmalloc((size_t)size + 1);
	assert_int_equal(pread(fd, buf, (size_t)size, 0), (ssize_t)size);
	buf[size] = '\0';
	return buf;
}

/* load_config(path), with what it logs on stderr captured into *logp. */
static struct config *
load_path(const char *path, char **logp)
{
	struct config	*c;

	capture_start();
	c = load_config(path);
	*logp = capture_end();
	return c;
}

/* load_path of a temp file holding len bytes of text. */
static struct config *
load_bytes(const char *text, size_t len, char **logp)
{
	struct config	*c;

	c = load_path(write_conf(text, len), logp);
	unlink(conf_path);
	return c;
}

static struct config *
load(const char *text, char **logp)
{
	return load_bytes(text, 0, logp);
}

static void
assert_log_has(const char *log, const char *want)
{
	if (strstr(log, want) == NULL) {
		print_error("expected in the log: \"%s\"\nlog was:\n%s\n",
		    want, log);
		fail();
	}
}

/* The text must fail to load, with "<file>:<line>: <msg>" in the log. */
static void
expect_error(const char *text, int line, const char *msg)
{
	struct config	*c;
	char		*log, want[4200];

	c = load(text, &log);
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: %s", conf_path, line,
		    msg);
	else
		snprintf(want, sizeof(want), "%s: %s", conf_path, msg);
	if (c != NULL) {
		print_error("loaded, expected \"%s\":\n%s\n", want, text);
		load_release(c);
		fail();
	}
	assert_log_has(log, want);
	free(log);
}

/* The text must load without a word in the log. */
static struct config *
expect_ok(const char *text)
{
	struct config	*c;
	char		*log;

	c = load(text, &log);
	if (c == NULL || log[0] != '\0') {
		print_error("failed to load:\n%s\nlog:\n%s\n", text, log);
		fail();
	}
	free(log);
	return c;
}

/* Runs a shell command line of the test itself; it must succeed. */
static void
run(const char *cmd)
{
	int	 st;

	st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		print_error("command failed: %s\n", cmd);
		fail();
	}
}

/*
 * A key and a self-signed certificate (openssl(1)) and a passwd file
 * (alice:secret, SHA-512 crypt), the key and passwd mode 0600.
 */
static int
setup_files(void **state)
{
	char	 cmd[1024];

	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
	snprintf(passwd_path, sizeof(passwd_path), "%s/passwd", tmpdir);
	snprintf(cmd, sizeof(cmd), "umask 077 && openssl req -x509 "
	    "-newkey rsa:2048 -nodes -days 2 -subj /CN=mx.example.org "
	    "-keyout %s -out %s 2>/dev/null && "
	    "printf 'alice:%%s\\n' \"$(openssl passwd -6 secret)\" >%s",
	    key_path, cert_path, passwd_path);
	run(cmd);
	return 0;
}

static int
teardown_files(void **state)
{
	char	 cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * A config with the real files: every %C, %K and %P of the template
 * becomes the certificate, key and passwd path.  The caller frees it.
 */
static char *
with_files(const char *tmpl)
{
	char		*out, *o;
	const char	*r;
	size_t		 len;

	out = xmalloc(strlen(tmpl) * 2 + 4096);
	for (o = out, r = tmpl; *r != '\0'; r++) {
		if (*r != '%' || strchr("CKP", r[1]) == NULL || r[1] == '\0') {
			*o++ = *r;
			continue;
		}
		r++;
		len = (size_t)sprintf(o, "%s", *r == 'C' ? cert_path :
		    *r == 'K' ? key_path : passwd_path);
		o += len;
	}
	*o = '\0';
	return out;
}

static void
test_table_sorted(void **state)
{
	(void)state;
	assert_int_equal(config_table_sorted(), 1);
}

static void
test_defaults(void **state)
{
	struct config	*c;

	(void)state;
	c = config_default();
	assert_non_null(c->c_hostname);
	assert_true(strlen(c->c_hostname) > 0);
	assert_null(c->c_file);
	assert_string_equal(c->c_banner, "ESMTP smtpd");
	assert_null(c->c_user);
	assert_null(c->c_chroot);
	assert_null(c->c_pidfile);
	assert_int_equal(c->c_lim.lim_prefork, DEF_PREFORK);
	assert_int_equal(c->c_lim.lim_maxclients, DEF_MAXCLIENTS);
	assert_int_equal(c->c_lim.lim_maxperaddr, DEF_MAXPERADDR);
	assert_int_equal(c->c_lim.lim_maxsessions, DEF_MAXSESSIONS);
	assert_true(c->c_lim.lim_maxmsgsize == 32LL * 1024 * 1024);
	assert_int_equal(c->c_lim.lim_maxline, 1001);
	assert_int_equal(c->c_lim.lim_maxlocal, 0);
	assert_int_equal(c->c_lim.lim_maxrcpt, 1000);
	assert_int_equal(c->c_lim.lim_timeout, 300);
	assert_int_equal(c->c_smtputf8, 0);
	assert_int_equal(c->c_chunking, 1);
	assert_int_equal(c->c_enhanced, 0);
	assert_true(c->c_lim.lim_cmdlimit == -1);
	assert_int_equal(c->c_lim.lim_ncmdlimits, 0);
	assert_int_equal(c->c_lim.lim_junk, 100);
	assert_int_equal(c->c_lim.lim_session, 3600);
	assert_int_equal(c->c_pol.po_bare, BARE_KEEP);
	assert_int_equal(c->c_pol.po_nbare_exempt, 0);
	assert_int_equal(c->c_dlv.dl_mode, DELIVER_STDOUT);
	assert_null(c->c_dlv.dl_cmd);
	assert_null(c->c_dlv.dl_argv);
	assert_int_equal(c->c_dlv.dl_timeout, 300);
	assert_int_equal(c->c_dlv.dl_received, 1);
	assert_string_equal(c->c_dlv.dl_spool, "/tmp");
	assert_int_equal(c->c_nlisteners, 0);
	assert_true(TAILQ_EMPTY(&c->c_listeners));
	assert_null(c->c_tls.tl_cert);
	assert_null(c->c_tls.tl_key);
	assert_null(c->c_tls.tl_ciphers);
	assert_int_equal(c->c_tls.tl_protocols, TLSP_DEFAULT);
	assert_int_equal(c->c_auth.au_backend, AUTH_NONE);
	assert_null(c->c_auth.au_path);
	assert_null(c->c_auth.au_argv);
	assert_int_equal(c->c_auth.au_mechs, AUTHM_DEFAULT);
	assert_int_equal(c->c_auth.au_maxfail, DEF_AUTH_MAXFAIL);
	assert_int_equal(c->c_auth.au_delay, DEF_AUTH_DELAY);
	load_release(c);
}

static const char full_conf[] =
    "# every directive\n"
    "hostname mx.example.org\n"
    "banner \"ESMTP ready\"\n"
    "user _mail\n"
    "chroot /var/empty\n"
    "pidfile /run/smtpd.pid\n"
    "prefork 8\n"
    "max-clients 100\n"
    "max-clients-per-address 200\n"
    "max-sessions-per-child 50\n"
    "max-message-size 10M\n"
    "max-line-length 2048\n"
    "max-local-part 64\n"
    "max-recipients 50\n"
    "timeout 2m\n"
    "smtputf8 yes\n"
    "command-limit 100\n"
    "command-limit rcpt 10\n"
    "command-limit NOOP 5\n"
    "command-limit rcpt 11\n"
    "deliver \"/usr/sbin/sendmail -i -f %{sender} -- %{recipients}\"\n"
    "deliver-timeout 1h\n"
    "received-header no\n"
    "spool /var/spool/smtpd\n"
    "listen on 127.0.0.1\n"
    "listen on ::1 port 2525\n"
    "listen on * port 2424 lmtp\n"
    "listen on localhost lmtp\n"
    "listen on /run/smtpd.sock lmtp mode 0660\n";

static void
test_full(void **state)
{
	struct config	*c;
	struct listener	*l;

	(void)state;
	c = expect_ok(full_conf);
	assert_string_equal(c->c_file, conf_path);
	assert_string_equal(c->c_hostname, "mx.example.org");
	assert_string_equal(c->c_banner, "ESMTP ready");
	assert_string_equal(c->c_user, "_mail");
	assert_string_equal(c->c_chroot, "/var/empty");
	assert_string_equal(c->c_pidfile, "/run/smtpd.pid");
	assert_int_equal(c->c_lim.lim_prefork, 8);
	assert_int_equal(c->c_lim.lim_maxclients, 100);
	assert_int_equal(c->c_lim.lim_maxperaddr, 200);
	assert_int_equal(c->c_lim.lim_maxsessions, 50);
	assert_true(c->c_lim.lim_maxmsgsize == 10 * 1024 * 1024);
	assert_int_equal(c->c_lim.lim_maxline, 2048);
	assert_int_equal(c->c_lim.lim_maxlocal, 64);
	assert_int_equal(c->c_lim.lim_maxrcpt, 50);
	assert_int_equal(c->c_lim.lim_timeout, 120);
	assert_int_equal(c->c_smtputf8, 1);
	assert_true(c->c_lim.lim_cmdlimit == 100);
	assert_int_equal(c->c_lim.lim_ncmdlimits, 2);
	assert_string_equal(c->c_lim.lim_cmdlimits[0].cml_verb, "RCPT");
	assert_true(c->c_lim.lim_cmdlimits[0].cml_max == 11);
	assert_string_equal(c->c_lim.lim_cmdlimits[1].cml_verb, "NOOP");
	assert_int_equal(c->c_dlv.dl_mode, DELIVER_PROGRAM);
	assert_string_equal(c->c_dlv.dl_cmd,
	    "/usr/sbin/sendmail -i -f %{sender} -- %{recipients}");
	assert_string_equal(c->c_dlv.dl_argv[0], "/usr/sbin/sendmail");
	assert_string_equal(c->c_dlv.dl_argv[3], "%{sender}");
	assert_string_equal(c->c_dlv.dl_argv[5], "%{recipients}");
	assert_null(c->c_dlv.dl_argv[6]);
	assert_int_equal(c->c_dlv.dl_per_rcpt, 0);
	assert_int_equal(c->c_dlv.dl_timeout, 3600);
	assert_int_equal(c->c_dlv.dl_received, 0);
	assert_string_equal(c->c_dlv.dl_spool, "/var/spool/smtpd");
	assert_int_equal(c->c_nlisteners, 5);

	l = TAILQ_FIRST(&c->c_listeners);
	assert_string_equal(l->l_name, "127.0.0.1:25");
	assert_int_equal(l->l_port, 25);
	assert_int_equal(l->l_flags, 0);
	assert_int_equal(l->l_line, 25);
	assert_int_equal(l->l_nfds, 0);
	assert_int_equal(l->l_fds[0], -1);
	assert_int_equal(l->l_fds[1], -1);
	l = TAILQ_NEXT(l, l_entry);
	assert_string_equal(l->l_addr, "::1");
	assert_string_equal(l->l_name, "[::1]:2525");
	l = TAILQ_NEXT(l, l_entry);
	assert_string_equal(l->l_name, "*:2424");
	assert_int_equal(l->l_flags, LF_LMTP);
	l = TAILQ_NEXT(l, l_entry);
	assert_string_equal(l->l_name, "localhost:24");
	l = TAILQ_NEXT(l, l_entry);
	assert_string_equal(l->l_name, "/run/smtpd.sock");
	assert_int_equal(l->l_unix, 1);
	assert_int_equal(l->l_port, 0);
	assert_int_equal(l->l_mode, 0660);
	assert_int_equal(l->l_flags, LF_LMTP);
	load_release(c);
}

static void
test_deliver_forms(void **state)
{
	struct config	*c;

	(void)state;
	c = expect_ok(LISTEN "deliver discard\n");
	assert_int_equal(c->c_dlv.dl_mode, DELIVER_DISCARD);
	assert_null(c->c_dlv.dl_argv);
	load_release(c);

	c = expect_ok(LISTEN
	    "deliver \"/usr/bin/maildrop -d %{recipient} 'a b' "
	    "x\\\\\\\"y\"\n");
	assert_int_equal(c->c_dlv.dl_mode, DELIVER_PROGRAM);
	assert_int_equal(c->c_dlv.dl_per_rcpt, 1);
	assert_string_equal(c->c_dlv.dl_cmd,
	    "/usr/bin/maildrop -d %{recipient} 'a b' x\\\"y");
	assert_string_equal(c->c_dlv.dl_argv[2], "%{recipient}");
	assert_string_equal(c->c_dlv.dl_argv[3], "a b");
	assert_string_equal(c->c_dlv.dl_argv[4], "x\"y");
	assert_null(c->c_dlv.dl_argv[5]);
	load_release(c);

	/* Embedded placeholders other than %{recipients} are fine. */
	c = expect_ok(LISTEN "deliver \"/bin/p --from=%{sender} "
	    "-c %{client}/%{helo}/%{user}/%{id} --rcpt=%{recipient}\"\n");
	assert_int_equal(c->c_dlv.dl_per_rcpt, 1);
	load_release(c);
}

struct error_case {
	const char	*ec_line;	/* follows a good listen line */
	const char	*ec_msg;
};

static const struct error_case error_cases[] = {
	{ "bogus 1", "unknown keyword \"bogus\"" },
	{ "Hostname mx", "unknown keyword \"Hostname\"" },
	{ "policy x", "policy: \"x\" is not unix:/PATH or inet:HOST:PORT" },
	{ "policy unix:x", "policy: \"unix:x\" is not unix:/PATH or "
	    "inet:HOST:PORT" },
	{ "policy inet:127.0.0.1", "policy: \"inet:127.0.0.1\" is not "
	    "unix:/PATH or inet:HOST:PORT" },
	{ "policy inet:127.0.0.1:0", "policy: \"inet:127.0.0.1:0\" is not "
	    "unix:/PATH or inet:HOST:PORT" },
	{ "policy inet:h:65536", "policy: \"inet:h:65536\" is not "
	    "unix:/PATH or inet:HOST:PORT" },
	{ "policy inet:a/b:1", "policy: \"inet:a/b:1\" is not "
	    "unix:/PATH or inet:HOST:PORT" },
	{ "policy inet:[::1:10023", "policy: \"inet:[::1:10023\" is not "
	    "unix:/PATH or inet:HOST:PORT" },
	{ "policy inet:::1:10023", "policy: \"inet:::1:10023\" is not "
	    "unix:/PATH or inet:HOST:PORT" },
	{ "policy inet:[127.0.0.1]:10023", "policy: \"inet:[127.0.0.1]:10023\" "
	    "is not unix:/PATH or inet:HOST:PORT" },
	{ "policy inet:[h]x:10023", "policy: \"inet:[h]x:10023\" is not "
	    "unix:/PATH or inet:HOST:PORT" },
	/* A name that could not resolve: each request failed. */
	{ "policy inet:...:10023", "policy: \"inet:...:10023\" is not " },
	{ "policy inet:-h:10023", "policy: \"inet:-h:10023\" is not " },
	{ "policy inet:h..example:10023", "policy: \"inet:h..example:10023\" "
	    "is not " },
	{ "policy inet:.:10023", "policy: \"inet:.:10023\" is not " },
	{ "policy inet:h..:10023", "policy: \"inet:h..:10023\" is not " },
	{ "policy", "policy: expected policy unix:PATH|inet:HOST:PORT" },
	{ "listen on 127.0.0.1 port 9154 metrics deliver-user nobody",
	    "listen: metrics takes no other option" },
	{ "control /nonexistent/a/ctl.sock", "control: "
	    "\"/nonexistent/a/ctl.sock\" is in a directory that cannot be "
	    "created (its parent is missing)" },
	{ "control /etc/passwd/ctl.sock", "control: \"/etc/passwd/ctl.sock\" "
	    "is below a file that is not a directory" },
	{ "policy-timeout 0", "policy-timeout: \"0\" is not a duration in "
	    "1..3600" },
	{ "policy-timeout 2h", "policy-timeout: \"2h\" is not a duration" },
	{ "policy-default reject", "policy-default: expected policy-default "
	    "defer|dunno" },
	{ "policy-default", "policy-default: expected" },
	{ "policy-stages", "policy-stages: expected policy-stages rcpt|data" },
	{ "policy-stages rcpt helo", "policy-stages: \"helo\" is not rcpt "
	    "or data" },
	{ "accept recipients", "accept recipients: expected accept "
	    "recipients FILE [ignore-case]" },
	{ "accept recipients /x nocase", "accept recipients: expected" },
	{ "accept recipients /x ignore-case y", "accept recipients: "
	    "expected" },
	{ "accept bogus /x", "accept: expected accept recipients|senders" },
	{ "bare-newline strip", "bare-newline: expected bare-newline "
	    "keep|normalize|reject" },
	{ "bare-newline keep reject", "bare-newline: expected" },
	{ "bare-newline-exempt", "bare-newline-exempt: expected "
	    "bare-newline-exempt NETWORK ..." },
	{ "bare-newline-exempt 10.0.0.1/8", "bare-newline-exempt: "
	    "\"10.0.0.1/8\" is not an address or network" },
	{ "junk-command-limit -1", "junk-command-limit: \"-1\" is not a "
	    "number in 0..1000000" },
	{ "max-session-time 1.5h", "max-session-time: \"1.5h\" is not a "
	    "duration in 0..604800" },
	{ "prefork-idle-time -1", "prefork-idle-time: \"-1\" is not a "
	    "duration in 0..604800" },
	{ "prefork-idle-time 8d", "prefork-idle-time: \"8d\" is not a "
	    "duration" },
	{ "reject recipients /x", "reject: expected reject senders" },
	{ "reject senders", "reject senders: expected reject senders FILE" },
	{ "accept clients", "accept clients: expected accept clients "
	    "NETWORK ..." },
	{ "accept clients 10.0.0.1/8", "accept clients: \"10.0.0.1/8\" is "
	    "not an address or network" },
	{ "reject clients ::1/129", "reject clients: \"::1/129\" is not an "
	    "address or network" },
	{ "reject clients example.org", "reject clients: \"example.org\" is "
	    "not an address" },
	{ "recipient-delimiter", "recipient-delimiter: expected one of" },
	{ "recipient-delimiter ++", "recipient-delimiter: expected one of" },
	{ "recipient-delimiter a", "recipient-delimiter: expected one of" },
	{ "recipient-delimiter @", "recipient-delimiter: expected one of" },
	{ "prefork", "prefork: expected one argument: prefork N" },
	{ "prefork 1 2", "prefork: expected one argument: prefork N" },
	{ "prefork 0", "prefork: \"0\" is not a number in 1..1024" },
	{ "prefork 1025", "prefork: \"1025\" is not a number in 1..1024" },
	{ "prefork -1", "prefork: \"-1\" is not a number in 1..1024" },
	{ "prefork +3", "prefork: \"+3\" is not a number in 1..1024" },
	{ "prefork 3x", "prefork: \"3x\" is not a number in 1..1024" },
	{ "prefork 99999999999999999999999",
	    "prefork: \"99999999999999999999999\" is not a number" },
	{ "max-clients 65537", "max-clients: \"65537\" is not a number in "
	    "1..65536" },
	{ "max-line-length 63", "max-line-length: \"63\" is not a number in "
	    "64..1048576" },
	{ "max-local-part -1", "max-local-part: \"-1\" is not a number in "
	    "0..1048576" },
	{ "max-recipients 0", "max-recipients: \"0\" is not a number" },
	{ "max-sessions-per-child 1000001", "max-sessions-per-child: "
	    "\"1000001\" is not a number in 1..1000000" },
	{ "max-message-size 1025G", "max-message-size: \"1025G\" is not a "
	    "size in 0..1024G" },
	{ "max-message-size 1099511627777", "max-message-size: "
	    "\"1099511627777\" is not a size" },
	{ "max-message-size 9999999999999999999K", "max-message-size: "
	    "\"9999999999999999999K\" is not a size" },
	{ "max-message-size 9007199254740993K", "max-message-size: "
	    "\"9007199254740993K\" is not a size" },
	{ "max-message-size 10T", "max-message-size: \"10T\" is not a size" },
	{ "max-message-size K", "max-message-size: \"K\" is not a size" },
	{ "max-message-size 1.5M", "max-message-size: \"1.5M\" is not" },
	{ "timeout 0", "timeout: \"0\" is not a duration in 1..604800 "
	    "seconds" },
	{ "timeout 0s", "timeout: \"0s\" is not a duration" },
	{ "timeout 604801", "timeout: \"604801\" is not a duration" },
	{ "timeout 169h", "timeout: \"169h\" is not a duration" },
	{ "timeout 10081m", "timeout: \"10081m\" is not a duration" },
	{ "timeout 1.5", "timeout: \"1.5\" is not a duration" },
	{ "timeout 5d", "timeout: \"5d\" is not a duration" },
	{ "deliver-timeout s", "deliver-timeout: \"s\" is not a duration" },
	{ "smtputf8 maybe", "smtputf8: \"maybe\" is not yes or no" },
	{ "chunking on", "chunking: \"on\" is not yes or no" },
	{ "batch-scheduling 1", "batch-scheduling: \"1\" is not yes or no" },
	{ "enhanced-status-codes 1",
	    "enhanced-status-codes: \"1\" is not yes or no" },
	{ "received-header YES", "received-header: \"YES\" is not yes or no" },
	{ "hostname bad_name", "hostname: \"bad_name\" may contain only" },
	{ "hostname \"\"", "hostname: \"\" must be 1 to 253 characters" },
	{ "hostname a..b", "hostname: \"a..b\" must be labels of 1 to 63" },
	{ "hostname mx.example.", "hostname: \"mx.example.\" must be labels" },
	{ "hostname x-.example", "hostname: \"x-.example\" may not have '-'" },
	{ "hostname mx.-example", "hostname: \"mx.-example\" may not have" },
	{ "banner \"tab\there\"", "banner: \"tab\\x09here\" contains a "
	    "control character" },
	{ "chroot var/empty", "chroot: \"var/empty\" is not an absolute "
	    "path" },
	{ "pidfile smtpd.pid", "pidfile: \"smtpd.pid\" is not an absolute" },
	{ "spool ./tmp", "spool: \"./tmp\" is not an absolute path" },
	{ "user -x", "user: \"-x\" is not a user name" },
	{ "user a:b", "user: \"a:b\" is not a user name" },
	{ "command-limit", "command-limit: expected command-limit "
	    "[CMD | *] N" },
	{ "command-limit 0", "command-limit: \"0\" is not a number in "
	    "1..1000000" },
	{ "command-limit MAIL 1000001", "command-limit: \"1000001\" is not "
	    "a number" },
	{ "command-limit MA1L 5", "command-limit: \"MA1L\" is not a command" },
	{ "command-limit ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG 5",
	    "command-limit: \"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG\" is not a "
	    "command (1 to 31 letters) or *" },
	{ "command-limit A B C", "command-limit: expected" },
	{ "deliver", "deliver: expected deliver discard or" },
	{ "deliver /bin/a b", "deliver: expected deliver discard or" },
	{ "deliver bin/cat", "deliver: the program \"bin/cat\" is not an "
	    "absolute path" },
	{ "deliver \"\"", "deliver: empty command" },
	{ "deliver \"  \"", "deliver: empty command" },
	{ "deliver \"/bin/x %{nope}\"",
	    "deliver: unknown placeholder \"%{nope}\"" },
	{ "deliver \"/bin/x %{sender\"",
	    "deliver: unterminated placeholder \"%{sender\"" },
	{ "deliver \"/bin/x -t%{recipients}\"",
	    "deliver: %{recipients} must be a word by itself" },
	{ "deliver \"/bin/x %{recipients},\"",
	    "deliver: %{recipients} must be a word by itself" },
	{ "deliver \"/bin/%{id} x\"",
	    "deliver: placeholder %{id} in the program path" },
	{ "deliver \"/bin/x 'abc\"", "deliver: unterminated single quote" },
	{ "deliver \"/bin/x \\\"abc\"", "deliver: unterminated double quote" },
	{ "deliver \"/bin/x abc\\\\\"", "deliver: backslash at the end" },
	{ "listen", "listen: expected listen on ADDRESS" },
	{ "listen on", "listen: expected listen on ADDRESS" },
	{ "listen at 127.0.0.2", "listen: expected listen on ADDRESS" },
	{ "listen on 1.2.3.4.5", "listen: \"1.2.3.4.5\" is not an IPv4 or "
	    "IPv6 address, *, localhost or an absolute path" },
	{ "listen on [::1]", "listen: \"[::1]\" is not an IPv4" },
	/* An IPv6 socket is IPv6 only: bind() refused it at the start. */
	{ "listen on ::ffff:127.0.0.2", "listen: \"::ffff:127.0.0.2\" is an "
	    "IPv4-mapped address; write the IPv4 address" },
	{ "listen on example.org", "listen: \"example.org\" is not" },
	{ "listen on 127.0.0.2 port", "listen: port must be a number in "
	    "1..65535" },
	{ "listen on 127.0.0.2 port 0", "listen: port must be a number" },
	{ "listen on 127.0.0.2 port 65536", "listen: port must be a number" },
	{ "listen on 127.0.0.2 port smtp", "listen: port must be a number" },
	{ "listen on /tmp/s port 25", "listen: port is not for UNIX sockets" },
	{ "listen on /tmp/s/", "listen: socket path \"/tmp/s/\" ends in /" },
	{ "listen on /", "listen: socket path \"/\" ends in /" },
	{ "listen on \"/tmp/a\tb\"", "listen: socket path \"/tmp/a\\x09b\" "
	    "contains a control character" },
	{ "listen on /tmp/s//", "listen: socket path \"/tmp/s//\" ends in /" },
	{ "listen on 127.0.0.2 mode 0600", "listen: mode is only for UNIX "
	    "sockets" },
	{ "listen on /tmp/s mode 0999", "listen: mode must be an octal "
	    "number in 0..0777" },
	{ "listen on /tmp/s mode 1777", "listen: mode must be an octal" },
	{ "listen on /tmp/s mode", "listen: mode must be an octal" },
	{ "listen on 127.0.0.2 owner nobody", "listen: owner is only for "
	    "UNIX sockets" },
	{ "listen on /tmp/s group", "listen: group: \"\" is missing" },
	{ "listen on /tmp/s owner -x", "listen: owner: \"-x\" is not a "
	    "user name" },
	{ "listen on 127.0.0.2 proxy-protocol timeout",
	    "listen: proxy-protocol timeout must be a duration in "
	    "1..604800 seconds" },
	{ "listen on 127.0.0.2 proxy-protocol timeout 0",
	    "listen: proxy-protocol timeout must be a duration" },
	{ "listen on 127.0.0.2 proxy-protocol timeout 5x",
	    "listen: proxy-protocol timeout must be a duration" },
	{ "listen on 127.0.0.2 proxy-protocol timeout from 10.0.0.0/8",
	    "listen: proxy-protocol timeout must be a duration" },
	{ "listen on 127.0.0.2 proxy-protocol from",
	    "listen: proxy-protocol from: expected a network" },
	{ "listen on 127.0.0.2 proxy-protocol from lmtp",
	    "listen: proxy-protocol from: expected a network" },
	{ "listen on 127.0.0.2 proxy-protocol from 10.1.0.0/8",
	    "listen: proxy-protocol from: \"10.1.0.0/8\" is not ADDRESS or "
	    "ADDRESS/PREFIX without host bits" },
	{ "listen on 127.0.0.2 proxy-protocol from ::1/129",
	    "listen: proxy-protocol from: \"::1/129\" is not ADDRESS" },
	{ "listen on 127.0.0.2 proxy-protocol from example.org",
	    "listen: proxy-protocol from: \"example.org\" is not ADDRESS" },
	/* The timeout comes first; after `from` it is a network. */
	{ "listen on 127.0.0.2 proxy-protocol from ::1 timeout 5",
	    "listen: proxy-protocol from: \"timeout\" is not ADDRESS" },
	{ "listen on 127.0.0.2 proxy-protocol proxy-protocol",
	    "listen: proxy-protocol given twice" },
	/* An option with an argument once: the second would win. */
	{ "listen on 127.0.0.2 port 2525 port 2526",
	    "listen: port given twice" },
	{ "listen on /tmp/s mode 0600 mode 0666", "listen: mode given twice" },
	{ "listen on /tmp/s owner nobody group nobody owner nobody",
	    "listen: owner given twice" },
	{ "listen on /tmp/s group nobody group nobody",
	    "listen: group given twice" },
	{ "listen on 127.0.0.2 deliver-user nobody deliver-user nobody",
	    "listen: deliver-user given twice" },
	{ "listen on 127.0.0.2 proxy-protocol bogus",
	    "listen: unknown option \"bogus\"" },
	{ "listen on 127.0.0.2 proxy-protocol from 10.0.0.0/8 1.1.1.1 "
	    "1.1.1.2 1.1.1.3 1.1.1.4 1.1.1.5 1.1.1.6 1.1.1.7 1.1.1.8 "
	    "1.1.1.9 1.1.1.10 1.1.1.11 1.1.1.12 1.1.1.13 1.1.1.14 1.1.1.15 "
	    "1.1.1.16", "listen: proxy-protocol from: more than 16 networks" },
	{ "listen on 127.0.0.2 TLS", "listen: unknown option \"TLS\"" },
	{ "listen on 127.0.0.2 starttls=yes",
	    "listen: unknown option \"starttls=yes\"" },
	/* tls */
	{ "tls", "tls: expected tls certificate|ciphers|protocols|tickets "
	    "..." },
	{ "tls key /a", "tls: expected tls certificate|ciphers|protocols" },
	{ "tls tickets maybe", "tls tickets: \"maybe\" is not yes or no" },
	{ "tls Protocols TLSv1.2", "tls: expected tls certificate|" },
	{ "tls certificate /a", "tls certificate: expected tls certificate "
	    "FILE key FILE" },
	{ "tls certificate /a key", "tls certificate: expected" },
	{ "tls certificate /a cert /b", "tls certificate: expected" },
	{ "tls certificate /a key /b /c", "tls certificate: expected" },
	{ "tls certificate a.pem key /b", "tls certificate: \"a.pem\" is "
	    "not an absolute path" },
	{ "tls certificate /a key b.pem", "tls certificate: \"b.pem\" is "
	    "not an absolute path" },
	{ "tls ciphers", "tls ciphers: expected one argument: tls ciphers "
	    "\"LIST\"" },
	{ "tls ciphers HIGH MEDIUM", "tls ciphers: expected one argument" },
	{ "tls ciphers \"\"", "tls ciphers: \"\" is empty" },
	{ "tls ciphers \"HIGH\t!aNULL\"", "tls ciphers: \"HIGH\\x09!aNULL\" "
	    "contains a control character" },
	{ "tls protocols", "tls protocols: expected tls protocols P ..." },
	{ "tls protocols TLSv1.1", "tls protocols: \"TLSv1.1\" is not "
	    "TLSv1.2 or TLSv1.3" },
	{ "tls protocols TLSv1.2 tlsv1.3", "tls protocols: \"tlsv1.3\" is "
	    "not TLSv1.2 or TLSv1.3" },
	/* auth */
	{ "auth", "auth: expected auth passwd|checkpassword|mechanisms|"
	    "max-failures|max-failures-per-address|failure-delay|exempt ..." },
	{ "auth sql /x", "auth: expected auth passwd|" },
	{ "auth passwd", "auth passwd: expected auth passwd FILE" },
	{ "auth passwd /a /b", "auth passwd: expected auth passwd FILE" },
	{ "auth passwd etc/passwd", "auth passwd: \"etc/passwd\" is not an "
	    "absolute path" },
	{ "auth checkpassword", "auth checkpassword: expected auth "
	    "checkpassword \"PROGRAM ARGS...\"" },
	{ "auth checkpassword /bin/cp /bin/true",
	    "auth checkpassword: expected auth checkpassword" },
	{ "auth checkpassword \" \"", "auth checkpassword: empty command" },
	{ "auth checkpassword \"bin/cp /bin/true\"", "auth checkpassword: "
	    "the program \"bin/cp\" is not an absolute path" },
	{ "auth checkpassword \"/bin/cp 'x\"",
	    "auth checkpassword: unterminated single quote" },
	{ "auth mechanisms", "auth mechanisms: expected auth mechanisms "
	    "M ..." },
	{ "auth mechanisms plain", "auth mechanisms: \"plain\" is not LOGIN "
	    "or PLAIN" },
	{ "auth mechanisms PLAIN CRAM-MD5", "auth mechanisms: \"CRAM-MD5\" "
	    "is not LOGIN or PLAIN" },
	{ "auth max-failures", "auth max-failures: expected one argument: "
	    "auth max-failures N" },
	{ "auth max-failures 0", "auth max-failures: \"0\" is not a number "
	    "in 1..1000" },
	{ "auth max-failures 1001", "auth max-failures: \"1001\" is not a "
	    "number in 1..1000" },
	{ "auth max-failures 3s", "auth max-failures: \"3s\" is not a "
	    "number" },
	{ "auth failure-delay 61", "auth failure-delay: \"61\" is not a "
	    "duration in 0..60 seconds (N, Ns, Nm or Nh)" },
	{ "auth failure-delay 2m", "auth failure-delay: \"2m\" is not a "
	    "duration in 0..60" },
	{ "auth failure-delay -1", "auth failure-delay: \"-1\" is not" },
	{ "auth max-failures-per-address -1", "auth max-failures-per-address: "
	    "\"-1\" is not" },
	{ "auth exempt", "auth exempt: expected" },
	{ "auth exempt 10.0.0.0/33", "auth exempt: \"10.0.0.0/33\" is not an "
	    "address or network" },
	{ "auth failure-delay 1 2", "auth failure-delay: expected one "
	    "argument: auth failure-delay DURATION" },
	{ "listen on 127.0.0.2 lmtpx", "listen: unknown option \"lmtpx\"" },
	{ "listen on /tmp/0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890"
	    "0123456789",
	    "listen: socket path \"/tmp/0123456789" },
	/* Lexical errors. */
	{ "banner \"unterminated", "unterminated quoted string" },
	{ "banner \"a\\\"", "unterminated quoted string" },
	{ "hostname a\"b\"", "quote inside a word" },
	{ "banner \"x\"y", "text after a closing quote" },
	{ "hostname mx\r.example", "control character 0x0d" },
};

static void
test_errors(void **state)
{
	char	 text[4200];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		snprintf(text, sizeof(text), LISTEN "%s\n",
		    error_cases[i].ec_line);
		expect_error(text, 2, error_cases[i].ec_msg);
	}
}

/* Lines the lexer must refuse, each with its own line number. */
static void
test_lexical(void **state)
{
	static const char nul[] = LISTEN "hostname a\0b\n";
	char		 text[MAX_CONF_LINE * 2 + 100];
	char		*log;
	struct config	*c;
	size_t		 n;

	(void)state;
	/* A line of exactly MAX_CONF_LINE characters is fine... */
	n = (size_t)snprintf(text, sizeof(text), LISTEN "hostname ");
	memset(text + n, 'a', MAX_CONF_LINE - 9);
	snprintf(text + n + MAX_CONF_LINE - 9, 30, "\nprefork x\n");
	c = load(text, &log);
	assert_null(c);
	/* (too long a name, but the line is read, and so is the next) */
	assert_log_has(log, ":2: hostname: \"aaaa");
	assert_log_has(log, ":3: prefork: \"x\"");
	assert_log_has(log, ": 2 error(s)");
	free(log);
	/* ...one more is not, and the next line is read in sync. */
	n = (size_t)snprintf(text, sizeof(text), LISTEN "#");
	memset(text + n, 'a', MAX_CONF_LINE);
	snprintf(text + n + MAX_CONF_LINE, 30, "\nprefork x\n");
	c = load(text, &log);
	assert_null(c);
	assert_log_has(log, "line longer than 4096 characters");
	assert_log_has(log, ":3: prefork: \"x\"");
	assert_log_has(log, ": 2 error(s)");
	free(log);

	/* A NUL byte. */
	c = load_bytes(nul, sizeof(nul) - 1, &log);
	assert_null(c);
	assert_log_has(log, ":2: NUL character");
	free(log);

	/* Too many words. */
	n = (size_t)snprintf(text, sizeof(text), LISTEN "listen on ::2");
	while (n < 1000)
		n += (size_t)snprintf(text + n, sizeof(text) - n, " lmtp");
	snprintf(text + n, sizeof(text) - n, "\n");
	expect_error(text, 2, "more than 128 words");
}

static void
test_quoting_comments(void **state)
{
	struct config	*c;

	(void)state;
	c = expect_ok("# a comment\n"
	    "\n"
	    "   \t  \n"
	    "  # indented comment \"with a quote\n"
	    "listen on 127.0.0.1 # port 99\n"
	    "hostname mx.example#comment\n"
	    "banner \"a \\\"quoted\\\" \\\\ # not a comment\"   # comment\n"
	    "\tspool\t\"/var/spool dir\"\r\n"
	    "chroot \"/x\\y\"\n"
	    "user \"_s\"\n"
	    "timeout 10");		/* no newline at the end */
	assert_string_equal(c->c_hostname, "mx.example");
	assert_string_equal(c->c_banner,
	    "a \"quoted\" \\ # not a comment");
	assert_string_equal(c->c_dlv.dl_spool, "/var/spool dir");
	/* Other backslashes stay, as in sh. */
	assert_string_equal(c->c_chroot, "/x\\y");
	assert_string_equal(c->c_user, "_s");
	assert_int_equal(c->c_lim.lim_timeout, 10);
	assert_int_equal(TAILQ_FIRST(&c->c_listeners)->l_port, 25);
	load_release(c);

	c = expect_ok(LISTEN "banner \"\"\n");
	assert_string_equal(c->c_banner, "");
	load_release(c);
}

static void
test_sizes_durations(void **state)
{
	static const struct {
		const char	*text;
		long long	 size;
		int		 timeout;
	} cases[] = {
		{ "max-message-size 0\ntimeout 1\n", 0, 1 },
		{ "max-message-size 0K\ntimeout 1s\n", 0, 1 },
		{ "max-message-size 1\ntimeout 59s\n", 1, 59 },
		{ "max-message-size 1K\ntimeout 2m\n", 1024, 120 },
		{ "max-message-size 1k\ntimeout 2M\n", 1024, 120 },
		{ "max-message-size 3M\ntimeout 1h\n", 3LL << 20, 3600 },
		{ "max-message-size 1024G\ntimeout 168h\n", 1LL << 40,
		    MAX_DURATION },
		{ "max-message-size 1048576M\ntimeout 10080m\n", 1LL << 40,
		    MAX_DURATION },
		{ "max-message-size 1099511627776\ntimeout 604800\n",
		    1LL << 40, MAX_DURATION },
		{ "max-message-size 007\ntimeout 007\n", 7, 7 },
	};
	struct config	*c;
	char		 text[200];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), LISTEN "%s", cases[i].text);
		c = expect_ok(text);
		assert_true(c->c_lim.lim_maxmsgsize == cases[i].size);
		assert_int_equal(c->c_lim.lim_timeout, cases[i].timeout);
		load_release(c);
	}
}

static void
test_whole_config(void **state)
{
	struct config	*c;

	(void)state;
	expect_error("# nothing\n", 0, "no \"listen on\" directive");
	expect_error("hostname mx.example\n", 0, "1 error(s)");
	expect_error(LISTEN "prefork 2\nlisten on 127.0.0.1 port 25\n", 3,
	    "listen: 127.0.0.1:25 duplicates the listener of line 1");
	expect_error("listen on ::1\nlisten on 0:0::1 port 25\n", 2,
	    "listen: [0:0::1]:25 duplicates the listener of line 1");
	expect_error("listen on * lmtp\nlisten on * port 24\n", 2,
	    "listen: *:24 duplicates the listener of line 1");
	expect_error("listen on /tmp/s\nlisten on /tmp/s lmtp\n", 2,
	    "listen: /tmp/s duplicates the listener of line 1");
	/* Other spellings of one address, and wildcards. */
	expect_error("listen on localhost\nlisten on 127.0.0.1\n", 2,
	    "listen: 127.0.0.1:25 duplicates the listener of line 1");
	expect_error("listen on ::1\nlisten on localhost\n", 2,
	    "listen: localhost:25 duplicates the listener of line 1");
	expect_error("listen on 0.0.0.0\nlisten on *\n", 2,
	    "listen: *:25 duplicates the listener of line 1");
	expect_error("listen on *\nlisten on ::\n", 2,
	    "listen: [::]:25 duplicates the listener of line 1");
	/* A path: repeated slashes and "." components do not count. */
	expect_error("listen on /tmp/s\nlisten on /tmp//./s\n", 2,
	    "listen: /tmp/s duplicates the listener of line 1");
	expect_error("listen on /tmp/./s\nlisten on //tmp/s\n", 2,
	    "listen: /tmp/s duplicates the listener of line 1");
	/* "..": no one spelling, so no path with it; ".x" and "..." are names. */
	expect_error("listen on /tmp/x/../s\n", 1,
	    "listen: socket path \"/tmp/x/../s\" has a \"..\" component");
	expect_error("listen on /tmp/s/..\n", 1,
	    "listen: socket path \"/tmp/s/..\" has a \"..\" component");
	load_release(expect_ok("listen on /tmp/.../..s/s..\n"
	    "listen on /tmp/..x\n"));
	expect_error("listen on *\nlisten on 127.0.0.2\n", 2,
	    "listen: 127.0.0.2:25 overlaps (a wildcard takes every address) "
	    "the listener of line 1");
	expect_error("listen on ::1\nlisten on ::\n", 2,
	    "listen: [::]:25 overlaps (a wildcard takes every address) "
	    "the listener of line 1");
	expect_error("prefork 10\n" LISTEN "max-clients 5\n", 3,
	    "prefork 10 is larger than max-clients 5");
	expect_error("max-clients 2\n" LISTEN, 1,
	    "prefork 4 is larger than max-clients 2");
	expect_error(LISTEN "timeout 5\ntimeout 10\n", 3,
	    "timeout: already set on line 2");
	expect_error(LISTEN "deliver discard\ndeliver discard\n", 3,
	    "deliver: already set on line 2");

	/* Not duplicates: other port, other address, other path. */
	c = expect_ok(LISTEN "listen on 127.0.0.1 port 26\n"
	    "listen on 127.0.0.2\nlisten on ::1\nlisten on /tmp/a\n"
	    "listen on /tmp/b\nmax-clients 4\nmax-clients-per-address 9\n");
	assert_int_equal(c->c_nlisteners, 6);
	load_release(c);
	/* A wildcard of the other family, or on another port. */
	c = expect_ok("listen on ::\nlisten on 127.0.0.1\n"
	    "listen on * port 26\nlisten on localhost port 27\n");
	assert_int_equal(c->c_nlisteners, 4);
	load_release(c);
}

static void
test_all_errors(void **state)
{
	struct config	*c;
	char		*log, want[128];

	(void)state;
	c = load("prefork x\n"
	    "listen on 127.0.0.1\n"
	    "nosuch\n"
	    "timeout 1 2\n", &log);
	assert_null(c);
	snprintf(want, sizeof(want), "%s:1: prefork", conf_path);
	assert_log_has(log, want);
	snprintf(want, sizeof(want), "%s:3: unknown keyword", conf_path);
	assert_log_has(log, want);
	snprintf(want, sizeof(want), "%s:4: timeout: expected", conf_path);
	assert_log_has(log, want);
	snprintf(want, sizeof(want), "%s: 3 error(s)", conf_path);
	assert_log_has(log, want);
	free(log);
}

static void
test_unreadable(void **state)
{
	struct config	*c;
	char		*log;

	(void)state;
	c = load_path("/nonexistent/smtpd.conf", &log);
	assert_null(c);
	assert_log_has(log, "/nonexistent/smtpd.conf: No such file");
	free(log);
}

static const char tls_auth_conf[] =
    "tls certificate %C key %K\n"
    "tls ciphers \"HIGH:!aNULL:!MD5\"\n"
    "tls protocols TLSv1.3 TLSv1.3\n"
    "auth passwd %P\n"
    "auth mechanisms PLAIN\n"
    "auth max-failures 1000\n"
    "auth failure-delay 0\n"
    "listen on 127.0.0.1 tls\n"
    "listen on 127.0.0.1 port 587 require-starttls require-auth\n"
    "listen on ::1 port 25 starttls auth auth-plaintext proxy-protocol\n"
    "listen on 127.0.0.2 proxy-protocol timeout 1m from 10.0.0.0/8 "
    "::1 192.0.2.7/32 lmtp\n"
    "listen on 127.0.0.3 proxy-protocol from 2001:db8::/32 port 26\n"
    "listen on /tmp/x.sock tls lmtp proxy-protocol timeout 3\n"
    "listen on 127.0.0.4 starttls require-starttls auth require-auth\n";

static void
test_tls_auth(void **state)
{
	struct config	*c;
	struct listener	*l;
	char		*text;

	(void)state;
	text = with_files(tls_auth_conf);
	c = expect_ok(text);
	free(text);
	assert_string_equal(c->c_tls.tl_cert, cert_path);
	assert_string_equal(c->c_tls.tl_key, key_path);
	assert_int_equal(c->c_tls.tl_line, 1);
	assert_string_equal(c->c_tls.tl_ciphers, "HIGH:!aNULL:!MD5");
	assert_int_equal(c->c_tls.tl_protocols, TLSP_TLSv1_3);
	assert_int_equal(c->c_auth.au_backend, AUTH_PASSWD);
	assert_string_equal(c->c_auth.au_path, passwd_path);
	assert_null(c->c_auth.au_argv);
	assert_int_equal(c->c_auth.au_line, 4);
	assert_int_equal(c->c_auth.au_mechs, AUTHM_PLAIN);
	assert_int_equal(c->c_auth.au_maxfail, 1000);
	assert_int_equal(c->c_auth.au_delay, 0);

	l = TAILQ_FIRST(&c->c_listeners);
	assert_int_equal(l->l_flags, LF_TLS);
	assert_int_equal(l->l_port, DEF_PORT_TLS);
	assert_string_equal(l->l_name, "127.0.0.1:465");
	l = TAILQ_NEXT(l, l_entry);
	assert_int_equal(l->l_flags, LF_STARTTLS | LF_REQ_STARTTLS |
	    LF_AUTH | LF_REQ_AUTH);
	assert_int_equal(l->l_port, 587);
	l = TAILQ_NEXT(l, l_entry);
	assert_int_equal(l->l_flags, LF_STARTTLS | LF_AUTH | LF_AUTH_PLAIN |
	    LF_PROXY);
	assert_int_equal(l->l_proxy_timeout, DEF_PROXY_TIMEOUT);
	assert_int_equal(l->l_nproxy_from, 0);
	l = TAILQ_NEXT(l, l_entry);
	assert_int_equal(l->l_flags, LF_PROXY | LF_LMTP);
	assert_int_equal(l->l_port, DEF_PORT_LMTP);
	assert_int_equal(l->l_proxy_timeout, 60);
	assert_int_equal(l->l_nproxy_from, 3);
	assert_int_equal(l->l_proxy_from[0].na_family, AF_INET);
	assert_int_equal(l->l_proxy_from[0].na_prefix, 8);
	assert_int_equal(l->l_proxy_from[0].na_addr[0], 10);
	assert_int_equal(l->l_proxy_from[1].na_family, AF_INET6);
	assert_int_equal(l->l_proxy_from[1].na_prefix, 128);
	assert_int_equal(l->l_proxy_from[1].na_addr[15], 1);
	assert_int_equal(l->l_proxy_from[2].na_prefix, 32);
	/* `from` ends at the next option, here `port`. */
	l = TAILQ_NEXT(l, l_entry);
	assert_int_equal(l->l_nproxy_from, 1);
	assert_int_equal(l->l_port, 26);
	l = TAILQ_NEXT(l, l_entry);
	assert_int_equal(l->l_flags, LF_TLS | LF_LMTP | LF_PROXY);
	assert_int_equal(l->l_proxy_timeout, 3);
	assert_int_equal(l->l_port, 0);
	l = TAILQ_NEXT(l, l_entry);
	assert_int_equal(l->l_flags, LF_STARTTLS | LF_REQ_STARTTLS |
	    LF_AUTH | LF_REQ_AUTH);
	load_release(c);
}

static void
test_checkpassword(void **state)
{
	struct config	*c;
	char		*text;

	(void)state;
	text = with_files("tls certificate %C key %K\n"
	    "auth checkpassword \"/bin/false 'a b' \\\"c\\\" d\"\n"
	    "auth mechanisms LOGIN PLAIN LOGIN\n"
	    "auth max-failures 1\n"
	    "auth failure-delay 1m\n"
	    "tls protocols TLSv1.2\n"
	    "listen on * port 587 starttls auth\n");
	c = expect_ok(text);
	free(text);
	assert_int_equal(c->c_auth.au_backend, AUTH_CHECKPASSWORD);
	assert_string_equal(c->c_auth.au_path, "/bin/false 'a b' \"c\" d");
	assert_string_equal(c->c_auth.au_argv[0], "/bin/false");
	assert_string_equal(c->c_auth.au_argv[1], "a b");
	assert_string_equal(c->c_auth.au_argv[2], "c");
	assert_string_equal(c->c_auth.au_argv[3], "d");
	assert_null(c->c_auth.au_argv[4]);
	assert_int_equal(c->c_auth.au_line, 2);
	assert_int_equal(c->c_auth.au_mechs, AUTHM_LOGIN | AUTHM_PLAIN);
	assert_int_equal(c->c_auth.au_maxfail, 1);
	assert_int_equal(c->c_auth.au_delay, 60);
	assert_int_equal(c->c_tls.tl_protocols, TLSP_TLSv1_2);
	assert_null(c->c_tls.tl_ciphers);
	load_release(c);

	/* No listener uses them: a backend and a certificate are fine. */
	text = with_files(LISTEN "auth passwd %P\ntls certificate %C key %K\n"
	    "listen on 127.0.0.2 auth-plaintext proxy-protocol\n");
	c = expect_ok(text);
	free(text);
	load_release(c);
}

/*
 * tls.c and auth.c load the files at the end of a valid parse; what they
 * refuse fails the load as one more error.
 */
static void
test_load_files(void **state)
{
	struct config	*c;
	char		*text, *log, want[256];

	(void)state;
	c = load(LISTEN "tls certificate /nonexistent/c key /nonexistent/k\n",
	    &log);
	assert_null(c);
	snprintf(want, sizeof(want), "%s: 1 error(s)", conf_path);
	assert_log_has(log, want);
	free(log);

	c = load(LISTEN "auth passwd /nonexistent/passwd\n", &log);
	assert_null(c);
	snprintf(want, sizeof(want), "%s: 1 error(s)", conf_path);
	assert_log_has(log, want);
	free(log);

	/* A table that cannot be read is blamed on its line. */
	c = load(LISTEN "\naccept recipients /nonexistent/tbl\n", &log);
	assert_null(c);
	snprintf(want, sizeof(want), "%s:3: /nonexistent/tbl: No such file",
	    conf_path);
	assert_log_has(log, want);
	free(log);

	/* Both are tried: two errors. */
	text = with_files(LISTEN "tls certificate %C key %P\n"
	    "auth passwd %C\n");
	c = load(text, &log);
	free(text);
	assert_null(c);
	snprintf(want, sizeof(want), "%s: 2 error(s)", conf_path);
	assert_log_has(log, want);
	free(log);

	/* A passwd file readable by others is refused. */
	assert_int_equal(chmod(passwd_path, 0644), 0);
	text = with_files(LISTEN "auth passwd %P\n");
	c = load(text, &log);
	assert_int_equal(chmod(passwd_path, 0600), 0);
	free(text);
	assert_null(c);
	free(log);
}

/* Each sub-form once; one backend (line 2 is the first directive). */
static void
test_subform_repeats(void **state)
{
	(void)state;
	expect_error(LISTEN "tls protocols TLSv1.2\ntls protocols TLSv1.3\n",
	    3, "tls protocols: already set on line 2");
	expect_error(LISTEN "tls ciphers HIGH\ntls ciphers HIGH\n", 3,
	    "tls ciphers: already set on line 2");
	expect_error(LISTEN "tls certificate /a key /b\n"
	    "tls certificate /a key /b\n", 3,
	    "tls certificate: already set on line 2");
	expect_error(LISTEN "auth max-failures 5\nauth max-failures 5\n", 3,
	    "auth max-failures: already set on line 2");
	expect_error(LISTEN "auth passwd /a\nauth passwd /a\n", 3,
	    "auth passwd: already set on line 2");
	expect_error(LISTEN "auth passwd /a\nauth checkpassword /bin/x\n", 3,
	    "auth checkpassword: only one backend: auth passwd is set on "
	    "line 2");
	expect_error(LISTEN "auth checkpassword /bin/x\nauth passwd /a\n", 3,
	    "auth passwd: only one backend: auth checkpassword is set on "
	    "line 2");
	/* A refused line sets nothing: the next one is the first. */
	expect_error(LISTEN "auth mechanisms X\nauth mechanisms PLAIN\n"
	    "auth mechanisms LOGIN\n", 4,
	    "auth mechanisms: already set on line 3");
}

/* Contradicting options: errors on the `listen` line. */
static void
test_conflicts(void **state)
{
	static const struct {
		const char	*opts;
		const char	*msg[2];
	} cases[] = {
		{ "tls starttls", { "listen: tls cannot be combined with "
		    "starttls", "listen: tls needs \"tls certificate\"" } },
		{ "require-starttls tls", { "listen: tls cannot be combined "
		    "with require-starttls", "listen: tls needs \"tls "
		    "certificate\"" } },
		{ "auth", { "listen: auth needs \"auth passwd\" or \"auth "
		    "checkpassword\"", NULL } },
		{ "require-auth", { "listen: require-auth needs \"auth "
		    "passwd\" or \"auth checkpassword\"", NULL } },
		{ "auth require-auth auth-plaintext", { "listen: require-auth "
		    "needs", NULL } },
		{ "tls", { "listen: tls needs \"tls certificate\"", NULL } },
		{ "starttls", { "listen: starttls needs \"tls certificate\"",
		    NULL } },
		{ "require-starttls", { "listen: require-starttls needs "
		    "\"tls certificate\"", NULL } },
		{ "starttls require-starttls lmtp", { "listen: "
		    "require-starttls needs \"tls certificate\"", NULL } },
	};
	struct config	*c;
	char		 text[512], want[512], *log;
	size_t		 i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "prefork 2\n"
		    "listen on 127.0.0.1 %s\nlisten on ::1\n", cases[i].opts);
		c = load(text, &log);
		assert_null(c);
		for (j = 0; j < 2 && cases[i].msg[j] != NULL; j++) {
			snprintf(want, sizeof(want), "%s:2: %s", conf_path,
			    cases[i].msg[j]);
			assert_log_has(log, want);
		}
		snprintf(want, sizeof(want), "%s: %zu error(s)", conf_path, j);
		assert_log_has(log, want);
		free(log);
	}
	/* Only what is missing is an error. */
	expect_error("tls certificate /a key /b\nlisten on 127.0.0.1 tls "
	    "auth\n", 2, "listen: auth needs");
	expect_error("auth passwd /a\nlisten on 127.0.0.1 starttls auth\n", 2,
	    "listen: starttls needs \"tls certificate\"");
}

static void
split_ok(const char *s, int argc, const char *const *want)
{
	char	**argv, err[128];
	int	  i, n;

	n = config_split_argv(s, &argv, err, sizeof(err));
	if (n != argc) {
		print_error("split \"%s\": %d words (%s)\n", s, n,
		    n == -1 ? err : "");
		fail();
	}
	for (i = 0; i < argc; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[argc]);
	for (i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

static void
split_bad(const char *s, const char *msg)
{
	char	**argv, err[128];

	assert_int_equal(config_split_argv(s, &argv, err, sizeof(err)), -1);
	assert_null(argv);
	assert_string_equal(err, msg);
}

static void
test_split_argv(void **state)
{
	static const char *const w1[] = { "/bin/cat" };
	static const char *const w2[] = { "/bin/x", "a", "b c", "d e",
	    "f\"g", "h'i", "" , "j\\k", "lmn" };
	static const char *const w3[] = { "/bin/x", "%{sender}",
	    "%{recipients}" };
	static const char *const w4[] = { "/bin/x", "a\\\"b", "$HOME",
	    "|", ";" };

	(void)state;
	split_ok("/bin/cat", 1, w1);
	split_ok("  \t/bin/cat\t ", 1, w1);
	split_ok("/bin/x a \"b c\" 'd e' f\\\"g \"h'i\" '' j\\\\k l\"m\"'n'",
	    9, w2);
	split_ok("/bin/x %{sender} %{recipients}", 3, w3);
	/* No shell: metacharacters are plain; no escapes in '...'. */
	split_ok("/bin/x 'a\\\"b' $HOME | ;", 5, w4);

	split_bad("", "empty command");
	split_bad(" \t ", "empty command");
	split_bad("/bin/x \"abc", "unterminated double quote");
	split_bad("/bin/x 'abc", "unterminated single quote");
	split_bad("/bin/x \"a\\\"", "unterminated double quote");
	split_bad("/bin/x abc\\", "backslash at the end");
}

static void
test_cmdlimit(void **state)
{
	struct config	*c;

	(void)state;
	c = config_default();
	assert_true(config_cmdlimit(c, "MAIL") == -1);
	load_release(c);

	c = expect_ok(LISTEN "command-limit 7\n");
	assert_true(config_cmdlimit(c, "MAIL") == 7);
	assert_true(config_cmdlimit(c, "XYZZY") == 7);
	load_release(c);

	c = expect_ok(LISTEN "command-limit mail 3\ncommand-limit RCPT 9\n");
	assert_true(config_cmdlimit(c, "MAIL") == 3);
	assert_true(config_cmdlimit(c, "RCPT") == 9);
	assert_true(config_cmdlimit(c, "NOOP") == CMD_LIMIT_DEFAULT);
	load_release(c);

	c = expect_ok(LISTEN "command-limit MAIL 3\ncommand-limit * 50\n");
	assert_true(config_cmdlimit(c, "MAIL") == 3);
	assert_true(config_cmdlimit(c, "NOOP") == 50);
	load_release(c);

	/* Both forms set the same default: the later line wins. */
	c = expect_ok(LISTEN "command-limit * 50\ncommand-limit 60\n");
	assert_true(config_cmdlimit(c, "HELO") == 60);
	load_release(c);
}

static void
test_cmdlimit_full(void **state)
{
	struct config	*c;
	char		 text[4096];
	size_t		 n;
	int		 i;

	(void)state;
	n = (size_t)snprintf(text, sizeof(text), LISTEN);
	for (i = 0; i < MAX_CMDLIMITS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "command-limit X%c%c 5\n", 'A' + i / 26, 'A' + i % 26);
	c = expect_ok(text);
	assert_int_equal(c->c_lim.lim_ncmdlimits, MAX_CMDLIMITS);
	assert_true(config_cmdlimit(c, "XAF") == 5);
	load_release(c);
	/* Overwriting an entry is fine when full, a new one is not. */
	n += (size_t)snprintf(text + n, sizeof(text) - n,
	    "command-limit xaa 6\ncommand-limit ZZZ 5\n");
	expect_error(text, MAX_CMDLIMITS + 3,
	    "command-limit: more than 32 commands");
}

/* print, load the printout, print again: the two texts are the same. */
static char *
print_text(const struct config *c)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*fp;

	fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	config_print(fp, c);
	fclose(fp);
	return buf;
}

static void
roundtrip(const char *text)
{
	struct config	*c1, *c2;
	char		*t1, *t2;

	c1 = expect_ok(text);
	t1 = print_text(c1);
	c2 = expect_ok(t1);
	t2 = print_text(c2);
	assert_string_equal(t1, t2);
	assert_int_equal(c1->c_dlv.dl_per_rcpt, c2->c_dlv.dl_per_rcpt);
	if (c1->c_dlv.dl_argv != NULL) {
		size_t	 i;

		for (i = 0; c1->c_dlv.dl_argv[i] != NULL; i++)
			assert_string_equal(c1->c_dlv.dl_argv[i],
			    c2->c_dlv.dl_argv[i]);
		assert_null(c2->c_dlv.dl_argv[i]);
	}
	free(t1);
	free(t2);
	load_release(c1);
	load_release(c2);
}

/*
 * The longest network lists, MAX_CLIENT_NETS each, over several lines as
 * the manual allows, of the longest addresses: their canonical form must
 * keep to the words and the length of a line.
 */
static char *
nets_conf(void)
{
	static const char *const kw[] = { "accept clients", "reject clients",
	    "auth exempt", "bare-newline-exempt" };
	char	*buf;
	size_t	 len;
	FILE	*fp;
	int	 i, j;

	fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	fputs(LISTEN, fp);
	for (i = 0; i < (int)NITEMS(kw); i++)
		for (j = 0; j < MAX_CLIENT_NETS; j++) {
			if (j % 32 == 0)
				fputs(kw[i], fp);
			fprintf(fp, " 1111:2222:3333:4444:5555:6666:%04x:"
			    "%04x/128", i + 0x1000, j + 0x1000);
			if (j % 32 == 31)
				putc('\n', fp);
		}
	fclose(fp);
	return buf;
}

static void
test_roundtrip(void **state)
{
	char	*text;
	size_t	 len;

	(void)state;
	roundtrip(full_conf);
	roundtrip(LISTEN);
	roundtrip(LISTEN "deliver discard\nmax-message-size 0\n"
	    "command-limit * 4\n");
	roundtrip(LISTEN
	    "deliver \"/bin/x 'a \\\\ \\\"b' \\\"c\\\\\\\"\\\"\"\n"
	    "banner \"we say \\\"hi\\\" \\\\o/\"\n"
	    "spool \"/var/sp ool/#x\"\nmax-message-size 1536\n"
	    "timeout 90s\nlisten on \"/tmp/a b\" mode 0600\n");
	roundtrip(LISTEN "max-message-size 1073741825\n");
	/*
	 * A backslash that escapes nothing is printed as it is: a line of
	 * them near the longest a line may be loads again.
	 */
	text = xmalloc(sizeof(LISTEN) + MAX_CONF_LINE + 1);
	len = (size_t)snprintf(text, MAX_CONF_LINE, LISTEN "deliver \"/bin/x");
	while (len + 3 + 2 <= strlen(LISTEN) + MAX_CONF_LINE) {
		memcpy(text + len, " \\d", 3);
		len += 3;
	}
	memcpy(text + len, "\"\n", 3);
	roundtrip(text);
	free(text);
	roundtrip(LISTEN "deliver \"/bin/x \\\\\\\\ \\\\d '\\\\\\\"'\"\n");
	roundtrip(text = nets_conf());
	free(text);
	roundtrip(LISTEN "tls tickets no\n");
	roundtrip(LISTEN "tls protocols TLSv1.2\nauth mechanisms LOGIN\n"
	    "tls ciphers HIGH\nauth failure-delay 0\n"
	    "listen on 127.0.0.2 proxy-protocol from 10.0.0.0/8 ::1 "
	    "2001:db8:0:0::/64 lmtp auth-plaintext\n");
	text = with_files(tls_auth_conf);
	roundtrip(text);
	free(text);
	text = with_files("tls certificate \"%C\" key %K\n"
	    "auth checkpassword \"/bin/false 'a \\\\ b' \\\"c\\\"\"\n"
	    "tls ciphers \"ECDHE+AESGCM !aNULL\"\n"
	    "listen on 127.0.0.1 require-starttls auth proxy-protocol\n");
	roundtrip(text);
	free(text);
}

/* A file of lines for the address tables, in tmpdir. */
static const char *
table_file(const char *name, const char *text)
{
	static char	 path[160];
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	return path;
}

/*
 * The policy directives: parsed, loaded (the tables), printed in their
 * canonical form and read back the same; a bad table fails the load
 * with its file:line.
 */
static void
test_policy(void **state)
{
	struct config	*c;
	char		 text[2048], want[512], *t, *log;
	char		 rcpts[160];

	(void)state;
	strlcpy(rcpts, table_file("rcpts", "# users\nanne@example.org\n"
	    "@Example.NET\n"), sizeof(rcpts));
	table_file("senders", "<>\nbob@example.org\n");
	snprintf(text, sizeof(text), LISTEN
	    "accept recipients %s ignore-case\n"
	    "accept senders %s/senders\n"
	    "reject senders \"%s/senders\"\n"
	    "accept clients 10.0.0.0/8 ::1\n"
	    "accept clients 192.168.1.1\n"
	    "reject clients 10.1.0.0/16\n"
	    "recipient-delimiter +\n"
	    "policy inet:127.0.0.1:10023\n"
	    "policy-timeout 1m\n"
	    "policy-default dunno\n"
	    "policy-stages data rcpt\n", rcpts, tmpdir, tmpdir);
	c = expect_ok(text);
	assert_non_null(c->c_pol.po_table[PT_RCPT_ACCEPT]);
	assert_int_equal(policy_table_count(c->c_pol.po_table[PT_RCPT_ACCEPT]),
	    2);
	assert_true(policy_table_lookup(c->c_pol.po_table[PT_RCPT_ACCEPT],
	    "ANNE+x@EXAMPLE.org", c->c_pol.po_rcpt_delim));
	assert_int_equal(c->c_pol.po_nclients[PN_ACCEPT], 3);
	assert_int_equal(c->c_pol.po_nclients[PN_REJECT], 1);
	assert_int_equal(c->c_pol.po_rcpt_delim, '+');
	assert_int_equal(c->c_pol.po_timeout, 60);
	assert_int_equal(c->c_pol.po_default, POLICY_DUNNO);
	assert_int_equal(c->c_pol.po_stages,
	    POLICY_STAGE_RCPT | POLICY_STAGE_DATA);
	t = print_text(c);
	snprintf(want, sizeof(want), "accept clients 10.0.0.0/8 ::1/128 "
	    "192.168.1.1/32\naccept recipients \"%s\" ignore-case\n"
	    "accept senders \"%s/senders\"\n", rcpts, tmpdir);
	assert_non_null(strstr(t, want));
	assert_non_null(strstr(t, "policy inet:127.0.0.1:10023\n"
	    "policy-default dunno\npolicy-stages rcpt data\n"
	    "policy-timeout 60\n"));
	assert_non_null(strstr(t, "recipient-delimiter +\n"
	    "reject clients 10.1.0.0/16\nreject senders"));
	free(t);
	load_release(c);

	/* IPv6 in brackets; a name. */
	c = expect_ok(LISTEN "policy inet:[::1]:10023\n");
	assert_string_equal(c->c_pol.po_server, "inet:[::1]:10023");
	load_release(c);
	c = expect_ok(LISTEN "policy inet:policy.example-1.org:10023\n");
	load_release(c);
	/* A fully qualified name, with its final dot: it resolves. */
	c = expect_ok(LISTEN "policy inet:policy.example.org.:10023\n");
	assert_string_equal(c->c_pol.po_server,
	    "inet:policy.example.org.:10023");
	load_release(c);

	/* # is printed in quotes, so that the output loads again. */
	c = expect_ok(LISTEN "recipient-delimiter \"#\"\n");
	t = print_text(c);
	assert_non_null(strstr(t, "recipient-delimiter \"#\"\n"));
	load_release(c);
	c = expect_ok(t);
	assert_int_equal(c->c_pol.po_rcpt_delim, '#');
	free(t);
	load_release(c);
	expect_error(LISTEN "recipient-delimiter #\n", 2,
	    "recipient-delimiter: expected one of !#$%&'*+-/=?^_`{|}~ "
	    "(# in quotes: \"#\")");
	roundtrip(text);

	/* Without policy, none of its lines; the defaults. */
	c = expect_ok(LISTEN "policy-timeout 5\n");
	t = print_text(c);
	assert_null(strstr(t, "policy"));
	free(t);
	load_release(c);
	c = expect_ok(LISTEN "policy unix:/run/policy.sock\n");
	assert_int_equal(c->c_pol.po_default, POLICY_DEFER);
	assert_int_equal(c->c_pol.po_stages, POLICY_STAGE_RCPT);
	assert_int_equal(c->c_pol.po_timeout, DEF_POLICY_TIMEOUT);
	load_release(c);

	/* A table once only; a broken or missing one fails the load. */
	snprintf(text, sizeof(text), LISTEN "accept recipients %s\n"
	    "accept recipients %s\n", rcpts, rcpts);
	expect_error(text, 3, "accept recipients: already set on line 2");
	table_file("bad", "a@b\nx@y z@w\n");
	snprintf(text, sizeof(text), LISTEN "reject senders %s/bad\n",
	    tmpdir);
	assert_null(c = load(text, &log));
	snprintf(want, sizeof(want), "%s/bad:2: more than one address",
	    tmpdir);
	assert_log_has(log, want);
	free(log);
	snprintf(text, sizeof(text), LISTEN "accept senders %s/none\n",
	    tmpdir);
	assert_null(c = load(text, &log));
	free(log);
}

/* The canonical form of one config, line by line. */
static void
test_print_golden(void **state)
{
	static const char want[] =
	    "auth failure-delay 1\n"
	    "auth max-failures 3\n"
	    "auth max-failures-per-address 10\n"
	    "auth mechanisms LOGIN PLAIN\n"
	    "banner \"ESMTP ready\"\n"
	    "bare-newline keep\n"
	    "batch-scheduling yes\n"
	    "chroot /var/empty\n"
	    "chunking yes\n"
	    "command-limit * 100\n"
	    "command-limit RCPT 11\n"
	    "command-limit NOOP 5\n"
	    "# control /run/smtpd/smtpd.sock (the default)\n"
	    "deliver \"/usr/sbin/sendmail -i -f %{sender} -- "
	    "%{recipients}\"\n"
	    "deliver-timeout 3600\n"
	    "# deliver-user _smtpd-deliver (the default; nobody when there is "
	    "no _smtpd-deliver)\n"
	    "enhanced-status-codes no\n"
	    "hostname mx.example.org\n"
	    "junk-command-limit 100\n"
	    "max-clients 100\n"
	    "max-clients-per-address 200\n"
	    "max-line-length 2048\n"
	    "max-local-part 64\n"
	    "max-message-size 10M\n"
	    "max-recipients 50\n"
	    "max-session-time 3600\n"
	    "max-sessions-per-child 50\n"
	    "pidfile /run/smtpd.pid\n"
	    "prefork 8\n"
	    "prefork-idle-time 100\n"
	    "received-header no\n"
	    "shutdown-grace 30\n"
	    "smtputf8 yes\n"
	    "spool /var/spool/smtpd\n"
	    "timeout 120\n"
	    "tls protocols TLSv1.2 TLSv1.3\n"
	    "tls tickets yes\n"
	    "user _mail\n"
	    "listen on 127.0.0.1 port 25\n"
	    "listen on ::1 port 2525\n"
	    "listen on * port 2424 lmtp\n"
	    "listen on localhost port 24 lmtp\n"
	    "listen on /run/smtpd.sock mode 0660 lmtp\n";
	struct config	*c;
	char		*t;

	(void)state;
	c = expect_ok(full_conf);
	t = print_text(c);
	assert_string_equal(t, want);
	free(t);
	load_release(c);

	/*
	 * Defaults: no chroot, command-limit or deliver; user, pidfile,
	 * control and deliver-user as comments, which read back as nothing.
	 */
	c = config_default();
	t = print_text(c);
	assert_non_null(strstr(t, "\n# user _smtpd (the default; nobody when "
	    "there is no _smtpd)\n"));
	assert_non_null(strstr(t, "\n# pidfile /var/run/smtpd.pid (the "
	    "default; none with -d)\n"));
	assert_non_null(strstr(t, "\n# control /run/smtpd/smtpd.sock (the "
	    "default)\n"));
	assert_non_null(strstr(t, "\n# deliver-user _smtpd-deliver (the "
	    "default; nobody when there is no _smtpd-deliver)\n"));
	assert_non_null(strstr(t, "banner \"ESMTP smtpd\"\n"));
	assert_non_null(strstr(t, "max-message-size 32M\n"));
	assert_non_null(strstr(t, "received-header yes\n"));
	assert_non_null(strstr(t, "smtputf8 no\n"));
	assert_null(strstr(t, "\nuser"));
	assert_null(strstr(t, "\npidfile"));
	assert_null(strstr(t, "\ncontrol"));
	assert_null(strstr(t, "\ndeliver-user"));
	assert_null(strstr(t, "chroot"));
	assert_null(strstr(t, "bare-newline-exempt"));
	assert_null(strstr(t, "\ncommand-limit"));
	assert_non_null(strstr(t, "\njunk-command-limit 100\n"));
	assert_non_null(strstr(t, "\nmax-session-time 3600\n"));
	assert_null(strstr(t, "\ndeliver "));
	assert_null(strstr(t, "listen"));
	assert_null(strstr(t, "tls c"));
	assert_null(strstr(t, "auth p"));
	assert_null(strstr(t, "auth c"));
	free(t);
	load_release(c);
}

/* The lines of the TLS, AUTH and listener options, in canonical form. */
static void
test_print_tls_auth(void **state)
{
	static const char tmpl[] =
	    "auth failure-delay 0\n"
	    "auth max-failures 1000\n"
	    "auth max-failures-per-address 10\n"
	    "auth mechanisms PLAIN\n"
	    "auth passwd \"%P\"\n"
	    "banner \"ESMTP smtpd\"\n";
	static const char tmpl2[] =
	    "tls certificate \"%C\" key \"%K\"\n"
	    "tls ciphers \"HIGH:!aNULL:!MD5\"\n"
	    "tls protocols TLSv1.3\n"
	    "tls tickets yes\n"
	    "# user _smtpd (the default; nobody when there is no _smtpd)\n"
	    "listen";
	static const char listeners[] =
	    "listen on 127.0.0.1 port 465 tls\n"
	    "listen on 127.0.0.1 port 587 require-starttls require-auth\n"
	    "listen on ::1 port 25 starttls auth auth-plaintext "
	    "proxy-protocol timeout 5\n"
	    "listen on 127.0.0.2 port 24 proxy-protocol timeout 60 from "
	    "10.0.0.0/8 ::1/128 192.0.2.7/32 lmtp\n"
	    "listen on 127.0.0.3 port 26 proxy-protocol timeout 5 from "
	    "2001:db8::/32\n"
	    "listen on /tmp/x.sock mode 0666 tls proxy-protocol timeout 3 "
	    "lmtp\n"
	    "listen on 127.0.0.4 port 25 require-starttls require-auth\n";
	struct config	*c;
	char		*text, *t, *want;

	(void)state;
	text = with_files(tls_auth_conf);
	c = expect_ok(text);
	free(text);
	t = print_text(c);
	want = with_files(tmpl);
	assert_true(strncmp(t, want, strlen(want)) == 0);
	free(want);
	want = with_files(tmpl2);
	assert_non_null(strstr(t, want));
	free(want);
	assert_non_null(strstr(t, listeners));
	assert_string_equal(strstr(t, "listen on"), listeners);
	free(t);
	load_release(c);

	c = expect_ok(LISTEN "auth checkpassword \"/bin/x a\"\n");
	t = print_text(c);
	assert_non_null(strstr(t, "auth checkpassword \"/bin/x a\"\n"
	    "auth failure-delay 1\n"));
	free(t);
	load_release(c);
}

/* A whole file, NUL-terminated, or NULL if it cannot be opened. */
static char *
read_path(const char *path)
{
	char	*buf;
	int	 fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return NULL;
	buf = read_all(fd);
	close(fd);
	return buf;
}

/*
 * The fixtures of tests/conf (or $TESTCONF): good.conf prints as
 * good.out; bad.conf logs exactly the lines of bad.err, each of which
 * follows "<path>:".  Skipped when not run from the source tree.
 */
static void
test_fixtures(void **state)
{
	const char	*dir = getenv("TESTCONF");
	struct config	*c;
	char		 path[256], want[512];
	char		*golden, *t, *log, *line, *nl;
	int		 nlog = 0, nwant = 0;

	(void)state;
	if (dir == NULL)
		dir = "tests/conf";
	snprintf(path, sizeof(path), "%s/good.out", dir);
	if ((golden = read_path(path)) == NULL)
		skip();
	snprintf(path, sizeof(path), "%s/good.conf", dir);
	c = load_path(path, &log);
	assert_non_null(c);
	t = print_text(c);
	assert_string_equal(t, golden);
	free(t);
	free(golden);
	free(log);
	load_release(c);

	snprintf(path, sizeof(path), "%s/bad.err", dir);
	assert_non_null(golden = read_path(path));
	snprintf(path, sizeof(path), "%s/bad.conf", dir);
	assert_null(c = load_path(path, &log));
	for (line = golden; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		snprintf(want, sizeof(want), "]: %s:%s\n", path, line);
		assert_log_has(log, want);
		nwant++;
	}
	for (t = log; (t = strchr(t, '\n')) != NULL; t++)
		nlog++;
	assert_int_equal(nlog, nwant);
	free(golden);
	free(log);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_sorted),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_deliver_forms),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_lexical),
		cmocka_unit_test(test_quoting_comments),
		cmocka_unit_test(test_sizes_durations),
		cmocka_unit_test(test_whole_config),
		cmocka_unit_test(test_all_errors),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_split_argv),
		cmocka_unit_test(test_cmdlimit),
		cmocka_unit_test(test_cmdlimit_full),
		cmocka_unit_test(test_tls_auth),
		cmocka_unit_test(test_checkpassword),
		cmocka_unit_test(test_subform_repeats),
		cmocka_unit_test(test_load_files),
		cmocka_unit_test(test_conflicts),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_print_golden),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_print_tls_auth),
		cmocka_unit_test(test_fixtures),
	};

	return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
