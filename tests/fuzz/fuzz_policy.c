/*
 * fuzz_policy.c: libFuzzer harness of the policy server's replies
 * (policy.c), which are network input: policy_reply_action() on the raw
 * reply block, then policy_action() on the action it found.  Besides what
 * ASan and UBSan catch, every answer is checked against the contract in
 * smtpd.h: the action is a string that fits, a refusal is one reply line
 * of the refusing classes that fits and carries no control character,
 * and a PREPEND header is one printable field of at most
 * POLICY_HEADER_MAX octets.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd.h"
#include "internal.h"

#define FZ_ACTION	1024	/* as policy.c's room for the action */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
fz_has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return (1);
	return (0);
}

/* "4NN " or "5NN ", then printable text within the buffer. */
static void
fz_check_reply(const char *reply, size_t size)
{
	if (strnlen(reply, size) == size || strlen(reply) < 4 ||
	    (reply[0] != '4' && reply[0] != '5') ||
	    reply[1] < '0' || reply[1] > '9' ||
	    reply[2] < '0' || reply[2] > '9' || reply[3] != ' ' ||
	    fz_has_ctl(reply))
		abort();
}

/* Name: value, the name without blanks or controls, no line break. */
static void
fz_check_header(const char *hdr, size_t size)
{
	size_t	 i, name = strcspn(hdr, ":");

	if (strnlen(hdr, size) == size || strlen(hdr) > POLICY_HEADER_MAX ||
	    name == 0 || hdr[name] != ':')
		abort();
	for (i = 0; hdr[i] != '\0'; i++)
		if (hdr[i] == '\r' || hdr[i] == '\n' ||
		    (i < name && (hdr[i] <= ' ' || hdr[i] == 0x7f)))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*buf, action[FZ_ACTION], reply[REPLY_MAX];
	char	 hdr[POLICY_HEADER_MAX + 1];
	int	 r;

	/* An exact-size heap copy, so that any over-read is reported. */
	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	memcpy(buf, data, size);
	memset(action, 'x', sizeof(action));
	r = policy_reply_action(buf, size, action, sizeof(action));
	free(buf);
	if (r != 0 && r != -1)
		abort();
	if (r == -1)
		return (0);
	if (strnlen(action, sizeof(action)) == sizeof(action) ||
	    memchr(action, '\n', strlen(action)) != NULL)
		abort();
	reply[0] = hdr[0] = '\0';
	switch (policy_action(action, "<r@example.com>: Recipient address "
	    "rejected", reply, sizeof(reply), hdr, sizeof(hdr))) {
	case PA_REFUSE:
		fz_check_reply(reply, sizeof(reply));
		break;
	case PA_PREPEND:
		fz_check_header(hdr, sizeof(hdr));
		break;
	case PA_DUNNO:
	case PA_BAD:
		break;
	default:
		abort();
	}
	return (0);
}
