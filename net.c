/*
 * net.c: CIDR networks, as `proxy-protocol from`, `accept clients`,
 * `reject clients` and the other NETWORK lists of smtpd.conf name them:
 * parsing and matching a peer address against a list.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd.h"

/* Byte i of the netmask of a prefix length. */
static unsigned char
net_mask(int prefix, int i)
{
	int	 bits = prefix - i * 8;

	if (bits >= 8)
		return (0xff);
	if (bits <= 0)
		return (0);
	return ((unsigned char)(0xff << (8 - bits)));
}

/*
 * `a.b.c.d/n`, `a.b.c.d` (/32), `x::y/n` or `x::y` (/128) into na.
 * Returns 0, or -1 when malformed or a host bit is set past the prefix.
 */
int
net_parse(const char *cidr, struct netaddr *na)
{
	char		 host[INET6_ADDRSTRLEN];
	const char	*slash, *errstr;
	size_t		 hlen;
	int		 i, alen;

	memset(na, 0, sizeof(*na));
	slash = strchr(cidr, '/');
	hlen = slash == NULL ? strlen(cidr) : (size_t)(slash - cidr);
	if (hlen >= sizeof(host))
		return (-1);
	memcpy(host, cidr, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, na->na_addr) == 1)
		na->na_family = AF_INET;
	else if (inet_pton(AF_INET6, host, na->na_addr) == 1)
		na->na_family = AF_INET6;
	else
		return (-1);
	alen = na->na_family == AF_INET ? 4 : 16;
	na->na_prefix = alen * 8;
	/* Digits only: strtonum alone would take "+8" and " 8". */
	if (slash != NULL && (slash[1] < '0' || slash[1] > '9'))
		return (-1);
	if (slash != NULL)
		na->na_prefix = strtonum(slash + 1, 0, alen * 8, &errstr);
	if (slash != NULL && errstr != NULL)
		return (-1);
	for (i = 0; i < alen; i++)
		if (na->na_addr[i] & ~net_mask(na->na_prefix, i))
			return (-1);
	return (0);
}

/*
 * Whether sa (AF_INET, AF_INET6) is in one of the n networks.  An
 * IPv4-mapped IPv6 peer (a dual-stack socket) also matches IPv4 networks.
 */
int
net_match(const struct netaddr *nets, int n, const struct sockaddr *sa)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	const unsigned char	*v4 = NULL, *v6 = NULL, *a;
	int			 i, j, alen;

	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		v4 = (const unsigned char *)&sin.sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		v6 = sin6.sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr))
			v4 = v6 + 12;
	}
	for (i = 0; i < n; i++) {
		a = nets[i].na_family == AF_INET ? v4 : v6;
		alen = nets[i].na_family == AF_INET ? 4 : 16;
		if (a == NULL)
			continue;
		for (j = 0; j < alen; j++)
			if ((a[j] ^ nets[i].na_addr[j]) &
			    net_mask(nets[i].na_prefix, j))
				break;
		if (j == alen)
			return (1);
	}
	return (0);
}

/*
 * A numeric address as the session keeps it (ci_addr: "192.0.2.7",
 * "2001:db8::1", "fe80::1%eth0") into a sockaddr for net_match(); -1
 * when it has none (a UNIX socket client) or it does not parse.
 */
int
net_sockaddr(const char *addr, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 buf[INET6_ADDRSTRLEN + IF_NAMESIZE];

	/* A link-local peer has a zone, which no network names. */
	if (strlcpy(buf, addr, sizeof(buf)) >= sizeof(buf))
		return (-1);
	buf[strcspn(buf, "%")] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1)
		ss->ss_family = AF_INET;
	else if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1)
		ss->ss_family = AF_INET6;
	return (ss->ss_family == AF_UNSPEC ? -1 : 0);
}

/*
 * The address max-clients-per-address counts a client under, into key:
 * the AUTH throttle's (anvil_key).  An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, from a dual-stack socket or a proxy's TCP6 header) is
 * its IPv4 client, as net_match() takes it; any other IPv6 address is its
 * /64, which one host usually has whole: counted by the address, one
 * host took every session by using max-clients of its addresses.  What
 * is no IP address is itself.
 */
void
net_client_key(const char *addr, char *key, size_t len)
{
	if (anvil_key(addr, key, len) == -1)
		(void)strlcpy(key, addr, len);
}

/*
 * The numeric addresses a `listen on` ADDRESS stands for: `*` and
 * `localhost` one of each family, an IP literal itself.  Returns how
 * many are in hosts[0..1].
 */
int
net_listen_hosts(const char *addr, const char *hosts[2])
{
	if (strcmp(addr, "*") == 0) {
		hosts[0] = "0.0.0.0";
		hosts[1] = "::";
		return 2;
	}
	if (strcmp(addr, "localhost") == 0) {
		hosts[0] = "127.0.0.1";
		hosts[1] = "::1";
		return 2;
	}
	hosts[0] = addr;
	return 1;
}
