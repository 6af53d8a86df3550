/*
 * test_policy.c: unit tests of policy.c: the table loader (good and bad
 * lines, a table of 1,000,000 addresses), lookups with +detail and case,
 * client networks, sender tables, the reply parser and every action of
 * the policy protocol, and policy_rcpt/policy_data against a policy
 * server forked by the test on a UNIX socket.
 */

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
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

#define BIG_TABLE	1000000

static char	 tmpdir[] = "/tmp/test_policy.XXXXXX";

static const char *
write_file(const char *name, const char *text, size_t len)
{
	static char	 path[160];
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(fwrite(text, 1, len == 0 ? strlen(text) : len, fp),
	    len == 0 ? strlen(text) : len);
	fclose(fp);
	return path;
}

static struct policy_table *
table(const char *text, int nocase)
{
	return policy_table_load(write_file("t", text, 0), nocase, NULL);
}

static double
now(void)
{
	return util_now_ms() / 1000.0;
}

static void
test_table_lookup(void **state)
{
	struct policy_table	*t;

	(void)state;
	t = table("# comment\n\n  anne@Example.ORG  # trailing\n"
	    "\t@domain.example\nBob@example.org\r\nanne@example.org\n"
	    "postmaster\n<>\n\"a..b\"@q.example\n", 0);
	assert_non_null(t);
	assert_int_equal(policy_table_count(t), 6);
	assert_true(policy_table_lookup(t, "anne@example.org", 0));
	assert_true(policy_table_lookup(t, "anne@EXAMPLE.org", 0));
	assert_false(policy_table_lookup(t, "Anne@example.org", 0));
	assert_true(policy_table_lookup(t, "Bob@example.org", 0));
	assert_false(policy_table_lookup(t, "bob@example.org", 0));
	assert_true(policy_table_lookup(t, "x@domain.example", 0));
	assert_true(policy_table_lookup(t, "x@DOMAIN.example", 0));
	assert_false(policy_table_lookup(t, "x@sub.domain.example", 0));
	assert_true(policy_table_lookup(t, "postmaster", 0));
	assert_true(policy_table_lookup(t, "", 0));
	assert_true(policy_table_lookup(t, "\"a..b\"@q.example", 0));
	assert_false(policy_table_lookup(t, "carl@example.org", 0));
	/* +detail only with a delimiter; not at the start. */
	assert_false(policy_table_lookup(t, "anne+tag@example.org", 0));
	assert_true(policy_table_lookup(t, "anne+tag@example.org", '+'));
	assert_true(policy_table_lookup(t, "anne+@example.org", '+'));
	assert_true(policy_table_lookup(t, "anne-x@example.org", '-'));
	assert_false(policy_table_lookup(t, "+anne@example.org", '+'));
	assert_false(policy_table_lookup(t, "anne+x@example.org", '-'));
	assert_true(policy_table_lookup(t, "z+y@domain.example", '+'));
	policy_table_free(t);

	/* ignore-case: local parts too. */
	t = table("Anne@Example.org\n", 1);
	assert_true(policy_table_lookup(t, "ANNE@example.ORG", 0));
	assert_true(policy_table_lookup(t, "anne+X@example.org", '+'));
	assert_false(policy_table_lookup(t, "", 0));
	policy_table_free(t);

	/* Empty, and comments only. */
	t = table("", 0);
	assert_non_null(t);
	assert_int_equal(policy_table_count(t), 0);
	assert_false(policy_table_lookup(t, "a@b", '+'));
	policy_table_free(t);
}

