/*
 * score.c: the scoreboard, a shared mapping made by the master before
 * its first fork.  The counters only grow (relaxed atomic adds): the
 * master's in the header, each child's in its slot, and a total is their
 * sum.  A child can write its own slot's page and nothing else (mapped
 * read-only from a read-only descriptor, so mprotect() cannot change
 * that): a child taken over can lie about itself, not about the others
 * or which slots are free.  It lives in a memfd so that a master that
 * replaces itself (SIGUSR2) hands it on, counters and all.
 */

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtpd.h"
#include "internal.h"

/*
 * What each counter is called: a metric family (families contiguous, in
 * enum order), its label, the help text of the family's first entry.
 */
struct score_desc {
	const char	*sd_name;
	const char	*sd_label;	/* "key=\"value\"" or NULL */
	const char	*sd_help;
	int		 sd_master;	/* counted by the master alone */
};

#define D(n, l, h)	{ "smtpd_" n, l, h, 0 }
#define M(n, l, h)	{ "smtpd_" n, l, h, 1 }
static const struct score_desc score_descs[SC_NCOUNTERS] = {
	[SC_CONN_ACCEPTED] = M("connections_accepted_total", NULL,
	    "Connections handed to a child."),
	[SC_CONN_MAXCLIENTS] = M("connections_refused_total",
	    "reason=\"max_clients\"", "Connections refused, by reason."),
	[SC_CONN_PERADDR] = D("connections_refused_total",
	    "reason=\"max_clients_per_address\"", NULL),
	[SC_CONN_PROXY] = D("connections_refused_total",
	    "reason=\"proxy_protocol\"", NULL),
	[SC_SESS_QUIT] = D("sessions_total", "outcome=\"quit\"",
	    "Sessions ended, by how they ended."),
	[SC_SESS_DISCONNECT] = D("sessions_total", "outcome=\"disconnect\"",
	    NULL),
	[SC_SESS_TIMEOUT] = D("sessions_total", "outcome=\"timeout\"", NULL),
	[SC_SESS_CLOSED] = D("sessions_total", "outcome=\"closed\"", NULL),
	[SC_SESS_SHUTDOWN] = D("sessions_total", "outcome=\"shutdown\"",
	    NULL),
	[SC_SESS_REJECTED] = D("sessions_total", "outcome=\"rejected\"",
	    NULL),
	[SC_SESS_ABORTED] = D("sessions_total", "outcome=\"aborted\"", NULL),
	[SC_MSG_2XX] = D("messages_total", "reply=\"2xx\"",
	    "Replies to messages (one per recipient in LMTP), by class."),
	[SC_MSG_4XX] = D("messages_total", "reply=\"4xx\"", NULL),
	[SC_MSG_5XX] = D("messages_total", "reply=\"5xx\"", NULL),
	[SC_RECEIVED] = D("received_bytes_total", NULL,
	    "Octets read from clients."),
	[SC_DLV_0] = D("deliveries_total", "exit=\"0\"",
	    "Delivery program runs, by exit status."),
	[SC_DLV_65] = D("deliveries_total", "exit=\"65\"", NULL),
	[SC_DLV_67] = D("deliveries_total", "exit=\"67\"", NULL),
	[SC_DLV_68] = D("deliveries_total", "exit=\"68\"", NULL),
	[SC_DLV_69] = D("deliveries_total", "exit=\"69\"", NULL),
	[SC_DLV_75] = D("deliveries_total", "exit=\"75\"", NULL),
	[SC_DLV_77] = D("deliveries_total", "exit=\"77\"", NULL),
	[SC_DLV_OTHER] = D("deliveries_total", "exit=\"other\"", NULL),
	[SC_DLV_SIGNAL] = D("deliveries_total", "exit=\"signal\"", NULL),
	[SC_DLV_TIMEOUT] = D("deliveries_total", "exit=\"timeout\"", NULL),
	[SC_DLV_EXEC] = D("deliveries_total", "exit=\"exec_failed\"", NULL),
	[SC_DLV_NONE] = D("deliveries_total", "exit=\"none\"", NULL),
	[SC_TLS_OK] = D("tls_handshakes_total", "result=\"ok\"",
	    "TLS handshakes, by result."),
	[SC_TLS_FAILED] = D("tls_handshakes_total", "result=\"failed\"",
	    NULL),
	[SC_AUTH_OK] = D("auth_total", "result=\"ok\"",
	    "AUTH attempts that reached the backend, by result."),
	[SC_AUTH_FAILED] = D("auth_total", "result=\"failed\"", NULL),
	[SC_AUTH_TEMPFAIL] = D("auth_total", "result=\"tempfail\"", NULL),
	[SC_POLICY_DUNNO] = D("policy_answers_total", "answer=\"dunno\"",
	    "Answers of the policy server, by action."),
	[SC_POLICY_PREPEND] = D("policy_answers_total", "answer=\"prepend\"",
	    NULL),
	[SC_POLICY_REFUSE] = D("policy_answers_total", "answer=\"refuse\"",
	    NULL),
	[SC_POLICY_ERROR] = D("policy_answers_total", "answer=\"error\"",
	    NULL),
	[SC_RELOAD_OK] = M("reloads_total", "result=\"ok\"",
	    "Configuration reloads (SIGHUP), by result."),
	[SC_RELOAD_FAILED] = M("reloads_total", "result=\"failed\"", NULL),
	[SC_UPGRADE_OK] = M("upgrades_total", "result=\"ok\"",
	    "Binary upgrades (SIGUSR2), by result."),
	[SC_UPGRADE_FAILED] = M("upgrades_total", "result=\"failed\"", NULL),
	[SC_CHILD_STARTED] = M("child_starts_total", NULL,
	    "Children forked."),
	[SC_CHILD_FAILED] = M("child_failures_total", NULL,
	    "Children that exited on a signal or with a failure status.")
};
#undef D
#undef M

