/*
 * test_tls.c: unit tests of tls.c.  A throw-away root CA, intermediate CA
 * and server certificate are made at test time with the openssl command
 * (expired and not-yet-valid certificates with the C API, which the 3.0
 * command line cannot backdate); a client thread with its own SSL_CTX
 * talks to tls_accept() over a socketpair.
 */

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "smtpd.h"
#include "internal.h"
#include "testlib.h"

#define DATA_LEN	(100 * 1024)	/* several TLS records */

static char	 dir[] = "/tmp/test_tls.XXXXXX";
static char	 path_buf[16][256];
static int	 npaths;

/* dir/name, kept until the end of the run. */
static const char *
path(const char *name)
{
	int	 i;

	for (i = 0; i < npaths; i++)
		if (strcmp(strrchr(path_buf[i], '/') + 1, name) == 0)
			return path_buf[i];
	assert_true(npaths < 16);
	snprintf(path_buf[npaths], sizeof(path_buf[0]), "%s/%s", dir, name);
	return path_buf[npaths++];
}

static void
run(const char *fmt, ...)
{
	char	 cmd[2048];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* A certificate for server.key valid from now+from to now+to seconds. */
static void
make_cert(const char *file, long from, long to)
{
	EVP_PKEY	*k;
	X509		*x;
	X509_NAME	*n;
	FILE		*f;

	assert_non_null(f = fopen(path("server.key"), "r"));
	assert_non_null(k = PEM_read_PrivateKey(f, NULL, NULL, NULL));
	fclose(f);
	assert_non_null(x = X509_new());
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_non_null(f = fopen(path(file), "w"));
	assert_true(PEM_write_X509(f, x));
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

#define EC	"-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

static int
setup(void **state)
{
	FILE	*f;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL)
		return -1;
	f = fopen(path("ext.cnf"), "w");
	fputs("basicConstraints=critical,CA:TRUE\n"
	    "keyUsage=critical,keyCertSign,cRLSign\n", f);
	fclose(f);
	run("cd %s && exec 2>/dev/null && "
	    "openssl req -x509 " EC " -keyout ca.key -out ca.crt "
	    "-subj /CN=smtpd-test-root -days 2 && "
	    "openssl req -new " EC " -keyout int.key -out int.csr "
	    "-subj /CN=smtpd-test-int && "
	    "openssl x509 -req -in int.csr -CA ca.crt -CAkey ca.key "
	    "-CAcreateserial -extfile ext.cnf -out int.crt -days 2 && "
	    "openssl req -new " EC " -keyout server.key -out server.csr "
	    "-subj /CN=localhost && "
	    "openssl x509 -req -in server.csr -CA int.crt -CAkey int.key "
	    "-CAcreateserial -out server.crt -days 2 && "
	    "cat server.crt int.crt > chain.pem && "
	    "openssl genpkey -algorithm EC "
	    "-pkeyopt ec_paramgen_curve:prime256v1 -out other.key && "
	    "cp server.key loose.key && echo garbage > garbage.key && "
	    "chmod 600 server.key other.key garbage.key && "
	    "chmod 644 loose.key && mkfifo -m 600 fifo.key fifo.crt", dir);
	make_cert("expired.crt", -2 * 86400, -86400);
	make_cert("future.crt", 86400, 2 * 86400);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	run("rm -rf %s", dir);
	return 0;
}

static int
log_lines(const char *log)
{
	int	 n = 0;

	for (; *log != '\0'; log++)
		n += *log == '\n';
	return n;
}

static void
conf_init(struct config *c, const char *cert, const char *key)
{
	memset(c, 0, sizeof(*c));
	c->c_file = (char *)(uintptr_t)"/etc/test.conf";
	c->c_tls.tl_line = 7;
	c->c_tls.tl_protocols = TLSP_DEFAULT;
	c->c_tls.tl_cert = cert == NULL ? NULL : (char *)(uintptr_t)path(cert);
	c->c_tls.tl_key = key == NULL ? NULL : (char *)(uintptr_t)path(key);
}

/* tls_config_load(c) fails with one log line holding "file:7: tls: want" */
static void
load_fails(struct config *c, const char *want)
{
	char	 full[1024];
	char	*log;

	snprintf(full, sizeof(full), "%s:7: tls: %s",
	    c->c_file != NULL ? c->c_file : "smtpd.conf", want);
	capture_start();
	assert_int_equal(tls_config_load(c), -1);
	log = capture_end();
	assert_has(log, full);
	assert_int_equal(log_lines(log), 1);
	assert_null(c->c_tls.tl_ctx);
	free(log);
}

static void
test_load(void **state)
{
	struct config	 c;
	char		*log;

	(void)state;
	conf_init(&c, NULL, NULL);
	assert_int_equal(tls_config_load(&c), 0);
	assert_null(c.c_tls.tl_ctx);

	conf_init(&c, "chain.pem", "server.key");
	capture_start();
	assert_int_equal(tls_config_load(&c), 0);
	log = capture_end();
	assert_string_equal(log, "");
	free(log);
	assert_non_null(c.c_tls.tl_ctx);
	tls_config_free(&c);
	assert_null(c.c_tls.tl_ctx);
	tls_config_free(&c);
}

static void
test_load_errors(void **state)
{
	struct config	 c;
	char		 want[1024];

	(void)state;
	conf_init(&c, "chain.pem", "loose.key");
	snprintf(want, sizeof(want), "key file %s is readable by group or "
	    "others (mode 0644); chmod 600 %s", path("loose.key"),
	    path("loose.key"));
	load_fails(&c, want);
	c.c_file = NULL;
	load_fails(&c, want);

	conf_init(&c, "nope.crt", "server.key");
	snprintf(want, sizeof(want), "certificate file %s: No such file",
	    path("nope.crt"));
	load_fails(&c, want);

	conf_init(&c, "chain.pem", "nope.key");
	snprintf(want, sizeof(want), "key file %s: No such file",
	    path("nope.key"));
	load_fails(&c, want);

	conf_init(&c, "chain.pem", "other.key");
	snprintf(want, sizeof(want), "key file %s does not match "
	    "certificate %s", path("other.key"), path("chain.pem"));
	load_fails(&c, want);

	conf_init(&c, "chain.pem", "garbage.key");
	snprintf(want, sizeof(want), "key file %s: no unencrypted PEM "
	    "private key", path("garbage.key"));
	load_fails(&c, want);

	/* A certificate where the key belongs is not a key. */
	conf_init(&c, "garbage.key", "server.key");
	snprintf(want, sizeof(want), "certificate file %s: no start line",
	    path("garbage.key"));
	load_fails(&c, want);

	/* A FIFO would block the master in open() (or OpenSSL's read). */
	conf_init(&c, "chain.pem", "fifo.key");
	snprintf(want, sizeof(want), "key file %s: not a regular file",
	    path("fifo.key"));
	load_fails(&c, want);
	conf_init(&c, "fifo.crt", "server.key");
	snprintf(want, sizeof(want), "certificate file %s: not a regular "
	    "file", path("fifo.crt"));
	load_fails(&c, want);

	conf_init(&c, "chain.pem", "server.key");
	c.c_tls.tl_ciphers = (char *)(uintptr_t)"NO-SUCH-CIPHER";
	load_fails(&c, "ciphers \"NO-SUCH-CIPHER\": no cipher match");
}

/* Expired and not-yet-valid certificates load, with a warning. */
static void
test_load_dates(void **state)
{
	struct config	 c;
	char		*log;
	char		 want[1024];

	(void)state;
	conf_init(&c, "expired.crt", "server.key");
	capture_start();
	assert_int_equal(tls_config_load(&c), 0);
	log = capture_end();
	snprintf(want, sizeof(want), "/etc/test.conf:7: tls: warning: "
	    "certificate %s expired on 20", path("expired.crt"));
	assert_has(log, want);
	assert_int_equal(log_lines(log), 1);
	assert_non_null(c.c_tls.tl_ctx);
	tls_config_free(&c);
	free(log);

	conf_init(&c, "future.crt", "server.key");
	capture_start();
	assert_int_equal(tls_config_load(&c), 0);
	log = capture_end();
	assert_has(log, "is not valid before 20");
	assert_int_equal(log_lines(log), 1);
	tls_config_free(&c);
	free(log);
}

/*
 * The client thread: a handshake with its own context, then what mode
 * says.  It trusts only the root CA, so the handshake needs the
 * intermediate that chain.pem holds.
 */
enum cl_mode { CL_CLOSE, CL_ABRUPT, CL_ECHO };

struct peer {
	int		 fd;
	int		 maxver;	/* 0: OpenSSL's default */
	int		 verify;
	enum cl_mode	 mode;
	int		 connected;
	int		 done;
	SSL_SESSION	*offer;		/* a session to resume, or NULL */
	SSL_SESSION	**save;		/* where to keep the session after it */
	int		 reused;
	pthread_t	 thread;
};

static SSL_CTX *
peer_ctx(const struct peer *cl)
{
	SSL_CTX	*ctx;

	ctx = SSL_CTX_new(TLS_client_method());
	if (cl->maxver != 0) {
		/* Level 0, so the refusal comes from the server. */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
		SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(ctx, cl->maxver);
	}
	if (cl->verify) {
		SSL_CTX_load_verify_locations(ctx, path("ca.crt"), NULL);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
}

/* Send DATA_LEN bytes, then read them back. */
static int
client_echo(SSL *ssl)
{
	unsigned char	*buf;
	size_t		 i, off;
	int		 n, ok = 1;

	buf = xmalloc(DATA_LEN);
	for (i = 0; i < DATA_LEN; i++)
		buf[i] = (unsigned char)(i * 7 + i / 251);
	for (off = 0; off < DATA_LEN; off += n)
		if ((n = SSL_write(ssl, buf + off, DATA_LEN - off)) <= 0)
			ok = 0, n = DATA_LEN;
	for (off = 0; ok && off < DATA_LEN; off += n)
		if ((n = SSL_read(ssl, buf + off, DATA_LEN - off)) <= 0)
			ok = 0;
	for (i = 0; ok && i < DATA_LEN; i++)
		if (buf[i] != (unsigned char)(i * 7 + i / 251))
			ok = 0;
	free(buf);
	return ok;
}

static void *
client_main(void *arg)
{
	struct peer	*cl = arg;
	SSL_CTX		*ctx;
	SSL		*ssl;

	ctx = peer_ctx(cl);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, cl->fd);
	if (cl->offer != NULL)
		SSL_set_session(ssl, cl->offer);
	if (SSL_connect(ssl) == 1) {
		cl->connected = 1;
		cl->reused = SSL_session_reused(ssl);
		if (cl->mode == CL_ECHO)
			cl->done = client_echo(ssl);
		/* TLSv1.3: the echo read the ticket that follows the handshake */
		if (cl->save != NULL)
			*cl->save = SSL_get1_session(ssl);
		if (cl->mode != CL_ABRUPT)
			SSL_shutdown(ssl);
		else
			shutdown(cl->fd, SHUT_RDWR);
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* A socketpair: *sfd non-blocking for tls.c, cl->fd for the client. */
static void
client_start(struct peer *cl, int *sfd)
{
	int	 sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	*sfd = sv[0];
	cl->fd = sv[1];
	assert_int_equal(pthread_create(&cl->thread, NULL, client_main, cl),
	    0);
}

static void
client_end(struct peer *cl, int sfd)
{
	close(sfd);
	assert_int_equal(pthread_join(cl->thread, NULL), 0);
	close(cl->fd);
}

static void
load_ok(struct config *c)
{
	conf_init(c, "chain.pem", "server.key");
	assert_int_equal(tls_config_load(c), 0);
}

/* The client's thread, then smtpd's side of the handshake; its log. */
static struct tls_conn *
accept_logged(const struct config *c, struct peer *cl, int *sfd,
    const char *sid, char **log)
{
	struct tls_conn	*t;

	client_start(cl, sfd);
	capture_start();
	t = tls_accept(c->c_tls.tl_ctx, *sfd, 5000, sid, NULL);
	*log = capture_end();
	return t;
}

static void
wait_for(int fd, int events)
{
	struct pollfd	 pfd;

	pfd.fd = fd;
	pfd.events = events;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
}

/* Read DATA_LEN bytes in small pieces; true when tls_pending() said so. */
static int
server_read_all(struct tls_conn *t, int fd)
{
	unsigned char	 buf[100];
	size_t		 got = 0, i;
	ssize_t		 n;
	int		 saw = 0;

	while (got < DATA_LEN) {
		/* Bytes tls.c holds are invisible to poll(). */
		if (!tls_pending(t))
			wait_for(fd, tls_want(t));
		if ((n = tls_read(t, buf, sizeof(buf))) == -1 &&
		    errno == EAGAIN)
			continue;
		assert_true(n > 0);
		for (i = 0; i < (size_t)n; i++, got++)
			assert_int_equal(buf[i],
			    (unsigned char)(got * 7 + got / 251));
		saw |= tls_pending(t);
	}
	return saw;
}

static void
server_write_all(struct tls_conn *t, int fd)
{
	unsigned char	*buf;
	size_t		 i, off = 0;
	ssize_t		 n;

	buf = xmalloc(DATA_LEN);
	for (i = 0; i < DATA_LEN; i++)
		buf[i] = (unsigned char)(i * 7 + i / 251);
	while (off < DATA_LEN) {
		n = tls_write(t, buf + off, DATA_LEN - off);
		if (n == -1 && errno == EAGAIN) {
			wait_for(fd, tls_want(t));
			continue;
		}
		assert_true(n > 0);
		off += n;
	}
	free(buf);
}

static void
test_roundtrip(void **state)
{
	struct config	 c;
	struct peer	 cl = { .verify = 1, .mode = CL_ECHO };
	struct tls_conn	*t;
	char		*log;
	int		 sfd;

	(void)state;
	load_ok(&c);
	t = accept_logged(&c, &cl, &sfd, "t1", &log);
	assert_non_null(t);
	assert_has(log, "t1 tls TLSv1.3 TLS_");
	assert_int_equal(strncmp(tls_info(t), "TLSv1.3 TLS_", 12), 0);
	assert_true(server_read_all(t, sfd));
	server_write_all(t, sfd);
	/* The client's close_notify reads as the end of the input. */
	wait_for(sfd, POLLIN);
	assert_int_equal(tls_read(t, log, 1), 0);
	tls_close(t);
	client_end(&cl, sfd);
	assert_true(cl.connected);
	assert_true(cl.done);
	free(log);
	tls_config_free(&c);
}

/* An echo session that offers a session to resume: 1 when resumed. */
static int
ticket_session(struct config *c, SSL_SESSION *offer, SSL_SESSION **got)
{
	struct peer	 cl = { .mode = CL_ECHO };
	struct tls_conn	*t;
	SSL_SESSION	*sess = NULL;
	char		 buf[1];
	int		 sfd;

	cl.offer = offer;
	cl.save = &sess;
	client_start(&cl, &sfd);
	t = tls_accept(c->c_tls.tl_ctx, sfd, 5000, "t7", NULL);
	assert_non_null(t);
	(void)server_read_all(t, sfd);
	server_write_all(t, sfd);
	wait_for(sfd, POLLIN);
	assert_int_equal(tls_read(t, buf, 1), 0);
	tls_close(t);
	client_end(&cl, sfd);
	assert_true(cl.done);
	assert_non_null(sess);
	if (got != NULL)
		*got = sess;
	else
		SSL_SESSION_free(sess);
	return cl.reused;
}

/*
 * Tickets: sealed with the current key, opened after one rotation (the
 * previous key), not after two; `tls tickets no` sends none.
 */
static void
test_tickets(void **state)
{
	struct config	 c;
	SSL_SESSION	*first, *later;

	(void)state;
	conf_init(&c, "chain.pem", "server.key");
	c.c_tls.tl_tickets = 1;
	assert_int_equal(tls_config_load(&c), 0);
	assert_false(ticket_session(&c, NULL, &first));
	assert_true(SSL_SESSION_is_resumable(first));
	assert_true(ticket_session(&c, first, NULL));
	tls_ticket_rotate();
	assert_true(ticket_session(&c, first, &later));
	tls_ticket_rotate();
	/* Two keys on: a full handshake, not a failure. */
	assert_false(ticket_session(&c, first, NULL));
	/* The ticket renewed after the first rotation still opens. */
	assert_true(ticket_session(&c, later, NULL));
	SSL_SESSION_free(first);
	SSL_SESSION_free(later);
	tls_config_free(&c);

	c.c_tls.tl_tickets = 0;
	assert_int_equal(tls_config_load(&c), 0);
	assert_false(ticket_session(&c, NULL, &first));
	assert_false(SSL_SESSION_is_resumable(first));
	SSL_SESSION_free(first);
	tls_config_free(&c);
}

/* A memfd holding len octets of garbage (0x5a), for tls_ticket_import. */
static int
garbage_fd(size_t len)
{
	char	 buf[512];
	int	 fd;

	assert_true(len <= sizeof(buf));
	memset(buf, 0x5a, sizeof(buf));
	assert_true((fd = os_memfd("garbage")) != -1);
	assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
	return fd;
}

/*
 * The keys an upgrade hands over (tls_ticket_export, then import in the
 * new master) open the tickets sealed before; a file of another layout,
 * or a time to the next key beyond a ticket's life, is refused and the
 * keys stay as they are; so are the keys of a master other than the one
 * named (the new master's parent).
 */
static void
test_ticket_handover(void **state)
{
	struct config	 c;
	SSL_SESSION	*first;
	int		 fd;

	(void)state;
	conf_init(&c, "chain.pem", "server.key");
	c.c_tls.tl_tickets = 1;
	assert_int_equal(tls_config_load(&c), 0);
	assert_false(ticket_session(&c, NULL, &first));
	assert_true((fd = tls_ticket_export(1234)) != -1);
	tls_ticket_rotate();
	tls_ticket_rotate();
	assert_false(ticket_session(&c, first, NULL));
	assert_int_equal(tls_ticket_import(fd, getpid()), 1234);
	assert_true(ticket_session(&c, first, NULL));

	assert_int_equal(tls_ticket_import(-1, getpid()), -1);
	assert_int_equal(tls_ticket_import(garbage_fd(10), getpid()), -1);
	assert_int_equal(tls_ticket_import(garbage_fd(200), getpid()), -1);
	fd = tls_ticket_export(TLS_TICKET_ROTATE * 1000LL + 1);
	assert_true(fd != -1);
	assert_int_equal(tls_ticket_import(fd, getpid()), -1);
	assert_true(ticket_session(&c, first, NULL));
	/* Written by another master than our parent: stale, not ours. */
	fd = tls_ticket_export(1234);
	tls_ticket_rotate();
	tls_ticket_rotate();
	assert_int_equal(tls_ticket_import(fd, getpid() + 1), -1);
	assert_false(ticket_session(&c, first, NULL));
	SSL_SESSION_free(first);
	tls_config_free(&c);
}

/* A client that goes without close_notify is an end of input too. */
static void
test_abrupt_eof(void **state)
{
	struct config	 c;
	struct peer	 cl = { .mode = CL_ABRUPT };
	struct tls_conn	*t;
	char		 buf[16], *log;
	ssize_t		 n;
	int		 sfd;

	(void)state;
	load_ok(&c);
	t = accept_logged(&c, &cl, &sfd, "t2", &log);
	assert_non_null(t);
	pthread_join(cl.thread, NULL);
	while ((n = tls_read(t, buf, sizeof(buf))) == -1 && errno == EAGAIN)
		wait_for(sfd, tls_want(t));
	assert_int_equal(n, 0);
	tls_close(t);
	close(sfd);
	close(cl.fd);
	free(log);
	tls_config_free(&c);
}

/* Writing to a client that has gone: an error, never SIGPIPE. */
static void
test_no_sigpipe(void **state)
{
	struct config	 c;
	struct peer	 cl = { .mode = CL_ABRUPT };
	struct tls_conn	*t;
	char		 buf[4096], *log;
	ssize_t		 n;
	int		 sfd, i;

	(void)state;
	load_ok(&c);
	t = accept_logged(&c, &cl, &sfd, "t3", &log);
	assert_non_null(t);
	pthread_join(cl.thread, NULL);
	close(cl.fd);
	signal(SIGPIPE, SIG_DFL);
	memset(buf, 'x', sizeof(buf));
	for (i = 0; i < 100; i++)
		if ((n = tls_write(t, buf, sizeof(buf))) == -1 &&
		    errno != EAGAIN)
			break;
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(n, -1);
	assert_true(errno == EPIPE || errno == ECONNRESET);
	tls_close(t);
	close(sfd);
	free(log);
	tls_config_free(&c);
}

/* The handshake fails; the server's log line holds want. */
static void
handshake_fails(struct config *c, struct peer *cl, const char *want)
{
	char	*log;
	int	 sfd;

	assert_null(accept_logged(c, cl, &sfd, "t4", &log));
	client_end(cl, sfd);
	assert_false(cl->connected);
	assert_has(log, want);
	free(log);
}

static void
test_old_protocols(void **state)
{
	struct config	 c;
	struct peer	 cl = { .maxver = TLS1_1_VERSION };

	(void)state;
	load_ok(&c);
	handshake_fails(&c, &cl, "t4 tls handshake failed: unsupported "
	    "protocol");
	tls_config_free(&c);

	/* `tls protocols TLSv1.3`: a TLS 1.2 client is refused. */
	conf_init(&c, "chain.pem", "server.key");
	c.c_tls.tl_protocols = TLSP_TLSv1_3;
	assert_int_equal(tls_config_load(&c), 0);
	cl.maxver = TLS1_2_VERSION;
	handshake_fails(&c, &cl, "t4 tls handshake failed: unsupported "
	    "protocol");
	tls_config_free(&c);
}

/* `tls protocols TLSv1.2` and a cipher list are what the client gets. */
static void
test_tls12_ciphers(void **state)
{
	struct config	 c;
	struct peer	 cl = { .verify = 1, .mode = CL_ECHO };
	struct tls_conn	*t;
	char		*log;
	int		 sfd;

	(void)state;
	conf_init(&c, "chain.pem", "server.key");
	c.c_tls.tl_protocols = TLSP_TLSv1_2;
	c.c_tls.tl_ciphers = (char *)(uintptr_t)"ECDHE-ECDSA-CHACHA20-POLY1305";
	assert_int_equal(tls_config_load(&c), 0);
	t = accept_logged(&c, &cl, &sfd, "t5", &log);
	assert_non_null(t);
	assert_string_equal(tls_info(t),
	    "TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305");
	server_read_all(t, sfd);
	server_write_all(t, sfd);
	tls_close(t);
	client_end(&cl, sfd);
	assert_true(cl.done);
	free(log);
	tls_config_free(&c);
}

/* The peer sends `send` (may be empty) and then nothing more. */
static void
silent_peer(const char *send, size_t len, int timeout_ms, long long min_ms,
    long long max_ms, const char *want)
{
	struct config	 c;
	long long	 t0, dt;
	char		*log;
	int		 sv[2];

	load_ok(&c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(write(sv[1], send, len), (ssize_t)len);
	t0 = util_now_ms();
	capture_start();
	assert_null(tls_accept(c.c_tls.tl_ctx, sv[0], timeout_ms, "t6",
	    NULL));
	log = capture_end();
	dt = util_now_ms() - t0;
	if (dt < min_ms || dt > max_ms)
		fail_msg("tls_accept took %lld ms", dt);
	assert_has(log, want);
	assert_int_equal(log_lines(log), 1);
	free(log);
	close(sv[0]);
	close(sv[1]);
	tls_config_free(&c);
}

static void
test_timeouts(void **state)
{
	(void)state;
	/* Nothing at all, then half a ClientHello record header. */
	silent_peer("", 0, 300, 290, 2000,
	    "t6 tls handshake failed: timed out");
	silent_peer("\x16\x03\x01\x02", 4, 300, 290, 2000,
	    "t6 tls handshake failed: timed out");
}

/* Plaintext SMTP instead of a ClientHello fails at once. */
static void
test_plaintext(void **state)
{
	(void)state;
	silent_peer("EHLO x\r\n", 8, 5000, 0, 1000,
	    "t6 tls handshake failed: ");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_load_dates),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_tickets),
		cmocka_unit_test(test_ticket_handover),
		cmocka_unit_test(test_abrupt_eof),
		cmocka_unit_test(test_no_sigpipe),
		cmocka_unit_test(test_old_protocols),
		cmocka_unit_test(test_tls12_ciphers),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_plaintext),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
