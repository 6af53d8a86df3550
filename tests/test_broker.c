/*
 * test_broker.c: the request between a session child and the broker
 * (broker.c): the envelope's encoding and its bounds, the checks of the
 * fixed part, and a broker's answer to requests it must refuse.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
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

#define BIG_NRCPTS	1000
#define BIG_RCPTLEN	500

static struct client	 tcl;
static struct envelope	 te;

static void
fill(void)
{
	memset(&tcl, 0, sizeof(tcl));
	memset(&te, 0, sizeof(te));
	strlcpy(tcl.ci_addr, "192.0.2.7", sizeof(tcl.ci_addr));
	strlcpy(tcl.ci_port, "51514", sizeof(tcl.ci_port));
	strlcpy(tcl.ci_helo, "client.example", sizeof(tcl.ci_helo));
	strlcpy(tcl.ci_tls, "TLSv1.3 TLS_AES_256_GCM_SHA384",
	    sizeof(tcl.ci_tls));
	strlcpy(te.e_id, "4f1a2b.1", sizeof(te.e_id));
	te.e_sender = (char *)(uintptr_t)"";
}

/* Encoded, then parsed: every field as it was, the null sender too. */
static void
test_roundtrip(void **state)
{
	char			*rcpts[] = { (char *)(uintptr_t)"b@example.net",
				    (char *)(uintptr_t)"\"a b\"@example.org" };
	struct broker_env	 be;
	const char		*why;
	char			*buf;
	size_t			 len;

	(void)state;
	fill();
	buf = broker_env_encode(&tcl, &te, rcpts, 2, &len);
	assert_int_equal(broker_env_parse(buf, len, 2, &be, &why), 0);
	assert_string_equal(be.be_sender, "");
	assert_string_equal(be.be_addr, "192.0.2.7");
	assert_string_equal(be.be_port, "51514");
	assert_string_equal(be.be_helo, "client.example");
	assert_string_equal(be.be_tls, "TLSv1.3 TLS_AES_256_GCM_SHA384");
	assert_string_equal(be.be_id, "4f1a2b.1");
	assert_int_equal(be.be_nrcpts, 2);
	assert_string_equal(be.be_rcpts[0], "b@example.net");
	assert_string_equal(be.be_rcpts[1], "\"a b\"@example.org");
	free(be.be_rcpts);
	/* The count must match: one more or one less string fails. */
	assert_int_equal(broker_env_parse(buf, len, 1, &be, &why), -1);
	assert_string_equal(why, "trailing octets in the envelope");
	assert_int_equal(broker_env_parse(buf, len, 3, &be, &why), -1);
	assert_string_equal(why, "short envelope");
	/* Without its last NUL the last string is unterminated. */
	assert_int_equal(broker_env_parse(buf, len - 1, 2, &be, &why), -1);
	assert_int_equal(broker_env_parse(buf, len, 0, &be, &why), -1);
	assert_int_equal(broker_env_parse(buf, len, MAX_RCPT + 1, &be,
	    &why), -1);
	free(buf);
}

/*
 * 1000 recipients of 500 octets: far more than a SEQPACKET datagram
 * holds, which is why the envelope travels as a file.
 */
static void
test_big(void **state)
{
	struct broker_env	 be;
	const char		*why;
	char			*rcpts[BIG_NRCPTS], *buf;
	size_t			 i, len;

	(void)state;
	fill();
	for (i = 0; i < BIG_NRCPTS; i++) {
		rcpts[i] = xmalloc(BIG_RCPTLEN + 1);
		memset(rcpts[i], 'a', BIG_RCPTLEN);
		snprintf(rcpts[i], 16, "%zu@", i);
		rcpts[i][strlen(rcpts[i])] = 'x';
		rcpts[i][BIG_RCPTLEN] = '\0';
	}
	buf = broker_env_encode(&tcl, &te, rcpts, BIG_NRCPTS, &len);
	assert_true(len > BIG_NRCPTS * BIG_RCPTLEN);
	assert_int_equal(broker_env_parse(buf, len, BIG_NRCPTS, &be, &why),
	    0);
	for (i = 0; i < BIG_NRCPTS; i++)
		assert_string_equal(be.be_rcpts[i], rcpts[i]);
	free(be.be_rcpts);
	free(buf);
	for (i = 0; i < BIG_NRCPTS; i++)
		free(rcpts[i]);
}

