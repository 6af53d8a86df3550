/*
 * switch-floor: what a switch from one process to another costs on this
 * machine, against a switch between threads of one process.  A token goes
 * round a ring of members (processes, or threads with -t) joined by
 * pipes, all on the CPU the program started on and in the batch
 * scheduling class, so that every hop is one context switch: each member
 * sleeps in read(2) until the one before it writes, and a woken member
 * does not preempt the writer before it reaches its own read.  Prints
 * microseconds per hop (the switch, a one-word pipe write and read).
 * A member that dies breaks the ring, and the others exit.
 *
 * smtpd's session children do the same: each sleeps at every command its
 * client waits for, and another child runs next.  A server that serves
 * every session from one process makes no such switch.
 */

#include <sys/types.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "benchio.h"

/* Two pipe ends a member, within the usual 1024 descriptors. */
#define RING_MAX	500

struct ring {
	int		(*rg_pipe)[2];	/* member i reads rg_pipe[i][0] */
	int		  rg_members;
	long long	  rg_rounds;
};

struct member {
	struct ring	*mb_ring;
	int		 mb_index;
};

static void	 usage(void) __attribute__((__noreturn__));
static uint64_t	 ring_hop(const struct ring *, int, uint64_t);
static void	*ring_member(void *);
static int	 ring_pin(void);
static void	 ring_keep(const struct ring *, int);
static void	 ring_start(struct ring *, int, pthread_t *);
static void	 ring_wait(const struct ring *, int, pthread_t *);

static void
usage(void)
{
	fprintf(stderr, "usage: switch-floor [-t] [-n hops] members\n");
	exit(EX_USAGE);
}

/*
 * Member i waits for the token, adds one and passes it on.  The count
 * it carries proves that every hop happened.
 */
static uint64_t
ring_hop(const struct ring *rg, int i, uint64_t token)
{
	ssize_t	 n;
	int	 next = (i + 1) % rg->rg_members;

	if (token != 0 || i != 0) {
		while ((n = read(rg->rg_pipe[i][0], &token, sizeof(token))) ==
		    -1 && errno == EINTR)
			;
		if (n != (ssize_t)sizeof(token))
			errx(1, "member %d: %s", i, n == 0 ? "ring broken" :
			    n == -1 ? strerror(errno) : "short read");
	}
	token++;
	while ((n = write(rg->rg_pipe[next][1], &token, sizeof(token))) ==
	    -1 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(token))
		err(1, "member %d: write", i);
	return token;
}

static void *
ring_member(void *arg)
{
	const struct member	*mb = arg;
	long long		 r;
	uint64_t		 token = 0;

	for (r = 0; r < mb->mb_ring->rg_rounds; r++)
		token = ring_hop(mb->mb_ring, mb->mb_index, token);
	return NULL;
}

/*
 * Every member on this CPU, in the batch class (Linux): then each hop is
 * one switch, not a wake-up on another CPU, nor a preemption and a switch
 * back.  Forks and threads inherit both.  The CPU, or -1.
 */
static int
ring_pin(void)
{
#ifdef CPU_SET
	struct sched_param	 sp;
	cpu_set_t		 set;
	int			 cpu;

	memset(&sp, 0, sizeof(sp));
	if (sched_setscheduler(0, SCHED_BATCH, &sp) == -1)
		warn("SCHED_BATCH");
	if ((cpu = sched_getcpu()) == -1)
		return -1;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == -1)
		return -1;
	return cpu;
#else
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * Member i of a ring of processes keeps only its two pipe ends: when the
 * one before it dies, its read sees end-of-file; when the one after it
 * dies, its write gets SIGPIPE.
 */
static void
ring_keep(const struct ring *rg, int i)
{
	int	 k, next = (i + 1) % rg->rg_members;

	for (k = 0; k < rg->rg_members; k++) {
		if (k != i)
			close(rg->rg_pipe[k][0]);
		if (k != next)
			close(rg->rg_pipe[k][1]);
	}
}

/* Members 1 .. n-1; member 0 is the caller. */
static void
ring_start(struct ring *rg, int threads, pthread_t *tids)
{
	static struct member	 mbs[RING_MAX];
	pid_t			 pid;
	int			 i, e;

	for (i = 1; i < rg->rg_members; i++) {
		mbs[i].mb_ring = rg;
		mbs[i].mb_index = i;
		if (threads) {
			if ((e = pthread_create(&tids[i], NULL, ring_member,
			    &mbs[i])) != 0) {
				errno = e;
				err(1, "pthread_create");
			}
			continue;
		}
		if ((pid = fork()) == -1)
			err(1, "fork");
		if (pid == 0) {
			ring_keep(rg, i);
			ring_member(&mbs[i]);
			_exit(0);
		}
	}
	if (!threads)
		ring_keep(rg, 0);
}

static void
ring_wait(const struct ring *rg, int threads, pthread_t *tids)
{
	int	 i, st, bad = 0;

	for (i = 1; i < rg->rg_members; i++) {
		if (threads) {
			pthread_join(tids[i], NULL);
			continue;
		}
		if (wait(&st) == -1)
			err(1, "wait");
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	if (bad)
		errx(1, "a member failed");
}

int
main(int argc, char *argv[])
{
	static pthread_t tids[RING_MAX];
	struct ring	 rg;
	long long	 hops = 100000, r;
	uint64_t	 token = 0;
	double		 t0, t;
	int		 ch, i, cpu, threads = 0;

	while ((ch = getopt(argc, argv, "n:t")) != -1) {
		switch (ch) {
		case 'n':
			hops = bench_number(optarg, 1, 1LL << 40, "-n");
			break;
		case 't':
			threads = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();
	rg.rg_members = (int)bench_number(argv[optind], 2, RING_MAX,
	    "members");
	rg.rg_rounds = (hops + rg.rg_members - 1) / rg.rg_members;
	if ((rg.rg_pipe = calloc(rg.rg_members, sizeof(*rg.rg_pipe))) == NULL)
		err(1, "calloc");
	for (i = 0; i < rg.rg_members; i++)
		if (pipe(rg.rg_pipe[i]) == -1)
			err(1, "pipe");
	signal(SIGPIPE, SIG_DFL);
	if ((cpu = ring_pin()) == -1)
		warn("not pinned to one CPU: hops may be wake-ups");
	ring_start(&rg, threads, tids);
	t0 = bench_now();
	for (r = 0; r < rg.rg_rounds; r++)
		token = ring_hop(&rg, 0, token);
	/* The last hop brings the token home. */
	if (read(rg.rg_pipe[0][0], &token, sizeof(token)) !=
	    (ssize_t)sizeof(token))
		errx(1, "ring broken");
	t = bench_now() - t0;
	ring_wait(&rg, threads, tids);
	if (token != (uint64_t)(rg.rg_rounds * rg.rg_members))
		errx(1, "the token made %llu hops of %lld",
		    (unsigned long long)token, rg.rg_rounds * rg.rg_members);
	printf("switch-floor: %d %s on CPU %d, %llu hops: %.3f s, "
	    "%.2f us a hop\n", rg.rg_members, threads ? "threads" :
	    "processes", cpu, (unsigned long long)token, t, t * 1e6 /
	    (double)token);
	free(rg.rg_pipe);
	return 0;
}
