/*
 * test_proxy.c: unit tests of proxy.c, table driven: every valid example
 * and every invalid class of proxy-protocol.txt 2.1 and 2.2 with its reason,
 * headers fed one octet at a time, the 107-octet limit, a haproxy v2
 * header with TLVs, and the `proxy-protocol from` networks.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpd.h"
#include "internal.h"

#define V2SIG		"\r\n\r\n\0\r\nQUIT\n"
#define V2SIGLEN	12
#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* A v1 line that parses: the header length and what it carries. */
struct v1_ok {
	const char	*in;
	int		 hlen;		/* the rest of in is SMTP */
	int		 local;
	const char	*src;		/* when !local */
	int		 sport;
	const char	*dst;
	int		 dport;
};

/* An input that fails, with its reason. */
struct bad {
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	const char	*err;
};

static const struct v1_ok v1_valid[] = {
	{ "PROXY TCP4 192.0.2.1 198.51.100.2 51234 25\r\n", 44, 0,
	    "192.0.2.1", 51234, "198.51.100.2", 25 },
	{ "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", 44, 0,
	    "0.0.0.0", 0, "255.255.255.255", 65535 },
	{ "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\nEHLO x\r\n", 34, 0,
	    "10.0.0.1", 1, "10.0.0.2", 2 },
	{ "PROXY TCP6 2001:db8::1 2001:db8::2 4000 587\r\n", 45, 0,
	    "2001:db8::1", 4000, "2001:db8::2", 587 },
	{ "PROXY TCP6 :: ::1 0 0\r\n", 23, 0, "::", 0, "::1", 0 },
	{ "PROXY TCP6 ::ffff:192.0.2.1 FE80::AbCd 10 20\r\n", 46, 0,
	    "::ffff:192.0.2.1", 10, "fe80::abcd", 20 },
	{ "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
	    "1:2:3:4:5:6:7:8 65535 65535\r\n", 86, 0,
	    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 65535,
	    "1:2:3:4:5:6:7:8", 65535 },
	{ "PROXY UNKNOWN\r\n", 15, 1, NULL, 0, NULL, 0 },
	{ "PROXY UNKNOWN\r\nEHLO x\r\n", 15, 1, NULL, 0, NULL, 0 },
	{ "PROXY UNKNOWN 192.0.2.1 198.51.100.2 1 2\r\n", 42, 1, NULL, 0,
	    NULL, 0 },
	{ "PROXY UNKNOWN whatever \t\x01\r goes\r\n", 33, 1, NULL, 0,
	    NULL, 0 },
	{ "PROXY UNKNOWNX\r\n", 16, 1, NULL, 0, NULL, 0 },
};