static void
test_table_bad(void **state)
{
	static const char *const bad[] = {
		"a@b c@d\n", "ok@x\nuser@\n", "a\001b@c\n",
		"ok@x\n@\n",
		/* a CR but before the LF that ends the line */
		"a@b\rc@d\n", "a@b\r", "a@b\r\r\n", NULL
	};
	struct policy_table	*t;
	char			 longline[1024], fifo[160];
	size_t			 i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++)
		assert_null(table(bad[i], 0));
	memset(longline, 'a', sizeof(longline) - 4);
	memcpy(longline + sizeof(longline) - 4, "@b\n", 4);
	assert_null(table(longline, 0));
	/* 511 characters are an entry, 512 an error. */
	memcpy(longline + 509, "@b\n", 4);
	assert_non_null(t = table(longline, 0));
	longline[511] = '\0';
	assert_true(policy_table_lookup(t, longline, 0));
	policy_table_free(t);
	memcpy(longline + 509, "a@b\n", 5);
	assert_null(table(longline, 0));
	assert_null(policy_table_load(write_file("t", "a@b\n\0x@y\n", 9),
	    0, NULL));
	assert_null(policy_table_load("/nonexistent/table", 0, NULL));
	/* Not a regular file: a FIFO blocked in open(), and a device. */
	snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_null(policy_table_load(fifo, 0, NULL));
	unlink(fifo);
	assert_null(policy_table_load("/dev/zero", 0, NULL));
	assert_null(policy_table_load(tmpdir, 0, NULL));
}

/* 1,000,000 addresses: loaded in seconds, found, and the others not. */
static void
test_table_huge(void **state)
{
	struct policy_table	*t;
	char			 path[160], addr[64];
	double			 t0, load;
	FILE			*fp;
	int			 i;

	(void)state;
	snprintf(path, sizeof(path), "%s/huge", tmpdir);
	assert_non_null(fp = fopen(path, "w"));
	for (i = 0; i < BIG_TABLE; i++)
		fprintf(fp, "user%d@example%d.org\n", i, i % 1000);
	fclose(fp);
	t0 = now();
	assert_non_null(t = policy_table_load(path, 0, NULL));
	load = now() - t0;
	print_message("loaded %d entries in %.2fs\n", BIG_TABLE, load);
	/* Generous for the sanitizer build; ~0.3s optimised. */
	assert_true(load < 30);
	assert_int_equal(policy_table_count(t), BIG_TABLE);
	t0 = now();
	for (i = 0; i < BIG_TABLE; i += 7) {
		snprintf(addr, sizeof(addr), "user%d+x@EXAMPLE%d.org", i,
		    i % 1000);
		assert_true(policy_table_lookup(t, addr, '+'));
		snprintf(addr, sizeof(addr), "user%d@example%d.org", i,
		    (i + 1) % 1000);
		assert_false(policy_table_lookup(t, addr, '+'));
	}
	print_message("%d lookups in %.2fs\n", 2 * (BIG_TABLE / 7 + 1),
	    now() - t0);
	policy_table_free(t);
	unlink(path);
}

