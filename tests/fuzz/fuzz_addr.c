/*
 * fuzz_addr.c: libFuzzer harness of addr_parse() (addr.c).  Besides what
 * ASan and UBSan catch: the result is one of the four, the output is a
 * string that fits, *rest points into the input, *locallen is where the
 * last `@` is, and the normal form parses again to itself (the check of
 * tests/test_addr.c).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd.h"
#include "internal.h"
#include "../reparsable.h"

#define FZ_OUT		4096	/* as session.c's ADDR_BUF_LEN room */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* One parse with the contract of smtpd.h checked; returns the result. */
static int
fz_parse(const char *in, char *out, size_t outsz, size_t *ll,
    const char **rest)
{
	const char	*at;
	int		 r;

	memset(out, 'x', outsz);
	r = addr_parse(in, out, outsz, ll, rest);
	if (r != ADDR_OK && r != ADDR_NULL && r != ADDR_BAD &&
	    r != ADDR_EMPTY)
		abort();
	if (outsz == 0) {
		if (r != ADDR_BAD)
			abort();
		return (r);
	}
	if (memchr(out, '\0', outsz) == NULL)
		abort();
	if (*rest < in || *rest > in + strlen(in))
		abort();
	if (r == ADDR_BAD && (out[0] != '\0' || *ll != 0 || *rest != in))
		abort();
	if ((r == ADDR_NULL || r == ADDR_EMPTY) && out[0] != '\0')
		abort();
	if (r == ADDR_OK && out[0] == '\0')
		abort();
	at = strrchr(out, '@');
	if (*ll != (at == NULL ? 0 : (size_t)(at - out)))
		abort();
	return (r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*in, *out, again[FZ_OUT];
	const char	*rest, *rest2;
	size_t		 ll, ll2, outsz;
	int		 r;

	if (size < 1)
		return (0);
	/* Octet 0: a small output buffer now and then. */
	outsz = data[0] < 0xf0 ? FZ_OUT : (size_t)(data[0] - 0xf0) * 3;
	/* An exact-size copy, so that any over-read is reported. */
	if ((in = malloc(size)) == NULL || (out = malloc(FZ_OUT)) == NULL)
		abort();
	memcpy(in, data + 1, size - 1);
	in[size - 1] = '\0';
	r = fz_parse(in, out, outsz, &ll, &rest);
	if (r == ADDR_OK && outsz == FZ_OUT && reparsable(out)) {
		if (fz_parse(out, again, sizeof(again), &ll2, &rest2) !=
		    ADDR_OK || strcmp(out, again) != 0 || *rest2 != '\0' ||
		    ll != ll2)
			abort();
	}
	free(out);
	free(in);
	return (0);
}