static const struct bad v1_invalid[] = {
	{ "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, "wrong signature" },
	{ "PROXY1 TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, "wrong signature" },
	{ "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, "wrong signature" },
	{ "PROXY\r\n", 0, "wrong signature" },
	{ "PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, "wrong signature" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 0, "malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\r\n", 0, "malformed" },
	{ "PROXY UNKNOWN\n", 0, "malformed" },
	{ "PROXY UNKNOWN foo\n", 0, "malformed" },
	{ "PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", 0, "unrecognised family" },
	{ "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 0, "unrecognised family" },
	{ "PROXY TCP44 1.2.3.4 5.6.7.8 1 2\r\n", 0, "unrecognised family" },
	{ "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, "unrecognised protocol" },
	{ "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 0, "unrecognised protocol" },
	{ "PROXY UNKNOW\r\n", 0, "unrecognised protocol" },
	{ "PROXY \r\n", 0, "unrecognised protocol" },
	{ "PROXY TCP4\r\n", 0, "malformed" },
	{ "PROXY TCP4 \r\n", 0, "malformed" },
	{ "PROXY TCP4 1.2.3.4\r\n", 0, "malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8\r\n", 0, "malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 0, "malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", 0, "malformed" },
	{ "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", 0, "malformed" },
	{ "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", 0, "malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", 0, "malformed" },
	{ "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP4 1.2.3.x 5.6.7.8 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP4 1.2.3.4 ::1 1 2\r\n", 0, "not IPv4" },
	{ "PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n", 0, "not IPv4" },
	{ "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 0, "not IPv6" },
	{ "PROXY TCP6 ::1 5.6.7.8 1 2\r\n", 0, "not IPv6" },
	{ "PROXY TCP6 1::2::3 ::1 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP6 12345:: ::1 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", 0,
	    "address malformed" },
	{ "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP6 g::1 ::1 1 2\r\n", 0, "address malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", 0, "port malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", 0, "port malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", 0, "port malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", 0, "port malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n", 0, "port malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 0, "port out of bounds" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", 0, "port out of bounds" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 1000000\r\n", 0,
	    "port out of bounds" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", 0, "extraneous data" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 0, "extraneous data" },
	{ "PROXY TCP6 ::1 ::2 1 2 x\r\n", 0, "extraneous data" },
	{ "XPROXY", 0, "wrong signature" },
	{ "EHLO x\r\n", 0, "wrong signature" },
	{ "", 1, "wrong signature" },	/* a NUL octet */
};

/*
 * Invalid before the line or header is complete: the reason comes as
 * soon as these octets are there, not after a timeout.
 */
static const struct bad early[] = {
	{ "E", 0, "wrong signature" },
	{ "PR0", 0, "wrong signature" },
	{ "PROXYX", 0, "wrong signature" },
	{ "PROXY TCP5", 0, "unrecognised family" },
	{ "PROXY TCP4X", 0, "unrecognised family" },
	{ "PROXY U", 0, NULL },
	{ "PROXY X", 0, "unrecognised protocol" },
	{ "PROXY TCP4 01", 0, "not IPv4" },	/* 01:: may come */
	{ "PROXY TCP4 1.02", 0, "address malformed" },
	{ "PROXY TCP4 1.2.3.4.", 0, "address malformed" },
	{ "PROXY TCP4 256", 0, "not IPv4" },
	{ "PROXY TCP4 256.", 0, "address malformed" },
	{ "PROXY TCP4 1:", 0, "not IPv4" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", 0, "extraneous data" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536", 0, "port out of bounds" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 0", 0, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 01", 0, "port malformed" },
	{ "PROXY TCP6 1", 0, NULL },		/* 1:: may come */
	{ "PROXY TCP6 1.", 0, "not IPv6" },
	{ "PROXY TCP6 1.2.3.4 ", 0, "not IPv6" },
	{ "PROXY TCP6 1:2:3:4:5:6:7:8:", 0, "address malformed" },
	{ "PROXY TCP6 12345", 0, "address malformed" },
	{ "PROXY TCP6 ::1::", 0, "address malformed" },
	{ "PROXY TCP6 1:2:3:4:5:6:7:", 0, NULL },
	{ "PROXY TCP6 1:2:3:4:5:6:1.2", 0, NULL },
	{ "PROXY TCP6 1:2:3:4:5:6:7:1.2", 0, "address malformed" },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", 0, NULL },
	{ "\r\n\r\n\0\r\nQUIX", 12, "wrong signature" },
	{ "\r\n\r\n\0\r\nQUIT\n\x11", 13, "bad version" },
	{ "\r\n\r\n\0\r\nQUIT\n\x22", 13, "bad command" },
	{ "\r\n\r\n\0\r\nQUIT\n\x21\x41", 14, "bad family" },
	{ "\r\n\r\n\0\r\nQUIT\n\x21\x13", 14, "bad protocol" },
	{ "\r\n\r\n\0\r\nQUIT\n\x21\x11\x10\x01", 16, "header too long" },
	{ "\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x0c", 16, "truncated address" },
	{ "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16, NULL },
};

/* haproxy 2.x, INET STREAM with CRC32C, AUTHORITY, UNIQUE_ID and SSL. */
static const unsigned char haproxy_hdr[] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
	0x21, 0x11, 0x00, 0x8c, 0xc0, 0x00, 0x02, 0x0a, 0xc6, 0x33, 0x64, 0x01,
	0xc8, 0x22, 0x00, 0x19, 0x03, 0x00, 0x04, 0x90, 0xeb, 0x74, 0xbf, 0x02,
	0x00, 0x10, 0x6d, 0x61, 0x69, 0x6c, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70,
	0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x05, 0x00, 0x10, 0x10, 0x11, 0x12,
	0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e,
	0x1f, 0x20, 0x00, 0x50, 0x07, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x07,
	0x54, 0x4c, 0x53, 0x76, 0x31, 0x2e, 0x33, 0x22, 0x00, 0x0e, 0x63, 0x6c,
	0x69, 0x65, 0x6e, 0x74, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
	0x23, 0x00, 0x16, 0x54, 0x4c, 0x53, 0x5f, 0x41, 0x45, 0x53, 0x5f, 0x32,
	0x35, 0x36, 0x5f, 0x47, 0x43, 0x4d, 0x5f, 0x53, 0x48, 0x41, 0x33, 0x38,
	0x34, 0x24, 0x00, 0x0a, 0x52, 0x53, 0x41, 0x2d, 0x53, 0x48, 0x41, 0x32,
	0x35, 0x36, 0x25, 0x00, 0x07, 0x52, 0x53, 0x41, 0x32, 0x30, 0x34, 0x38,
};

/* Parse exactly len octets from a heap copy, so ASan sees over-reads. */
static int
parse(const void *in, size_t len, struct proxy_info *pi, const char **err)
{
	unsigned char	*b = malloc(len > 0 ? len : 1);
	int		 r;

	assert_non_null(b);
	memcpy(b, in, len);
	*err = NULL;
	r = proxy_parse(b, len, pi, err);
	free(b);
	if (r == -1)
		assert_non_null(*err);
	return (r);
}

/* Every strict prefix of a valid header needs more octets. */
static void
check_prefixes(const void *in, size_t hlen)
{
	struct proxy_info	 pi;
	const char		*err;
	size_t			 i;

	for (i = 0; i < hlen; i++)
		if (parse(in, i, &pi, &err) != 0) {
			print_error("prefix %zu of %zu: %s\n", i, hlen,
			    err ? err : "a header");
			fail();
		}
}

static void
check_addr(const struct sockaddr_storage *ss, socklen_t sl, const char *addr,
    int port)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	unsigned char		 want[16];

	if (strchr(addr, ':') == NULL) {
		assert_int_equal(sl, sizeof(sin));
		memcpy(&sin, ss, sizeof(sin));
		assert_int_equal(sin.sin_family, AF_INET);
		assert_int_equal(ntohs(sin.sin_port), port);
		assert_int_equal(inet_pton(AF_INET, addr, want), 1);
		assert_memory_equal(&sin.sin_addr, want, 4);
	} else {
		assert_int_equal(sl, sizeof(sin6));
		memcpy(&sin6, ss, sizeof(sin6));
		assert_int_equal(sin6.sin6_family, AF_INET6);
		assert_int_equal(ntohs(sin6.sin6_port), port);
		assert_int_equal(inet_pton(AF_INET6, addr, want), 1);
		assert_memory_equal(&sin6.sin6_addr, want, 16);
	}
}

static void
test_v1_valid(void **state)
{
	struct proxy_info	 pi;
	const char		*err;
	size_t			 i;

	(void)state;
	for (i = 0; i < NITEMS(v1_valid); i++) {
		const struct v1_ok *t = &v1_valid[i];

		assert_int_equal(parse(t->in, strlen(t->in), &pi, &err),
		    t->hlen);
		assert_int_equal(pi.pi_version, 1);
		assert_int_equal(pi.pi_local, t->local);
		if (t->local) {
			assert_int_equal(pi.pi_srclen, 0);
			assert_int_equal(pi.pi_dstlen, 0);
		} else {
			check_addr(&pi.pi_src, pi.pi_srclen, t->src, t->sport);
			check_addr(&pi.pi_dst, pi.pi_dstlen, t->dst, t->dport);
		}
		/* Exactly the header: the same answer. */
		assert_int_equal(parse(t->in, t->hlen, &pi, &err), t->hlen);
		check_prefixes(t->in, t->hlen);
	}
}

/* The table's reason for the whole input; prefixes never parse. */
static void
check_bad(const struct bad *t)
{
	struct proxy_info	 pi;
	const char		*err;
	size_t			 len = t->len ? t->len : strlen(t->in), i;
	int			 r;

	r = parse(t->in, len, &pi, &err);
	if (t->err == NULL) {
		assert_int_equal(r, 0);
		return;
	}
	if (r != -1 || strcmp(err, t->err) != 0) {
		print_error("\"%s\": %d %s, want %s\n", t->in, r,
		    err ? err : "-", t->err);
		fail();
	}
	for (i = 0; i < len; i++)
		assert_true(parse(t->in, i, &pi, &err) <= 0);
}

static void
test_v1_invalid(void **state)
{
	size_t	 i;

	(void)state;
	for (i = 0; i < NITEMS(v1_invalid); i++)
		check_bad(&v1_invalid[i]);
}

static void
test_early(void **state)
{
	size_t	 i;

	(void)state;
	for (i = 0; i < NITEMS(early); i++)
		check_bad(&early[i]);
}

/* proxy-protocol.txt 2.1: the line, CRLF included, is 107 at most. */
static void
test_v1_limit(void **state)
{
	struct proxy_info	 pi;
	const char		*err;
	char			 line[PROXY_V1_MAX + 16];
	size_t			 n;

	(void)state;
	for (n = 15; n <= PROXY_V1_MAX + 1; n++) {
		memset(line, 'x', sizeof(line));
		memcpy(line, "PROXY UNKNOWN ", 14);
		memcpy(line + n - 2, "\r\nEHLO", 6);
		if (n == 15)
			memcpy(line, "PROXY UNKNOWN\r\n", 15);
		if (n <= PROXY_V1_MAX) {
			assert_int_equal(parse(line, n + 4, &pi, &err),
			    (int)n);
			check_prefixes(line, n);
			continue;
		}
		/* 108: the 107 octets without LF are enough to know. */
		assert_int_equal(parse(line, PROXY_V1_MAX, &pi, &err), -1);
		assert_string_equal(err, "too long");
		assert_int_equal(parse(line, PROXY_V1_MAX - 1, &pi, &err), 0);
		assert_int_equal(parse(line, n + 4, &pi, &err), -1);
		assert_string_equal(err, "too long");
	}
	/* No LF at all. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	assert_int_equal(parse(line, sizeof(line), &pi, &err), -1);
	assert_string_equal(err, "too long");
}

/* A v2 header: signature, the two octets, L and the rest. */
static size_t
v2_build(unsigned char *buf, int vercmd, int fampro, const void *rest,
    size_t restlen)
{
	memcpy(buf, V2SIG, V2SIGLEN);
	buf[12] = vercmd;
	buf[13] = fampro;
	buf[14] = restlen >> 8;
	buf[15] = restlen & 0xff;
	if (restlen > 0)
		memcpy(buf + 16, rest, restlen);
	return (16 + restlen);
}

/* One valid v2 header: its length, fields, prefixes, trailing bytes. */
static void
check_v2(const unsigned char *h, size_t hlen, int local, const char *src,
    int sport, const char *dst, int dport)
{
	struct proxy_info	 pi;
	const char		*err;
	unsigned char		*b = malloc(hlen + 8);

	assert_non_null(b);
	memcpy(b, h, hlen);
	memcpy(b + hlen, "EHLO x\r\n", 8);
	assert_int_equal(parse(b, hlen, &pi, &err), (int)hlen);
	assert_int_equal(parse(b, hlen + 8, &pi, &err), (int)hlen);
	assert_int_equal(pi.pi_version, 2);
	assert_int_equal(pi.pi_local, local);
	if (local) {
		assert_int_equal(pi.pi_srclen, 0);
		assert_int_equal(pi.pi_dstlen, 0);
	} else {
		check_addr(&pi.pi_src, pi.pi_srclen, src, sport);
		check_addr(&pi.pi_dst, pi.pi_dstlen, dst, dport);
	}
	check_prefixes(b, hlen);
	free(b);
}

static const unsigned char inet_block[] = {
	192, 0, 2, 1, 198, 51, 100, 2, 0xc8, 0x22, 0, 25
};
static const unsigned char inet6_block[] = {
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
	0x01, 0xbb, 0x02, 0x4b
};

static void
test_v2_valid(void **state)
{
	unsigned char	 h[PROXY_MAX_LEN], rest[PROXY_MAX_LEN];
	size_t		 n;
	int		 cmd, pro;

	(void)state;
	memset(rest, 0xa5, sizeof(rest));
	check_v2(h, v2_build(h, 0x20, 0x00, NULL, 0), 1, NULL, 0, NULL, 0);
	check_v2(h, v2_build(h, 0x20, 0x00, "junk", 4), 1, NULL, 0, NULL, 0);
	/* LOCAL ignores family and protocol, and needs no block for them. */
	check_v2(h, v2_build(h, 0x20, 0x11, NULL, 0), 1, NULL, 0, NULL, 0);
	check_v2(h, v2_build(h, 0x20, 0x21, "ab", 2), 1, NULL, 0, NULL, 0);
	check_v2(h, v2_build(h, 0x20, 0xff, NULL, 0), 1, NULL, 0, NULL, 0);
	for (cmd = 0x20; cmd <= 0x21; cmd++)
		for (pro = 1; pro <= 2; pro++) {
			/* Without TLVs, with junk after the block. */
			memcpy(rest, inet_block, sizeof(inet_block));
			n = v2_build(h, cmd, 0x10 | pro, rest, 12);
			check_v2(h, n, cmd == 0x20, "192.0.2.1", 51234,
			    "198.51.100.2", 25);
			n = v2_build(h, cmd, 0x10 | pro, rest, 12 + 7);
			check_v2(h, n, cmd == 0x20, "192.0.2.1", 51234,
			    "198.51.100.2", 25);
			memcpy(rest, inet6_block, sizeof(inet6_block));
			n = v2_build(h, cmd, 0x20 | pro, rest, 36 + 3);
			check_v2(h, n, cmd == 0x20, "2001:db8::1", 443,
			    "2001:db8::2", 587);
			/* UNIX: the caller keeps the socket's peer. */
			n = v2_build(h, cmd, 0x30 | pro, rest, 216);
			check_v2(h, n, 1, NULL, 0, NULL, 0);
		}
	/* Protocol UNSPEC: any payload, even none, is opaque. */
	for (pro = 0x10; pro <= 0x30; pro += 0x10) {
		n = v2_build(h, 0x21, pro, NULL, 0);
		check_v2(h, n, 1, NULL, 0, NULL, 0);
		n = v2_build(h, 0x21, pro, rest, 5);
		check_v2(h, n, 1, NULL, 0, NULL, 0);
	}
	/* The longest taken, and a TLV claiming more than L. */
	n = v2_build(h, 0x21, 0x00, rest, PROXY_MAX_LEN - 16);
	check_v2(h, n, 1, NULL, 0, NULL, 0);
	memcpy(rest, inet_block, sizeof(inet_block));
	memcpy(rest + 12, "\x04\xff\xff", 3);
	n = v2_build(h, 0x21, 0x11, rest, 15);
	check_v2(h, n, 0, "192.0.2.1", 51234, "198.51.100.2", 25);
}

/* Castagnoli CRC, to show the haproxy sample is consistent. */
static uint32_t
crc32c(const unsigned char *p, size_t len)
{
	uint32_t	 crc = 0xffffffff;
	int		 k;

	while (len-- > 0) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (crc & 1 ? 0x82f63b78 : 0);
	}
	return (crc ^ 0xffffffff);
}

static void
test_v2_haproxy(void **state)
{
	unsigned char	 h[sizeof(haproxy_hdr)];
	uint32_t	 crc;

	(void)state;
	assert_int_equal(sizeof(haproxy_hdr), 156);
	memcpy(h, haproxy_hdr, sizeof(h));
	/* The CRC32C TLV (type 3) right after the INET block. */
	assert_int_equal(h[28], 0x03);
	crc = (uint32_t)h[31] << 24 | h[32] << 16 | h[33] << 8 | h[34];
	memset(h + 31, 0, 4);
	assert_int_equal(crc32c(h, sizeof(h)), crc);
	check_v2(haproxy_hdr, sizeof(haproxy_hdr), 0, "192.0.2.10", 51234,
	    "198.51.100.1", 25);
}

static void
test_v2_invalid(void **state)
{
	struct proxy_info	 pi;
	const char		*err;
	unsigned char		 h[PROXY_MAX_LEN + 64];
	size_t			 n, i;
	static const struct {
		int		 vercmd, fampro;
		size_t		 restlen;
		const char	*err;
	} t[] = {
		{ 0x11, 0x11, 12, "bad version" },
		{ 0x31, 0x11, 12, "bad version" },
		{ 0x01, 0x00, 0, "bad version" },
		{ 0x22, 0x11, 12, "bad command" },
		{ 0x2f, 0x00, 0, "bad command" },
		{ 0x21, 0x41, 12, "bad family" },
		{ 0x21, 0xf0, 12, "bad family" },
		{ 0x21, 0x13, 12, "bad protocol" },
		{ 0x21, 0x1f, 12, "bad protocol" },
		{ 0x21, 0x11, 11, "truncated address" },
		{ 0x21, 0x11, 0, "truncated address" },
		{ 0x21, 0x12, 4, "truncated address" },
		{ 0x21, 0x21, 12, "truncated address" },	/* IPv4 size */
		{ 0x21, 0x21, 35, "truncated address" },
		{ 0x21, 0x31, 215, "truncated address" },
		{ 0x21, 0x32, 108, "truncated address" },
		{ 0x21, 0x00, PROXY_MAX_LEN - 15, "header too long" },
		{ 0x21, 0x00, 0xffff - 64, "header too long" },
	};

	(void)state;
	memset(h, 0, sizeof(h));
	for (i = 0; i < NITEMS(t); i++) {
		n = v2_build(h, t[i].vercmd, t[i].fampro, NULL, 0);
		h[14] = t[i].restlen >> 8;
		h[15] = t[i].restlen & 0xff;
		/* Known from the fixed 16 octets alone. */
		assert_int_equal(parse(h, n, &pi, &err), -1);
		assert_string_equal(err, t[i].err);
		assert_int_equal(parse(h, sizeof(h), &pi, &err), -1);
		assert_string_equal(err, t[i].err);
	}
	/* Each signature octet. */
	for (i = 0; i < V2SIGLEN; i++) {
		n = v2_build(h, 0x20, 0x00, NULL, 0);
		h[i] ^= 0x40;
		assert_int_equal(parse(h, n, &pi, &err), -1);
		assert_string_equal(err, "wrong signature");
		assert_int_equal(parse(h, i + 1, &pi, &err), -1);
	}
}

/* Partial v2 headers wait for exactly 16 + L octets. */
static void
test_v2_need(void **state)
{
	struct proxy_info	 pi;
	const char		*err;
	unsigned char		 h[64];

	(void)state;
	memset(h, 0, sizeof(h));
	memcpy(h, V2SIG, 5);
	assert_int_equal(parse(h, 0, &pi, &err), 0);
	assert_int_equal(parse(h, 5, &pi, &err), 0);
	v2_build(h, 0x21, 0x11, inet_block, 12);
	h[15] = 20;		/* 8 octets of TLV still to come */
	assert_int_equal(parse(h, 16 + 12, &pi, &err), 0);
	assert_int_equal(parse(h, 16 + 19, &pi, &err), 0);
	assert_int_equal(parse(h, 16 + 20, &pi, &err), 36);
	assert_int_equal(parse(h, sizeof(h), &pi, &err), 36);
}

static void
test_net_parse(void **state)
{
	struct netaddr	 na;
	size_t		 i;
	static const char *const bad[] = { "", "/8", "10.0.0.0/", "10/8",
	    "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8",
	    "10.0.0.0/ 8", "10.0.0.0/8x", "10.0.0.0 /8", "2001:db8::1/32",
	    "2001:db8::/129", "::1/", "host.example", "10.0.0.0/8/8",
	    "1.2.3.4/32 ", "fe80::1%eth0", "01.2.3.4" };

	(void)state;
	assert_int_equal(net_parse("10.0.0.0/8", &na), 0);
	assert_int_equal(na.na_family, AF_INET);
	assert_int_equal(na.na_prefix, 8);
	assert_int_equal(na.na_addr[0], 10);
	assert_int_equal(net_parse("192.0.2.7", &na), 0);
	assert_int_equal(na.na_prefix, 32);
	assert_int_equal(net_parse("0.0.0.0/0", &na), 0);
	assert_int_equal(na.na_prefix, 0);
	assert_int_equal(net_parse("192.0.2.128/25", &na), 0);
	assert_int_equal(net_parse("2001:db8::/32", &na), 0);
	assert_int_equal(na.na_family, AF_INET6);
	assert_int_equal(na.na_prefix, 32);
	assert_int_equal(net_parse("::1", &na), 0);
	assert_int_equal(na.na_prefix, 128);
	assert_int_equal(na.na_addr[15], 1);
	assert_int_equal(net_parse("::/0", &na), 0);
	assert_int_equal(net_parse("2001:db8::8/125", &na), 0);
	for (i = 0; i < NITEMS(bad); i++)
		if (net_parse(bad[i], &na) != -1) {
			print_error("accepted \"%s\"\n", bad[i]);
			fail();
		}
}

static int
match(const struct netaddr *nets, int n, const char *addr)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':') == NULL) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
		memcpy(&ss, &sin, sizeof(sin));
	} else {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr),
		    1);
		memcpy(&ss, &sin6, sizeof(sin6));
	}
	return (net_match(nets, n, (struct sockaddr *)&ss));
}

static void
test_net_match(void **state)
{
	struct netaddr		 nets[4];
	struct sockaddr_storage	 ss;

	(void)state;
	assert_int_equal(net_parse("10.0.0.0/8", &nets[0]), 0);
	assert_int_equal(net_parse("192.0.2.128/25", &nets[1]), 0);
	assert_int_equal(net_parse("2001:db8::/32", &nets[2]), 0);
	assert_int_equal(net_parse("::1", &nets[3]), 0);
	assert_int_equal(match(nets, 4, "10.1.2.3"), 1);
	assert_int_equal(match(nets, 4, "11.0.0.1"), 0);
	assert_int_equal(match(nets, 4, "192.0.2.128"), 1);
	assert_int_equal(match(nets, 4, "192.0.2.255"), 1);
	assert_int_equal(match(nets, 4, "192.0.2.127"), 0);
	assert_int_equal(match(nets, 4, "2001:db8:ffff::1"), 1);
	assert_int_equal(match(nets, 4, "2001:db9::1"), 0);
	assert_int_equal(match(nets, 4, "::1"), 1);
	assert_int_equal(match(nets, 4, "::2"), 0);
	/* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d. */
	assert_int_equal(match(nets, 4, "::ffff:10.9.8.7"), 1);
	assert_int_equal(match(nets, 4, "::ffff:192.0.2.200"), 1);
	assert_int_equal(match(nets, 4, "::ffff:192.0.2.1"), 0);
	assert_int_equal(match(nets, 4, "::10.9.8.7"), 0);
	/* Only the first n networks count; none match nothing. */
	assert_int_equal(match(nets, 1, "192.0.2.200"), 0);
	assert_int_equal(match(nets, 0, "10.1.2.3"), 0);
	assert_int_equal(net_parse("0.0.0.0/0", &nets[0]), 0);
	assert_int_equal(match(nets, 1, "203.0.113.9"), 1);
	assert_int_equal(match(nets, 1, "::ffff:203.0.113.9"), 1);
	assert_int_equal(match(nets, 1, "2001:db8::1"), 0);
	assert_int_equal(net_parse("::/0", &nets[0]), 0);
	assert_int_equal(match(nets, 1, "2001:db8::1"), 1);
	assert_int_equal(match(nets, 1, "203.0.113.9"), 0);
	/* Not an IP socket. */
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(net_match(nets, 1, (struct sockaddr *)&ss), 0);
}

/* The address max-clients-per-address counts (net_client_key). */
static void
test_net_client_key(void **state)
{
	static const char *const cases[][2] = {
		{ "::ffff:192.0.2.41", "192.0.2.41" },
		{ "::FFFF:c000:229", "192.0.2.41" },
		{ "192.0.2.41", "192.0.2.41" },
		/* Not mapped: its /64, as anvil_key() has it. */
		{ "2001:db8::1", "2001:db8::/64" },
		{ "2001:db8:0:0:ffff:ffff:ffff:ffff", "2001:db8::/64" },
		{ "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64" },
		{ "::192.0.2.41", "::/64" },
		{ "fe80::1%eth0", "fe80::/64" },
		/* No IP address: itself. */
		{ "", "" },
		{ "local", "local" },
	};
	char	 key[64];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		net_client_key(cases[i][0], key, sizeof(key));
		assert_string_equal(key, cases[i][1]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_valid),
		cmocka_unit_test(test_v1_invalid),
		cmocka_unit_test(test_early),
		cmocka_unit_test(test_v1_limit),
		cmocka_unit_test(test_v2_valid),
		cmocka_unit_test(test_v2_haproxy),
		cmocka_unit_test(test_v2_invalid),
		cmocka_unit_test(test_v2_need),
		cmocka_unit_test(test_net_parse),
		cmocka_unit_test(test_net_match),
		cmocka_unit_test(test_net_client_key),
	};

	return (cmocka_run_group_tests_name("proxy", tests, NULL, NULL));
}
