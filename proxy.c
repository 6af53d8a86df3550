/*
 * proxy.c: the PROXY protocol header a load balancer sends before the SMTP
 * dialogue (HAProxy's proxy-protocol.txt), parsed
 * incrementally from the octets read so far, and the CIDR networks of
 * `proxy-protocol from`.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd.h"
#include "internal.h"

#define PROXY_SIGLEN		5	/* octets that choose the version */
#define PROXY_V2_SIGLEN		12
#define PROXY_V2_HDRLEN		16
#define PROXY_V2_INET_LEN	12	/* 4 + 4 + 2 + 2 */
#define PROXY_V2_INET6_LEN	36	/* 16 + 16 + 2 + 2 */
#define PROXY_V2_UNIX_LEN	216	/* 108 + 108, no ports */
#define PROXY_ADDR_MAX		45	/* IPv6 text with an IPv4 tail */
#define PROXY_PORT_MAX		65535
#define PROXY_V1_FIELDS		4	/* src, dst, src port, dst port */
#define PROXY_ADDR_CHARS	"0123456789abcdefABCDEF.:"

/* v2 command, family and protocol numbers (proxy-protocol.txt 2.2). */
#define PROXY_CMD_LOCAL		0x0
#define PROXY_CMD_PROXY		0x1
#define PROXY_AF_UNSPEC		0x0
#define PROXY_AF_INET		0x1
#define PROXY_AF_INET6		0x2
#define PROXY_AF_UNIX		0x3
#define PROXY_PROTO_UNSPEC	0x0
#define PROXY_PROTO_DGRAM	0x2

/* A v1 line being read: at most PROXY_V1_MAX of the octets available. */
struct proxy_line {
	const unsigned char	*pl_buf;
	size_t			 pl_len;	/* octets looked at */
	size_t			 pl_off;	/* next octet */
	int			 pl_full;	/* PROXY_V1_MAX octets there */
	int			 pl_family;	/* AF_INET, AF_INET6 */
};

/* The four fields of a TCP4/TCP6 line, in network order. */
struct proxy_v1addr {
	unsigned char		 pa_addr[2][16];	/* source, destination */
	uint16_t		 pa_port[2];
};

static const unsigned char proxy_v2_sig[PROXY_V2_SIGLEN] = {
	'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'
};

static int	proxy_v1(const unsigned char *, size_t, struct proxy_info *,
		    const char **);
static int	proxy_v1_more(const struct proxy_line *, const char **);
static int	proxy_v1_field(struct proxy_line *, const char **, size_t *,
		    int *);
static int	proxy_v1_proto(const char *, size_t, int, const char **);
static int	proxy_v1_unknown(struct proxy_line *, size_t, const char **);
static int	proxy_v1_tcp(struct proxy_line *, struct proxy_info *,
		    const char **);
static int	proxy_v1_check(const struct proxy_line *, int, const char *,
		    size_t, int, struct proxy_v1addr *, const char **);
static int	proxy_v1_addr(const char *, size_t, int, int, void *,
		    const char **);
static int	proxy_v1_completes(const char *, int);
static int	proxy_v1_port(const char *, size_t, uint16_t *, const char **);
static int	proxy_v1_end(struct proxy_line *, int, const char **);
static void	proxy_set(struct proxy_info *, int, const void *,
		    const void *, uint16_t, uint16_t);
static int	proxy_v2(const unsigned char *, size_t, struct proxy_info *,
		    const char **);
static size_t	proxy_v2_block(int, int);
static void	proxy_v2_fill(const unsigned char *, struct proxy_info *);

/*
 * The first octets the client sent (len of them, len may be 0).  Returns
 * the header length, 0 while more octets are needed, -1 with *errstr set
 * as soon as the octets so far cannot begin a valid header.
 */