static void
test_clients(void **state)
{
	struct config	*c;
	struct client	 cl;
	char		 reply[REPLY_MAX];

	(void)state;
	c = config_default();
	memset(&cl, 0, sizeof(cl));
	strlcpy(cl.ci_addr, "10.1.2.3", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), 0);
	/* Only reject: the rest is welcome. */
	assert_int_equal(net_parse("10.0.0.0/8",
	    &c->c_pol.po_clients[PN_REJECT][0]), 0);
	c->c_pol.po_nclients[PN_REJECT] = 1;
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), -1);
	assert_string_equal(reply, "554 5.7.1 <10.1.2.3>: Client host "
	    "rejected: Access denied");
	strlcpy(cl.ci_addr, "192.0.2.1", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), 0);
	/* The more specific network wins, whichever list. */
	assert_int_equal(net_parse("10.1.0.0/16",
	    &c->c_pol.po_clients[PN_ACCEPT][0]), 0);
	assert_int_equal(net_parse("2001:db8::/32",
	    &c->c_pol.po_clients[PN_ACCEPT][1]), 0);
	c->c_pol.po_nclients[PN_ACCEPT] = 2;
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), -1);
	strlcpy(cl.ci_addr, "10.1.2.3", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), 0);
	strlcpy(cl.ci_addr, "10.2.2.3", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), -1);
	strlcpy(cl.ci_addr, "2001:db8::1", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), 0);
	strlcpy(cl.ci_addr, "::ffff:10.1.0.9", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), 0);
	strlcpy(cl.ci_addr, "2001:db9::1", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), -1);
	assert_string_equal(reply, "554 5.7.1 <2001:db9::1>: Client host "
	    "rejected: Access denied");
	/* A tie is a refusal; a UNIX socket client is local. */
	assert_int_equal(net_parse("10.1.0.0/16",
	    &c->c_pol.po_clients[PN_REJECT][1]), 0);
	c->c_pol.po_nclients[PN_REJECT] = 2;
	strlcpy(cl.ci_addr, "10.1.2.3", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), -1);
	cl.ci_addr[0] = '\0';
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), 0);
	/*
	 * An IPv4-mapped peer: 10.1.0.0/16 is ::ffff:10.1.0.0/112, more
	 * specific than ::ffff:0:0/96 or ::/0 (all of IPv4, all of IPv6).
	 */
	assert_int_equal(net_parse("10.1.0.0/16",
	    &c->c_pol.po_clients[PN_ACCEPT][0]), 0);
	assert_int_equal(net_parse("::ffff:0:0/96",
	    &c->c_pol.po_clients[PN_REJECT][0]), 0);
	assert_int_equal(net_parse("::/0",
	    &c->c_pol.po_clients[PN_REJECT][1]), 0);
	strlcpy(cl.ci_addr, "::ffff:10.1.2.3", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), 0);
	strlcpy(cl.ci_addr, "::ffff:10.2.2.3", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), -1);
	c->c_pol.po_nclients[PN_REJECT] = 1;
	assert_int_equal(net_parse("::ffff:10.1.2.0/120",
	    &c->c_pol.po_clients[PN_REJECT][0]), 0);
	strlcpy(cl.ci_addr, "::ffff:10.1.2.3", sizeof(cl.ci_addr));
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), -1);
	assert_int_equal(net_parse("0.0.0.0/0",
	    &c->c_pol.po_clients[PN_ACCEPT][0]), 0);
	assert_int_equal(net_parse("::/0",
	    &c->c_pol.po_clients[PN_REJECT][0]), 0);
	assert_int_equal(policy_client(c, &cl, reply, sizeof(reply)), 0);
	load_release(c);
}

static void
test_senders(void **state)
{
	struct config	*c;
	char		 reply[REPLY_MAX];

	(void)state;
	c = config_default();
	assert_int_equal(policy_sender(c, "any@x", reply, sizeof(reply)), 0);
	c->c_pol.po_table[PT_SENDER_REJECT] = table("spam@example.com\n"
	    "@bad.example\n", 0);
	c->c_pol.po_rcpt_delim = '+';
	assert_int_equal(policy_sender(c, "any@x", reply, sizeof(reply)), 0);
	assert_int_equal(policy_sender(c, "", reply, sizeof(reply)), 0);
	assert_int_equal(policy_sender(c, "spam+1@example.com", reply,
	    sizeof(reply)), -1);
	assert_string_equal(reply, "550 5.7.1 <spam+1@example.com>: Sender "
	    "address rejected: Access denied");
	assert_int_equal(policy_sender(c, "a@Bad.Example", reply,
	    sizeof(reply)), -1);
	c->c_pol.po_table[PT_SENDER_ACCEPT] = table("<>\n@good.example\n", 0);
	assert_int_equal(policy_sender(c, "", reply, sizeof(reply)), 0);
	assert_int_equal(policy_sender(c, "a@good.example", reply,
	    sizeof(reply)), 0);
	assert_int_equal(policy_sender(c, "any@x", reply, sizeof(reply)), -1);
	assert_string_equal(reply, "550 5.7.1 <any@x>: Sender address "
	    "rejected: Access denied");
	load_release(c);
}

static int
action_of(const char *block, char *action, size_t size)
{
	return policy_reply_action(block, strlen(block), action, size);
}