/* Each field within the bound the session keeps: one octet more fails. */
static void
test_field_bounds(void **state)
{
	char			 rcpt[BROKER_FIELD_MAX + 1], *rcpts[1], *buf;
	struct broker_env	 be;
	const char		*why;
	size_t			 len;

	(void)state;
	fill();
	rcpts[0] = rcpt;
	memset(rcpt, 'r', sizeof(rcpt));
	rcpt[BROKER_FIELD_MAX - 1] = '\0';
	buf = broker_env_encode(&tcl, &te, rcpts, 1, &len);
	assert_int_equal(broker_env_parse(buf, len, 1, &be, &why), 0);
	free(be.be_rcpts);
	free(buf);
	rcpt[BROKER_FIELD_MAX - 1] = 'r';
	rcpt[BROKER_FIELD_MAX] = '\0';
	buf = broker_env_encode(&tcl, &te, rcpts, 1, &len);
	assert_int_equal(broker_env_parse(buf, len, 1, &be, &why), -1);
	assert_string_equal(why, "envelope field too long");
	free(buf);
	/* A HELO name longer than the session's buffer (12: "", IP, port). */
	buf = xmalloc(CMD_LINE_MAX + 64);
	memcpy(buf, "\0" "1.2.3.4\0" "25\0", 12);
	memset(buf + 12, 'h', CMD_LINE_MAX);
	/* The end of HELO, TLS, id, one recipient: 6 octets. */
	memcpy(buf + 12 + CMD_LINE_MAX, "\0" "\0" "x\0" "r", 6);
	assert_int_equal(broker_env_parse(buf, 12 + CMD_LINE_MAX + 6, 1,
	    &be, &why), -1);
	assert_string_equal(why, "envelope field too long");
	/* One octet shorter, it fits. */
	memmove(buf + 12, buf + 13, CMD_LINE_MAX + 5);
	assert_int_equal(broker_env_parse(buf, 12 + CMD_LINE_MAX + 5, 1,
	    &be, &why), 0);
	assert_int_equal(strlen(be.be_helo), CMD_LINE_MAX - 1);
	free(be.be_rcpts);
	free(buf);
}

/* The parse of one envelope with rcpt as its recipient: 0 or -1. */
static int
parse_one(const char *rcpt)
{
	char			*rcpts[1], *buf;
	struct broker_env	 be;
	const char		*why;
	size_t			 len;
	int			 rv;

	rcpts[0] = (char *)(uintptr_t)rcpt;
	buf = broker_env_encode(&tcl, &te, rcpts, 1, &len);
	rv = broker_env_parse(buf, len, 1, &be, &why);
	if (rv == 0)
		free(be.be_rcpts);
	else
		assert_string_equal(why,
		    "envelope field a session would have refused");
	free(buf);
	return rv;
}

/*
 * What no session lets through is refused from a child too: a control
 * character anywhere, a leading '-' in the names the client chose.
 */
static void
test_field_values(void **state)
{
	(void)state;
	fill();
	assert_int_equal(parse_one("\xc3\xa9@example.org"), 0);
	assert_int_equal(parse_one("a-b@example.org"), 0);
	assert_int_equal(parse_one("-oQ/tmp@example.org"), -1);
	assert_int_equal(parse_one("a\nb@example.org"), -1);
	assert_int_equal(parse_one("a\x7f@example.org"), -1);
	te.e_sender = (char *)(uintptr_t)"-f@example.org";
	assert_int_equal(parse_one("r@example.org"), -1);
	fill();
	strlcpy(tcl.ci_helo, "-x", sizeof(tcl.ci_helo));
	assert_int_equal(parse_one("r@example.org"), -1);
	strlcpy(tcl.ci_helo, "a\rb", sizeof(tcl.ci_helo));
	assert_int_equal(parse_one("r@example.org"), -1);
	fill();
	strlcpy(tcl.ci_addr, "192.0.2.7\n", sizeof(tcl.ci_addr));
	assert_int_equal(parse_one("r@example.org"), -1);
	fill();
	strlcpy(tcl.ci_tls, "TLSv1.3\tx", sizeof(tcl.ci_tls));
	assert_int_equal(parse_one("r@example.org"), -1);
	fill();
	strlcpy(te.e_id, "4f\x01", sizeof(te.e_id));
	assert_int_equal(parse_one("r@example.org"), -1);
	/*
	 * %{client} and %{id} may be words of their own in argv: a child
	 * cannot make them look like an option either.
	 */
	fill();
	strlcpy(tcl.ci_addr, "-oQ/tmp", sizeof(tcl.ci_addr));
	assert_int_equal(parse_one("r@example.org"), -1);
	fill();
	strlcpy(tcl.ci_port, "-1", sizeof(tcl.ci_port));
	assert_int_equal(parse_one("r@example.org"), -1);
	fill();
	strlcpy(te.e_id, "-x", sizeof(te.e_id));
	assert_int_equal(parse_one("r@example.org"), -1);
	fill();
	strlcpy(tcl.ci_addr, "", sizeof(tcl.ci_addr));
	strlcpy(tcl.ci_port, "", sizeof(tcl.ci_port));
	strlcpy(tcl.ci_tls, "", sizeof(tcl.ci_tls));
	assert_int_equal(parse_one("r@example.org"), 0);
}

