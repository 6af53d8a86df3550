/*
 * tls.c: OpenSSL for smtpd.  The master loads the certificate and key into
 * one server SSL_CTX before it forks (children never open the key file),
 * and makes the session ticket keys; children run the handshake and the
 * record I/O on non-blocking sockets.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "smtpd.h"

#define TLS_KEY_MAX	(64 * 1024)	/* a PEM key file is a few KiB */

struct tls_conn {
	SSL		*t_ssl;
	int		 t_fd;
	int		 t_wait;	/* reads may block (tls_read_wait) */
	int		 t_want;	/* POLLIN/POLLOUT after EAGAIN */
	int		 t_dead;	/* fatal error: no close_notify */
	char		 t_info[128];	/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
};

/*
 * A session ticket key (RFC 5077 4): the name that finds it, the key of
 * the cipher and the key of the MAC.
 */
struct tls_ticket_key {
	unsigned char	 tk_name[16];
	unsigned char	 tk_aes[32];	/* AES-256-CBC */
	unsigned char	 tk_hmac[32];	/* HMAC-SHA256 */
	int		 tk_set;
};

/*
 * [0] seals new tickets, [1] is the key before it, still accepted.  The
 * master makes them before it forks, so every child opens the tickets
 * of every other child.
 */
static struct tls_ticket_key	 tls_keys[2];