int
proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *pi,
    const char **errstr)
{
	size_t	 n = len < PROXY_SIGLEN ? len : PROXY_SIGLEN;

	memset(pi, 0, sizeof(*pi));
	/* The first five octets choose the version. */
	if (memcmp(buf, "PROXY", n) == 0)
		return (len < PROXY_SIGLEN ? 0 :
		    proxy_v1(buf, len, pi, errstr));
	if (memcmp(buf, proxy_v2_sig, n) == 0)
		return (len < PROXY_SIGLEN ? 0 :
		    proxy_v2(buf, len, pi, errstr));
	*errstr = "wrong signature";
	return (-1);
}

/* Version 1, a text line (proxy-protocol.txt 2.1). */
static int
proxy_v1(const unsigned char *buf, size_t len, struct proxy_info *pi,
    const char **errstr)
{
	struct proxy_line	 pl;
	const char		*tok;
	size_t			 toklen, start;
	int			 done, delim;

	memset(&pl, 0, sizeof(pl));
	pl.pl_buf = buf;
	pl.pl_len = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
	pl.pl_full = len >= PROXY_V1_MAX;
	pl.pl_off = PROXY_SIGLEN;
	pi->pi_version = 1;
	if (pl.pl_off == pl.pl_len)
		return (proxy_v1_more(&pl, errstr));
	start = pl.pl_off + 1;
	pl.pl_off = start;
	done = proxy_v1_field(&pl, &tok, &toklen, &delim);
	/* `PROXY1`, `PROXY  TCP4`: exactly one SP after the signature. */
	if (buf[start - 1] != ' ' || (done && toklen == 0 && delim == ' ')) {
		*errstr = "wrong signature";
		return (-1);
	}
	/* Whatever follows UNKNOWN is ignored, as haproxy does. */
	if (toklen >= 7 && memcmp(tok, "UNKNOWN", 7) == 0) {
		pi->pi_local = 1;
		return (proxy_v1_unknown(&pl, start + 7, errstr));
	}
	if ((pl.pl_family = proxy_v1_proto(tok, toklen, !done, errstr)) == -1)
		return (-1);
	if (!done)
		return (proxy_v1_more(&pl, errstr));
	if (delim != ' ') {
		*errstr = "malformed";
		return (-1);
	}
	pl.pl_off++;
	return (proxy_v1_tcp(&pl, pi, errstr));
}

/*
 * The octets looked at ran out while the line may still be valid: wait
 * for more, unless PROXY_V1_MAX of them came without the LF.
 */
static int
proxy_v1_more(const struct proxy_line *pl, const char **errstr)
{
	if (!pl->pl_full)
		return (0);
	*errstr = "too long";
	return (-1);
}

/*
 * The field at pl_off, up to SP, CR or LF.  Returns 1 with pl_off on the
 * delimiter, which is put in *delim; 0 when the octets ran out first.
 */
static int
proxy_v1_field(struct proxy_line *pl, const char **tok, size_t *toklen,
    int *delim)
{
	size_t	 start = pl->pl_off;
	int	 c;

	*tok = (const char *)pl->pl_buf + start;
	for (; pl->pl_off < pl->pl_len; pl->pl_off++) {
		c = pl->pl_buf[pl->pl_off];
		if (c == ' ' || c == '\r' || c == '\n') {
			*toklen = pl->pl_off - start;
			*delim = c;
			return (1);
		}
	}
	*toklen = pl->pl_off - start;
	return (0);
}

/*
 * The protocol, exactly TCP4 or TCP6 (aiosmtpd takes any TCP...4/6): its
 * address family, 0 while a partial field may still become one, or -1.
 */