static void
test_reply_parse(void **state)
{
	char	 a[64];

	(void)state;
	assert_int_equal(action_of("action=DUNNO\n\n", a, sizeof(a)), 0);
	assert_string_equal(a, "DUNNO");
	assert_int_equal(action_of("x=1\naction=REJECT no way\ny=\n\n", a,
	    sizeof(a)), 0);
	assert_string_equal(a, "REJECT no way");
	assert_int_equal(action_of("action=OK\r\n\n", a, sizeof(a)), 0);
	assert_string_equal(a, "OK");
	assert_int_equal(action_of("action=\n\n", a, sizeof(a)), 0);
	assert_string_equal(a, "");
	/* Lines ending in CRLF, the empty one too. */
	assert_int_equal(action_of("x=1\r\naction=REJECT no\r\n\r\n", a,
	    sizeof(a)), 0);
	assert_string_equal(a, "REJECT no");
	assert_int_equal(action_of("action=OK\r\n\r", a, sizeof(a)), -1);
	assert_int_equal(action_of("action=OK\r\n\r\nx=1\r\n\r\n", a,
	    sizeof(a)), -1);
	/* Malformed: no end, no action, two, a line without '=', long. */
	assert_int_equal(action_of("action=OK\n", a, sizeof(a)), -1);
	assert_int_equal(action_of("", a, sizeof(a)), -1);
	assert_int_equal(action_of("\n\n", a, sizeof(a)), -1);
	assert_int_equal(action_of("x=1\n\n", a, sizeof(a)), -1);
	assert_int_equal(action_of("action=OK\naction=OK\n\n", a,
	    sizeof(a)), -1);
	assert_int_equal(action_of("action=OK\ngarbage\n\n", a, sizeof(a)),
	    -1);
	assert_int_equal(action_of("action=OK\n\nx=1\n\n", a, sizeof(a)), -1);
	assert_int_equal(action_of("action=0123456789012345678901234567890"
	    "1234567890123456789012345678901234567890\n\n", a, sizeof(a)),
	    -1);
	assert_int_equal(policy_reply_action("action=OK\0\n\n", 12, a,
	    sizeof(a)), -1);
}

#define WHAT	"<u@x>: Recipient address rejected"

static void
expect_action(const char *action, int rc, const char *want)
{
	char	 reply[REPLY_MAX], hdr[POLICY_HEADER_MAX + 1];

	reply[0] = hdr[0] = '\0';
	assert_int_equal(policy_action(action, WHAT, reply, sizeof(reply),
	    hdr, sizeof(hdr)), rc);
	if (rc == PA_REFUSE)
		assert_string_equal(reply, want);
	if (rc == PA_PREPEND)
		assert_string_equal(hdr, want);
}