static void	 tls_conf_error(const struct config *, int, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
static const char *tls_ssl_reason(void);
static SSL_CTX	*tls_ctx_new(const struct config *);
static int	 tls_ctx_protocols(const struct config *, SSL_CTX *);
static int	 tls_load_cert(const struct config *, SSL_CTX *);
static void	 tls_check_dates(const struct config *, X509 *);
static void	 tls_warn_date(const struct config *, const char *,
		    const ASN1_TIME *);
static int	 tls_read_keyfile(const struct config *, char *, size_t,
		    size_t *);
static int	 tls_load_key(const struct config *, SSL_CTX *);
static int	 tls_nopass(char *, int, int, void *);
static BIO_METHOD *tls_bio_method(void);
static int	 tls_bio_write(BIO *, const char *, size_t, size_t *);
static int	 tls_bio_read(BIO *, char *, size_t, size_t *);
static long	 tls_bio_ctrl(BIO *, int, long, void *);
static int	 tls_poll(struct pollfd *, int);
static int	 tls_handshake(struct tls_conn *, int, int,
		    int (*)(struct pollfd *, int), const char **);
static ssize_t	 tls_result(struct tls_conn *, int, int);
static void	 tls_ctx_tickets(const struct config *, SSL_CTX *);
static int	 tls_ctx_sid(const struct config *, SSL_CTX *);
static void	 tls_warm(SSL_CTX *);
#define TLS_WARM_ROUNDS	8	/* a TLS 1.3 handshake takes two or three */
static int	 tls_ticket_cb(SSL *, unsigned char *, unsigned char *,
		    EVP_CIPHER_CTX *, EVP_MAC_CTX *, int);
static int	 tls_ticket_mac(EVP_MAC_CTX *, const struct tls_ticket_key *);

/*
 * Configuration errors: one line, "file:line: tls: ...", like every other
 * error of smtpd.conf.
 */
static void
tls_conf_error(const struct config *c, int line, const char *fmt, ...)
{
	char	 buf[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("%s:%d: tls: %s", c->c_file != NULL ? c->c_file :
	    "smtpd.conf", line > 0 ? line : c->c_tls.tl_line, buf);
}

/* The first (root cause) OpenSSL error of the queue, which is emptied. */
static const char *
tls_ssl_reason(void)
{
	static char	 buf[256];
	unsigned long	 e;
	const char	*r;

	e = ERR_peek_error();
	ERR_clear_error();
	if (e == 0)
		return "unknown error";
	if (ERR_GET_LIB(e) == ERR_LIB_SYS)
		return strerror(ERR_GET_REASON(e));
	if ((r = ERR_reason_error_string(e)) != NULL)
		return r;
	ERR_error_string_n(e, buf, sizeof(buf));
	return buf;
}

int
tls_config_load(struct config *c)
{
	SSL_CTX	*ctx;

	if (c->c_tls.tl_cert == NULL)
		return 0;
	if ((ctx = tls_ctx_new(c)) == NULL)
		return -1;
	if (tls_load_cert(c, ctx) == -1 || tls_load_key(c, ctx) == -1 ||
	    tls_ctx_sid(c, ctx) == -1) {
		SSL_CTX_free(ctx);
		return -1;
	}
	tls_config_free(c);
	c->c_tls.tl_ctx = ctx;
	/*
	 * The first key; a reload makes the next one once it has taken the
	 * new configuration (smtpd.c), so that a reload that fails leaves
	 * the keys as they were.
	 */
	if (!tls_keys[0].tk_set)
		tls_ticket_rotate();
	tls_warm(ctx);
	return 0;
}

/*
 * One handshake with ourselves, in memory, before any child is forked.
 * OpenSSL builds much of its state lazily at the first handshake (the
 * algorithms it fetches, their caches); done here, that state is made
 * once and shared by every child, instead of being built again in each
 * child's own copy of the pages.
 */
static void
tls_warm(SSL_CTX *sctx)
{
	SSL_CTX	*cctx;
	SSL	*srv = NULL, *cli = NULL;
	BIO	*bs = NULL, *bc = NULL;
	int	 i, rs = 0, rc = 0;

	if ((cctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto done;
	if ((srv = SSL_new(sctx)) == NULL || (cli = SSL_new(cctx)) == NULL ||
	    !BIO_new_bio_pair(&bs, 0, &bc, 0))
		goto done;
	SSL_set_bio(srv, bs, bs);
	SSL_set_bio(cli, bc, bc);
	bs = bc = NULL;
	SSL_set_accept_state(srv);
	SSL_set_connect_state(cli);
	for (i = 0; i < TLS_WARM_ROUNDS && (rs != 1 || rc != 1); i++) {
		rc = SSL_do_handshake(cli);
		rs = SSL_do_handshake(srv);
	}
	if (rs != 1 || rc != 1)
		log_debug("tls: warm-up handshake did not complete");
 done:
	BIO_free(bs);
	BIO_free(bc);
	SSL_free(srv);
	SSL_free(cli);
	SSL_CTX_free(cctx);
	ERR_clear_error();
}

void
tls_config_free(struct config *c)
{
	SSL_CTX_free(c->c_tls.tl_ctx);
	c->c_tls.tl_ctx = NULL;
}

/* The server context: protocols, ciphers and options, without the keys. */
static SSL_CTX *
tls_ctx_new(const struct config *c)
{
	SSL_CTX	*ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_conf_error(c, 0, "SSL_CTX_new: %s", tls_ssl_reason());
		return NULL;
	}
	if (tls_ctx_protocols(c, ctx) == -1)
		goto fail;
	SSL_CTX_set_security_level(ctx, 2);
	if (c->c_tls.tl_ciphers != NULL &&
	    !SSL_CTX_set_cipher_list(ctx, c->c_tls.tl_ciphers)) {
		tls_conf_error(c, c->c_tls.tl_line_ciphers,
		    "ciphers \"%s\": %s", c->c_tls.tl_ciphers,
		    tls_ssl_reason());
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/*
	 * Every child is its own process: a session cache would not be
	 * shared.  Tickets are: their keys are common to all children.
	 */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	tls_ctx_tickets(c, ctx);
	/* One recv(2) for what the client sent, not two per record. */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* Never ask for a client certificate. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* write(2) semantics: partial writes; the caller may move its data */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
 fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* TLS 1.2 at least (RFC 8996 retired 1.0 and 1.1), 1.3 when allowed. */
static int
tls_ctx_protocols(const struct config *c, SSL_CTX *ctx)
{
	int	 min = TLS1_2_VERSION, max = TLS1_3_VERSION;

	switch (c->c_tls.tl_protocols & TLSP_DEFAULT) {
	case TLSP_TLSv1_2:
		max = TLS1_2_VERSION;
		break;
	case TLSP_TLSv1_3:
		min = TLS1_3_VERSION;
		break;
	case 0:
		tls_conf_error(c, c->c_tls.tl_line_protocols,
		    "no protocol enabled");
		return -1;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, min) ||
	    !SSL_CTX_set_max_proto_version(ctx, max)) {
		tls_conf_error(c, c->c_tls.tl_line_protocols,
		    "protocols: %s", tls_ssl_reason());
		return -1;
	}
	return 0;
}

/*
 * Session tickets, or none with `tls tickets no`.  RFC 8446 4.6.1: the
 * server sends its ticket right after the handshake; besides resumption
 * it acknowledges the client's Finished at once, which a client that
 * sends its first command behind that segment (Nagle) waits for.
 */
static void
tls_ctx_tickets(const struct config *c, SSL_CTX *ctx)
{
	if (!c->c_tls.tl_tickets) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
		return;
	}
	SSL_CTX_set_num_tickets(ctx, TLS_TICKETS_SENT);
	SSL_CTX_set_timeout(ctx, TLS_TICKET_ROTATE);
	(void)SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
}

/*
 * The session ID context, which a ticket carries and OpenSSL compares
 * before it resumes: a digest of the certificate, the cipher list and
 * the protocols.  The key before a reload still opens the tickets it
 * sealed, but one sealed under another configuration is not resumed, so
 * a certificate replaced or a cipher taken out at a reload is not served
 * on for the hour a ticket lives: the client gets a full handshake.
 */
static int
tls_ctx_sid(const struct config *c, SSL_CTX *ctx)
{
	unsigned char	 md[EVP_MAX_MD_SIZE], cert[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0, certlen = 0;
	const char	*ciphers = c->c_tls.tl_ciphers;
	EVP_MD_CTX	*mctx;
	X509		*x;
	int		 ok;

	if (ciphers == NULL)
		ciphers = "";
	if ((x = SSL_CTX_get0_certificate(ctx)) == NULL ||
	    (mctx = EVP_MD_CTX_new()) == NULL)
		goto fail;
	ok = X509_digest(x, EVP_sha256(), cert, &certlen) &&
	    EVP_DigestInit_ex(mctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(mctx, cert, certlen) &&
	    EVP_DigestUpdate(mctx, ciphers, strlen(ciphers) + 1) &&
	    EVP_DigestUpdate(mctx, &c->c_tls.tl_protocols,
	    sizeof(c->c_tls.tl_protocols)) &&
	    EVP_DigestFinal_ex(mctx, md, &mdlen) &&
	    mdlen <= SSL_MAX_SID_CTX_LENGTH &&
	    SSL_CTX_set_session_id_context(ctx, md, mdlen);
	EVP_MD_CTX_free(mctx);
	if (ok)
		return 0;
 fail:
	tls_conf_error(c, 0, "session id context: %s", tls_ssl_reason());
	return -1;
}

/*
 * A new ticket key; the one it replaces is still accepted.  A ticket
 * lives TLS_TICKET_ROTATE seconds, so rotating at that interval (and at
 * each reload) leaves every live ticket a key to open it.
 */
void
tls_ticket_rotate(void)
{
	struct tls_ticket_key	*k = &tls_keys[0];

	tls_keys[1] = tls_keys[0];
	arc4random_buf(k->tk_name, sizeof(k->tk_name));
	arc4random_buf(k->tk_aes, sizeof(k->tk_aes));
	arc4random_buf(k->tk_hmac, sizeof(k->tk_hmac));
	k->tk_set = 1;
}

/*
 * The keys handed to the master that replaces us at an upgrade
 * (upgrade.c), so that the tickets out there still resume: both keys and
 * the milliseconds to the next one, in a memfd.  The magic changes with
 * the layout: a binary that reads another layout makes keys of its own.
 * th_pid is the master that wrote them: a binary without the handover
 * keeps the descriptor and the variable that names it to the master it
 * starts in turn, whose parent is then another (and the keys stale).
 */
#define TLS_HANDOVER_MAGIC	0x736d7470746b3032ULL	/* "smtptk02" */
struct tls_handover {
	uint64_t		 th_magic;
	long long		 th_left;
	int64_t			 th_pid;
	struct tls_ticket_key	 th_keys[2];
};

/* The memfd for the new master, or -1 (no keys, or it cannot be made). */
int
tls_ticket_export(long long left)
{
	struct tls_handover	 h;
	int			 fd;

	if (!tls_keys[0].tk_set)
		return -1;
	memset(&h, 0, sizeof(h));
	h.th_magic = TLS_HANDOVER_MAGIC;
	h.th_left = left;
	h.th_pid = getpid();
	memcpy(h.th_keys, tls_keys, sizeof(h.th_keys));
	if ((fd = os_memfd("smtpd-tickets")) != -1 &&
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		(void)close(fd);
		fd = -1;
	}
	explicit_bzero(&h, sizeof(h));
	if (fd == -1)
		log_warn("upgrade: the TLS ticket keys are not handed on");
	return fd;
}

/*
 * In the new master, before its configuration: the keys that the master
 * parent (the old one, our parent) wrote to fd (closed here), which the
 * first load then keeps.  The milliseconds to the next key, or -1 when
 * fd held none of parent's.
 */
long long
tls_ticket_import(int fd, pid_t parent)
{
	struct tls_handover	 h;
	long long		 left = -1;

	if (fd == -1)
		return -1;
	if (pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	    h.th_magic == TLS_HANDOVER_MAGIC && h.th_pid == parent &&
	    h.th_keys[0].tk_set == 1 &&
	    h.th_left >= 0 && h.th_left <= TLS_TICKET_ROTATE * 1000LL) {
		memcpy(tls_keys, h.th_keys, sizeof(tls_keys));
		left = h.th_left;
	}
	explicit_bzero(&h, sizeof(h));
	(void)close(fd);
	return left;
}

static int
tls_ticket_mac(EVP_MAC_CTX *hctx, const struct tls_ticket_key *k)
{
	OSSL_PARAM	 params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)(uintptr_t)k->tk_hmac, sizeof(k->tk_hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)(uintptr_t)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params) ? 0 : -1;
}

/*
 * OpenSSL's ticket callback: seal with the current key; open with the
 * key the name says: 1, or 2 (renew) for the previous key, 0 when none
 * has that name (a full handshake follows).
 */
static int
tls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tls_ticket_key	*k;
	int				 i;

	(void)ssl;
	if (enc) {
		k = &tls_keys[0];
		if (!k->tk_set || RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
			return -1;
		memcpy(name, k->tk_name, sizeof(k->tk_name));
		if (!EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL,
		    k->tk_aes, iv) || tls_ticket_mac(hctx, k) == -1)
			return -1;
		return 1;
	}
	for (i = 0; i < 2; i++)
		if (tls_keys[i].tk_set && memcmp(name, tls_keys[i].tk_name,
		    sizeof(tls_keys[i].tk_name)) == 0)
			break;
	if (i == 2)
		return 0;
	k = &tls_keys[i];
	if (tls_ticket_mac(hctx, k) == -1 || !EVP_DecryptInit_ex(cctx,
	    EVP_aes_256_cbc(), NULL, k->tk_aes, iv))
		return -1;
	return i == 0 ? 1 : 2;
}

/* The certificate file may hold the intermediates after the leaf. */
static int
tls_load_cert(const struct config *c, SSL_CTX *ctx)
{
	struct stat	 st;
	X509		*x;

	if (stat(c->c_tls.tl_cert, &st) == -1) {
		tls_conf_error(c, 0, "certificate file %s: %s", c->c_tls.tl_cert,
		    strerror(errno));
		return -1;
	}
	/* OpenSSL would wait on a FIFO for ever, and the master with it. */
	if (!S_ISREG(st.st_mode)) {
		tls_conf_error(c, 0, "certificate file %s: not a regular file",
		    c->c_tls.tl_cert);
		return -1;
	}
	ERR_clear_error();
	if (!SSL_CTX_use_certificate_chain_file(ctx, c->c_tls.tl_cert)) {
		tls_conf_error(c, 0, "certificate file %s: %s", c->c_tls.tl_cert,
		    tls_ssl_reason());
		return -1;
	}
	if ((x = SSL_CTX_get0_certificate(ctx)) != NULL)
		tls_check_dates(c, x);
	return 0;
}

/*
 * An expired certificate is the administrator's to renew: warn, but
 * serve it (opportunistic SMTP clients seldom verify, RFC 7435).
 */
static void
tls_check_dates(const struct config *c, X509 *x)
{
	const ASN1_TIME	*t;

	t = X509_get0_notAfter(x);
	if (t != NULL && X509_cmp_current_time(t) < 0)
		tls_warn_date(c, "expired on", t);
	t = X509_get0_notBefore(x);
	if (t != NULL && X509_cmp_current_time(t) > 0)
		tls_warn_date(c, "is not valid before", t);
}

static void
tls_warn_date(const struct config *c, const char *what, const ASN1_TIME *t)
{
	struct tm	 tm;
	char		 date[64];

	if (!ASN1_TIME_to_tm(t, &tm) ||
	    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		strlcpy(date, "?", sizeof(date));
	tls_conf_error(c, 0, "warning: certificate %s %s %s", c->c_tls.tl_cert,
	    what, date);
}

/*
 * The key file, checked before a byte of it is read: it must not be
 * readable by group or others.  fstat() on the open file, so the file
 * checked is the file read.
 */
static int
tls_read_keyfile(const struct config *c, char *buf, size_t size,
    size_t *lenp)
{
	struct stat	 st;
	ssize_t		 n;
	int		 fd;

	if ((fd = util_open_regular(c->c_tls.tl_key, &st)) < 0) {
		tls_conf_error(c, 0, "key file %s: %s", c->c_tls.tl_key,
		    fd == -2 ? "not a regular file" : strerror(errno));
		goto fail;
	}
	if (st.st_mode & 077) {
		tls_conf_error(c, 0, "key file %s is readable by group or others "
		    "(mode %04o); chmod 600 %s", c->c_tls.tl_key,
		    (unsigned int)(st.st_mode & 07777), c->c_tls.tl_key);
		goto fail;
	}
	*lenp = 0;
	while ((n = read(fd, buf + *lenp, size - *lenp)) > 0)
		*lenp += n;
	if (n == -1 || *lenp == size) {
		tls_conf_error(c, 0, "key file %s: %s", c->c_tls.tl_key,
		    n == -1 ? strerror(errno) : "too large");
		goto fail;
	}
	close(fd);
	return 0;
 fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

/* An encrypted key would make OpenSSL prompt on the terminal: refuse. */
static int
tls_nopass(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

static int
tls_load_key(const struct config *c, SSL_CTX *ctx)
{
	EVP_PKEY	*pkey = NULL;
	BIO		*bio = NULL;
	char		*buf;
	size_t		 len = 0;
	int		 ret = -1;

	if (c->c_tls.tl_key == NULL) {
		tls_conf_error(c, 0, "no key file");
		return -1;
	}
	buf = xmalloc(TLS_KEY_MAX);
	if (tls_read_keyfile(c, buf, TLS_KEY_MAX, &len) == -1)
		goto done;
	ERR_clear_error();
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (pkey = PEM_read_bio_PrivateKey(bio, NULL, tls_nopass,
	    NULL)) == NULL) {
		tls_conf_error(c, 0, "key file %s: no unencrypted PEM private "
		    "key (%s)", c->c_tls.tl_key, tls_ssl_reason());
		goto done;
	}
	if (!SSL_CTX_use_PrivateKey(ctx, pkey) ||
	    !SSL_CTX_check_private_key(ctx)) {
		tls_conf_error(c, 0, "key file %s does not match certificate "
		    "%s: %s", c->c_tls.tl_key, c->c_tls.tl_cert,
		    tls_ssl_reason());
		goto done;
	}
	ret = 0;
 done:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	explicit_bzero(buf, TLS_KEY_MAX);
	free(buf);
	return ret;
}

/*
 * A socket BIO of our own: the stock one writes with write(2), which
 * raises SIGPIPE when the client has gone; send(2) with MSG_NOSIGNAL
 * does not, whatever the process does with the signal.
 */
static BIO_METHOD *
tls_bio_method(void)
{
	static BIO_METHOD	*m;

	if (m != NULL)
		return m;
	if ((m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "smtpd socket")) == NULL)
		return NULL;
	if (!BIO_meth_set_write_ex(m, tls_bio_write) ||
	    !BIO_meth_set_read_ex(m, tls_bio_read) ||
	    !BIO_meth_set_ctrl(m, tls_bio_ctrl)) {
		BIO_meth_free(m);
		m = NULL;
	}
	return m;
}

/*
 * The socket is a blocking one: every operation passes MSG_DONTWAIT but
 * the read of tls_read_wait(), which waits for the client's next record
 * (bounded by the SO_RCVTIMEO the session set).
 */
static int
tls_bio_write(BIO *b, const char *buf, size_t len, size_t *done)
{
	struct tls_conn	*t = BIO_get_data(b);
	ssize_t		 n;

	BIO_clear_retry_flags(b);
	n = send(t->t_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_write(b);
		return 0;
	}
	*done = n;
	return 1;
}

static int
tls_bio_read(BIO *b, char *buf, size_t len, size_t *done)
{
	struct tls_conn	*t = BIO_get_data(b);
	ssize_t		 n;

	BIO_clear_retry_flags(b);
	n = recv(t->t_fd, buf, len, t->t_wait ? 0 : MSG_DONTWAIT);
	/*
	 * One blocking read per tls_read_wait(): OpenSSL reads again for
	 * the rest of a record, or for the record after a KeyUpdate, and a
	 * client sending an octet now and then would get a whole
	 * SO_RCVTIMEO each time.  The rest is the caller's, who keeps time.
	 */
	t->t_wait = 0;
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		BIO_set_retry_read(b);
	if (n <= 0) {
		/* EOF: OpenSSL tells it from an error by errno 0. */
		if (n == 0)
			errno = 0;
		return 0;
	}
	*done = n;
	return 1;
}

/* Nothing to control: the connection is the BIO's data, set once. */
static long
tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH;
}

/*
 * The server handshake on a non-blocking socket, with one deadline for
 * all of it, so a client that stalls halfway is cut off.  The waits are
 * wait's (poll(2) when NULL), and one that fails with ECANCELED ends the
 * handshake: a shutdown does not wait for a silent client.  The caller
 * closes fd on failure, without a reply.
 */
struct tls_conn *
tls_accept(void *ctx, int fd, int timeout_ms, const char *sid,
    int (*wait)(struct pollfd *, int))
{
	struct tls_conn	*t;
	BIO_METHOD	*m;
	BIO		*bio;
	const char	*why = "out of memory";

	sid = sid != NULL ? sid : "-";
	t = xcalloc(1, sizeof(*t));
	t->t_want = POLLIN;
	if ((m = tls_bio_method()) == NULL || (bio = BIO_new(m)) == NULL)
		goto fail;
	t->t_fd = fd;
	BIO_set_data(bio, t);
	BIO_set_init(bio, 1);
	if ((t->t_ssl = SSL_new(ctx)) == NULL) {
		BIO_free(bio);
		goto fail;
	}
	SSL_set_bio(t->t_ssl, bio, bio);
	SSL_set_accept_state(t->t_ssl);
	if (tls_handshake(t, fd, timeout_ms, wait, &why) == -1)
		goto fail;
	snprintf(t->t_info, sizeof(t->t_info), "%s %s",
	    SSL_get_version(t->t_ssl), SSL_get_cipher_name(t->t_ssl));
	log_info("%s tls %s", sid, t->t_info);
	return t;
 fail:
	log_info("%s tls handshake failed: %s", sid, why);
	ERR_clear_error();
	SSL_free(t->t_ssl);
	free(t);
	return NULL;
}

/* The handshake's wait when the caller has none of its own. */
static int
tls_poll(struct pollfd *pfd, int ms)
{
	return poll(pfd, 1, ms);
}

static int
tls_handshake(struct tls_conn *t, int fd, int timeout_ms,
    int (*wait)(struct pollfd *, int), const char **why)
{
	struct pollfd	 pfd;
	long long	 deadline, left;
	int		 r, e;

	deadline = util_now_ms() + timeout_ms;
	if (wait == NULL)
		wait = tls_poll;
	pfd.fd = fd;
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_do_handshake(t->t_ssl)) == 1)
			return 0;
		e = SSL_get_error(t->t_ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			pfd.events = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			pfd.events = POLLOUT;
		else if (e == SSL_ERROR_SYSCALL && errno != 0)
			break;
		else {
			*why = e == SSL_ERROR_SSL ? tls_ssl_reason() :
			    "connection closed";
			return -1;
		}
		do {
			if ((left = deadline - util_now_ms()) <= 0) {
				*why = "timed out";
				return -1;
			}
		} while ((r = wait(&pfd, (int)left)) == -1 &&
		    errno == EINTR);
		if (r == -1)
			break;
	}
	*why = errno == ECANCELED ? "shutting down" : strerror(errno);
	return -1;
}