/* Histograms: upper bounds of the buckets, then counters from base. */
static const long long score_time_le[SC_DLV_TIME_NB] = {
	10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000
};
static const long long score_size_le[SC_SIZE_NB] = {
	1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
	67108864
};

/* The delivery program's exit statuses that have a counter of their own. */
static const struct {
	int	 se_status;
	int	 se_counter;
} score_exits[] = {
	{ 0, SC_DLV_0 }, { 65, SC_DLV_65 }, { 67, SC_DLV_67 },
	{ 68, SC_DLV_68 }, { 69, SC_DLV_69 }, { 75, SC_DLV_75 },
	{ 77, SC_DLV_77 }, { SD_SIGNAL, SC_DLV_SIGNAL },
	{ SD_TIMEOUT, SC_DLV_TIMEOUT }, { SD_EXEC, SC_DLV_EXEC },
	{ SD_NONE, SC_DLV_NONE }
};

static const char *const score_states[SS_NSTATES] = {
	"idle", "init", "helo", "mail", "rcpt", "data", "metrics"
};

static struct score_board	*board;
static size_t			 board_size;
static int			 board_fd = -1;
static int			 board_rofd = -1; /* for the children */
static struct score_slot	*self;		/* in a child: its slot */
static int			 board_ro;	/* in a child: all but self */

/* n octets rounded up to whole pages. */
static size_t
score_pages(size_t n)
{
	size_t	 page = (size_t)sysconf(_SC_PAGESIZE);

	return (n + page - 1) / page * page;
}

/* A slot's page (or pages): only its child writes them. */
static size_t
score_page(void)
{
	return score_pages(sizeof(struct score_slot));
}

/* The header, then the slots' pages. */
static size_t
score_slotoff(void)
{
	return score_pages(sizeof(struct score_board));
}

static size_t
score_size(void)
{
	return score_slotoff() + (size_t)SCORE_SLOTS * score_page();
}

/* The board as this process maps it (unit tests). */
struct score_board *
score_board(void)
{
	return board;
}

/* Where this process has the board (the session filter keeps it there). */
void
score_mapped(const void **addr, size_t *len)
{
	*addr = board;
	*len = board != NULL ? board_size : 0;
}

static struct score_slot *
score_at(int i)
{
	return score_slot_of(board, i);
}

/*
 * The descriptor the children map the board from: the memfd reopened
 * read-only, so that no mprotect() makes their mapping writable.  Fatal
 * at the start when /proc cannot give it: no child runs with the whole
 * board writable.
 */
