/*
 * spawn-floor: how fast this machine can run a delivery program, without
 * SMTP.  Parallel workers each spawn the program in a loop, as smtpd does
 * (posix_spawn, a new session, the message on a pipe to its standard
 * input), and wait for it; prints spawns/s and the CPU of all of it.
 */

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "benchio.h"

#define FLOOR_MAXINPUT	(64 * 1024 * 1024)

extern char	**environ;

struct floor_opts {
	char		**fo_argv;	/* the program and its arguments */
	char		 *fo_input;	/* what it reads on standard input */
	size_t		  fo_inlen;
	long long	  fo_count;
	int		  fo_workers;
};

struct floor_rec {
	long long	 fr_ok;
	long long	 fr_failed;
};

static void	 usage(void) __attribute__((__noreturn__));
static char	*floor_read(const char *, size_t *);
static int	 floor_spawn(const struct floor_opts *);
static int	 floor_worker(int, int, void *);
static void	 floor_count(const void *, void *);

static void
usage(void)
{
	fprintf(stderr, "usage: spawn-floor [-i input] [-n count] "
	    "[-P parallel] program [argument ...]\n");
	exit(EX_USAGE);
}

static char *
floor_read(const char *path, size_t *len)
{
	struct stat	 st;
	char		*buf;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY)) == -1 || fstat(fd, &st) == -1)
		err(1, "%s", path);
	if (st.st_size > FLOOR_MAXINPUT)
		errx(1, "%s: larger than %d octets", path, FLOOR_MAXINPUT);
	if ((buf = malloc(st.st_size + 1)) == NULL)
		err(1, "malloc");
	*len = 0;
	while ((size_t)st.st_size > *len &&
	    (n = read(fd, buf + *len, st.st_size - *len)) > 0)
		*len += n;
	if (*len != (size_t)st.st_size)
		err(1, "%s: short read", path);
	close(fd);
	return buf;
}

/* One run of the program: 0 when it read its input and exited 0. */
static int
floor_spawn(const struct floor_opts *o)
{
	posix_spawn_file_actions_t	 fa;
	posix_spawnattr_t		 at;
	sigset_t			 all, none;
	pid_t				 pid;
	int				 p[2], st, e;

	if (pipe2(p, O_CLOEXEC) == -1)
		err(1, "pipe");
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[0], STDIN_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
	    O_WRONLY, 0);
	e = posix_spawn(&pid, o->fo_argv[0], &fa, &at, o->fo_argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[0]);
	if (e != 0) {
		close(p[1]);
		errno = e;
		warn("%s", o->fo_argv[0]);
		return -1;
	}
	/* A program that exits without reading is its own business. */
	if (o->fo_inlen > 0 && write(p[1], o->fo_input, o->fo_inlen) == -1 &&
	    errno != EPIPE)
		warn("write");
	close(p[1]);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			err(1, "waitpid");
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int
floor_worker(int i, int rfd, void *arg)
{
	const struct floor_opts	*o = arg;
	struct floor_rec	 r = { 0, 0 };
	long long		 n;

	n = o->fo_count / o->fo_workers + (i < o->fo_count % o->fo_workers);
	signal(SIGPIPE, SIG_IGN);
	while (n-- > 0) {
		if (floor_spawn(o) == 0)
			r.fr_ok++;
		else
			r.fr_failed++;
	}
	return bench_record(rfd, &r, sizeof(r)) == -1 || r.fr_failed > 0;
}

static void
floor_count(const void *rec, void *arg)
{
	struct floor_rec	 r, *sum = arg;

	memcpy(&r, rec, sizeof(r));
	sum->fr_ok += r.fr_ok;
	sum->fr_failed += r.fr_failed;
}

int
main(int argc, char *argv[])
{
	struct floor_opts o = { .fo_count = 1000, .fo_workers = 20 };
	struct floor_rec sum = { 0, 0 };
	struct rusage	 ru;
	double		 t0, t, cpu;
	int		 ch;

	while ((ch = getopt(argc, argv, "+i:n:P:")) != -1) {
		switch (ch) {
		case 'i':
			o.fo_input = floor_read(optarg, &o.fo_inlen);
			break;
		case 'n':
			o.fo_count = bench_number(optarg, 1, 1LL << 40, "-n");
			break;
		case 'P':
			o.fo_workers = bench_number(optarg, 1,
			    BENCH_MAXWORKERS, "-P");
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 1)
		usage();
	o.fo_argv = argv + optind;
	if (o.fo_argv[0][0] != '/')
		errx(1, "%s: not an absolute path", o.fo_argv[0]);
	t0 = bench_now();
	bench_workers(o.fo_workers, floor_worker, &o,
	    sizeof(struct floor_rec), floor_count, &sum);
	t = bench_now() - t0;
	/* Workers and, through them, every program they reaped. */
	getrusage(RUSAGE_CHILDREN, &ru);
	cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("spawn-floor: %lld spawns, %d in parallel: %.3f s, "
	    "%.1f spawns/s, %.0f us CPU/spawn\n", sum.fr_ok, o.fo_workers, t,
	    sum.fr_ok / t, sum.fr_ok > 0 ? cpu * 1e6 / sum.fr_ok : 0.0);
	free(o.fo_input);
	if (sum.fr_failed > 0 || sum.fr_ok != o.fo_count) {
		fprintf(stderr, "spawn-floor: %lld of %lld runs failed\n",
		    o.fo_count - sum.fr_ok, o.fo_count);
		return 1;
	}
	return 0;
}