/* A broker of c whose checkpassword is prog (its failure-delay delay). */
static struct config *
auth_config(const char *prog, int delay)
{
	struct config	*c;

	c = config_default();
	c->c_auth.au_backend = AUTH_CHECKPASSWORD;
	c->c_auth.au_argv = xreallocarray(NULL, 2, sizeof(char *));
	c->c_auth.au_argv[0] = xstrdup(prog);
	c->c_auth.au_argv[1] = NULL;
	c->c_auth.au_delay = delay;
	return c;
}

/*
 * A user name that a session refuses before asking the backend (a
 * leading '-', a control character) is refused from a child too, even
 * by a backend that would take any name: it would become %{user}.
 */
static void
test_auth_user_checked(void **state)
{
	struct config	*c;
	pid_t		 pid;
	int		 status;

	(void)state;
	c = auth_config("/bin/true", 0);
	assert_true((pid = broker_local(c)) != -1);
	assert_int_equal(broker_auth("alice", "pw", 0), AUTH_OK);
	assert_int_equal(broker_auth("-oQ/tmp", "pw", 0), AUTH_FAILED);
	assert_int_equal(broker_auth("a\nb", "pw", 0), AUTH_FAILED);
	status = broker_local_end(pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	config_free(c);
}

/*
 * The pause before a 535 is the broker's: a failed verdict comes
 * failure-delay after the check, one after the other, whatever the child
 * does meanwhile; a good one comes at once.
 */
static void
test_auth_failure_held(void **state)
{
	struct config	*c;
	long long	 t0, t1;
	pid_t		 pid;
	int		 status;

	(void)state;
	c = auth_config("/bin/false", 1);
	assert_true((pid = broker_local(c)) != -1);
	t0 = util_now_ms();
	assert_int_equal(broker_auth("alice", "guess", 1), AUTH_FAILED);
	t1 = util_now_ms();
	assert_true(t1 - t0 >= 950);
	assert_int_equal(broker_auth("alice", "guess", 1), AUTH_FAILED);
	assert_true(util_now_ms() - t1 >= 950);
	status = broker_local_end(pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	config_free(c);

	c = auth_config("/bin/true", 1);
	assert_true((pid = broker_local(c)) != -1);
	t0 = util_now_ms();
	assert_int_equal(broker_auth("alice", "pw", 1), AUTH_OK);
	assert_true(util_now_ms() - t0 < 900);
	status = broker_local_end(pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	config_free(c);
}

static void
test_msg_check(void **state)
{
	struct broker_msg	 bm;
	const char		*why;

	(void)state;
	memset(&bm, 0, sizeof(bm));
	bm.bm_type = BR_DELIVER;
	bm.bm_listener = 1;
	bm.bm_nrcpts = 2;
	bm.bm_envlen = 100;
	assert_int_equal(broker_msg_check(&bm, sizeof(bm), 2, 2, &why), 0);
	assert_int_equal(broker_msg_check(&bm, sizeof(bm) - 1, 2, 2, &why),
	    -1);
	assert_int_equal(broker_msg_check(&bm, sizeof(bm), 0, 2, &why), -1);
	assert_string_equal(why, "request without its descriptors");
	assert_int_equal(broker_msg_check(&bm, sizeof(bm), 3, 2, &why), -1);
	/* One descriptor: the envelope follows the header, to the octet. */
	assert_int_equal(broker_msg_check(&bm, sizeof(bm) + 100, 1, 2, &why),
	    0);
	assert_int_equal(broker_msg_check(&bm, sizeof(bm), 1, 2, &why), -1);
	assert_string_equal(why, "bad request size");
	assert_int_equal(broker_msg_check(&bm, sizeof(bm) + 99, 1, 2, &why),
	    -1);
	assert_int_equal(broker_msg_check(&bm, sizeof(bm) + 100, 2, 2, &why),
	    -1);
	assert_string_equal(why, "bad request size");
	bm.bm_envlen = BROKER_ENV_INLINE + 1;
	assert_int_equal(broker_msg_check(&bm, sizeof(bm) + bm.bm_envlen, 1, 2,
	    &why), -1);
	assert_string_equal(why, "bad request size");
	assert_int_equal(broker_msg_check(&bm, sizeof(bm), 2, 2, &why), 0);
	bm.bm_envlen = 100;
	assert_int_equal(broker_msg_check(&bm, sizeof(bm), 2, 1, &why), -1);
	assert_string_equal(why, "no such listener");
	bm.bm_listener = -1;
	assert_int_equal(broker_msg_check(&bm, sizeof(bm), 2, 2, &why), -1);
	bm.bm_listener = 0;
	bm.bm_type = BR_RESULT;
	assert_int_equal(broker_msg_check(&bm, sizeof(bm), 2, 2, &why), -1);
	bm.bm_type = BR_DELIVER;
	bm.bm_nrcpts = MAX_RCPT + 1;
	assert_int_equal(broker_msg_check(&bm, sizeof(bm), 2, 2, &why), -1);
	bm.bm_nrcpts = 1;
	bm.bm_envlen = 100 * BROKER_FIELD_MAX;
	assert_int_equal(broker_msg_check(&bm, sizeof(bm), 2, 2, &why), -1);
	assert_string_equal(why, "envelope too large");
}

/* A request is run only while its child waits for the answer. */
static void
test_msg_late(void **state)
{
	struct broker_msg	 bm;
	int			 sv[2];

	(void)state;
	memset(&bm, 0, sizeof(bm));
	bm.bm_startby = 5000;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_null(broker_msg_late(&bm, sv[0], 5000));
	assert_string_equal(broker_msg_late(&bm, sv[0], 5001),
	    "it came too late to be run");
	/* what it sent is still there to read, but nobody waits */
	assert_int_equal(write(sv[1], "x", 1), 1);
	close(sv[1]);
	assert_string_equal(broker_msg_late(&bm, sv[0], 4000),
	    "its child is gone");
	close(sv[0]);
}

/*
 * A broker refuses what is not a file, and a listener it does not know,
 * with an answer (the child does not wait for nothing); runs nothing.
 */
static void
test_refused(void **state)
{
	struct broker_result	*br;
	struct config		*c;
	char			*rcpts[] = { (char *)(uintptr_t)"b@example.net" };
	pid_t			 pid;
	int			 p[2], status;

	(void)state;
	fill();
	c = config_default();
	c->c_dlv.dl_mode = DELIVER_PROGRAM;
	br = xmalloc(sizeof(*br));
	assert_true((pid = broker_local(c)) != -1);
	assert_int_equal(pipe(p), 0);
	/* config_default() has no listener: index 0 is unknown. */
	assert_int_equal(broker_deliver(&tcl, &te, rcpts, 1, p[0], 5, br), 0);
	assert_int_equal(br->br_error, EINVAL);
	assert_int_equal(br->br_exited, 0);
	close(p[0]);
	close(p[1]);
	status = broker_local_end(pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* No broker: an error at once, not a wait. */
	assert_int_equal(broker_deliver(&tcl, &te, rcpts, 1, 0, 5, br), -1);
	assert_int_equal(errno, ENOTCONN);
	free(br);
	config_free(c);
}

/* Lines of what fd gives until its end that hold what. */
static int
count_lines(int fd, const char *what)
{
	char	 buf[4096], line[512];
	size_t	 len = 0;
	ssize_t	 n, i;
	int	 count = 0;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (len < sizeof(line) - 1)
					line[len++] = buf[i];
				continue;
			}
			line[len] = '\0';
			if (strstr(line, what) != NULL)
				count++;
			len = 0;
		}
	return count;
}

/*
 * AUTH workers that die at their start (here the sessions' user is uid
 * 0, which a worker refuses to become) start again after a wait that
 * doubles, not at once: in 2.5 s, the three first starts and the three
 * after 1 s, then a wait of 2 s; not one start after another.  A check
 * meanwhile fails at once.
 */
static void
test_workers_back_off(void **state)
{
	struct exec_ident	 root;
	struct config		*c;
	long long		 t0;
	pid_t			 pid;
	int			 sv[2], err[2], status, died;

	(void)state;
	c = config_default();
	c->c_auth.au_backend = AUTH_PASSWD;
	memset(&root, 0, sizeof(root));
	root.ei_change = 1;
	assert_int_equal(pipe(err), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	if ((pid = fork()) == 0) {
		dup2(err[1], STDERR_FILENO);
		close(err[0]);
		close(err[1]);
		close(sv[0]);
		broker_main(c, -1, sv[1], &root);
		_exit(0);
	}
	close(err[1]);
	close(sv[1]);
	/* With no worker running, a check fails at once, not at a start. */
	(void)poll(NULL, 0, 200);
	broker_attach(sv[0]);
	t0 = util_now_ms();
	assert_int_equal(broker_auth("alice", "secret", 0), AUTH_TEMPFAIL);
	assert_true(util_now_ms() - t0 < 400);
	(void)poll(NULL, 0, 2300);
	broker_attach(-1);
	close(sv[0]);		/* its only child: the broker ends */
	died = count_lines(err[0], " exited");
	close(err[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_in_range(died, 6, 9);
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_big),
		cmocka_unit_test(test_field_bounds),
		cmocka_unit_test(test_field_values),
		cmocka_unit_test(test_auth_user_checked),
		cmocka_unit_test(test_auth_failure_held),
		cmocka_unit_test(test_msg_check),
		cmocka_unit_test(test_msg_late),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_workers_back_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