static void
score_reopen(void)
{
	char	 path[64];

	(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", board_fd);
	if ((board_rofd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		fatal("scoreboard: %s", path);
}

/*
 * Whether the children's boards can be sealed: a page of our own, mapped
 * and sealed for good (so that a kernel without mseal(2) is named once,
 * at the start, not at every fork).
 */
static void
score_seal_probe(void)
{
	void	*p;

	if (board_fd == -1)
		return;
	p = mmap(NULL, score_pages(1), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (p != MAP_FAILED && os_mseal(p, score_pages(1)) == -1)
		log_warn("scoreboard: mseal (Linux 6.10): the session "
		    "children's system call filter alone keeps their boards "
		    "in place");
}

/* A board handed on by the master we replace, if it is one we know. */
static int
score_attach(int fd)
{
	struct score_board	*b;

	board_size = score_size();
	b = mmap(NULL, board_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (b == MAP_FAILED) {
		log_warn("scoreboard: mmap");
		return -1;
	}
	if (b->sb_magic != SCORE_MAGIC || b->sb_version != SCORE_VERSION ||
	    b->sb_nslots != SCORE_SLOTS || b->sb_slotsize != score_page() ||
	    b->sb_slotoff != score_slotoff()) {
		log_warnx("scoreboard of another version: counters restart");
		munmap(b, board_size);
		return -1;
	}
	board = b;
	board_fd = fd;
	score_reopen();
	score_seal_probe();
	return 0;
}

/*
 * Before the first fork.  inherited: the descriptor of the board of the
 * master this one replaces, or -1.  Without a memfd the board is an
 * anonymous mapping that an upgrade cannot hand on.
 */
void
score_init(int inherited)
{
	int	 fd, flags = MAP_SHARED;

	if (inherited != -1 && score_attach(inherited) == 0)
		return;
	if (inherited != -1)
		(void)close(inherited);
	board_size = score_size();
	/*
	 * The file holds the header, then grows by slots as they are
	 * claimed (score_grow), never shrinks: a read of a page past its
	 * end is SIGBUS, not a new page of shared memory, so that a child
	 * reading the whole board cannot make it take memory.
	 */
	if ((fd = os_memfd("smtpd-score")) == -1 ||
	    ftruncate(fd, (off_t)score_slotoff()) == -1 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) == -1) {
		log_warn("scoreboard: memfd");
		if (fd != -1)
			(void)close(fd);
		fd = -1;
		flags |= MAP_ANONYMOUS;
	}
	board = mmap(NULL, board_size, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (board == MAP_FAILED)
		fatal("scoreboard: mmap");
	board_fd = fd;
	board->sb_magic = SCORE_MAGIC;
	board->sb_version = SCORE_VERSION;
	board->sb_nslots = SCORE_SLOTS;
	board->sb_slotsize = (uint32_t)score_page();
	board->sb_slotoff = score_slotoff();
	board->sb_started = (long long)time(NULL);
	if (board_fd != -1)
		score_reopen();
	score_seal_probe();
}

/* The memfd to hand on at an upgrade, -1 if there is none. */
int
score_fd(void)
{
	return board_fd;
}

long long
score_started(void)
{
	return board != NULL ? board->sb_started : 0;
}

/* In a child, to its slot's counter; in the master, to the header's. */
void
score_add(enum score_counter c, unsigned long long n)
{
	if (self != NULL)
		atomic_fetch_add_explicit(&self->ss_count[c], n,
		    memory_order_relaxed);
	else if (board != NULL && !board_ro)
		atomic_fetch_add_explicit(&board->sb_count[c], n,
		    memory_order_relaxed);
}

void
score_count(enum score_counter c)
{
	score_add(c, 1);
}

static int
score_dead(int pid)
{
	return pid != 0 && kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

/*
 * A slot whose master is gone (killed: it could not release it) is free
 * once its child is gone too: a busy child outlives its master until
 * the end of its session, and still counts in its slot (score_ended).
 */
static int
score_orphan(const struct score_slot *ss, int owner)
{
	int	 pid = atomic_load(&ss->ss_pid);

	return score_dead(owner) && (pid == 0 || score_dead(pid));
}

/*
 * The file long enough for slot i, in steps of SCORE_GROW slots.  Two
 * masters share it during an upgrade; it is sealed against shrinking,
 * so the one that is behind fails (EPERM) where the other grew it.
 */
static int
score_grow(int i)
{
	struct stat	 st;
	off_t		 want;

	if (board_fd == -1)
		return 0;
	want = (off_t)(board->sb_slotoff + (size_t)(i + 1) * board->sb_slotsize);
	if (fstat(board_fd, &st) == -1)
		return -1;
	if (st.st_size >= want)
		return 0;
	want = (off_t)(board->sb_slotoff + (size_t)(i + SCORE_GROW) *
	    board->sb_slotsize);
	if (want > (off_t)board_size)
		want = (off_t)board_size;
	if (ftruncate(board_fd, want) == -1 && errno != EPERM)
		return -1;
	return 0;
}

/*
 * The master takes a free slot for the child it is about to fork; two
 * masters share the board during an upgrade, hence the compare-and-swap.
 */
int
score_claim(void)
{
	struct score_slot	*ss;
	int			 i, want, used, me;

	if (board == NULL)
		return -1;
	me = (int)getpid();
	for (i = 0; i < SCORE_SLOTS; i++) {
		want = atomic_load(&board->sb_owner[i]);
		/* Ours are in use: no kill(2) to find that out. */
		if (want != 0 && (want == me ||
		    i >= atomic_load(&board->sb_used) ||
		    !score_orphan(score_at(i), want)))
			continue;
		if (!atomic_compare_exchange_strong(&board->sb_owner[i],
		    &want, me))
			continue;
		if (score_grow(i) == -1) {
			log_warn("scoreboard: growing it");
			atomic_store(&board->sb_owner[i], 0);
			return -1;
		}
		ss = score_at(i);
		atomic_store(&ss->ss_pid, 0);
		atomic_store(&ss->ss_done, 0);
		atomic_store(&ss->ss_notify, 0);
		/* Odd if the last child died writing its address. */
		atomic_store(&ss->ss_seq, 0);
		used = atomic_load(&board->sb_used);
		while (used < i + 1 && !atomic_compare_exchange_weak(
		    &board->sb_used, &used, i + 1))
			;
		return i;
	}
	return -1;
}

/* At reap: the slot is free for the next child. */
void
score_release(int slot)
{
	struct score_slot	*ss;

	if (board == NULL || slot < 0 || slot >= SCORE_SLOTS)
		return;
	ss = score_at(slot);
	atomic_store(&ss->ss_pid, 0);
	atomic_store_explicit(&ss->ss_state, SS_IDLE, memory_order_relaxed);
	atomic_store(&board->sb_owner[slot], 0);
}

/*
 * The board as a child sees it: read-only (board_rofd), except its own
 * slot's page (none without a slot: it then counts nothing); then
 * sealed (mseal), or the child could grow its page's mapping with
 * mremap() over the slots after it, or move another slot's page under
 * it (remap_file_pages): without mseal, before Linux 6.10, its system
 * call filter refuses both (os_sandbox).  An anonymous board (no memfd)
 * stays writable.
 */
static void
score_confine(int slot)
{
	char	*page;

	if (mmap(board, board_size, PROT_READ, MAP_SHARED | MAP_FIXED,
	    board_rofd, 0) == MAP_FAILED)
		fatal("scoreboard: mmap");
	board_ro = 1;
	if (slot >= 0) {
		page = (char *)score_at(slot);
		if (mmap(page, board->sb_slotsize, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_FIXED, board_fd,
		    (off_t)(page - (char *)board)) == MAP_FAILED)
			fatal("scoreboard: mmap");
	}
	/* Without mseal (Linux < 6.10) the master said so at its start. */
	(void)os_mseal(board, board_size);
}

/* In the child, right after fork: the slot is its own from now on. */
void
score_child(int slot)
{
	if (board == NULL)
		return;
	if (slot >= SCORE_SLOTS)
		slot = -1;
	/* Only a master hands the board on. */
	if (board_fd != -1) {
		score_confine(slot);
		(void)close(board_fd);
		(void)close(board_rofd);
	}
	board_fd = board_rofd = -1;
	if (slot < 0)
		return;
	self = score_at(slot);
	atomic_store_explicit(&self->ss_state, SS_IDLE, memory_order_relaxed);
	atomic_store(&self->ss_pid, (int)getpid());
}

/* A process of the master's that counts nothing: no board at all. */
void
score_forget(void)
{
	if (board != NULL)
		(void)munmap(board, board_size);
	if (board_fd != -1)
		(void)close(board_fd);
	if (board_rofd != -1)
		(void)close(board_rofd);
	board = NULL;
	board_fd = board_rofd = -1;
	self = NULL;
}

/* The client's address, while readers may copy it (score_slot). */
static void
score_addr_write(const char *addr)
{
	strlcpy(self->ss_addr, addr, sizeof(self->ss_addr));
}

/* A session begins: who, since when; per-session figures restart. */
void
score_session(const char *addr, int state)
{
	if (self == NULL)
		return;
	atomic_fetch_add_explicit(&self->ss_seq, 1, memory_order_acq_rel);
	score_addr_write(addr);
	atomic_store_explicit(&self->ss_since, (long long)time(NULL),
	    memory_order_relaxed);
	atomic_store_explicit(&self->ss_bytes, 0, memory_order_relaxed);
	atomic_store_explicit(&self->ss_msgs, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&self->ss_seq, 1, memory_order_acq_rel);
	score_state(state);
}

/* A PROXY header named the client: it replaces the proxy's address. */
void
score_client(const char *addr)
{
	if (self == NULL)
		return;
	atomic_fetch_add_explicit(&self->ss_seq, 1, memory_order_acq_rel);
	score_addr_write(addr);
	atomic_fetch_add_explicit(&self->ss_seq, 1, memory_order_acq_rel);
}

void
score_state(int state)
{
	if (self != NULL)
		atomic_store_explicit(&self->ss_state, state,
		    memory_order_relaxed);
}

/* Octets read from the client: the totals and the session's. */
void
score_received(size_t n)
{
	score_add(SC_RECEIVED, n);
	if (self != NULL)
		atomic_fetch_add_explicit(&self->ss_bytes, n,
		    memory_order_relaxed);
}

/* A message was read to its end: the session's count, the size. */
void
score_message(long long size)
{
	size_t	 i;

	for (i = 0; i < SC_SIZE_NB && size > score_size_le[i]; i++)
		;
	score_count(SC_SIZE_B0 + i);
	score_add(SC_SIZE_SUM, size > 0 ? (unsigned long long)size : 0);
	if (self != NULL)
		atomic_fetch_add_explicit(&self->ss_msgs, 1,
		    memory_order_relaxed);
}

/* The reply to a message (each recipient's in LMTP), by its class. */
void
score_reply(const char *reply)
{
	if (reply[0] == '2')
		score_count(SC_MSG_2XX);
	else if (reply[0] == '4')
		score_count(SC_MSG_4XX);
	else if (reply[0] == '5')
		score_count(SC_MSG_5XX);
}

/* One delivery program run: an exit status or SD_*, and how long. */
void
score_delivery(int status, long long ms)
{
	size_t	 i;
	int	 c = SC_DLV_OTHER;

	for (i = 0; i < NITEMS(score_exits); i++)
		if (score_exits[i].se_status == status)
			c = score_exits[i].se_counter;
	score_count(c);
	for (i = 0; i < SC_DLV_TIME_NB && ms > score_time_le[i]; i++)
		;
	score_count(SC_DLV_TIME_B0 + i);
	score_add(SC_DLV_TIME_SUM, ms > 0 ? (unsigned long long)ms : 0);
}

/*
 * A total: the masters' count and every slot's; for what only a master
 * counts, the header's alone (a child may write anything in its slot).
 */
unsigned long long
score_get(enum score_counter c)
{
	unsigned long long	 n;
	int			 i, used = score_nslots();

	if (board == NULL)
		return 0;
	n = atomic_load_explicit(&board->sb_count[c], memory_order_relaxed);
	if (score_descs[c].sd_master)
		return n;
	for (i = 0; i < used; i++)
		n += atomic_load_explicit(&score_at(i)->ss_count[c],
		    memory_order_relaxed);
	return n;
}

/* The address and start of ss's session, as one write left them. */
static void
score_addr_read(struct score_slot *ss, char addr[SCORE_ADDR_LEN],
    long long *since)
{
	unsigned int	 s1, s2;
	int		 tries;

	for (tries = 0; tries < SCORE_READ_TRIES; tries++) {
		s1 = atomic_load_explicit(&ss->ss_seq, memory_order_acquire);
		memcpy(addr, ss->ss_addr, SCORE_ADDR_LEN);
		*since = atomic_load_explicit(&ss->ss_since,
		    memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&ss->ss_seq, memory_order_relaxed);
		if (s1 == s2 && (s1 & 1) == 0)
			break;
	}
	addr[SCORE_ADDR_LEN - 1] = '\0';
}

/*
 * A consistent copy of slot i (its address may be changing as we read):
 * 0, or -1 for a slot without a running child.
 */
int
score_slot(int i, struct score_view *v)
{
	struct score_slot	*ss;
	char			*p;

	if (board == NULL || i < 0 || i >= score_nslots())
		return -1;
	ss = score_at(i);
	if ((v->sv_pid = atomic_load(&ss->ss_pid)) == 0 ||
	    score_orphan(ss, atomic_load(&board->sb_owner[i])))
		return -1;
	score_addr_read(ss, v->sv_addr, &v->sv_since);
	/* A child writes it: nothing of it may reach a terminal raw. */
	for (p = v->sv_addr; *p != '\0'; p++)
		if (!isprint((unsigned char)*p))
			*p = '?';
	v->sv_state = atomic_load_explicit(&ss->ss_state,
	    memory_order_relaxed);
	if (v->sv_state < 0 || v->sv_state >= SS_NSTATES)
		v->sv_state = SS_IDLE;
	v->sv_bytes = atomic_load_explicit(&ss->ss_bytes,
	    memory_order_relaxed);
	v->sv_msgs = atomic_load_explicit(&ss->ss_msgs, memory_order_relaxed);
	return 0;
}

/*
 * The sessions of another master's children (the master we replace,
 * finishing its sessions; the caller knows it is alive): all of them, or
 * those from addr.  On the accept path while that master drains: no
 * system call, and an address copied only when asked for.
 */
int
score_sessions_of(int owner, const char *addr)
{
	struct score_slot	*ss;
	char			 a[SCORE_ADDR_LEN], key[SCORE_ADDR_LEN];
	long long		 since;
	int			 i, n = 0, nslots = score_nslots(), st;

	for (i = 0; i < nslots; i++) {
		ss = score_at(i);
		st = atomic_load_explicit(&ss->ss_state, memory_order_relaxed);
		if (atomic_load(&board->sb_owner[i]) != owner ||
		    atomic_load(&ss->ss_pid) == 0 || st <= SS_IDLE ||
		    st >= SS_NSTATES || st == SS_METRICS)
			continue;
		if (addr != NULL) {
			score_addr_read(ss, a, &since);
			/* As the master counts its own (net_client_key). */
			net_client_key(a, key, sizeof(key));
			if (strcmp(key, addr) != 0)
				continue;
		}
		n++;
	}
	return n;
}

/*
 * The slots ever used.  Only masters write it, but a board handed on at
 * an upgrade is not checked: what it says is bounded before use.
 */
int
score_nslots(void)
{
	int	 used;

	if (board == NULL)
		return 0;
	used = atomic_load(&board->sb_used);
	return used < 0 ? 0 : used > SCORE_SLOTS ? SCORE_SLOTS : used;
}

const char *
score_state_name(int state)
{
	return state >= 0 && state < SS_NSTATES ? score_states[state] : "?";
}

/*
 * Printing: the same table gives `smtpd -s` its totals ("family.value
 * count") and the metrics listener its Prometheus text.
 */

/* "connections_refused.max_clients" of smtpd_connections_refused_total. */
static void
score_key(const struct score_desc *d, char *buf, size_t len)
{
	const char	*name = d->sd_name + strlen("smtpd_");
	size_t		 n = strlen(name), v;

	if (n > 6 && strcmp(name + n - 6, "_total") == 0)
		n -= 6;
	if (d->sd_label == NULL) {
		snprintf(buf, len, "%.*s", (int)n, name);
		return;
	}
	v = strcspn(d->sd_label, "\"");
	snprintf(buf, len, "%.*s.%.*s", (int)n, name,
	    (int)strcspn(d->sd_label + v + 1, "\""), d->sd_label + v + 1);
}

void
score_print_totals(FILE *fp)
{
	char	 key[128];
	int	 c;

	for (c = 0; c < SC_NCOUNTERS; c++) {
		if (score_descs[c].sd_name == NULL)
			continue;
		score_key(&score_descs[c], key, sizeof(key));
		fprintf(fp, "%-40s %llu\n", key, score_get(c));
	}
}

static void
score_print_family(FILE *fp, const char *name, const char *type,
    const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Buckets are cumulative in the exposition format; le in base units. */
static void
score_print_histogram(FILE *fp, const char *name, const char *help,
    const long long *le, int nb, int base, int sum, double scale)
{
	unsigned long long	 n = 0;
	int			 i;

	score_print_family(fp, name, "histogram", help);
	for (i = 0; i < nb; i++) {
		n += score_get(base + i);
		fprintf(fp, "%s_bucket{le=\"%.15g\"} %llu\n", name,
		    (double)le[i] / scale, n);
	}
	n += score_get(base + nb);
	fprintf(fp, "%s_bucket{le=\"+Inf\"} %llu\n", name, n);
	fprintf(fp, "%s_sum %.15g\n%s_count %llu\n", name,
	    (double)score_get(sum) / scale, name, n);
}

static void
score_print_counters(FILE *fp)
{
	const struct score_desc	*d;
	int			 c;

	for (c = 0; c < SC_NCOUNTERS; c++) {
		d = &score_descs[c];
		if (d->sd_name == NULL)
			continue;
		if (d->sd_help != NULL)
			score_print_family(fp, d->sd_name, "counter",
			    d->sd_help);
		if (d->sd_label != NULL)
			fprintf(fp, "%s{%s} %llu\n", d->sd_name, d->sd_label,
			    score_get(c));
		else
			fprintf(fp, "%s %llu\n", d->sd_name, score_get(c));
	}
}

/* Sessions by state and children idle or busy, from the slots. */
static void
score_print_gauges(FILE *fp)
{
	struct score_view	 v;
	int			 n[SS_NSTATES], i, busy = 0;

	memset(n, 0, sizeof(n));
	for (i = 0; i < score_nslots(); i++)
		if (score_slot(i, &v) == 0)
			n[v.sv_state]++;
	score_print_family(fp, "smtpd_sessions", "gauge",
	    "Sessions in progress, by state.");
	for (i = SS_INIT; i < SS_NSTATES; i++) {
		if (i != SS_METRICS)
			fprintf(fp, "smtpd_sessions{state=\"%s\"} %d\n",
			    score_states[i], n[i]);
		busy += n[i];
	}
	score_print_family(fp, "smtpd_children", "gauge",
	    "Children, by state.");
	fprintf(fp, "smtpd_children{state=\"idle\"} %d\n", n[SS_IDLE]);
	fprintf(fp, "smtpd_children{state=\"busy\"} %d\n", busy);
}

void
score_print_metrics(FILE *fp)
{
	score_print_counters(fp);
	score_print_histogram(fp, "smtpd_delivery_duration_seconds",
	    "Time the delivery program took.", score_time_le, SC_DLV_TIME_NB,
	    SC_DLV_TIME_B0, SC_DLV_TIME_SUM, 1000.0);
	score_print_histogram(fp, "smtpd_message_size_bytes",
	    "Size of the messages read to their end.", score_size_le,
	    SC_SIZE_NB, SC_SIZE_B0, SC_SIZE_SUM, 1.0);
	score_print_gauges(fp);
	score_print_family(fp, "smtpd_start_time_seconds", "gauge",
	    "When the daemon started (an upgrade keeps it), epoch seconds.");
	fprintf(fp, "smtpd_start_time_seconds %lld\n", score_started());
	score_print_family(fp, "smtpd_build_info", "gauge",
	    "The version of smtpd.");
	fprintf(fp, "smtpd_build_info{version=\"%s\"} 1\n", SMTPD_VERSION);
}

/*
 * Idle again without a message: a child counts the connections it ended
 * in its slot, and the master, which counts those it handed over, sees
 * a child idle when the two agree (score_done).  The master is woken by
 * a CHAN_IDLE only when it asked for one (score_notify): while it waits
 * for a child to end (shutdown, reload, no child to take a connection),
 * not after every session.  Both sides store, then load, with
 * sequentially consistent atomics: of a flag raised while a child ends
 * its session, and of the count it raises, one side sees the other's.
 */

/* In a child, at the end of a connection: 1 if the master wants word. */
int
score_ended(uint32_t *done)
{
	if (self == NULL) {
		*done = 0;
		return 1;
	}
	*done = atomic_fetch_add(&self->ss_done, 1) + 1;
	return atomic_load(&self->ss_notify) != 0;
}

/*
 * In the master: how many connections the child pid in slot has ended;
 * -1 when the slot is not (yet) that child's.
 */
int
score_done(int slot, pid_t pid, uint32_t *done)
{
	if (board == NULL || slot < 0 || slot >= SCORE_SLOTS ||
	    atomic_load(&score_at(slot)->ss_pid) != (int)pid)
		return -1;
	*done = atomic_load(&score_at(slot)->ss_done);
	return 0;
}

void
score_notify(int slot, int on)
{
	if (board != NULL && slot >= 0 && slot < SCORE_SLOTS)
		atomic_store(&score_at(slot)->ss_notify, on);
}
