/*
 * fuzz_proxy.c: libFuzzer harness of proxy_parse() (proxy.c).  Besides
 * what ASan and UBSan catch, every input is checked against the contract
 * in smtpd.h: the length returned, when 0 (need more) is allowed, the
 * same answer for the header alone, and a consistent struct proxy_info.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd.h"
#include "internal.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* From an exact-size heap copy, so that any over-read is reported. */
static int
fuzz_parse(const uint8_t *data, size_t len, struct proxy_info *pi,
    const char **errstr)
{
	uint8_t	*b = malloc(len > 0 ? len : 1);
	int	 r;

	if (b == NULL)
		abort();
	memcpy(b, data, len);
	*errstr = NULL;
	r = proxy_parse(b, len, pi, errstr);
	free(b);
	if (r == -1 && (*errstr == NULL || **errstr == '\0'))
		abort();
	return (r);
}

/* A sockaddr of pi: the family's own size, and the family itself. */
static int
fuzz_family(const struct sockaddr_storage *ss, socklen_t len)
{
	if (ss->ss_family == AF_INET && len == sizeof(struct sockaddr_in))
		return (AF_INET);
	if (ss->ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6))
		return (AF_INET6);
	abort();
}

/* A header of r octets was found in data. */
static void
fuzz_check_header(const uint8_t *data, int r, const struct proxy_info *pi)
{
	if (pi->pi_local && (pi->pi_srclen != 0 || pi->pi_dstlen != 0))
		abort();
	if (!pi->pi_local && fuzz_family(&pi->pi_src, pi->pi_srclen) !=
	    fuzz_family(&pi->pi_dst, pi->pi_dstlen))
		abort();
	if (pi->pi_version == 1) {
		/* One line, CRLF-terminated, of at most 107 octets. */
		if (r > PROXY_V1_MAX || r < 8 || data[0] != 'P' ||
		    data[r - 2] != '\r' || data[r - 1] != '\n' ||
		    memchr(data, '\n', r - 1) != NULL)
			abort();
	} else if (pi->pi_version == 2) {
		if (r < 16 || r != 16 + (data[14] << 8 | data[15]) ||
		    r > PROXY_MAX_LEN)
			abort();
	} else
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info	 pi, pi2;
	const char		*err, *err2;
	int			 r, r2;

	r = fuzz_parse(data, size, &pi, &err);
	if (r < -1 || (r > 0 && (size_t)r > size))
		abort();
	/* Need more only while a longer input may still be a header. */
	if (r == 0 && (size >= PROXY_MAX_LEN ||
	    (size >= PROXY_V1_MAX && data[0] == 'P')))
		abort();
	if (r > 0) {
		fuzz_check_header(data, r, &pi);
		/* What follows the header does not change it. */
		if (fuzz_parse(data, r, &pi2, &err2) != r ||
		    memcmp(&pi, &pi2, sizeof(pi)) != 0)
			abort();
	}
	if (size == 0)
		return (0);
	/*
	 * One octet less: the answers for growing prefixes are 0 until they
	 * turn into the header length or -1, and then stay so.
	 */
	r2 = fuzz_parse(data, size - 1, &pi2, &err2);
	if (r > 0 && (size_t)r < size ? r2 != r : r2 > 0)
		abort();
	if (r == 0 && r2 != 0)
		abort();
	return (0);
}