static void
test_actions(void **state)
{
	static const struct {
		const char	*action;
		int		 rc;
		const char	*want;
	} cases[] = {
		{ "OK", PA_DUNNO, NULL },
		{ "ok", PA_DUNNO, NULL },
		{ "DUNNO", PA_DUNNO, NULL },
		{ "REJECT", PA_REFUSE, "550 5.7.1 " WHAT ": Access denied" },
		{ "REJECT go away", PA_REFUSE, "550 5.7.1 " WHAT ": go away" },
		{ "reject 5.7.2 No", PA_REFUSE, "550 5.7.2 " WHAT ": No" },
		/* An enhanced code of the other class takes the reply's. */
		{ "REJECT 4.7.2 No", PA_REFUSE, "550 5.7.2 " WHAT ": No" },
		{ "450 5.7.1 later", PA_REFUSE, "450 4.7.1 " WHAT ": later" },
		/* A code alone has the default text; a tab separates too. */
		{ "REJECT 5.7.9", PA_REFUSE,
		    "550 5.7.9 " WHAT ": Access denied" },
		{ "REJECT\t5.7.9\tgo", PA_REFUSE, "550 5.7.9 " WHAT ": go" },
		{ "550\tno", PA_REFUSE, "550 5.7.1 " WHAT ": no" },
		/* Subject and detail of 3 digits each: the longest code. */
		{ "REJECT 5.123.456 x", PA_REFUSE,
		    "550 5.123.456 " WHAT ": x" },
		{ "450 5.12.345\tlater", PA_REFUSE,
		    "450 4.12.345 " WHAT ": later" },
		{ "REJECT 5.7.1234 x", PA_REFUSE,
		    "550 5.7.1 " WHAT ": 5.7.1234 x" },
		/* Text after OK or DUNNO is ignored, as Postfix does. */
		{ "OK now", PA_DUNNO, NULL },
		{ "dunno\twhatever", PA_DUNNO, NULL },
		{ "DEFER", PA_REFUSE,
		    "450 4.7.1 " WHAT ": Service is unavailable" },
		{ "DEFER later", PA_REFUSE, "450 4.7.1 " WHAT ": later" },
		{ "DEFER_IF_PERMIT 4.2.0 Greylisted, see x", PA_REFUSE,
		    "450 4.2.0 " WHAT ": Greylisted, see x" },
		{ "451 4.7.1 Please try later", PA_REFUSE,
		    "451 4.7.1 " WHAT ": Please try later" },
		{ "554 Nope", PA_REFUSE, "554 5.7.1 " WHAT ": Nope" },
		{ "521 5.3.0 \tdown\001x", PA_REFUSE,
		    "521 5.3.0 " WHAT ": down x" },
		{ "PREPEND X-Greylist: delayed 2 seconds", PA_PREPEND,
		    "X-Greylist: delayed 2 seconds" },
		/* Malformed: policy-default. */
		{ "", PA_BAD, NULL },
		{ "OKAY", PA_BAD, NULL },
		{ "HOLD", PA_BAD, NULL },
		{ "FILTER smtp:x", PA_BAD, NULL },
		{ "250 fine", PA_BAD, NULL },
		{ "45 short", PA_BAD, NULL },
		{ "4501 long", PA_BAD, NULL },
		{ "45x text", PA_BAD, NULL },
		{ "450", PA_BAD, NULL },
		{ "PREPEND", PA_BAD, NULL },
		{ "PREPEND no colon", PA_BAD, NULL },
		{ "PREPEND Bad Name: x", PA_BAD, NULL },
		{ "PREPEND : x", PA_BAD, NULL },
		{ "PREPEND X-A: b\001", PA_BAD, NULL },
		/* Printable US-ASCII only: no DEL, no 8-bit octet. */
		{ "PREPEND X-A: a\177b", PA_BAD, NULL },
		{ "PREPEND X-A: caf\303\251", PA_BAD, NULL },
		{ "PREPEND X-\303\251: v", PA_BAD, NULL },
		{ "PREPEND X-A:\tv ~", PA_PREPEND, "X-A:\tv ~" },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_action(cases[i].action, cases[i].rc, cases[i].want);
}

/* A reply; what follows a BEL is sent 100 ms later. */
static int
server_write(int fd, const char *reply)
{
	size_t	 n = strcspn(reply, "\a");

	if (write(fd, reply, n) != (ssize_t)n)
		return -1;
	if (reply[n] == '\0')
		return 0;
	usleep(100000);
	return write(fd, reply + n + 1, strlen(reply + n + 1)) == -1 ? -1 : 0;
}

/*
 * A policy server in a child: answers the requests of each connection
 * with the next reply of replies[]; "close" closes the connection
 * instead, "hang" never answers.  Each request is checked first.
 */
static pid_t
server_serve(int s, const char *const *replies)
{
	char			 buf[8192];
	ssize_t			 n;
	size_t			 len;
	pid_t			 pid;
	int			 fd;

	assert_int_equal(listen(s, 5), 0);
	if ((pid = fork()) != 0) {
		close(s);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while ((fd = accept(s, NULL, NULL)) != -1) {
		for (len = 0; *replies != NULL; ) {
			n = read(fd, buf + len, sizeof(buf) - 1 - len);
			if (n <= 0)
				break;
			len += n;
			buf[len] = '\0';
			if (strstr(buf, "\n\n") == NULL)
				continue;
			if (strstr(buf, "request=smtpd_access_policy\n") ==
			    NULL || strstr(buf, "client_address=192.0.2.7\n")
			    == NULL)
				_exit(2);
			len = 0;
			if (strcmp(*replies, "hang") == 0)
				pause();
			if (strcmp(*replies++, "close") == 0)
				break;
			if (server_write(fd, replies[-1]) == -1)
				_exit(3);
		}
		close(fd);
	}
	_exit(0);
}

/* server_serve on the UNIX socket path. */
static pid_t
server_start(const char *path, const char *const *replies)
{
	struct sockaddr_un	 sun;
	int			 s;

	assert_int_equal(util_sockaddr_un(&sun, path), 0);
	unlink(path);
	assert_true((s = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return server_serve(s, replies);
}

/* A TCP socket bound to 127.0.0.1 and a free port; *sin has the address. */
static int
tcp_bound(struct sockaddr_in *sin)
{
	socklen_t	 len = sizeof(*sin);
	int		 s;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((s = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(s, (struct sockaddr *)sin, sizeof(*sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)sin, &len), 0);
	return s;
}

static void
server_stop(pid_t pid)
{
	int	 status;

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static int
rcpt(struct policy_conn *pc, const struct config *c, struct envelope *e,
    const char *addr, char *reply)
{
	struct client	 cl;

	memset(&cl, 0, sizeof(cl));
	strlcpy(cl.ci_addr, "192.0.2.7", sizeof(cl.ci_addr));
	strlcpy(cl.ci_helo, "client.example", sizeof(cl.ci_helo));
	strlcpy(cl.ci_sid, "0123456789abcdef", sizeof(cl.ci_sid));
	cl.ci_esmtp = 1;
	reply[0] = '\0';
	return policy_rcpt(pc, c, &cl, e, addr, reply, REPLY_MAX);
}

static void
test_server(void **state)
{
	static const char *const replies[] = {
		"action=PREPEND X-Test: one\n\n",
		"action=REJECT no\n\n",
		"action=REJECT crlf\r\nx=1\r\n\r\n",
		"action=DUNNO\n\n\aaction=REJECT stale\n\n",
		"action=REJECT fresh\n\n",
		"close",
		"action=DEFER_IF_PERMIT 4.2.0 Greylisted\n\n",
		"action=HOLD\n\n",
		"action=OK\n\n",
		"hang",
		NULL
	};
	struct config		*c;
	struct policy_conn	*pc;
	struct envelope		 e;
	struct client		 cl;
	char			 path[160], reply[REPLY_MAX];
	pid_t			 pid;

	(void)state;
	snprintf(path, sizeof(path), "%s/policy.sock", tmpdir);
	pid = server_start(path, replies);
	c = config_default();
	assert_null(policy_open(c));
	xasprintf(&c->c_pol.po_server, "unix:%s", path);
	c->c_pol.po_timeout = 1;
	c->c_pol.po_table[PT_RCPT_ACCEPT] = table("@x\n", 0);
	memset(&e, 0, sizeof(e));
	e.e_sender = xstrdup("s@y");
	assert_non_null(pc = policy_open(c));

	/* The table first: the server is not asked. */
	assert_int_equal(rcpt(pc, c, &e, "u@z", reply), -1);
	assert_string_equal(reply, "550 5.1.1 <u@z>: Recipient address "
	    "rejected: User unknown");
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), 0);
	assert_string_equal(e.e_prepend, "X-Test: one\r\n");
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), -1);
	assert_string_equal(reply, "550 5.7.1 " WHAT ": no");
	/* Lines that end in CRLF: the empty line ends the reply. */
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), -1);
	assert_string_equal(reply, "550 5.7.1 " WHAT ": crlf");
	/*
	 * A reply the server sends twice, the second late: not taken for
	 * the next answer, which is asked on a new connection.
	 */
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), 0);
	usleep(300000);
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), -1);
	assert_string_equal(reply, "550 5.7.1 " WHAT ": fresh");
	/* Closed on the next request: a new connection, the same query. */
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), -1);
	assert_string_equal(reply, "450 4.2.0 " WHAT ": Greylisted");
	/* Not understood: policy-default defer. */
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), -1);
	assert_string_equal(reply, "451 4.3.5 Server configuration problem");
	/* END-OF-MESSAGE only when asked for. */
	memset(&cl, 0, sizeof(cl));
	strlcpy(cl.ci_addr, "192.0.2.7", sizeof(cl.ci_addr));
	assert_int_equal(policy_data(pc, c, &cl, &e, 10, reply,
	    sizeof(reply)), 0);
	c->c_pol.po_stages = POLICY_STAGE_DATA;
	assert_int_equal(policy_data(pc, c, &cl, &e, 10, reply,
	    sizeof(reply)), 0);
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), 0);
	c->c_pol.po_stages = POLICY_STAGE_RCPT;
	/* No answer within policy-timeout: policy-default, both ways. */
	c->c_pol.po_default = POLICY_DUNNO;
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), 0);
	server_stop(pid);
	/* No server at all. */
	c->c_pol.po_default = POLICY_DEFER;
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), -1);
	assert_string_equal(reply, "451 4.3.5 Server configuration problem");
	policy_close(pc);
	free(e.e_sender);
	free(e.e_prepend);
	load_release(c);
	unlink(path);
}

