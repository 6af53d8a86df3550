/*
 * fuzz_broker.c: libFuzzer harness of the broker's request parser
 * (broker.c's broker_msg_check() and broker_env_parse()): whatever a
 * session child sends, the fixed part is taken only within its bounds,
 * and an envelope that parses is exactly what broker_env_encode() makes
 * of its fields (nothing skipped, nothing added).
 *
 * Input: a struct broker_msg, then the envelope; the recipient count
 * comes from the message.  The fixed part is checked twice: as a request
 * with the envelope in its own file (two descriptors, the datagram only
 * the header), and as one with the envelope in the datagram (one
 * descriptor), which only a short envelope may be.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "smtpd.h"

#include "fuzz.h"

static void
fuzz_setup(void)
{
}

/* The fields of a parsed envelope, as a session child holds them. */
static void
fz_roundtrip(const struct broker_env *be, const char *in, size_t len)
{
	struct client	 cl;
	struct envelope	 e;
	char		*out;
	size_t		 olen;

	memset(&cl, 0, sizeof(cl));
	memset(&e, 0, sizeof(e));
	if (strlcpy(cl.ci_addr, be->be_addr, sizeof(cl.ci_addr)) >=
	    sizeof(cl.ci_addr) ||
	    strlcpy(cl.ci_port, be->be_port, sizeof(cl.ci_port)) >=
	    sizeof(cl.ci_port) ||
	    strlcpy(cl.ci_helo, be->be_helo, sizeof(cl.ci_helo)) >=
	    sizeof(cl.ci_helo) ||
	    strlcpy(cl.ci_tls, be->be_tls, sizeof(cl.ci_tls)) >=
	    sizeof(cl.ci_tls) ||
	    strlcpy(e.e_id, be->be_id, sizeof(e.e_id)) >= sizeof(e.e_id) ||
	    strlen(be->be_sender) >= BROKER_FIELD_MAX)
		abort();
	e.e_sender = (char *)(uintptr_t)be->be_sender;
	out = broker_env_encode(&cl, &e, be->be_rcpts, be->be_nrcpts, &olen);
	if (olen != len || memcmp(out, in, len) != 0)
		abort();
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct broker_msg	 bm;
	struct broker_env	 be;
	const char		*why;
	char			*buf;
	size_t			 len;

	if (size < sizeof(bm))
		return (0);
	memcpy(&bm, data, sizeof(bm));
	len = size - sizeof(bm);
	/* The size and descriptors as a well-formed request has them. */
	bm.bm_type = BR_DELIVER;
	bm.bm_envlen = (uint32_t)len;
	if ((broker_msg_check(&bm, sizeof(bm) + len, 1, 4, &why) == 0) !=
	    (len <= BROKER_ENV_INLINE &&
	    broker_msg_check(&bm, sizeof(bm), 2, 4, &why) == 0))
		abort();
	if (broker_msg_check(&bm, sizeof(bm), 2, 4, &why) == -1)
		return (0);
	if (bm.bm_listener < 0 || bm.bm_listener >= 4 || bm.bm_nrcpts == 0)
		abort();
	buf = xmalloc(len + 1);
	memcpy(buf, data + sizeof(bm), len);
	buf[len] = '\0';
	if (broker_env_parse(buf, len, bm.bm_nrcpts, &be, &why) == 0) {
		if (be.be_nrcpts != bm.bm_nrcpts)
			abort();
		fz_roundtrip(&be, (const char *)data + sizeof(bm), len);
		free(be.be_rcpts);
	}
	free(buf);
	return (0);
}