static int
proxy_v1_proto(const char *tok, size_t len, int partial, const char **errstr)
{
	static const char *const protos[] = { "TCP4", "TCP6", "UNKNOWN" };
	size_t			 i;

	if (!partial && len == 4 && memcmp(tok, "TCP4", 4) == 0)
		return (AF_INET);
	if (!partial && len == 4 && memcmp(tok, "TCP6", 4) == 0)
		return (AF_INET6);
	for (i = 0; partial && i < sizeof(protos) / sizeof(protos[0]); i++)
		if (len <= strlen(protos[i]) &&
		    memcmp(tok, protos[i], len) == 0)
			return (0);
	/* `TCP`, `TCP5` name a wrong family, `UDP4` a wrong protocol. */
	if (len >= 3 && memcmp(tok, "TCP", 3) == 0)
		*errstr = "unrecognised family";
	else
		*errstr = "unrecognised protocol";
	return (-1);
}

/* The rest of a `PROXY UNKNOWN` line, from off: anything up to CRLF. */
static int
proxy_v1_unknown(struct proxy_line *pl, size_t off, const char **errstr)
{
	for (; off < pl->pl_len; off++) {
		if (pl->pl_buf[off] != '\n')
			continue;
		if (pl->pl_buf[off - 1] != '\r') {
			*errstr = "malformed";
			return (-1);
		}
		return ((int)off + 1);
	}
	return (proxy_v1_more(pl, errstr));
}

/* The four fields of a TCP4/TCP6 line, single SP between them, CRLF. */
static int
proxy_v1_tcp(struct proxy_line *pl, struct proxy_info *pi,
    const char **errstr)
{
	struct proxy_v1addr	 pa;
	const char		*tok;
	size_t			 toklen;
	int			 i, done, delim = 0;

	memset(&pa, 0, sizeof(pa));
	for (i = 0; i < PROXY_V1_FIELDS; i++) {
		done = proxy_v1_field(pl, &tok, &toklen, &delim);
		if (proxy_v1_check(pl, i, tok, toklen, !done, &pa,
		    errstr) == -1)
			return (-1);
		if (!done)
			return (proxy_v1_more(pl, errstr));
		/* Missing fields: the line ends before the fourth. */
		if (i < PROXY_V1_FIELDS - 1 && delim != ' ') {
			*errstr = "malformed";
			return (-1);
		}
		if (i < PROXY_V1_FIELDS - 1)
			pl->pl_off++;
	}
	if ((i = proxy_v1_end(pl, delim, errstr)) <= 0)
		return (i);
	proxy_set(pi, pl->pl_family, pa.pa_addr[0], pa.pa_addr[1],
	    pa.pa_port[0], pa.pa_port[1]);
	return (i);
}

/* Field i (address or port) of a TCP line; partial as in proxy_v1_addr. */
static int
proxy_v1_check(const struct proxy_line *pl, int i, const char *tok,
    size_t len, int partial, struct proxy_v1addr *pa, const char **errstr)
{
	/* An empty field: two SP in a row, or SP right before CRLF. */
	if (len == 0 && !partial) {
		*errstr = "malformed";
		return (-1);
	}
	if (i < 2)
		return (proxy_v1_addr(tok, len, partial, pl->pl_family,
		    pa->pa_addr[i], errstr));
	/* A port in progress is checked as a whole one: digits, no 0 lead. */
	return (proxy_v1_port(tok, len, &pa->pa_port[i - 2], errstr));
}

/*
 * An address of the family, into out.  With partial set, more octets of
 * the field may follow: fail only when no continuation can be valid.
 */
static int
proxy_v1_addr(const char *tok, size_t len, int partial, int family,
    void *out, const char **errstr)
{
	unsigned char	 other[16];
	char		 s[PROXY_ADDR_MAX + 1];
	int		 af2 = family == AF_INET ? AF_INET6 : AF_INET;

	/* tok is not terminated: copy it before strspn looks at it. */
	if (len <= PROXY_ADDR_MAX) {
		memcpy(s, tok, len);
		s[len] = '\0';
	}
	if (len > PROXY_ADDR_MAX || strspn(s, PROXY_ADDR_CHARS) < len) {
		*errstr = "address malformed";
		return (-1);
	}
	if (partial ? proxy_v1_completes(s, family) :
	    inet_pton(family, s, out) == 1)
		return (0);
	if (partial ? proxy_v1_completes(s, af2) :
	    inet_pton(af2, s, other) == 1)
		*errstr = family == AF_INET ? "not IPv4" : "not IPv6";
	else
		*errstr = "address malformed";
	return (-1);
}