/*
 * A server whose backlog is full (listen 0, one connection waiting) and
 * that accepts 300 ms later: within policy-timeout, so it is waited for.
 */
static void
test_server_busy(void **state)
{
	struct sockaddr_un	 sun;
	struct config		*c;
	struct policy_conn	*pc;
	struct envelope		 e;
	char			 path[160], reply[REPLY_MAX], buf[8192];
	size_t			 len = 0;
	ssize_t			 n;
	pid_t			 pid;
	int			 s, fill, fd, status;

	(void)state;
	snprintf(path, sizeof(path), "%s/busy.sock", tmpdir);
	assert_int_equal(util_sockaddr_un(&sun, path), 0);
	unlink(path);
	assert_true((s = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(s, 0), 0);
	assert_true((fill = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK,
	    0)) != -1);
	assert_int_equal(connect(fill, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	if ((pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		usleep(300 * 1000);
		if ((fd = accept(s, NULL, NULL)) == -1)
			_exit(2);
		close(fd);
		if ((fd = accept(s, NULL, NULL)) == -1)
			_exit(3);
		while (len < 2 || memcmp(buf + len - 2, "\n\n", 2) != 0) {
			if ((n = read(fd, buf + len, sizeof(buf) - len)) <= 0)
				_exit(4);
			len += n;
		}
		if (write(fd, "action=REJECT late\n\n", 20) != 20)
			_exit(5);
		_exit(0);
	}
	close(s);
	c = config_default();
	xasprintf(&c->c_pol.po_server, "unix:%s", path);
	c->c_pol.po_timeout = 2;
	memset(&e, 0, sizeof(e));
	e.e_sender = xstrdup("s@y");
	assert_non_null(pc = policy_open(c));
	assert_int_equal(rcpt(pc, c, &e, "u@x", reply), -1);
	assert_string_equal(reply, "550 5.7.1 " WHAT ": late");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	policy_close(pc);
	close(fill);
	free(e.e_sender);
	load_release(c);
	unlink(path);
}

static int
setup(void **state)
{
	(void)state;
	log_init(1, 0);
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char	 cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A policy server at the addresses first, then second. */
static struct config *
config_two(const struct sockaddr_in *first, const struct sockaddr_in *second)
{
	struct policy_addrs	*pa;
	struct config		*c;

	c = config_default();
	c->c_pol.po_server = xstrdup("inet:policy.test:25");
	c->c_pol.po_timeout = 2;
	pa = &c->c_pol.po_addrs;
	memcpy(&pa->pa_ss[0], first, sizeof(*first));
	pa->pa_len[0] = sizeof(*first);
	memcpy(&pa->pa_ss[1], second, sizeof(*second));
	pa->pa_len[1] = sizeof(*second);
	pa->pa_n = 2;
	return c;
}

/* One RCPT on a connection of its own, refused with want. */
static void
rcpt_refused(const struct config *c, struct envelope *e, const char *want)
{
	struct policy_conn	*pc;
	char			 reply[REPLY_MAX];

	assert_non_null(pc = policy_open(c));
	assert_int_equal(rcpt(pc, c, e, "u@x", reply), -1);
	assert_string_equal(reply, want);
	policy_close(pc);
}

/*
 * A name's addresses are tried in turn: one refused (a port bound, not
 * listening), then the server's.  The refused one alone is policy-default.
 */
static void
test_server_addresses(void **state)
{
	static const char *const replies[] = {
		"action=REJECT second\n\n",
		"action=REJECT looked up\n\n",
		NULL
	};
	struct sockaddr_in	 srv, refused;
	struct config		*c;
	struct envelope		 e;
	pid_t			 pid;
	int			 r;

	(void)state;
	pid = server_serve(tcp_bound(&srv), replies);
	r = tcp_bound(&refused);
	c = config_two(&refused, &srv);
	memset(&e, 0, sizeof(e));
	e.e_sender = xstrdup("s@y");
	rcpt_refused(c, &e, "550 5.7.1 " WHAT ": second");

	/* Looked up at the request (localhost: 127.0.0.1, ::1 on many). */
	c->c_pol.po_addrs.pa_n = 0;
	free(c->c_pol.po_server);
	xasprintf(&c->c_pol.po_server, "inet:localhost:%u",
	    (unsigned)ntohs(srv.sin_port));
	rcpt_refused(c, &e, "550 5.7.1 " WHAT ": looked up");

	c->c_pol.po_addrs.pa_n = 1;
	rcpt_refused(c, &e, "451 4.3.5 Server configuration problem");
	server_stop(pid);
	close(r);
	free(e.e_sender);
	load_release(c);
}

/*
 * When every address fails, one log line names each with its error: the
 * last one's error alone said nothing of the others.
 */
static void
test_server_addresses_all_fail(void **state)
{
	struct sockaddr_in	 a, b;
	struct config		*c;
	struct envelope		 e;
	char			*log, want[160];
	int			 ra, rb;

	(void)state;
	ra = tcp_bound(&a);
	rb = tcp_bound(&b);
	c = config_two(&a, &b);
	memset(&e, 0, sizeof(e));
	e.e_sender = xstrdup("s@y");
	capture_start();
	rcpt_refused(c, &e, "451 4.3.5 Server configuration problem");
	log = capture_end();
	snprintf(want, sizeof(want), "policy inet:policy.test:25: "
	    "127.0.0.1:%u: %s; 127.0.0.1:%u: %s\n",
	    (unsigned)ntohs(a.sin_port), strerror(ECONNREFUSED),
	    (unsigned)ntohs(b.sin_port), strerror(ECONNREFUSED));
	assert_has(log, want);
	free(log);
	close(ra);
	close(rb);
	free(e.e_sender);
	load_release(c);
}

/*
 * An address that drops the SYN (here a listener whose queue is full)
 * takes its share of policy-timeout, not all of it: the server on the
 * next address still answers.
 */
static void
test_server_address_hangs(void **state)
{
	static const char *const replies[] = {
		"action=REJECT second\n\n",
		NULL
	};
	struct sockaddr_in	 srv, hung;
	struct config		*c;
	struct envelope		 e;
	pid_t			 pid;
	int			 h, fill;

	(void)state;
	pid = server_serve(tcp_bound(&srv), replies);
	h = tcp_bound(&hung);
	assert_int_equal(listen(h, 0), 0);
	/* The one connection its queue holds: the next SYN is dropped. */
	assert_true((fill = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(connect(fill, (struct sockaddr *)&hung,
	    sizeof(hung)), 0);
	c = config_two(&hung, &srv);
	memset(&e, 0, sizeof(e));
	e.e_sender = xstrdup("s@y");
	rcpt_refused(c, &e, "550 5.7.1 " WHAT ": second");
	server_stop(pid);
	close(fill);
	close(h);
	free(e.e_sender);
	load_release(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_lookup),
		cmocka_unit_test(test_table_bad),
		cmocka_unit_test(test_table_huge),
		cmocka_unit_test(test_clients),
		cmocka_unit_test(test_senders),
		cmocka_unit_test(test_reply_parse),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_server),
		cmocka_unit_test(test_server_busy),
		cmocka_unit_test(test_server_addresses),
		cmocka_unit_test(test_server_address_hangs),
		cmocka_unit_test(test_server_addresses_all_fail),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
