/*
 * test_session.c: the SMTP state machine driven over a socketpair.  A
 * forked child runs session_run() on one end; the test writes a whole
 * client script, half-closes, and compares the transcript of replies.
 */

#include <sys/types.h>
#include <sys/socket.h>
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

#include "smtpd.h"
#include "internal.h"

static struct config	*conf;
static struct listener	 lst;
static char		 outdir[] = "/tmp/test_session.XXXXXX";
static char		 outfile[sizeof(outdir) + 4];

static int
setup(void **state)
{
	int	 fd;

	(void)state;
	conf = config_default();
	free(conf->c_hostname);
	conf->c_hostname = xstrdup("mx.test");
	conf->c_dlv.dl_mode = DELIVER_DISCARD;
	conf->c_lim.lim_timeout = 5;
	memset(&lst, 0, sizeof(lst));
	lst.l_flags = 0;
	strlcpy(lst.l_name, "test", sizeof(lst.l_name));
	/* The broker knows the listener by its place in the list. */
	TAILQ_INSERT_TAIL(&conf->c_listeners, &lst, l_entry);
	conf->c_nlisteners = 1;
	/* The program runs as the deliver-user: a place it can write. */
	strlcpy(outdir, "/tmp/test_session.XXXXXX", sizeof(outdir));
	if (mkdtemp(outdir) == NULL || chmod(outdir, 0777) == -1)
		return -1;
	snprintf(outfile, sizeof(outfile), "%s/out", outdir);
	if ((fd = open(outfile, O_WRONLY | O_CREAT | O_EXCL, 0666)) == -1 ||
	    fchmod(fd, 0666) == -1)
		return -1;
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	session_quit = 0;
	if (conf->c_dlv.dl_mode == DELIVER_PROGRAM) {
		free(conf->c_dlv.dl_argv[0]);
		free(conf->c_dlv.dl_argv[1]);
		free(conf->c_dlv.dl_argv[2]);
		free(conf->c_dlv.dl_argv);
		conf->c_dlv.dl_argv = NULL;
		conf->c_dlv.dl_mode = DELIVER_DISCARD;
	}
	TAILQ_REMOVE(&conf->c_listeners, &lst, l_entry);
	config_free(conf);
	unlink(outfile);
	rmdir(outdir);
	return 0;
}

/* Deliver into outfile: "/bin/cp /dev/stdin outfile", no Received. */
static void
deliver_to_file(void)
{
	if (conf->c_dlv.dl_mode == DELIVER_PROGRAM)
		return;		/* set up by an earlier check in this test */
	conf->c_dlv.dl_mode = DELIVER_PROGRAM;
	conf->c_dlv.dl_argv = xcalloc(4, sizeof(char *));
	conf->c_dlv.dl_argv[0] = xstrdup("/bin/cp");
	conf->c_dlv.dl_argv[1] = xstrdup("/dev/stdin");
	conf->c_dlv.dl_argv[2] = xstrdup(outfile);
	conf->c_dlv.dl_received = 0;
}

