/*
 * progs.c: the delivery programs a broker is running, in a table it
 * shares with the master: an anonymous shared mapping that the master
 * makes before it forks the broker, one per broker.  Every program runs
 * in a session of its own (exec.c), whose id is its pid.
 *
 * When a broker dies, the kernel kills its programs (PR_SET_PDEATHSIG),
 * but not what they started: a pipeline's other commands, a wrapper's
 * child.  Those could finish a delivery whose client was told 451 and
 * will send the message again.  The master kills every process still in
 * one of the sessions the table names.  A process that left its session
 * (setsid) is not found; nor is anything a program left in another
 * process group when it exited (the broker kills only its process group
 * then), since its session is no longer in the table.  At deliver-timeout
 * the broker itself kills the program's whole session (progs_timedout).
 *
 * Only the master and its broker map a table: it is MADV_DONTFORK in
 * both, so no session child or AUTH worker, which could write session
 * ids into it and have the master kill them, ever has it.  A session id
 * is the pid of a program that has not been reaped, or died with the
 * broker just now: pids are handed out in sequence, so none can be
 * reused before the sweep.
 */

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/queue.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"

struct progtab {
	TAILQ_ENTRY(progtab)	 pt_entry;
	pid_t			 pt_broker;	/* 0 until forked */
	size_t			 pt_nslots;
	size_t			 pt_size;
	_Atomic int		*pt_slots;	/* session ids, 0: free */
};
TAILQ_HEAD(progtablist, progtab);

static struct progtablist	 progtabs = TAILQ_HEAD_INITIALIZER(progtabs);
static struct progtab		*progs_mine;	/* in a broker: its own */

#define PROGS_PASSES	5	/* sweeps of /proc when a broker is gone */

/* mapped: 0 in a process forked after the table was (MADV_DONTFORK). */
static void
progs_unmap(struct progtab *pt, int mapped)
{
	TAILQ_REMOVE(&progtabs, pt, pt_entry);
	if (mapped)
		(void)munmap(pt->pt_slots, pt->pt_size);
	free(pt);
}

/* Forks from now on do not inherit pt; without that, no table. */
static int
progs_private(struct progtab *pt)
{
	if (madvise(pt->pt_slots, pt->pt_size, MADV_DONTFORK) == 0)
		return 0;
	log_warn("programs table: madvise");
	progs_unmap(pt, 1);
	return -1;
}

/*
 * The master, before it forks a broker: a table for at least nslots
 * programs at a time, rounded up to whole pages.  Without one the broker
 * runs its programs all the same, unrecorded.
 */
void
progs_new(size_t nslots)
{
	struct progtab	*pt;
	long		 page = sysconf(_SC_PAGESIZE);
	void		*p;

	if (page <= 0)
		page = 4096;
	pt = xcalloc(1, sizeof(*pt));
	pt->pt_size = (nslots * sizeof(*pt->pt_slots) + (size_t)page - 1) /
	    (size_t)page * (size_t)page;
	pt->pt_nslots = pt->pt_size / sizeof(*pt->pt_slots);
	p = mmap(NULL, pt->pt_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_warn("programs table: mmap");
		free(pt);
		return;
	}
	pt->pt_slots = p;
	TAILQ_INSERT_TAIL(&progtabs, pt, pt_entry);
}

/*
 * After the fork.  In the master (broker > 0), the new table is that
 * broker's; in the broker (0), it is the only one it keeps; -1: the fork
 * failed, and the table goes.
 */
void
progs_forked(pid_t broker)
{
	struct progtab	*last = TAILQ_LAST(&progtabs, progtablist);

	if (last == NULL || last->pt_broker != 0)
		return;
	if (broker == -1)
		progs_unmap(last, 1);
	else if (broker > 0) {
		if (progs_private(last) == 0)
			last->pt_broker = broker;
	} else {
		progs_drop();
		if (progs_private(last) == 0)
			progs_mine = last;
	}
}

/*
 * In every process the master forks: the tables of earlier brokers were
 * not inherited (MADV_DONTFORK), only their entries are forgotten.  The
 * newest is still mapped in a broker, which keeps it, and in nothing
 * else: the master forks nothing between making it and the broker.
 */
void
progs_drop(void)
{
	struct progtab	*pt, *next;

	for (pt = TAILQ_FIRST(&progtabs); pt != NULL; pt = next) {
		next = TAILQ_NEXT(pt, pt_entry);
		if (pt->pt_broker != 0)
			progs_unmap(pt, 0);
	}
}

/* In the broker's table, the first slot holding from now holds to. */
static int
progs_swap(int from, int to)
{
	size_t	 i;
	int	 want;

	for (i = 0; i < progs_mine->pt_nslots; i++) {
		want = from;
		if (atomic_compare_exchange_strong(&progs_mine->pt_slots[i],
		    &want, to))
			return 0;
	}
	return -1;
}