/*
 * Whether the start s of an address can still become a valid one.  One of
 * these endings completes every prefix that any ending completes: the
 * group or octet in progress, a new group, `::`, or the dotted quad.
 */
static int
proxy_v1_completes(const char *s, int family)
{
	static const char *const ends[] = { "", "0", ":", "::", ".0", "0.0",
	    ".0.0", "0.0.0", ".0.0.0" };
	unsigned char	 a[16];
	char		 t[PROXY_ADDR_MAX + 8];
	size_t		 i, len = strlen(s);

	if (len == 0)
		return (1);
	memcpy(t, s, len);
	for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		/* Every ending, NUL included, fits in the 8 spare octets. */
		memcpy(t + len, ends[i], strlen(ends[i]) + 1);
		if (inet_pton(family, t, a) == 1)
			return (1);
	}
	return (0);
}

/*
 * A port: decimal digits without a leading zero (`0` itself is fine),
 * 0..65535.  Digits are read here as strtonum would accept `+1` or ` 1`.
 */
static int
proxy_v1_port(const char *tok, size_t len, uint16_t *port,
    const char **errstr)
{
	unsigned long	 v = 0;
	size_t		 i;

	for (i = 0; i < len; i++)
		if (tok[i] < '0' || tok[i] > '9' ||
		    (i == 1 && tok[0] == '0')) {
			*errstr = "port malformed";
			return (-1);
		}
	for (i = 0; i < len && v <= PROXY_PORT_MAX; i++)
		v = v * 10 + (unsigned long)(tok[i] - '0');
	if (v > PROXY_PORT_MAX) {
		*errstr = "port out of bounds";
		return (-1);
	}
	*port = htons((uint16_t)v);
	return (0);
}

/*
 * After the destination port, delimited by delim: only CRLF may follow.
 * Returns the line length, 0 for more octets, or -1.
 */
static int
proxy_v1_end(struct proxy_line *pl, int delim, const char **errstr)
{
	if (delim == ' ') {
		*errstr = "extraneous data";
		return (-1);
	}
	if (delim == '\n') {
		*errstr = "malformed";	/* a bare LF ends the line */
		return (-1);
	}
	if (++pl->pl_off == pl->pl_len)
		return (proxy_v1_more(pl, errstr));
	if (pl->pl_buf[pl->pl_off] != '\n') {
		*errstr = "malformed";	/* a bare CR */
		return (-1);
	}
	return ((int)pl->pl_off + 1);
}

/* The proxied addresses (network order) of family af into pi. */
static void
proxy_set(struct proxy_info *pi, int af, const void *src, const void *dst,
    uint16_t sport, uint16_t dport)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	const void		*addr[2] = { src, dst };
	uint16_t		 port[2] = { sport, dport };
	struct sockaddr_storage	*ss[2] = { &pi->pi_src, &pi->pi_dst };
	socklen_t		*sl[2] = { &pi->pi_srclen, &pi->pi_dstlen };
	int			 i;

	pi->pi_local = 0;
	for (i = 0; i < 2; i++) {
		memset(ss[i], 0, sizeof(*ss[i]));
		if (af == AF_INET) {
			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			sin.sin_port = port[i];
			memcpy(&sin.sin_addr, addr[i], sizeof(sin.sin_addr));
			memcpy(ss[i], &sin, sizeof(sin));
			*sl[i] = sizeof(sin);
		} else {
			memset(&sin6, 0, sizeof(sin6));
			sin6.sin6_family = AF_INET6;
			sin6.sin6_port = port[i];
			memcpy(&sin6.sin6_addr, addr[i],
			    sizeof(sin6.sin6_addr));
			memcpy(ss[i], &sin6, sizeof(sin6));
			*sl[i] = sizeof(sin6);
		}
	}
}

