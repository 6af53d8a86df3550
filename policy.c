/*
 * policy.c: who may talk to smtpd and for whom.  The address tables of
 * `accept recipients` and `accept|reject senders` (hash tables loaded by
 * the master before it forks, read-only after), the client networks, and
 * the client of the Postfix SMTP access policy delegation protocol.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netdb.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "smtpd.h"
#include "internal.h"

#define TABLE_KEY_MAX	512	/* an address of a table line */
#define TABLE_MIN_SLOTS	64
#define TABLE_ERRS_SHOWN 10	/* bad lines logged one by one */
#define TABLE_ARENA_MAX	UINT32_MAX
#define POLICY_REPLY_MAX 4096	/* one attribute block from the server */
#define POLICY_TEXT_MAX	400	/* text of an action, in the reply */
#define POLICY_PREPEND_MAX 8192	/* headers prepended to one message */
#define POLICY_ADDR_MAX	600	/* "<address>" in a reply */
#define POLICY_CONNECT_PAUSE 20	/* ms between connects to a full backlog */
#define POLICY_LOG_MAX	1024	/* a reply or action, escaped, in the log */
#define POLICY_LOG_ACTION 100	/* octets of an action not understood */

/*
 * Open addressing with linear probing over offsets into one arena of
 * NUL-terminated keys: two allocations whatever the size, and a lookup
 * touches one or two slots at a load factor of at most one half.
 */
struct policy_table {
	char		*pt_arena;
	size_t		 pt_len;
	size_t		 pt_cap;
	uint32_t	*pt_slots;	/* arena offset + 1; 0 is empty */
	size_t		 pt_nslots;	/* a power of two */
	size_t		 pt_count;
	int		 pt_nocase;	/* local parts compared ignoring case */
};

struct policy_conn {
	int		 pc_fd;		/* -1: not connected */
	unsigned int	 pc_requests;
	unsigned int	 pc_msgs;	/* instances named */
};

/* What one query is about: the protocol state and its recipient. */
struct policy_query {
	const char	*pq_state;	/* RCPT, END-OF-MESSAGE */
	const char	*pq_rcpt;	/* "" at END-OF-MESSAGE with several */
	size_t		 pq_count;
	long long	 pq_size;
};

static int	 policy_addr(const char *, struct policy_addrs *,
		    const char **);

static uint64_t
policy_hash(const char *s)
{
	uint64_t	 h = 14695981039346656037ULL;	/* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* The slot holding key, or the empty one where it would go. */
static size_t
policy_table_slot(const struct policy_table *t, const char *key)
{
	size_t	 i, mask = t->pt_nslots - 1;

	for (i = policy_hash(key) & mask; t->pt_slots[i] != 0;
	    i = (i + 1) & mask)
		if (strcmp(t->pt_arena + t->pt_slots[i] - 1, key) == 0)
			break;
	return i;
}

static void
policy_table_grow(struct policy_table *t)
{
	uint32_t	*old = t->pt_slots;
	size_t		 i, n = t->pt_nslots;

	t->pt_nslots = n == 0 ? TABLE_MIN_SLOTS : n * 2;
	t->pt_slots = xcalloc(t->pt_nslots, sizeof(*t->pt_slots));
	for (i = 0; i < n; i++)
		if (old[i] != 0)
			t->pt_slots[policy_table_slot(t,
			    t->pt_arena + old[i] - 1)] = old[i];
	free(old);
}

/* Adds key (a duplicate is no error); -1 when the arena is full. */
static int
policy_table_add(struct policy_table *t, const char *key)
{
	size_t	 i, len = strlen(key) + 1;

	if ((t->pt_count + 1) * 2 > t->pt_nslots)
		policy_table_grow(t);
	i = policy_table_slot(t, key);
	if (t->pt_slots[i] != 0)
		return 0;
	if (t->pt_len + len >= TABLE_ARENA_MAX)
		return -1;
	while (t->pt_len + len > t->pt_cap) {
		t->pt_cap = t->pt_cap == 0 ? 4096 : t->pt_cap * 2;
		t->pt_arena = xreallocarray(t->pt_arena, 1, t->pt_cap);
	}
	memcpy(t->pt_arena + t->pt_len, key, len);
	t->pt_slots[i] = (uint32_t)t->pt_len + 1;
	t->pt_len += len;
	t->pt_count++;
	return 0;
}

/*
 * The canonical form of an address: the domain (after the last `@`) in
 * lower case, RFC 5321 2.4; the local part as it is unless nocase.
 * Returns -1 when it does not fit.
 */
static int
policy_table_key(const char *addr, size_t llen, int nocase, char *key,
    size_t size)
{
	size_t	 i, len = strlen(addr);

	if (len >= size)
		return -1;
	for (i = 0; i < len; i++)
		key[i] = (i >= llen || nocase) ?
		    tolower((unsigned char)addr[i]) : addr[i];
	key[len] = '\0';
	return 0;
}

/* One word of a table line: NULL when fine, else what is wrong. */
static const char *
policy_table_word(char *line, char **wordp)
{
	char	*w, *end, *at;

	*wordp = NULL;
	w = line + strspn(line, " \t");
	if (*w == '\0' || *w == '#')
		return NULL;
	end = w + strcspn(w, " \t");
	if (end[strspn(end, " \t")] != '\0' &&
	    end[strspn(end, " \t")] != '#')
		return "more than one address on the line";
	*end = '\0';
	if ((size_t)(end - w) >= TABLE_KEY_MAX)
		return "address too long";
	for (at = w; *at != '\0'; at++)
		if ((unsigned char)*at < 0x20 || *at == 0x7f)
			return "control character";
	if ((at = strrchr(w, '@')) != NULL && at[1] == '\0')
		return "empty domain";
	*wordp = w;
	return NULL;
}

/* Reads the lines of fp into t; the number of bad lines, or -1. */
static int
policy_table_read(struct policy_table *t, const char *path, FILE *fp)
{
	char		*line = NULL, *w, *at, key[TABLE_KEY_MAX];
	const char	*why;
	size_t		 cap = 0;
	ssize_t		 n;
	int		 lineno = 0, bad = 0;

	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		w = NULL;
		if (memchr(line, '\0', n) != NULL)
			why = "NUL character";
		else {
			/* CR LF ends a line; a CR elsewhere is an error. */
			if (n > 0 && line[n - 1] == '\n') {
				line[--n] = '\0';
				if (n > 0 && line[n - 1] == '\r')
					line[--n] = '\0';
			}
			why = policy_table_word(line, &w);
		}
		if (why == NULL && w == NULL)
			continue;
		if (why == NULL) {
			at = strrchr(w, '@');
			policy_table_key(w, at == NULL ? strlen(w) :
			    (size_t)(at - w), t->pt_nocase, key, sizeof(key));
			if (policy_table_add(t, key) == -1)
				why = "table too large";
		}
		if (why != NULL && bad++ < TABLE_ERRS_SHOWN)
			log_warnx("%s:%d: %s", path, lineno, why);
	}
	free(line);
	return ferror(fp) ? -1 : bad;
}