/* In the broker: a program started (pid), or ended. */
void
progs_started(pid_t pid)
{
	if (progs_mine != NULL && pid > 0 && progs_swap(0, (int)pid) == -1)
		log_warnx("programs table full (%zu): program %ld not "
		    "recorded", progs_mine->pt_nslots, (long)pid);
}

void
progs_ended(pid_t pid)
{
	if (progs_mine != NULL && pid > 0)
		(void)progs_swap((int)pid, 0);
}

static int
progs_listed(const struct progtab *pt, long sid)
{
	size_t	 i;

	for (i = 0; i < pt->pt_nslots; i++)
		if (sid > 0 && atomic_load(&pt->pt_slots[i]) == sid)
			return 1;
	return 0;
}

/*
 * The session id of process pid (from /proc), or -1; none for a zombie.
 * Its process group in *pgrp.
 */
static long
progs_session(const char *pid, long *pgrp)
{
	char	 path[64], buf[512], *p, state;
	long	 sid;
	FILE	*fp;

	(void)snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if ((fp = fopen(path, "re")) == NULL)
		return -1;
	p = fgets(buf, sizeof(buf), fp);
	(void)fclose(fp);
	/* After the command's ")": state, ppid, pgrp, session. */
	if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %c %*d %ld %ld", &state, pgrp, &sid) != 3 ||
	    state == 'Z' || state == 'X')
		return -1;
	return sid;
}

/*
 * The processes a sweep killed: one still there at the next pass (not
 * scheduled yet to exit on a busy machine, or held at its exit by a
 * tracer) is not killed, counted and logged again.  Without memory for
 * one, it may be.
 */
struct progs_seen {
	pid_t	*ps_pids;
	size_t	 ps_n;
};

static int
progs_seen(struct progs_seen *ps, pid_t pid, int add)
{
	pid_t	*p;
	size_t	 i;

	for (i = 0; i < ps->ps_n; i++)
		if (ps->ps_pids[i] == pid)
			return 1;
	if (add && (p = reallocarray(ps->ps_pids, ps->ps_n + 1,
	    sizeof(*p))) != NULL) {
		p[ps->ps_n++] = pid;
		ps->ps_pids = p;
	}
	return 0;
}

/*
 * Every process in one of pt's sessions gets SIGKILL, or without pt every
 * process in session only outside its leader's process group (killed
 * already); how many did, but for those in seen, killed by an earlier
 * pass.
 */
static int
progs_kill(const struct progtab *pt, long only, struct progs_seen *seen)
{
	struct dirent	*de;
	DIR		*d;
	long		 sid, pgrp;
	pid_t		 pid;
	int		 n = 0;

	if ((d = opendir("/proc")) == NULL) {
		log_warn("programs of broker %ld: /proc", pt != NULL ?
		    (long)pt->pt_broker : (long)getpid());
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]) ||
		    (sid = progs_session(de->d_name, &pgrp)) == -1 ||
		    (pt != NULL ? !progs_listed(pt, sid) :
		    sid != only || pgrp == only))
			continue;
		pid = (pid_t)strtol(de->d_name, NULL, 10);
		if (progs_seen(seen, pid, 0) || kill(pid, SIGKILL) != 0)
			continue;
		(void)progs_seen(seen, pid, 1);
		if (pt != NULL)
			log_warnx("broker %ld gone: process %s of its program "
			    "%ld killed", (long)pt->pt_broker, de->d_name, sid);
		n++;
	}
	(void)closedir(d);
	return n;
}

/*
 * A program killed at deliver-timeout (its process group is gone): what
 * it started in other groups of its session (timeout(1) makes one, so
 * does a shell with job control) would go on and could finish a delivery
 * whose client is told 451, and sends the message again.  Again while a
 * pass killed something, as in progs_broker_gone().
 */
void
progs_timedout(pid_t pid)
{
	struct progs_seen	 seen = { NULL, 0 };
	int			 i, n;

	if ((n = progs_kill(NULL, (long)pid, &seen)) > 0) {
		log_warnx("program %ld killed at its deadline: %d processes "
		    "of its session in other process groups killed",
		    (long)pid, n);
		for (i = 1; i < PROGS_PASSES &&
		    progs_kill(NULL, (long)pid, &seen) > 0; i++)
			;
	}
	free(seen.ps_pids);
}

/*
 * The master reaped pid: if it was a broker, what its programs left in
 * their sessions is killed and its table goes.  Again while a pass
 * killed something: a process may have forked while it read /proc.  1
 * when pid was a broker.
 */
int
progs_broker_gone(pid_t pid)
{
	struct progs_seen	 seen = { NULL, 0 };
	struct progtab		*pt;
	int			 i;

	TAILQ_FOREACH(pt, &progtabs, pt_entry)
		if (pt->pt_broker == pid)
			break;
	if (pt == NULL || pid <= 0)
		return 0;
	for (i = 0; i < PROGS_PASSES && progs_kill(pt, 0, &seen) > 0; i++)
		;
	free(seen.ps_pids);
	progs_unmap(pt, 1);
	return 1;
}
