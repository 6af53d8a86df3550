/*
 * anvil.c: AUTH failures per client address, counted by the master over
 * every session (as Postfix's anvil counts them): `auth
 * max-failures-per-address` 535 replies to one address within
 * ANVIL_WINDOW_MS, and that address is throttled until the window of its
 * first counted failure is over.  A check still in progress counts as a
 * failure until it ends (anvil_begin, anvil_end), so that parallel
 * sessions cannot try more passwords than one.  An IPv6 client counts
 * as its /64, which one host usually has whole; an IPv4-mapped one
 * (::ffff:a.b.c.d) as its IPv4 address, a link-local one without its
 * zone.  The table has a fixed size: when it is full, an entry goes
 * (anvil_before says which).
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "smtpd.h"

struct anvil_slot {
	char		 as_key[ANVIL_KEY_LEN];	/* "": free */
	int		 as_fails;
	int		 as_pending;	/* checks begun, not ended */
	long long	 as_first;	/* ms: the first failure counted */
	long long	 as_used;	/* ms: the last look-up */
};

static struct anvil_slot	 anvil[ANVIL_SLOTS];

/* The counted form of a numeric address: itself, or its /64; -1 if none. */
int
anvil_key(const char *addr, char *key, size_t len)
{
	struct sockaddr_storage	 ss;
	struct in6_addr		 a6;
	struct in_addr		 a4;
	char			 buf[INET6_ADDRSTRLEN];

	/* Parsed as net_match() takes it: without a link-local zone. */
	if (net_sockaddr(addr, &ss) == -1)
		return -1;
	if (ss.ss_family == AF_INET6) {
		a6 = ((struct sockaddr_in6 *)&ss)->sin6_addr;
		/* ::ffff:a.b.c.d is an IPv4 client (a dual-stack socket). */
		if (!IN6_IS_ADDR_V4MAPPED(&a6)) {
			memset(a6.s6_addr + 8, 0, 8);
			if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf)) == NULL)
				return -1;
			return snprintf(key, len, "%s/64", buf) < (int)len ?
			    0 : -1;
		}
		memcpy(&a4, a6.s6_addr + 12, sizeof(a4));
	} else
		a4 = ((struct sockaddr_in *)&ss)->sin_addr;
	if (inet_ntop(AF_INET, &a4, buf, sizeof(buf)) == NULL)
		return -1;
	return snprintf(key, len, "%s", buf) < (int)len ? 0 : -1;
}

/* Whether s throttles its address at max failures. */
static int
anvil_full(const struct anvil_slot *s, int max, long long now)
{
	return s->as_key[0] != '\0' && s->as_fails >= max &&
	    now - s->as_first < ANVIL_WINDOW_MS;
}

/*
 * Which of two slots goes first when the table is full: one without a
 * check in progress (forgetting that would let more checks through),
 * then one that does not throttle its address (else the failures of
 * 1024 other addresses, or the logins of new ones, would set it free),
 * then the least recently used.
 */
static int
anvil_before(const struct anvil_slot *a, const struct anvil_slot *b,
    int max, long long now)
{
	if ((a->as_pending == 0) != (b->as_pending == 0))
		return a->as_pending == 0;
	if (anvil_full(a, max, now) != anvil_full(b, max, now))
		return !anvil_full(a, max, now);
	return a->as_used < b->as_used;
}

/*
 * The slot of key; when create, a new one (anvil_before's first) if it
 * has none.  max is what throttles, for the choice.
 */
static struct anvil_slot *
anvil_slot(const char *key, int create, int max, long long now)
{
	struct anvil_slot	*s, *old = &anvil[0];

	for (s = anvil; s < anvil + ANVIL_SLOTS; s++) {
		if (strcmp(s->as_key, key) == 0) {
			if (now - s->as_first >= ANVIL_WINDOW_MS)
				s->as_fails = 0;
			s->as_used = now;
			return s;
		}
		if (anvil_before(s, old, max, now))
			old = s;
	}
	if (!create)
		return NULL;
	(void)strlcpy(old->as_key, key, sizeof(old->as_key));
	old->as_fails = old->as_pending = 0;
	old->as_used = now;
	return old;
}

/*
 * Whether AUTH from addr is throttled: max failures in the window,
 * counting the checks in progress.
 */
int
anvil_throttled(const char *addr, int max, long long now)
{
	struct anvil_slot	*s;
	char			 key[ANVIL_KEY_LEN];

	if (max <= 0 || anvil_key(addr, key, sizeof(key)) == -1 ||
	    (s = anvil_slot(key, 0, max, now)) == NULL)
		return 0;
	return s->as_fails + s->as_pending >= max;
}

/* A check of addr begins unless throttled: 1, or 0 when throttled. */
int
anvil_begin(const char *addr, int max, long long now)
{
	char	 key[ANVIL_KEY_LEN];

	if (anvil_throttled(addr, max, now))
		return 0;
	if (max > 0 && anvil_key(addr, key, sizeof(key)) == 0)
		anvil_slot(key, 1, max, now)->as_pending++;
	return 1;
}

/*
 * A check anvil_begin() let through has ended (its 535 comes apart).  A
 * slot left with nothing to count is free again, the first one taken:
 * the successful logins of many clients do not push out the failures.
 */
void
anvil_end(const char *addr, long long now)
{
	struct anvil_slot	*s;
	char			 key[ANVIL_KEY_LEN];

	if (anvil_key(addr, key, sizeof(key)) == -1 ||
	    (s = anvil_slot(key, 0, 0, now)) == NULL || s->as_pending == 0)
		return;
	if (--s->as_pending == 0 && s->as_fails == 0)
		memset(s, 0, sizeof(*s));
}

/* A 535 to addr; logged when it makes the address throttled. */
void
anvil_failed(const char *addr, int max, long long now)
{
	struct anvil_slot	*s;
	char			 key[ANVIL_KEY_LEN];

	if (max <= 0 || anvil_key(addr, key, sizeof(key)) == -1)
		return;
	s = anvil_slot(key, 1, max, now);
	if (s->as_fails == 0)
		s->as_first = now;
	if (++s->as_fails == max)
		log_warnx("auth: %s throttled: %d failed AUTH in %lld minutes",
		    key, max, ANVIL_WINDOW_MS / 60000);
}

/* Forget everything (the unit tests). */
void
anvil_clear(void)
{
	memset(anvil, 0, sizeof(anvil));
}
