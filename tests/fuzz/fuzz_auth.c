/*
 * fuzz_auth.c: libFuzzer harness of auth_b64_decode() and
 * auth_plain_split() (auth.c), against a deliberately naive decoder
 * written from the rule below alone, and a NUL counter.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd.h"
#include "internal.h"

#define FZ_BUF		8192

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char fz_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * RFC 4954 4: "=" alone and the empty line are the empty value;
 * else only the alphabet and `=` padding, whole groups of four, one or
 * two `=` only at the very end, and the last group holds at least two
 * characters of the alphabet.  The unused bits of the last character are
 * not checked.  Returns the decoded length, or -1.
 */
static long
fz_ref_decode(const char *in, unsigned char *out)
{
	size_t		 len = strlen(in), npad = 0, i, j, bits = 0;
	unsigned long	 acc = 0;
	long		 o = 0;

	if (strcmp(in, "=") == 0)
		return (0);
	if (len % 4 != 0)
		return (-1);
	while (npad < len && in[len - 1 - npad] == '=')
		npad++;
	if (npad > 2)
		return (-1);
	for (i = 0; i < len - npad; i++) {
		for (j = 0; j < 64; j++)
			if (fz_alphabet[j] == in[i])
				break;
		if (j == 64)
			return (-1);
		acc = acc << 6 | j;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1UL << bits) - 1;
		}
	}
	return (o);
}

/* PLAIN: the value splits when it holds exactly two NULs. */
static void
fz_check_split(const unsigned char *val, size_t len)
{
	unsigned char	*buf;
	const char	*u, *p;
	size_t		 i, nul[3], n = 0;
	int		 r;

	if ((buf = malloc(len + 1)) == NULL)
		abort();
	memcpy(buf, val, len);
	for (i = 0; i < len; i++)
		if (val[i] == '\0' && n < 3)
			nul[n++] = i;
	r = auth_plain_split(buf, len, &u, &p);
	if (buf[len] != '\0' || memcmp(buf, val, len) != 0)
		abort();
	if (n != 2) {
		if (r != -1 || u != NULL || p != NULL)
			abort();
	} else if (r != 0 || u != (char *)buf + nul[0] + 1 ||
	    p != (char *)buf + nul[1] + 1)
		abort();
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char	 ref[FZ_BUF];
	unsigned char		*o;
	char			*in;
	size_t			 outsz, outlen;
	long			 rlen;
	int			 r;

	if (size < 1 || size > FZ_BUF)
		return (0);
	if ((in = malloc(size)) == NULL)
		abort();
	memcpy(in, data + 1, size - 1);
	in[size - 1] = '\0';
	rlen = fz_ref_decode(in, ref);
	/* Octet 0: the output size, ample or at the edge. */
	outsz = data[0] < 0xc0 ? FZ_BUF : rlen < 0 ? data[0] - 0xc0U :
	    (size_t)rlen + (data[0] & 1);
	/* The decoder writes within outsz octets of an exact-size buffer. */
	o = malloc(outsz > 0 ? outsz : 1);
	if (o == NULL)
		abort();
	r = auth_b64_decode(in, o, outsz, &outlen);
	/* Room is needed for the NUL that callers add. */
	if (rlen >= 0 && (size_t)rlen < outsz) {
		if (r != 0 || outlen != (size_t)rlen ||
		    memcmp(o, ref, outlen) != 0)
			abort();
		fz_check_split(o, outlen);
	} else if (r != (rlen < 0 ? -1 : -2) || outlen != 0)
		abort();	/* not base64, or base64 too long for outsz */
	fz_check_split(data + 1, size - 1);
	free(o);
	free(in);
	return (0);
}