/*
 * SSL_read into rbuf or SSL_write from wbuf (the other one NULL), at most
 * INT_MAX octets at a time.
 */
static ssize_t
tls_io(struct tls_conn *t, void *rbuf, const void *wbuf, size_t len)
{
	int	 n = len > INT_MAX ? INT_MAX : (int)len, r;

	if (len == 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	r = rbuf != NULL ? SSL_read(t->t_ssl, rbuf, n) :
	    SSL_write(t->t_ssl, wbuf, n);
	return tls_result(t, r, rbuf != NULL);
}

ssize_t
tls_read(struct tls_conn *t, void *buf, size_t len)
{
	return tls_io(t, buf, NULL, len);
}

/*
 * A read that waits for the client when nothing is there, in one
 * recv(2) at most.  EAGAIN when that was not enough for a record, when
 * the socket's SO_RCVTIMEO ran out or when a signal came (as for
 * tls_read, with tls_want() saying what to poll for).
 */
ssize_t
tls_read_wait(struct tls_conn *t, void *buf, size_t len)
{
	ssize_t	 n;

	t->t_wait = 1;
	n = tls_io(t, buf, NULL, len);
	t->t_wait = 0;
	return n;
}

ssize_t
tls_write(struct tls_conn *t, const void *buf, size_t len)
{
	return tls_io(t, NULL, buf, len);
}

/*
 * SSL_read/SSL_write results in read(2)/write(2) terms: EAGAIN with
 * t_want set, 0 for the end of the input (close_notify, or a plain EOF:
 * SMTP has its own end of data, so a truncated stream is not an attack).
 */
static ssize_t
tls_result(struct tls_conn *t, int r, int reading)
{
	int	 e, saved = errno;

	if (r > 0)
		return r;
	switch ((e = SSL_get_error(t->t_ssl, r))) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		t->t_want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		if (reading)
			return 0;
		errno = EPIPE;
		return -1;
	case SSL_ERROR_SYSCALL:
		t->t_dead = 1;
		if (saved == 0 && reading)
			return 0;
		errno = saved != 0 ? saved : EPIPE;
		return -1;
	}
	t->t_dead = 1;
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
	if (reading && ERR_GET_REASON(ERR_peek_error()) ==
	    SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		return 0;
	}
#endif
	log_debug("tls: %s", tls_ssl_reason());
	errno = EIO;
	return -1;
}

/*
 * Input that poll() cannot see: decrypted bytes, or records read ahead.
 * It may be a partial record, for which a read answers EAGAIN: the
 * caller then polls.
 */
int
tls_pending(struct tls_conn *t)
{
	return SSL_has_pending(t->t_ssl);
}

int
tls_want(struct tls_conn *t)
{
	return t->t_want;
}

const char *
tls_info(struct tls_conn *t)
{
	return t->t_info;
}

/* One non-blocking close_notify attempt; the caller closes the socket. */
void
tls_close(struct tls_conn *t)
{
	if (t == NULL)
		return;
	if (!t->t_dead) {
		ERR_clear_error();
		(void)SSL_shutdown(t->t_ssl);
	}
	ERR_clear_error();
	SSL_free(t->t_ssl);
	free(t);
}