/* Run a session on the script; return the transcript (malloc'd). */
static char *
run_script(const char *script, size_t len)
{
	char	*out = NULL;
	size_t	 olen = 0;
	ssize_t	 n;
	char	 buf[4096];
	int	 sv[2], status;
	pid_t	 pid, broker;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	if ((pid = fork()) == 0) {
		close(sv[0]);
		broker = broker_local(conf);
		session_run(conf, &lst, sv[1], NULL, 0);
		_exit(broker_local_end(broker) == 0 ? 0 : 1);
	}
	close(sv[1]);
	assert_int_equal(write(sv[0], script, len), (ssize_t)len);
	shutdown(sv[0], SHUT_WR);
	while ((n = read(sv[0], buf, sizeof(buf))) > 0) {
		out = xreallocarray(out, olen + (size_t)n + 1, 1);
		memcpy(out + olen, buf, (size_t)n);
		olen += (size_t)n;
	}
	close(sv[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (out == NULL)
		out = xstrdup("");
	else
		out[olen] = '\0';
	return out;
}

/*
 * Compare a transcript with the expected replies, one per line ending in
 * "\n"; an expected line ending in '*' matches any reply with that prefix.
 */
static void
check(const char *script, const char *expect)
{
	char		*out, *o, *e, *exp, *eol, *oeol;
	size_t		 elen;

	out = run_script(script, strlen(script));
	exp = xstrdup(expect);
	for (o = out, e = exp; *e != '\0'; e = eol + 1) {
		eol = strchr(e, '\n');
		assert_non_null(eol);
		*eol = '\0';
		oeol = strstr(o, "\r\n");
		if (oeol == NULL)
			fail_msg("missing reply \"%s\"; got \"%s\"", e, out);
		*oeol = '\0';
		elen = strlen(e);
		if (elen > 0 && e[elen - 1] == '*') {
			if (strncmp(o, e, elen - 1) != 0)
				fail_msg("reply \"%s\", expected \"%s\"", o, e);
		} else if (strcmp(o, e) != 0)
			fail_msg("reply \"%s\", expected \"%s\"", o, e);
		o = oeol + 2;
	}
	if (*o != '\0')
		fail_msg("unexpected replies \"%s\"", o);
	free(exp);
	free(out);
}

static char *
read_outfile(size_t *lenp)
{
	struct stat	 st;
	char		*buf;
	int		 fd;

	assert_true((fd = open(outfile, O_RDONLY)) != -1);
	assert_int_equal(fstat(fd, &st), 0);
	buf = xmalloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*lenp = (size_t)st.st_size;
	return buf;
}

#define GREET	"220 mx.test ESMTP smtpd\n"
#define EHLO_REPLY \
	"250-mx.test\n250-SIZE 33554432\n250-8BITMIME\n250-PIPELINING\n" \
	"250-CHUNKING\n250 HELP\n"
#define TXN	"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
#define TXN_OK	EHLO_REPLY "250 OK\n250 OK\n354 End data with <CR><LF>.<CR><LF>\n"

static void
test_greeting_quit(void **state)
{
	(void)state;
	check("QUIT\r\nNOOP\r\n", GREET "221 Bye\n");
	check("QUIT x\r\nQUIT\r\n", GREET "501 Syntax: QUIT\n221 Bye\n");
}

static void
test_line_endings(void **state)
{
	(void)state;
	check("NOOP\n", GREET "250 OK\n");
	check("NOOP\r\r\n", GREET "250 OK\n");
	check("noop ignored\r\n", GREET "250 OK\n");
	check("\r\n", GREET "500 Error: bad syntax\n");
	check("N\xc3\xa9OP\r\n", GREET "500 Error: bad syntax\n");
	check("NOOP \xc3\xa9\r\n", GREET "500 Error: strict ASCII mode\n");
	/* NOOP\tx: TAB is no separator, the verb is "NOOP\tX". */
	check("NOOP\tx\r\n", GREET "500 Error: command \"NOOP?X\" not "
	    "recognized\n");
}

static void
test_line_too_long(void **state)
{
	char	 buf[3000];

	(void)state;
	/* More than max-line-length octets, then in sync again. */
	memset(buf, 'A', sizeof(buf));
	memcpy(buf + 2000, "\r\nNOOP\r\n", 9);
	check(buf, GREET "500 Command line too long\n250 OK\n");
	/* A 600-octet NOOP fits max-line-length but not 512. */
	memcpy(buf, "NOOP ", 5);
	memset(buf + 5, 'x', 595);
	memcpy(buf + 600, "\r\n", 3);
	check(buf, GREET "500 Command line too long\n");
	/* 512 octets are fine. */
	buf[512] = '\0';
	strlcat(buf, "\r\n", sizeof(buf));
	check(buf, GREET "250 OK\n");
}

static void
test_mail_allowance(void **state)
{
	char	 buf[700];

	(void)state;
	/* After EHLO MAIL may be 512 + 26 octets long. */
	strlcpy(buf, "EHLO c\r\nMAIL FROM:<", sizeof(buf));
	memset(buf + strlen(buf), 'a', 538 - 14);
	buf[8 + 538 - 3] = '\0';
	strlcat(buf, "@b>\r\n", sizeof(buf));
	check(buf, GREET EHLO_REPLY "250 OK\n");
	/* After HELO it may not. */
	memcpy(buf, "HELO c", 6);
	check(buf, GREET "250 mx.test\n500 Command line too long\n");
}

static void
test_unknown(void **state)
{
	(void)state;
	check("FOO\r\nBAR x\r\nNOOP\r\nBAZ\r\nQUX\r\nMAILX\r\nNOOP\r\n",
	    GREET
	    "500 Error: command \"FOO\" not recognized\n"
	    "500 Error: command \"BAR\" not recognized\n"
	    "250 OK\n"
	    "500 Error: command \"BAZ\" not recognized\n"
	    "500 Error: command \"QUX\" not recognized\n"
	    "502 5.5.1 Too many unrecognized commands, goodbye.\n");
	check("LHLO x\r\n", GREET "500 Error: command \"LHLO\" not "
	    "recognized\n");
}

static void
test_helo_ehlo(void **state)
{
	(void)state;
	check("HELO\r\nEHLO\r\nHELO -x\r\nEHLO a\x01" "b\r\nHELO c\r\n",
	    GREET "501 Syntax: HELO hostname\n501 Syntax: EHLO hostname\n"
	    "501 Syntax: HELO hostname\n501 Syntax: EHLO hostname\n"
	    "250 mx.test\n");
	conf->c_smtputf8 = 1;
	conf->c_lim.lim_maxmsgsize = 0;
	check("EHLO c\r\n", GREET "250-mx.test\n250-8BITMIME\n"
	    "250-PIPELINING\n250-CHUNKING\n250-SMTPUTF8\n250 HELP\n");
}

static void
test_mail(void **state)
{
	(void)state;
	check("MAIL FROM:<a@b>\r\n", GREET "503 Error: send HELO first\n");
	check("HELO c\r\nMAIL\r\nMAIL TO:<a@b>\r\nMAIL FROM:\r\n"
	    "MAIL FROM:<a@b> SIZE=1\r\nMAIL FROM:<-f@b>\r\n"
	    "MAIL FROM:<a\x01@b>\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<c@d>\r\n"
	    "MAIL FROM:<a@b@c>\r\n",
	    GREET "250 mx.test\n"
	    "501 Syntax: MAIL FROM: <address>\n"
	    "501 Syntax: MAIL FROM: <address>\n"
	    "501 Syntax: MAIL FROM: <address>\n"
	    "501 Syntax: MAIL FROM: <address>\n"
	    "553 5.1.3 Error: malformed address\n"
	    "553 5.1.3 Error: malformed address\n"
	    "250 OK\n"
	    "503 Error: nested MAIL command\n"
	    "553 5.1.3 Error: malformed address\n");
}

static void
test_mail_params(void **state)
{
	(void)state;
	check("EHLO c\r\n"
	    "MAIL FROM: Anne <anne@example.com>\r\n"
	    "MAIL FROM:<anne@example.com> SIZE 10000\r\n"
	    "MAIL FROM:<a@b> BODY 9BIT\r\n"
	    "MAIL FROM:<a@b> BODY=9BIT\r\n"
	    "MAIL FROM:<a@b> FOO=BAR SIZE=abc\r\n"
	    "MAIL FROM:<a@b> SMTPUTF8=1\r\n"
	    "MAIL FROM:<a@b> SMTPUTF8\r\n"
	    "MAIL FROM:<a@b> SIZE=1 SIZE=999999999999\r\n"
	    "MAIL FROM:<a@b> SIZE=99999999999999999999999999\r\n"
	    "MAIL FROM:<a@b> FOO\r\n"
	    "MAIL FROM:<a@b> X=\r\n"
	    "MAIL FROM:<a@b> body=8bitmime size=0\r\n",
	    GREET EHLO_REPLY
	    "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]\n"
	    "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]\n"
	    "501 Error: BODY can only be one of 7BIT, 8BITMIME\n"
	    "501 Error: BODY can only be one of 7BIT, 8BITMIME\n"
	    "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]\n"
	    "501 Error: SMTPUTF8 takes no arguments\n"
	    "501 Error: SMTPUTF8 disabled\n"
	    "552 Error: message size exceeds fixed maximum message size\n"
	    "552 Error: message size exceeds fixed maximum message size\n"
	    "555 MAIL FROM parameters not recognized or not implemented\n"
	    "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]\n"
	    "250 OK\n");
}

static void
test_rcpt(void **state)
{
	(void)state;
	conf->c_lim.lim_maxrcpt = 2;
	check("RCPT TO:<a@b>\r\nEHLO c\r\nRCPT TO:<a@b>\r\nMAIL FROM:<>\r\n"
	    "RCPT\r\nRCPT FROM:<a@b>\r\nRCPT TO:\r\nRCPT TO:<>\r\n"
	    "RCPT TO:<> NOTIFY=NEVER\r\nRCPT TO:<-x@y>\r\n"
	    "RCPT TO:<a@b> NOTIFY=NEVER\r\nRCPT TO:<a@b> X=\r\n"
	    "RCPT TO:<a@b>\r\nRCPT TO:<a@b>\r\nRCPT TO:<c@d>\r\n",
	    GREET "503 Error: send HELO first\n" EHLO_REPLY
	    "503 Error: need MAIL command\n250 OK\n"
	    "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]\n"
	    "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]\n"
	    "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]\n"
	    "553 5.1.3 Error: malformed address\n"
	    "553 5.1.3 Error: malformed address\n"
	    "553 5.1.3 Error: malformed address\n"
	    "555 RCPT TO parameters not recognized or not implemented\n"
	    "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]\n"
	    "250 OK\n250 OK\n"
	    "452 4.5.3 Error: too many recipients\n");
}

static void
test_data_states(void **state)
{
	(void)state;
	check("DATA\r\nHELO c\r\nDATA\r\nMAIL FROM:<a@b>\r\nDATA\r\n"
	    "RCPT TO:<c@d>\r\nDATA x\r\nRSET\r\nDATA\r\n",
	    GREET "503 Error: send HELO first\n250 mx.test\n"
	    "503 Error: need RCPT command\n250 OK\n"
	    "503 Error: need RCPT command\n250 OK\n501 Syntax: DATA\n"
	    "250 OK\n503 Error: need RCPT command\n");
}

static void
test_data_pipelined(void **state)
{
	(void)state;
	check(TXN "hello\r\n.\r\nMAIL FROM:<a@b>\r\nQUIT\r\n",
	    GREET TXN_OK "250 OK id=*\n250 OK\n221 Bye\n");
	/* EOF after the final dot: still delivered and answered. */
	check(TXN "hello\r\n.\r\n", GREET TXN_OK "250 OK id=*\n");
	/* EOF before it: nothing delivered, no reply. */
	check(TXN "hello\r\n", GREET TXN_OK);
}

static void
check_message(const char *data, const char *want)
{
	char	*script, *got;
	size_t	 len;

	deliver_to_file();
	xasprintf(&script, TXN "%s", data);
	check(script, GREET TXN_OK "250 OK id=*\n");
	got = read_outfile(&len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(got, want, len);
	free(got);
	free(script);
}

static void
test_data_unstuff(void **state)
{
	(void)state;
	check_message("..x\r\n.x\r\n.\r\n", ".x\r\nx\r\n");
	check_message(".\r\n", "");
}

static void
test_data_smuggling(void **state)
{
	(void)state;
	check_message("Testing\n.\r\nNO SMUGGLING\r\n.\r\n",
	    "Testing\n.\r\nNO SMUGGLING\r\n");
	check_message("Testing\r\n.\nX\r\n.\r\n", "Testing\r\n\nX\r\n");
	check_message("a\r.\rb\r\n.\r\n", "a\r.\rb\r\n");
	check_message("a\n.\nb\r\n.\r\n", "a\n.\nb\r\n");
	check_message(".\n...\r\n.\r\n", "\n...\r\n");
}

static void
test_data_limits(void **state)
{
	char	*big, *p;

	(void)state;
	conf->c_lim.lim_maxmsgsize = 100;
	big = xmalloc(4000);
	p = big;
	p += snprintf(p, 200, TXN);
	memset(p, 'x', 150);
	p += 150;
	strlcpy(p, "\r\n.\r\nNOOP\r\n", 20);
	check(big, GREET
	    "250-mx.test\n250-SIZE 100\n250-8BITMIME\n250-PIPELINING\n"
	    "250-CHUNKING\n250 HELP\n250 OK\n250 OK\n"
	    "354 End data with <CR><LF>.<CR><LF>\n"
	    "552 Error: Too much mail data\n250 OK\n");
	/* A long line: 600 LF 600 CRLF is one 1203-octet line. */
	conf->c_lim.lim_maxmsgsize = 0;
	p = big + snprintf(big, 200, TXN);
	memset(p, 'y', 1203);
	p[600] = '\n';
	strlcpy(p + 1201, "\r\n.\r\nRCPT TO:<a@b>\r\n", 40);
	check(big, GREET "250-mx.test\n250-8BITMIME\n250-PIPELINING\n"
	    "250-CHUNKING\n250 HELP\n250 OK\n250 OK\n"
	    "354 End data with <CR><LF>.<CR><LF>\n"
	    "500 Line too long (see RFC5321 4.5.3.1.6)\n"
	    "503 Error: need MAIL command\n");
	free(big);
}

static void
test_vrfy_expn_help(void **state)
{
	(void)state;
	check("VRFY\r\nVRFY <a@b>\r\nVRFY <>\r\nVRFY -x\r\nVRFY a\x01" "b\r\n"
	    "EXPN\r\nEXPN x\r\n",
	    GREET "501 Syntax: VRFY <address>\n"
	    "252 Cannot VRFY user, but will accept message and attempt "
	    "delivery\n"
	    "252 Cannot VRFY user, but will accept message and attempt "
	    "delivery\n"
	    "502 Could not VRFY -x\n502 Could not VRFY a?b\n"
	    "502 EXPN not implemented\n502 EXPN not implemented\n");
	check("HELP\r\nHELP mail\r\nEHLO c\r\nHELP MAIL\r\nHELP RCPT\r\n"
	    "HELP EXPN\r\nHELP MAIL FROM\r\nHELP NOOP\r\n",
	    GREET "250 Supported commands: DATA EHLO HELO HELP MAIL NOOP "
	    "QUIT RCPT RSET VRFY\n"
	    "250 Syntax: MAIL FROM: <address>\n" EHLO_REPLY
	    "250 Syntax: MAIL FROM: <address> [SP <mail-parameters>]\n"
	    "250 Syntax: RCPT TO: <address> [SP <mail-parameters>]\n"
	    "501 Supported commands: DATA EHLO HELO HELP MAIL NOOP QUIT "
	    "RCPT RSET VRFY\n"
	    "501 Supported commands: DATA EHLO HELO HELP MAIL NOOP QUIT "
	    "RCPT RSET VRFY\n"
	    "250 Syntax: NOOP [ignored]\n");
}

static void
test_starttls(void **state)
{
	(void)state;
	check("STARTTLS x\r\nSTARTTLS\r\n",
	    GREET "501 Syntax: STARTTLS\n454 TLS not available\n");
}

static void
test_command_limit(void **state)
{
	(void)state;
	conf->c_lim.lim_cmdlimit = 2;
	check("NOOP\r\nNOOP\r\nNOOP\r\n", GREET "250 OK\n250 OK\n"
	    "421 4.7.0 NOOP sent too many times\n");
	conf->c_lim.lim_cmdlimit = -1;
	conf->c_lim.lim_ncmdlimits = 1;
	strlcpy(conf->c_lim.lim_cmdlimits[0].cml_verb, "FOO",
	    sizeof(conf->c_lim.lim_cmdlimits[0].cml_verb));
	conf->c_lim.lim_cmdlimits[0].cml_max = 1;
	check("FOO\r\nFOO\r\n", GREET
	    "500 Error: command \"FOO\" not recognized\n"
	    "421 4.7.0 FOO sent too many times\n");
	/* Budgets for named commands only: every other verb has 20. */
	check("NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"
	    "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"
	    "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"
	    "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n", GREET
	    "250 OK\n250 OK\n250 OK\n250 OK\n250 OK\n"
	    "250 OK\n250 OK\n250 OK\n250 OK\n250 OK\n"
	    "250 OK\n250 OK\n250 OK\n250 OK\n250 OK\n"
	    "250 OK\n250 OK\n250 OK\n250 OK\n250 OK\n"
	    "421 4.7.0 NOOP sent too many times\n");
}

static void
test_lmtp(void **state)
{
	(void)state;
	lst.l_flags = LF_LMTP;
	check("HELO x\r\nEHLO x\r\nMAIL FROM:<a@b>\r\nLHLO\r\nLHLO x\r\n"
	    "HELP\r\nHELP HELO\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "RCPT TO:<e@f>\r\nDATA\r\nx\r\n.\r\n",
	    GREET "500 Error: command \"HELO\" not recognized\n"
	    "500 Error: command \"EHLO\" not recognized\n"
	    "503 Error: send HELO first\n"
	    "501 Syntax: EHLO hostname\n" EHLO_REPLY
	    "250 Supported commands: DATA HELP LHLO MAIL NOOP QUIT RCPT "
	    "RSET VRFY\n"
	    "501 Supported commands: DATA HELP LHLO MAIL NOOP QUIT RCPT "
	    "RSET VRFY\n"
	    "250 OK\n250 OK\n250 OK\n354 End data with <CR><LF>.<CR><LF>\n"
	    "250 OK id=*\n250 OK id=*\n");
}

/* RFC 3030 2: `BDAT <size> [LAST]', one SP apart, 1 to 19 digits. */
static void
test_bdat_parse(void **state)
{
	static const struct {
		const char	*line;
		int		 ok;
		unsigned long long size;
		int		 last;
	} t[] = {
		{ "BDAT 0", 0, 0, 0 },
		{ "BDAT 10", 0, 10, 0 },
		{ "bdat 10 last", 0, 10, 1 },
		{ "BDAT 007 LaSt", 0, 7, 1 },
		{ "BDAT 9999999999999999999 LAST", 0, 9999999999999999999ULL,
		    1 },
		{ "BDAT 99999999999999999999", -1, 0, 0 },
		{ "BDAT", -1, 0, 0 },
		{ "BDAT ", -1, 0, 0 },
		{ "BDAT  10", -1, 0, 0 },
		{ "BDAT 10  LAST", -1, 0, 0 },
		{ "BDAT 10 LAST ", -1, 0, 0 },
		{ "BDAT 10 LASTX", -1, 0, 0 },
		{ "BDAT 10 FIRST", -1, 0, 0 },
		{ "BDAT +10", -1, 0, 0 },
		{ "BDAT -1", -1, 0, 0 },
		{ "BDAT 1x", -1, 0, 0 },
		{ "BDAT 10\tLAST", -1, 0, 0 },
		{ "BDAT LAST", -1, 0, 0 },
		{ "BDATA 10", -1, 0, 0 },
	};
	unsigned long long	 size;
	size_t			 i;
	int			 last, r;

	(void)state;
	for (i = 0; i < NITEMS(t); i++) {
		size = 12345;
		last = -1;
		r = session_bdat_parse(t[i].line, strlen(t[i].line), &size,
		    &last);
		if (r != t[i].ok)
			fail_msg("\"%s\": %d, expected %d", t[i].line, r,
			    t[i].ok);
		if (r == 0 && (size != t[i].size || last != t[i].last))
			fail_msg("\"%s\": size %llu last %d", t[i].line, size,
			    last);
	}
}

/* RFC 2034, RFC 3463: the code of a reply that has none. */
static void
test_status_codes(void **state)
{
	static const struct {
		int		 reply;
		const char	*verb;
		const char	*code;
	} t[] = {
		{ 250, "MAIL", "2.1.0" }, { 250, "RCPT", "2.1.5" },
		{ 250, "DATA", "2.0.0" }, { 250, "BDAT", "2.0.0" },
		{ 221, "QUIT", "2.0.0" }, { 252, "VRFY", "2.0.0" },
		{ 220, "STARTTLS", "2.0.0" }, { 421, NULL, "4.7.0" },
		{ 454, "STARTTLS", "4.7.0" }, { 451, "DATA", "4.0.0" },
		{ 500, "", "5.5.2" }, { 501, "MAIL", "5.5.4" },
		{ 504, "AUTH", "5.5.4" }, { 555, "RCPT", "5.5.4" },
		{ 502, "EXPN", "5.5.1" }, { 503, "DATA", "5.5.1" },
		{ 530, "MAIL", "5.7.0" }, { 552, "MAIL", "5.3.4" },
		{ 550, "RCPT", "5.0.0" }, { 354, "DATA", NULL },
		{ 334, "AUTH", NULL }
	};
	const char	*code;
	size_t		 i;

	(void)state;
	for (i = 0; i < NITEMS(t); i++) {
		code = session_status_code(t[i].reply, t[i].verb);
		if (t[i].code == NULL ? code != NULL : code == NULL ||
		    strcmp(code, t[i].code) != 0)
			fail_msg("%d to %s: %s", t[i].reply,
			    t[i].verb != NULL ? t[i].verb : "(none)",
			    code != NULL ? code : "(none)");
	}
}

#define BDAT_TXN	"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
#define BDAT_TXN_OK	EHLO_REPLY "250 OK\n250 OK\n"

/* Chunks are raw and concatenated: no dot-stuffing, no end-of-data. */
static void
test_bdat(void **state)
{
	static const char	 want[] = "a\r\n.\r\n..x\r\nb\r\n";
	char			*got;
	size_t			 len;

	(void)state;
	deliver_to_file();
	check(BDAT_TXN "BDAT 5\r\na\r\n.\r" "BDAT 0\r\n"
	    "BDAT 9 LAST\r\n\n..x\r\nb\r\nNOOP\r\n",
	    GREET BDAT_TXN_OK "250 OK 5 octets received\n"
	    "250 OK 0 octets received\n250 OK id=*\n250 OK\n");
	got = read_outfile(&len);
	assert_int_equal(len, sizeof(want) - 1);
	assert_memory_equal(got, want, len);
	free(got);
	/* BDAT 0 LAST: an empty message. */
	check(BDAT_TXN "BDAT 0 LAST\r\n", GREET BDAT_TXN_OK "250 OK id=*\n");
	got = read_outfile(&len);
	assert_int_equal(len, 0);
	free(got);
}

/* Whatever the reply, a chunk's octets are never commands. */
static void
test_bdat_refused(void **state)
{
	(void)state;
	check("BDAT 6\r\nQUIT\r\nEHLO c\r\nBDAT 6 LAST\r\nQUIT\r\n"
	    "MAIL FROM:<a@b>\r\nBDAT 6\r\nQUIT\r\nRCPT TO:<c@d>\r\n"
	    "BDAT 6\r\nQUIT\r\nNOOP\r\n",
	    GREET "503 Error: send HELO first\n" EHLO_REPLY
	    "503 Error: need MAIL command\n250 OK\n"
	    "503 Error: need RCPT command\n"
	    "503 5.5.1 Error: RCPT after BDAT\n"
	    "503 Error: need RCPT command\n250 OK\n");
	lst.l_flags = LF_REQ_STARTTLS;
	check("BDAT 6\r\nQUIT\r\nNOOP\r\n",
	    GREET "530 Must issue a STARTTLS command first\n250 OK\n");
	/* Malformed comes before every other refusal. */
	check("BDAT 6 \r\nNOOP\r\n",
	    GREET "501 Syntax: BDAT <size> [LAST]\n");
	lst.l_flags = 0;
	conf->c_lim.lim_cmdlimit = 1;
	check("BDAT 6\r\nQUIT\r\nBDAT 6\r\nQUIT\r\nNOOP\r\n",
	    GREET "503 Error: send HELO first\n"
	    "421 4.7.0 BDAT sent too many times\n");
	conf->c_lim.lim_cmdlimit = -1;
	/* Malformed: the size is unknown, the session ends. */
	check(BDAT_TXN "BDAT 6 X\r\nQUIT\r\n",
	    GREET BDAT_TXN_OK "501 Syntax: BDAT <size> [LAST]\n");
	/* A client that goes away mid-chunk gets no reply. */
	check(BDAT_TXN "BDAT 60\r\nQUIT\r\n", GREET BDAT_TXN_OK);
	/* chunking no: BDAT is an unknown verb; what follows, commands. */
	conf->c_chunking = 0;
	check("EHLO c\r\nBDAT 6\r\nQUIT\r\n", GREET
	    "250-mx.test\n250-SIZE 33554432\n250-8BITMIME\n250-PIPELINING\n"
	    "250 HELP\n500 Error: command \"BDAT\" not recognized\n"
	    "221 Bye\n");
}

static void
test_bdat_transaction(void **state)
{
	(void)state;
	check(BDAT_TXN "BDAT 3\r\nx\r\nRCPT TO:<e@f>\r\nDATA\r\n"
	    "MAIL FROM:<a@b>\r\nRSET\r\nDATA\r\nBDAT 1 LAST\r\nx",
	    GREET BDAT_TXN_OK "250 OK 3 octets received\n"
	    "503 5.5.1 Error: RCPT after BDAT\n"
	    "503 5.5.1 Error: BDAT in progress, DATA not allowed\n"
	    "503 Error: nested MAIL command\n250 OK\n"
	    "503 Error: need RCPT command\n503 Error: need MAIL command\n");
	/* Over the size limit: 552, then 503 until RSET. */
	conf->c_lim.lim_maxmsgsize = 10;
	check("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	    "BDAT 6\r\n123456BDAT 5\r\n12345BDAT 1 LAST\r\nxRSET\r\n"
	    "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 10 LAST\r\n0123456789",
	    GREET "250-mx.test\n250-SIZE 10\n250-8BITMIME\n250-PIPELINING\n"
	    "250-CHUNKING\n250 HELP\n250 OK\n250 OK\n"
	    "250 OK 6 octets received\n552 Error: Too much mail data\n"
	    "503 5.5.1 Error: transaction failed, send RSET\n250 OK\n"
	    "250 OK\n250 OK\n250 OK id=*\n");
	/* Lines end at CRLF across chunks: 999 octets and CRLF at most. */
	conf->c_lim.lim_maxmsgsize = 0;
	conf->c_lim.lim_maxline = 64;
	check(BDAT_TXN "BDAT 40\r\n0123456789012345678901234567890123456\n\r\r"
	    "BDAT 30 LAST\r\n01234567890123456789012345678\n",
	    GREET "250-mx.test\n250-8BITMIME\n250-PIPELINING\n"
	    "250-CHUNKING\n250 HELP\n250 OK\n250 OK\n"
	    "250 OK 40 octets received\n"
	    "500 Line too long (see RFC5321 4.5.3.1.6)\n");
	/* A CRLF split between two chunks ends the line. */
	check(BDAT_TXN "BDAT 40\r\n012345678901234567890123456789012345678\r"
	    "BDAT 30 LAST\r\n\n012345678901234567890123456\r\n",
	    GREET "250-mx.test\n250-8BITMIME\n250-PIPELINING\n"
	    "250-CHUNKING\n250 HELP\n250 OK\n250 OK\n"
	    "250 OK 40 octets received\n250 OK id=*\n");
}

/* LMTP: BDAT LAST is answered once per recipient. */
static void
test_bdat_lmtp(void **state)
{
	(void)state;
	lst.l_flags = LF_LMTP;
	check("LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\n"
	    "BDAT 3\r\nx\r\nBDAT 3 LAST\r\ny\r\n",
	    GREET EHLO_REPLY "250 OK\n250 OK\n250 OK\n"
	    "250 OK 3 octets received\n250 OK id=*\n250 OK id=*\n");
	conf->c_lim.lim_maxmsgsize = 2;
	check("LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\n"
	    "BDAT 3 LAST\r\nx\r\nNOOP\r\n",
	    GREET "250-mx.test\n250-SIZE 2\n250-8BITMIME\n250-PIPELINING\n"
	    "250-CHUNKING\n250 HELP\n250 OK\n250 OK\n250 OK\n"
	    "552 Error: Too much mail data\n552 Error: Too much mail data\n"
	    "250 OK\n");
}

/* enhanced-status-codes yes: one table, in the reply formatter. */
static void
test_enhanced_codes(void **state)
{
	(void)state;
	conf->c_enhanced = 1;
	check("MAIL FROM:<a@b>\r\nHELO\r\nEHLO c\r\nMAIL FROM:<a@b>\r\n"
	    "RCPT TO:<c@d>\r\nRCPT TO:<>\r\nFOO\r\nVRFY x\r\nEXPN\r\n"
	    "DATA x\r\nDATA\r\nx\r\n.\r\nBDAT 1 LAST\r\nx"
	    "STARTTLS\r\nNOOP\r\nHELP\r\nRSET x\r\nQUIT\r\n",
	    "220 mx.test ESMTP smtpd\n"
	    "503 5.5.1 Error: send HELO first\n"
	    "501 Syntax: HELO hostname\n"
	    "250-mx.test\n250-SIZE 33554432\n250-8BITMIME\n250-PIPELINING\n"
	    "250-CHUNKING\n250-ENHANCEDSTATUSCODES\n250 HELP\n"
	    "250 2.1.0 OK\n250 2.1.5 OK\n"
	    "553 5.1.3 Error: malformed address\n"
	    "500 5.5.2 Error: command \"FOO\" not recognized\n"
	    "252 2.0.0 Cannot VRFY user, but will accept message and "
	    "attempt delivery\n"
	    "502 5.5.1 EXPN not implemented\n"
	    "501 5.5.4 Syntax: DATA\n"
	    "354 End data with <CR><LF>.<CR><LF>\n"
	    "250 2.0.0 OK id=*\n"
	    "503 5.5.1 Error: need MAIL command\n"
	    "454 4.7.0 TLS not available\n"
	    "250 2.0.0 OK\n"
	    "250 2.0.0 Supported commands: *\n"
	    "501 5.5.4 Syntax: RSET\n"
	    "221 2.0.0 Bye\n");
}

/*
 * A shutdown (SIGTERM) that came before the session began, while the
 * master handed the client over: 421 in place of the greeting.
 */
static void
test_shutdown_before_greeting(void **state)
{
	(void)state;
	session_quit = 1;
	check("EHLO client.test\r\n", "421 mx.test Service shutting down\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_greeting_quit),
		T(test_line_endings),
		T(test_line_too_long),
		T(test_mail_allowance),
		T(test_unknown),
		T(test_helo_ehlo),
		T(test_mail),
		T(test_mail_params),
		T(test_rcpt),
		T(test_data_states),
		T(test_data_pipelined),
		T(test_data_unstuff),
		T(test_data_smuggling),
		T(test_data_limits),
		T(test_vrfy_expn_help),
		T(test_starttls),
		T(test_command_limit),
		T(test_lmtp),
		T(test_bdat_parse),
		T(test_status_codes),
		T(test_bdat),
		T(test_bdat_refused),
		T(test_bdat_transaction),
		T(test_bdat_lmtp),
		T(test_enhanced_codes),
		T(test_shutdown_before_greeting),
#undef T
	};

	log_init(1, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