/* Version 2, binary (proxy-protocol.txt 2.2). */
static int
proxy_v2(const unsigned char *buf, size_t len, struct proxy_info *pi,
    const char **errstr)
{
	size_t	 n = len < PROXY_V2_SIGLEN ? len : PROXY_V2_SIGLEN, hlen;
	int	 proxy;

	pi->pi_version = 2;
	*errstr = NULL;
	/* LOCAL: family and protocol are ignored, and the block skipped. */
	proxy = len > 12 && (buf[12] & 0xf) == PROXY_CMD_PROXY;
	if (memcmp(buf, proxy_v2_sig, n) != 0)
		*errstr = "wrong signature";
	else if (len > 12 && buf[12] >> 4 != 2)
		*errstr = "bad version";
	else if (len > 12 && (buf[12] & 0xf) > PROXY_CMD_PROXY)
		*errstr = "bad command";
	else if (proxy && len > 13 && buf[13] >> 4 > PROXY_AF_UNIX)
		*errstr = "bad family";
	else if (proxy && len > 13 && (buf[13] & 0xf) > PROXY_PROTO_DGRAM)
		*errstr = "bad protocol";
	if (*errstr != NULL)
		return (-1);
	if (len < PROXY_V2_HDRLEN)
		return (0);
	hlen = PROXY_V2_HDRLEN + ((size_t)buf[14] << 8 | buf[15]);
	if (hlen > PROXY_MAX_LEN) {
		*errstr = "header too long";
		return (-1);
	}
	/* Known before the rest arrives: the address block must fit. */
	if (proxy && PROXY_V2_HDRLEN + proxy_v2_block(buf[13] >> 4,
	    buf[13] & 0xf) > hlen) {
		*errstr = "truncated address";
		return (-1);
	}
	if (len < hlen)
		return (0);
	proxy_v2_fill(buf, pi);
	return ((int)hlen);
}

/* The size of the address block; 0 where the rest is opaque. */
static size_t
proxy_v2_block(int family, int proto)
{
	if (proto == PROXY_PROTO_UNSPEC)
		return (0);
	switch (family) {
	case PROXY_AF_INET:
		return (PROXY_V2_INET_LEN);
	case PROXY_AF_INET6:
		return (PROXY_V2_INET6_LEN);
	case PROXY_AF_UNIX:
		return (PROXY_V2_UNIX_LEN);
	default:
		return (0);
	}
}

/*
 * The addresses of a complete v2 header.  LOCAL, UNSPEC and UNIX carry
 * none the session can use: it keeps the socket's peer (smtpd.conf(5),
 * proxy-protocol).  The TLVs
 * after the block are not looked at.
 */
static void
proxy_v2_fill(const unsigned char *buf, struct proxy_info *pi)
{
	const unsigned char	*b = buf + PROXY_V2_HDRLEN;
	int			 fam = buf[13] >> 4, proto = buf[13] & 0xf;
	uint16_t		 sport, dport;

	pi->pi_local = 1;
	if ((buf[12] & 0xf) != PROXY_CMD_PROXY || proto == PROXY_PROTO_UNSPEC)
		return;
	if (fam == PROXY_AF_INET) {
		memcpy(&sport, b + 8, sizeof(sport));
		memcpy(&dport, b + 10, sizeof(dport));
		proxy_set(pi, AF_INET, b, b + 4, sport, dport);
	} else if (fam == PROXY_AF_INET6) {
		memcpy(&sport, b + 32, sizeof(sport));
		memcpy(&dport, b + 34, sizeof(dport));
		proxy_set(pi, AF_INET6, b, b + 16, sport, dport);
	}
}