/*
 * The table file, open for reading, or NULL after the message.  Only a
 * regular file (util_open_regular): a FIFO would block the master, a
 * device such as /dev/urandom would never end.
 */
static FILE *
policy_table_open(const char *path, const char *where)
{
	struct stat	 st;
	FILE		*fp;
	int		 fd;

	if ((fd = util_open_regular(path, &st)) == -1) {
		log_warn("%s%s", where, path);
		return NULL;
	}
	if (fd == -2) {
		log_warnx("%s%s: not a regular file", where, path);
		return NULL;
	}
	if ((fp = fdopen(fd, "r")) == NULL) {
		log_warn("%s%s", where, path);
		close(fd);
	}
	return fp;
}

/*
 * Loads a table file: one address, `@domain` or `<>` (the null sender)
 * per line, `#` comments.  NULL after logging what is wrong (file:line).
 */
struct policy_table *
policy_table_load(const char *path, int nocase, const char *where)
{
	struct policy_table	*t;
	FILE			*fp;
	int			 bad;

	if (where == NULL)
		where = "";
	if ((fp = policy_table_open(path, where)) == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	t->pt_nocase = nocase;
	policy_table_grow(t);
	bad = policy_table_read(t, path, fp);
	if (bad == -1)
		log_warn("%s%s", where, path);
	else if (bad > 0)
		log_warnx("%s%s: %d bad line(s)", where, path, bad);
	fclose(fp);
	if (bad != 0) {
		policy_table_free(t);
		return NULL;
	}
	return t;
}

void
policy_table_free(struct policy_table *t)
{
	if (t == NULL)
		return;
	free(t->pt_arena);
	free(t->pt_slots);
	free(t);
}

size_t
policy_table_count(const struct policy_table *t)
{
	return t->pt_count;
}

static int
policy_table_has(const struct policy_table *t, const char *key)
{
	return t->pt_slots[policy_table_slot(t, key)] != 0;
}

/*
 * Whether addr (normalised, "" for the null sender) is in t: the address
 * itself, then without its +detail when delim is set (user+tag@d is
 * user@d), then its domain as `@domain`.
 */
int
policy_table_lookup(const struct policy_table *t, const char *addr,
    int delim)
{
	/*
	 * Room for any address a session can pass (a quoted local part of
	 * a 538-octet MAIL line doubles): a key that did not fit would miss
	 * its `@domain` line, and `reject senders` would let it through.
	 */
	char		 key[4 * CMD_LINE_MAX];
	const char	*at, *d;
	size_t		 llen;

	if (*addr == '\0')
		return policy_table_has(t, "<>");
	at = strrchr(addr, '@');
	llen = at == NULL ? strlen(addr) : (size_t)(at - addr);
	if (policy_table_key(addr, llen, t->pt_nocase, key,
	    sizeof(key)) == -1)
		return 0;
	if (policy_table_has(t, key))
		return 1;
	if (delim != 0 && (d = memchr(key, delim, llen)) != NULL &&
	    d != key) {
		memmove(key + (d - key), key + llen, strlen(key + llen) + 1);
		if (policy_table_has(t, key))
			return 1;
		llen = d - key;
	}
	return at != NULL && policy_table_has(t, key + llen);
}

/*
 * Loads the tables of c; called by load_config on a valid file.  A table
 * that cannot be read is blamed on the line that names it.
 */
/*
 * With chroot, the address of an inet: server is looked up here, in the
 * master at every load: inside the chroot a session has no resolver, and
 * every request would fail.  A lookup that fails is logged, and each
 * request tries again.  Without chroot, each connection looks it up.
 */
static void
policy_config_addr(struct config *c)
{
	const char	*why;

	c->c_pol.po_addrs.pa_n = 0;
	if (c->c_chroot == NULL || c->c_pol.po_server == NULL ||
	    strncmp(c->c_pol.po_server, "inet:", 5) != 0)
		return;
	if (policy_addr(c->c_pol.po_server, &c->c_pol.po_addrs, &why) == -1)
		log_warnx("policy %s: %s", c->c_pol.po_server, why);
}

int
policy_config_load(struct config *c)
{
	char	 where[PATH_MAX + 16] = "";
	int	 i, rc = 0;

	for (i = 0; i < PT_NTABLES; i++) {
		if (c->c_pol.po_table_file[i] == NULL)
			continue;
		if (c->c_file != NULL)
			(void)snprintf(where, sizeof(where), "%s:%d: ",
			    c->c_file, c->c_pol.po_table_line[i]);
		c->c_pol.po_table[i] = policy_table_load(c->c_pol.po_table_file[i],
		    c->c_pol.po_table_nocase[i], where);
		if (c->c_pol.po_table[i] == NULL)
			rc = -1;
	}
	policy_config_addr(c);
	return rc;
}

void
policy_config_free(struct config *c)
{
	int	 i;

	for (i = 0; i < PT_NTABLES; i++) {
		policy_table_free(c->c_pol.po_table[i]);
		c->c_pol.po_table[i] = NULL;
	}
}

/*
 * The longest prefix of the networks of list that holds sa, or -1 when
 * none does.  An IPv4-mapped peer (::ffff:a.b.c.d) is in IPv4 networks
 * too, where a.b.c.d/n is ::ffff:a.b.c.d/(96 + n): the prefixes of the
 * two families are then compared in one address space.
 */
static int
policy_net_best(const struct config *c, int list, const struct sockaddr *sa)
{
	const struct netaddr	*na;
	int			 i, len, best = -1;

	for (i = 0; i < c->c_pol.po_nclients[list]; i++) {
		na = &c->c_pol.po_clients[list][i];
		len = na->na_prefix;
		if (na->na_family == AF_INET && sa->sa_family == AF_INET6)
			len += 96;
		if (len > best && net_match(na, 1, sa))
			best = len;
	}
	return best;
}

/* bare-newline for this client: `keep` in bare-newline-exempt. */
int
policy_bare_newline(const struct config *c, const struct client *cl)
{
	struct sockaddr_storage	 ss;

	if (c->c_pol.po_bare != BARE_KEEP && c->c_pol.po_nbare_exempt > 0 &&
	    net_sockaddr(cl->ci_addr, &ss) == 0 &&
	    net_match(c->c_pol.po_bare_exempt, c->c_pol.po_nbare_exempt,
	    (struct sockaddr *)&ss))
		return BARE_KEEP;
	return c->c_pol.po_bare;
}

/*
 * At connect: the most specific of the `accept clients` and `reject
 * clients` networks decides (reject on a tie); a client in none is
 * refused only when there are `accept clients` networks.
 */
int
policy_client(const struct config *c, const struct client *cl,
    char *reply, size_t len)
{
	struct sockaddr_storage	 ss;
	int			 acc, rej;

	if (c->c_pol.po_nclients[PN_ACCEPT] == 0 &&
	    c->c_pol.po_nclients[PN_REJECT] == 0)
		return 0;
	if (cl->ci_addr[0] == '\0')	/* a UNIX socket: local */
		return 0;
	if (net_sockaddr(cl->ci_addr, &ss) == -1)	/* cannot be: refuse */
		goto refuse;
	acc = policy_net_best(c, PN_ACCEPT, (struct sockaddr *)&ss);
	rej = policy_net_best(c, PN_REJECT, (struct sockaddr *)&ss);
	if (rej == -1 && (acc != -1 || c->c_pol.po_nclients[PN_ACCEPT] == 0))
		return 0;
	if (acc > rej)
		return 0;
 refuse:
	snprintf(reply, len, "554 5.7.1 <%s>: Client host rejected: "
	    "Access denied", cl->ci_addr);
	return -1;
}

/* MAIL: `reject senders` first, then `accept senders`. */
int
policy_sender(const struct config *c, const char *sender, char *reply,
    size_t len)
{
	const struct policy_table	*acc = c->c_pol.po_table[PT_SENDER_ACCEPT];
	const struct policy_table	*rej = c->c_pol.po_table[PT_SENDER_REJECT];

	if ((rej == NULL || !policy_table_lookup(rej, sender,
	    c->c_pol.po_rcpt_delim)) && (acc == NULL || policy_table_lookup(acc,
	    sender, c->c_pol.po_rcpt_delim)))
		return 0;
	snprintf(reply, len, "550 5.7.1 <%.*s>: Sender address rejected: "
	    "Access denied", POLICY_ADDR_MAX, sender);
	return -1;
}

/*
 * The length of the empty line that ends the reply block in buf, 1 or 2
 * (a server that ends its lines with CRLF), or 0 while it has not come.
 */
static size_t
policy_block_end(const char *buf, size_t len)
{
	if (len >= 2 && memcmp(buf + len - 2, "\n\n", 2) == 0)
		return 1;
	if (len >= 3 && memcmp(buf + len - 3, "\n\r\n", 3) == 0)
		return 2;
	return 0;
}

/*
 * The value of action= in one reply block of the policy server (name=value
 * lines ending in an empty line; a CR before each LF is taken off).
 * Returns 0, or -1 when the block is malformed or has no action.
 */
int
policy_reply_action(const char *buf, size_t len, char *action,
    size_t size)
{
	const char	*p = buf, *end, *nl, *le;
	size_t		 last;
	int		 found = 0;

	if ((last = policy_block_end(buf, len)) == 0 ||
	    memchr(buf, '\0', len) != NULL)
		return -1;
	for (end = buf + len - last; p < end; p = nl + 1) {
		nl = memchr(p, '\n', end - p);
		le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		if (memchr(p, '=', le - p) == NULL)
			return -1;
		if (le - p < 7 || strncmp(p, "action=", 7) != 0)
			continue;
		if (found++ || (size_t)(le - p - 7) >= size)
			return -1;
		memcpy(action, p + 7, le - p - 7);
		action[le - p - 7] = '\0';
	}
	return found ? 0 : -1;
}

/*
 * The length of the enhanced status code s begins with, "C.N.N" where C
 * is 4 or 5 (RFC 3463 2: subject and detail of 1 to 3 digits each) and a
 * space, a tab or the end follows; 0 when it does not begin with one.
 */
static size_t
policy_enhanced(const char *s)
{
	size_t	 n, d;

	if ((s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	n = 2 + strspn(s + 2, "0123456789");
	if (n == 2 || n > 5 || s[n] != '.')
		return 0;
	d = strspn(s + n + 1, "0123456789");
	n += 1 + d;
	if (d == 0 || d > 3 || (s[n] != ' ' && s[n] != '\t' && s[n] != '\0'))
		return 0;
	return n;
}

/*
 * A refusal in Postfix's form: "CODE X.Y.Z what: text", with the enhanced
 * status that text begins with, its class made the reply's as Postfix
 * does ("450 5.7.1" would contradict itself), or 4.7.1 and 5.7.1.
 */
static int
policy_refuse(const char *code, const char *text, const char *deftext,
    const char *what, char *reply, size_t len)
{
	/* The longest code policy_enhanced() takes: C.NNN.NNN. */
	char	 safe[POLICY_TEXT_MAX], status[sizeof("5.999.999")] = "X.7.1";
	size_t	 i, n;

	text += strspn(text, " \t");
	if ((n = policy_enhanced(text)) > 0)
		memcpy(status, text, n);
	status[n > 0 ? n : 5] = '\0';
	status[0] = code[0];
	text += n;
	text += strspn(text, " \t");
	if (*text == '\0')
		text = deftext;
	/* RFC 5321 textstring: printable US-ASCII and space. */
	for (i = 0; i + 1 < sizeof(safe) && text[i] != '\0'; i++)
		safe[i] = (unsigned char)text[i] < 0x20 ||
		    (unsigned char)text[i] >= 0x7f ? ' ' : text[i];
	safe[i] = '\0';
	snprintf(reply, len, "%s %s %s: %s", code, status, what, safe);
	return PA_REFUSE;
}

/*
 * PREPEND "Name: value": printable US-ASCII and tabs (RFC 5322 2.2: a
 * message without SMTPUTF8 may have no other octet in a header), a field
 * name of ftext (3.6.8).
 */
static int
policy_prepend(const char *hdr, char *out, size_t size)
{
	size_t		 i, name = strcspn(hdr, ":");
	unsigned char	 ch;

	if (name == 0 || hdr[name] != ':' || strlen(hdr) > POLICY_HEADER_MAX ||
	    strlen(hdr) >= size)
		return PA_BAD;
	for (i = 0; hdr[i] != '\0'; i++) {
		ch = (unsigned char)hdr[i];
		if (ch >= 0x7f || (ch < ' ' && ch != '\t') ||
		    (i < name && ch <= ' '))
			return PA_BAD;
	}
	memcpy(out, hdr, i + 1);
	return PA_PREPEND;
}

/*
 * What action (from the policy server) means.  what is the subject of a
 * refusal, "<rcpt>: Recipient address rejected".  Returns PA_DUNNO,
 * PA_PREPEND (hdr holds the header), PA_REFUSE (reply holds the reply,
 * no CRLF) or PA_BAD.
 */
int
policy_action(const char *action, const char *what, char *reply,
    size_t len, char *hdr, size_t hdrlen)
{
	size_t	 n = strcspn(action, " \t");
	char	 code[4];

	/* Text after OK or DUNNO says nothing (Postfix ignores it too). */
	if ((n == 2 && strncasecmp(action, "OK", 2) == 0) ||
	    (n == 5 && strncasecmp(action, "DUNNO", 5) == 0))
		return PA_DUNNO;
	if (n == 6 && strncasecmp(action, "REJECT", 6) == 0)
		return policy_refuse("550", action + n, "Access denied", what,
		    reply, len);
	if ((n == 5 && strncasecmp(action, "DEFER", 5) == 0) ||
	    (n == 15 && strncasecmp(action, "DEFER_IF_PERMIT", 15) == 0))
		return policy_refuse("450", action + n,
		    "Service is unavailable", what, reply, len);
	if (n == 7 && strncasecmp(action, "PREPEND", 7) == 0)
		return policy_prepend(action + n + strspn(action + n, " \t"),
		    hdr, hdrlen);
	/* 4NN text / 5NN text: a code of the two refusing classes. */
	if (n == 3 && (action[0] == '4' || action[0] == '5') &&
	    isdigit((unsigned char)action[1]) &&
	    isdigit((unsigned char)action[2]) && action[n] != '\0') {
		memcpy(code, action, 3);
		code[3] = '\0';
		return policy_refuse(code, action + n, "Access denied", what,
		    reply, len);
	}
	return PA_BAD;
}

struct policy_conn *
policy_open(const struct config *c)
{
	struct policy_conn	*pc;

	if (c->c_pol.po_server == NULL)
		return NULL;
	pc = xcalloc(1, sizeof(*pc));
	pc->pc_fd = -1;
	return pc;
}

void
policy_close(struct policy_conn *pc)
{
	if (pc == NULL)
		return;
	if (pc->pc_fd != -1)
		close(pc->pc_fd);
	free(pc);
}

/*
 * The addresses of `policy unix:PATH | inet:HOST:PORT` (config.c checked):
 * a name's first POLICY_ADDRS, in the resolver's order.  On failure *why
 * says what went wrong: errno does not.
 */
static int
policy_addr(const char *spec, struct policy_addrs *pa, const char **why)
{
	struct addrinfo		 hints, *res, *ai;
	char			 host[256];
	const char		*colon;
	size_t			 hlen;
	int			 error;

	memset(pa, 0, sizeof(*pa));
	*why = "address too long";
	if (strncmp(spec, "unix:", 5) == 0) {
		if (util_sockaddr_un((struct sockaddr_un *)&pa->pa_ss[0],
		    spec + 5) == -1)
			return -1;
		pa->pa_len[0] = sizeof(struct sockaddr_un);
		pa->pa_n = 1;
		return 0;
	}
	colon = strrchr(spec, ':');
	hlen = colon - (spec + 5);
	if (spec[5] == '[' && hlen >= 2 && colon[-1] == ']')
		spec++, hlen -= 2;
	if (hlen >= sizeof(host))
		return -1;
	memcpy(host, spec + 5, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((error = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		*why = gai_strerror(error);
		return -1;
	}
	for (ai = res; ai != NULL && pa->pa_n < POLICY_ADDRS;
	    ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(pa->pa_ss[0]))
			continue;
		memcpy(&pa->pa_ss[pa->pa_n], ai->ai_addr, ai->ai_addrlen);
		pa->pa_len[pa->pa_n++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	*why = "no address";
	return pa->pa_n > 0 ? 0 : -1;
}

/* The addresses to connect to: the ones looked up at load, or now. */
static int
policy_target(const struct config *c, struct policy_addrs *pa,
    const char **why)
{
	if (c->c_pol.po_addrs.pa_n > 0) {
		memcpy(pa, &c->c_pol.po_addrs, sizeof(*pa));
		return 0;
	}
	return policy_addr(c->c_pol.po_server, pa, why);
}

/*
 * A non-blocking connect to one address that gives up at the deadline:
 * the socket, or -1 with errno.
 */
static int
policy_connect_one(const struct sockaddr_storage *ss, socklen_t slen,
    long long deadline)
{
	socklen_t	 elen = sizeof(int);
	int		 fd, rv, err = 0;

	if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/*
	 * A UNIX socket whose backlog is full refuses at once (EAGAIN), and
	 * there is nothing to poll for: a busy server is tried again until
	 * the deadline, as a TCP connect waits for its server.
	 */
	while ((rv = connect(fd, (const struct sockaddr *)ss, slen)) == -1 &&
	    errno == EAGAIN && ss->ss_family == AF_UNIX) {
		if (util_now_ms() + POLICY_CONNECT_PAUSE >= deadline) {
			errno = ETIMEDOUT;
			break;
		}
		(void)poll(NULL, 0, POLICY_CONNECT_PAUSE);
	}
	if (rv == -1 &&
	    (errno != EINPROGRESS || util_wait(fd, POLLOUT,
	    deadline) == -1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
	    &elen) == -1 || (errno = err) != 0)) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/*
 * Every address of a name failed: one line with each and its error,
 * "policy inet:NAME:PORT: 127.0.0.1:10023: Connection refused;
 * [::1]:10023: ...", since the administrator needs all of them to tell a
 * server that is down from one that listens on another address.
 */
static void
policy_connect_failed(const struct config *c, const char *sid,
    const struct policy_addrs *pa, const int *errs, int tried)
{
	char	 line[1024], host[NI_MAXHOST], port[NI_MAXSERV];
	size_t	 len = 0;
	int	 i, n, v6;

	line[0] = '\0';
	for (i = 0; i < tried; i++) {
		util_sockaddr_str((const struct sockaddr *)&pa->pa_ss[i],
		    pa->pa_len[i], host, sizeof(host), port, sizeof(port));
		v6 = pa->pa_ss[i].ss_family == AF_INET6;
		n = snprintf(line + len, sizeof(line) - len, "%s%s%s%s:%s: %s",
		    i > 0 ? "; " : "", v6 ? "[" : "", host, v6 ? "]" : "",
		    port, strerror(errs[i]));
		if (n < 0 || (size_t)n >= sizeof(line) - len)
			break;
		len += (size_t)n;
	}
	log_warnx("%s policy %s: %s", sid, c->c_pol.po_server, line);
}

/*
 * Connects to the server's addresses in turn until one takes the
 * connection or the deadline passes (a name may have an address the
 * server does not listen on, as localhost's ::1 for a server on
 * 127.0.0.1): -1 with errno when its one address failed, or -2 when the
 * address cannot be had or all of several failed (logged here).  Each
 * address gets an equal share of the time left, the last all of it: one
 * that never answers (its SYN dropped) leaves time for the next.
 */
static int
policy_connect(struct policy_conn *pc, const struct config *c,
    const char *sid, long long deadline)
{
	struct policy_addrs	 pa;
	const char		*why;
	long long		 now;
	int			 errs[POLICY_ADDRS];
	int			 i, fd = -1;

	if (policy_target(c, &pa, &why) == -1) {
		log_warnx("%s policy %s: %s", sid, c->c_pol.po_server, why);
		return -2;
	}
	for (i = 0; i < pa.pa_n && fd == -1; i++) {
		now = util_now_ms();
		if (i > 0 && now >= deadline)
			break;
		fd = policy_connect_one(&pa.pa_ss[i], pa.pa_len[i],
		    now + (deadline - now) / (pa.pa_n - i));
		errs[i] = errno;
	}
	if (fd == -1 && i > 1) {
		policy_connect_failed(c, sid, &pa, errs, i);
		return -2;
	}
	if (fd == -1)
		return -1;
	pc->pc_fd = fd;
	return 0;
}

static int
policy_send(struct policy_conn *pc, const char *buf, size_t len,
    long long deadline)
{
	ssize_t	 n;

	while (len > 0) {
		n = send(pc->pc_fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EAGAIN &&
		    util_wait(pc->pc_fd, POLLOUT, deadline) == 0)
			continue;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Reads one reply block, up to its empty line, into buf. */
static ssize_t
policy_recv(struct policy_conn *pc, char *buf, size_t size,
    long long deadline)
{
	size_t	 len = 0;
	ssize_t	 n;

	while (policy_block_end(buf, len) == 0) {
		if (len == size) {
			errno = EMSGSIZE;
			return -1;
		}
		if (util_wait(pc->pc_fd, POLLIN, deadline) == -1)
			return -1;
		n = read(pc->pc_fd, buf + len, size - len);
		/* Closed when idle (reopened), or in the middle of a reply. */
		if (n == 0)
			errno = len == 0 ? ECONNRESET : EPROTO;
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		len += n;
	}
	return len;
}

/*
 * Whether a kept connection is no use for the next request: the server
 * closed it while idle, or sent what nobody asked (a reply twice), which
 * would be taken for the next answer.
 */
static int
policy_stale(const struct policy_conn *pc, const struct config *c,
    const char *sid)
{
	char	 ch;
	ssize_t	 n;

	n = recv(pc->pc_fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n > 0)
		log_warnx("%s policy %s: data nobody asked for; connecting "
		    "again", sid, c->c_pol.po_server);
	return 1;
}

/*
 * One request and its reply on the session's connection, connecting when
 * there is none.  A reused connection the server has closed meanwhile is
 * tried once more on a new one; all of it within policy-timeout.
 */
static int
policy_exchange(struct policy_conn *pc, const struct config *c,
    const char *sid, const char *req, size_t reqlen, char *action,
    size_t size)
{
	long long	 deadline;
	char		 buf[POLICY_REPLY_MAX];
	ssize_t		 n = -1;
	int		 try, reused, rv;

	deadline = util_now_ms() + (long long)c->c_pol.po_timeout * 1000;
	for (try = 0; try < 2 && n == -1; try++) {
		if (pc->pc_fd != -1 && policy_stale(pc, c, sid)) {
			close(pc->pc_fd);
			pc->pc_fd = -1;
		}
		reused = pc->pc_fd != -1;
		if (!reused && (rv = policy_connect(pc, c, sid,
		    deadline)) != 0) {
			if (rv == -2)
				return -1;	/* logged */
			break;
		}
		if (policy_send(pc, req, reqlen, deadline) == 0)
			n = policy_recv(pc, buf, sizeof(buf), deadline);
		if (n == -1) {
			close(pc->pc_fd);
			pc->pc_fd = -1;
			/*
			 * Asked again only when a kept connection turns out
			 * closed: any other failure may come after the server
			 * has counted the request.
			 */
			if (!reused || (errno != ECONNRESET && errno != EPIPE))
				break;
		}
	}
	if (n == -1) {
		log_warn("%s policy %s", sid, c->c_pol.po_server);
		return -1;
	}
	pc->pc_requests++;
	if (policy_reply_action(buf, n, action, size) == -1) {
		log_warnx("%s policy %s: malformed reply", sid,
		    c->c_pol.po_server);
		/* What else it sends would be taken for the next answer. */
		close(pc->pc_fd);
		pc->pc_fd = -1;
		return -1;
	}
	return 0;
}

/* name=value, the value without the newlines that would end it. */
static void
policy_attr(FILE *f, const char *name, const char *value)
{
	fprintf(f, "%s=", name);
	for (; *value != '\0'; value++)
		putc((unsigned char)*value < 0x20 ? '?' : *value, f);
	putc('\n', f);
}

/* The request of the Postfix policy delegation protocol (SMTPD_POLICY_README). */
static char *
policy_request(const struct client *cl, const struct envelope *e,
    const struct policy_query *q, size_t *lenp)
{
	char		*req, num[32], proto[128], *cipher;
	FILE		*f;

	if ((f = open_memstream(&req, lenp)) == NULL)
		fatal("open_memstream");
	policy_attr(f, "request", "smtpd_access_policy");
	policy_attr(f, "protocol_state", q->pq_state);
	policy_attr(f, "protocol_name", cl->ci_lmtp ? "LMTP" :
	    cl->ci_esmtp ? "ESMTP" : "SMTP");
	policy_attr(f, "client_address", cl->ci_addr);
	/* smtpd does no DNS: the names are the address. */
	policy_attr(f, "client_name", cl->ci_addr);
	policy_attr(f, "reverse_client_name", cl->ci_addr);
	policy_attr(f, "helo_name", cl->ci_helo);
	policy_attr(f, "sender", e->e_sender != NULL ? e->e_sender : "");
	policy_attr(f, "recipient", q->pq_rcpt);
	snprintf(num, sizeof(num), "%zu", q->pq_count);
	policy_attr(f, "recipient_count", num);
	/* The message has its id (its queue_id) only once DATA began. */
	policy_attr(f, "queue_id", strcmp(q->pq_state, "RCPT") != 0 ?
	    e->e_id : "");
	policy_attr(f, "instance", e->e_instance);
	snprintf(num, sizeof(num), "%lld", q->pq_size);
	policy_attr(f, "size", num);
	policy_attr(f, "sasl_method", "");
	policy_attr(f, "sasl_username", cl->ci_user);
	policy_attr(f, "sasl_sender", "");
	strlcpy(proto, cl->ci_tls, sizeof(proto));
	cipher = strchr(proto, ' ');
	if (cipher != NULL)
		*cipher++ = '\0';
	policy_attr(f, "encryption_protocol", proto);
	policy_attr(f, "encryption_cipher", cipher != NULL ? cipher : "");
	policy_attr(f, "encryption_keysize", "0");
	policy_attr(f, "ccert_subject", "");
	policy_attr(f, "ccert_issuer", "");
	policy_attr(f, "ccert_fingerprint", "");
	policy_attr(f, "ccert_pubkey_fingerprint", "");
	fputs("\n", f);
	if (fclose(f) == EOF)
		fatal("open_memstream");
	return req;
}

/* Adds a PREPEND header to the message, within POLICY_PREPEND_MAX. */
static void
policy_add_header(struct envelope *e, const char *sid, const char *hdr)
{
	char	*s;
	size_t	 old = e->e_prepend == NULL ? 0 : strlen(e->e_prepend);

	if (old + strlen(hdr) + 2 > POLICY_PREPEND_MAX) {
		log_warnx("%s policy: PREPEND over %d octets dropped", sid,
		    POLICY_PREPEND_MAX);
		return;
	}
	xasprintf(&s, "%s%s\r\n", old == 0 ? "" : e->e_prepend, hdr);
	free(e->e_prepend);
	e->e_prepend = s;
}

/*
 * Asks the policy server and maps its answer; what names the subject of
 * refusals.  A failure, or an action not understood, is policy-default.
 */
static int
policy_ask(struct policy_conn *pc, const struct config *c,
    const struct client *cl, struct envelope *e,
    const struct policy_query *q, const char *what, char *reply, size_t len)
{
	char	*req, action[POLICY_REPLY_MAX], hdr[POLICY_HEADER_MAX + 1];
	char	 esc[POLICY_LOG_MAX];
	size_t	 reqlen;
	int	 rc;

	/* Postfix's instance: one name for every request of a message. */
	if (e->e_instance[0] == '\0')
		snprintf(e->e_instance, sizeof(e->e_instance), "%s.%u",
		    cl->ci_sid, ++pc->pc_msgs);
	req = policy_request(cl, e, q, &reqlen);
	rc = policy_exchange(pc, c, cl->ci_sid, req, reqlen, action,
	    sizeof(action));
	free(req);
	if (rc == -1)
		rc = PA_BAD;
	else if ((rc = policy_action(action, what, reply, len, hdr,
	    sizeof(hdr))) == PA_BAD)
		log_warnx("%s policy %s: action \"%s\" not understood",
		    cl->ci_sid, c->c_pol.po_server, log_escape(action,
		    strnlen(action, POLICY_LOG_ACTION), esc, sizeof(esc)));
	score_count(rc == PA_DUNNO ? SC_POLICY_DUNNO : rc == PA_PREPEND ?
	    SC_POLICY_PREPEND : rc == PA_REFUSE ? SC_POLICY_REFUSE :
	    SC_POLICY_ERROR);
	if (rc == PA_PREPEND)
		policy_add_header(e, cl->ci_sid, hdr);
	if (rc != PA_BAD)
		return rc == PA_REFUSE ? -1 : 0;
	if (c->c_pol.po_default == POLICY_DUNNO)
		return 0;
	/* Postfix's smtpd_policy_service_default_action. */
	snprintf(reply, len, "451 4.3.5 Server configuration problem");
	return -1;
}

/*
 * RCPT: the `accept recipients` table, then the policy server.  0 to
 * accept rcpt (with any PREPEND added to e), -1 with the refusal.
 */
int
policy_rcpt(struct policy_conn *pc, const struct config *c,
    const struct client *cl, struct envelope *e, const char *rcpt,
    char *reply, size_t len)
{
	struct policy_query	 q;
	char			 what[POLICY_ADDR_MAX + 64];

	snprintf(what, sizeof(what), "<%.*s>: Recipient address rejected",
	    POLICY_ADDR_MAX, rcpt);
	if (c->c_pol.po_table[PT_RCPT_ACCEPT] != NULL &&
	    !policy_table_lookup(c->c_pol.po_table[PT_RCPT_ACCEPT], rcpt,
	    c->c_pol.po_rcpt_delim)) {
		snprintf(reply, len, "550 5.1.1 %s: User unknown", what);
		return -1;
	}
	if (pc == NULL || (c->c_pol.po_stages & POLICY_STAGE_RCPT) == 0)
		return 0;
	q.pq_state = "RCPT";
	q.pq_rcpt = rcpt;
	q.pq_count = e->e_nrcpts;
	q.pq_size = 0;
	return policy_ask(pc, c, cl, e, &q, what, reply, len);
}

/* END-OF-MESSAGE, with `policy-stages data`: 0, or -1 with the refusal. */
int
policy_data(struct policy_conn *pc, const struct config *c,
    const struct client *cl, struct envelope *e, long long size,
    char *reply, size_t len)
{
	struct policy_query	 q;

	if (pc == NULL || (c->c_pol.po_stages & POLICY_STAGE_DATA) == 0)
		return 0;
	q.pq_state = "END-OF-MESSAGE";
	q.pq_rcpt = e->e_nrcpts == 1 ? e->e_rcpts[0] : "";
	q.pq_count = e->e_nrcpts;
	q.pq_size = size;
	return policy_ask(pc, c, cl, e, &q,
	    "<END-OF-MESSAGE>: End-of-data rejected", reply, len);
}
