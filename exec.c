/*
 * exec.c: the one way smtpd starts an external program (the delivery
 * program, checkpassword): fork, the user change, a session of its own,
 * execve() without a shell; then, driven by the broker's event loop, its
 * output read and capped, its deadline enforced on its whole session
 * (progs_timedout), its exit collected through a pidfd.
 */

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <paths.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"

#define EXEC_IOBUF	16384	/* output scratch */
#define EXEC_DRAIN	16	/* reads of output left at exit */
#define EXEC_POLL_MS	50	/* waitpid() period without a pidfd */
#define EXEC_GONE_MS	1000	/* a killed program's time to be reaped */
#define EXEC_FD_FIRST	4	/* above every descriptor a program gets */
#define EXEC_NICE_BOOST	10	/* the broker's, below the nice value it had */

static int	 exec_nice_base;	/* the nice value a program gets */
static int	 exec_nice_raised;	/* this process runs below it */
static sigset_t	 exec_sigs;		/* caught or ignored here */
static unsigned int exec_sigs_gen;	/* util_signals_gen when listed */

static void
exec_close_fd(int *fd)
{
	if (*fd != -1)
		close(*fd);
	*fd = -1;
}

/* A pipe whose ends are above the standard descriptors, close-on-exec. */
static int
exec_pipe(int fds[2])
{
	int	 i, save;

	if (pipe2(fds, O_CLOEXEC) == -1)
		return -1;
	for (i = 0; i < 2; i++)
		if ((fds[i] = util_fd_above(fds[i])) == -1) {
			save = errno;
			close(fds[1 - i]);
			errno = save;
			return -1;
		}
	return 0;
}

/*
 * The user, in the order that leaves no way back (groups, gid, uid, then
 * checked), never uid 0.
 */
int
exec_setuser(const struct exec_ident *id)
{
	uid_t	 ru, eu, su;

	if (setgroups((size_t)id->ei_ngroups, id->ei_groups) == -1 ||
	    setresgid(id->ei_gid, id->ei_gid, id->ei_gid) == -1 ||
	    setresuid(id->ei_uid, id->ei_uid, id->ei_uid) == -1 ||
	    getresuid(&ru, &eu, &su) == -1)
		return -1;
	if (ru != id->ei_uid || eu != id->ei_uid || su != id->ei_uid ||
	    ru == 0) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/*
 * In the new process: its user (exec_setuser()); without a change the
 * program runs as we do (the broker when not started as root, the AUTH
 * workers, the unit tests).  The death signal is set after the change,
 * which would clear it.
 */
static int
exec_become(const struct exec_ident *id, pid_t parent)
{
	if (id != NULL && id->ei_change && exec_setuser(id) == -1)
		return -1;
	/* A program does not outlive the broker that waits for it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent) {
		errno = ESRCH;
		return -1;
	}
	if (id != NULL && id->ei_change && (id->ei_home == NULL ||
	    chdir(id->ei_home) == -1) && chdir("/") == -1)
		return -1;
	return 0;
}

/* fd becomes target, without close-on-exec; -1 means /dev/null. */
static int
exec_place(int fd, int target)
{
	int	 null, rv;

	if (fd == target)
		return fcntl(fd, F_SETFD, 0);
	if (fd != -1)
		return dup2(fd, target) == -1 ? -1 : 0;
	if ((null = open(_PATH_DEVNULL, target == STDIN_FILENO ? O_RDONLY :
	    O_WRONLY)) == -1)
		return -1;
	rv = null == target ? 0 : dup2(null, target);
	if (null != target)
		close(null);
	return rv == -1 ? -1 : 0;
}

/*
 * The signals a program must not inherit as they are here: those caught
 * (a handler of ours must not run in the vfork() child once they are let
 * in) and those ignored (execve() keeps that), listed in the broker once
 * and again after each util_signals(), the only other place that changes
 * a disposition.  Resetting all 64 in every new process cost it 64
 * system calls while the broker waited (vfork()).
 */
static void
exec_signals_list(void)
{
	struct sigaction	 sa;
	int			 sig;

	if (exec_sigs_gen == util_signals_gen)
		return;
	sigemptyset(&exec_sigs);
	for (sig = 1; sig < NSIG; sig++)
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
			sigaddset(&exec_sigs, sig);
	exec_sigs_gen = util_signals_gen;
}

/* Default signals, an empty mask: what the program expects to inherit. */
static void
exec_signals(void)
{
	struct sigaction	 sa;
	sigset_t		 none;
	int			 sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		if (sigismember(&exec_sigs, sig) == 1)
			(void)sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * The new process, up to execve().  A failure is reported as its errno on
 * errfd (close-on-exec: EOF there means the program runs).
 */
static void __attribute__((__noreturn__))
exec_child(const struct exec_spec *es, const int out[2], int errfd,
    pid_t parent)
{
	int	 e, top;

	/* Out of the way of the dup2()s below. */
	if (errfd < EXEC_FD_FIRST &&
	    (errfd = fcntl(errfd, F_DUPFD_CLOEXEC, EXEC_FD_FIRST)) == -1)
		_exit(127);
	exec_signals();
	if (setsid() == -1 || exec_become(es->es_ident, parent) == -1 ||
	    exec_place(es->es_stdin, STDIN_FILENO) == -1 ||
	    exec_place(out[0], STDOUT_FILENO) == -1 ||
	    exec_place(out[1], STDERR_FILENO) == -1 ||
	    (es->es_fd3 != -1 && exec_place(es->es_fd3, 3) == -1))
		goto fail;
	top = es->es_fd3 != -1 ? 4 : 3;
	if (errfd > top)
		(void)close_range((unsigned int)top,
		    (unsigned int)errfd - 1, 0);
	(void)close_range((unsigned int)errfd + 1, ~0U, 0);
	/* Last before execve(), which frees the broker (vfork) midway. */
	if (exec_nice_raised &&
	    setpriority(PRIO_PROCESS, 0, exec_nice_base) == -1)
		goto fail;
	execve(es->es_argv[0], es->es_argv, es->es_envp);
 fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) == -1)
		_exit(126);
	_exit(127);
}

/*
 * vfork(): no copy of our page tables for a process that only changes
 * user and calls execve() (fork() cost the broker milliseconds of CPU a
 * delivery on a virtual machine).  The child shares our memory until
 * then and writes none of it but errno; every signal stays blocked in it
 * until exec_signals() has put back the default handlers, so none of our
 * handlers runs there.  Its own function, so that nothing of the
 * caller's frame lives across the vfork().
 */
static pid_t __attribute__((__noinline__))
exec_vfork(const struct exec_spec *es, const int out[2], int errfd,
    pid_t parent)
{
	sigset_t	 all, old;
	pid_t		 pid;

	exec_signals_list();
	sigfillset(&all);
	(void)sigprocmask(SIG_BLOCK, &all, &old);
	if ((pid = vfork()) == 0)
		exec_child(es, out, errfd, parent);
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	return pid;
}

/* The parent's ends: non-blocking, and the pidfd that wakes the loop. */
static void
exec_parent(struct exec_job *ej, int out, int err)
{
	if (out != -1)
		fcntl(out, F_SETFL, O_NONBLOCK);
	if (err != -1)
		fcntl(err, F_SETFL, O_NONBLOCK);
	ej->ej_out.eo_fd = out;
	ej->ej_err.eo_fd = err;
	/* Not reaped yet, so the pid cannot have been reused. */
	ej->ej_pidfd = os_pidfd_open(ej->ej_pid);
}

/*
 * The broker's priority (smtpd.8, Process model): EXEC_NICE_BOOST below
 * the nice value it was started with, which every program it starts and
 * every AUTH worker gets back.  Each delivery waits for the broker to
 * start its program and to reap it, and vfork() holds the broker until
 * the new process is well into execve(): at the priority of the session
 * children (and of the programs, unless the kernel's autogroup puts each
 * session of its own in a group of its own), it waited behind them on a
 * busy machine.  Without the privilege (CAP_SYS_NICE) it stays where it
 * is.
 */
void
exec_priority_raise(void)
{
	int	 nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	if (errno != 0 || setpriority(PRIO_PROCESS, 0,
	    nice - EXEC_NICE_BOOST) == -1) {
		log_debug("broker priority: %s", strerror(errno));
		return;
	}
	exec_nice_base = nice;
	exec_nice_raised = 1;
}

/* Back to the nice value of the broker's start, in a process it forked. */
void
exec_priority_drop(void)
{
	if (exec_nice_raised &&
	    setpriority(PRIO_PROCESS, 0, exec_nice_base) == -1)
		fatal("setpriority");
	exec_nice_raised = 0;
}

void
exec_init(struct exec_job *ej)
{
	memset(ej, 0, sizeof(*ej));
	ej->ej_pid = -1;
	ej->ej_pidfd = ej->ej_errfd = -1;
	ej->ej_out.eo_fd = ej->ej_err.eo_fd = -1;
}

/*
 * Start es; ej was exec_init()ed.  Returns 0, or -1 with ej_error set
 * when nothing was started (no pipe, no fork).  A failing execve() is
 * learnt at the exit (exec_done()).
 */
int
exec_start(struct exec_job *ej, const struct exec_spec *es)
{
	int	 p[2][2] = { { -1, -1 }, { -1, -1 } }, e[2], i, n, out[2];
	pid_t	 parent = getpid();

	for (n = 0; n < (es->es_capture ? 2 : 0); n++)
		if (exec_pipe(p[n]) == -1)
			goto fail;
	if (exec_pipe(e) == -1)
		goto fail;
	ej->ej_start = util_now_ms();
	ej->ej_deadline = es->es_timeout > 0 ? ej->ej_start +
	    (long long)es->es_timeout : 0;
	out[0] = p[0][1];
	out[1] = p[1][1];
	ej->ej_pid = exec_vfork(es, out, e[1], parent);
	if (ej->ej_pid == -1) {
		close(e[0]);
		close(e[1]);
		goto fail;
	}
	close(e[1]);
	ej->ej_errfd = e[0];
	for (i = 0; i < n; i++)
		close(p[i][1]);
	exec_parent(ej, p[0][0], p[1][0]);
	return 0;
 fail:
	ej->ej_error = errno;
	for (i = 0; i < n; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	return -1;
}

/* Keep the first DELIVER_OUT_MAX octets; read and drop the rest. */
static void
exec_read(struct exec_out *o, int reads)
{
	char	 buf[EXEC_IOBUF];
	ssize_t	 n;
	size_t	 keep;

	while (o->eo_fd != -1 && reads-- > 0) {
		if ((n = read(o->eo_fd, buf, sizeof(buf))) == -1 &&
		    (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			exec_close_fd(&o->eo_fd);
			return;
		}
		keep = sizeof(o->eo_buf) - o->eo_len;
		if (keep > (size_t)n)
			keep = (size_t)n;
		memcpy(o->eo_buf + o->eo_len, buf, keep);
		o->eo_len += keep;
	}
}

/*
 * Reap the program if it exited; or kill its whole process group (its
 * own children too may hold our pipes) and reap it if it is gone.  What
 * it left running in its group goes with it: nothing of a run outlives
 * it without a time limit.  Never blocks: a program killed in an
 * uninterruptible sleep (a hung NFS server), or one whose zombie only a
 * tracer may reap, would hold up every other delivery of the broker.
 * A pidfd that says "ended" when waitpid() has nothing (such a zombie)
 * is closed: the run is polled with waitpid() from then on.
 */
static void
exec_reap(struct exec_job *ej, int kill_group, int pidfd_said)
{
	siginfo_t	 si;
	pid_t		 pid;
	int		 e;

	memset(&si, 0, sizeof(si));
	if (!kill_group && waitid(P_PID, (id_t)ej->ej_pid, &si,
	    WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == ej->ej_pid)
		kill_group = 1;
	if (kill_group)
		kill(-ej->ej_pid, SIGKILL);
	while ((pid = waitpid(ej->ej_pid, &ej->ej_status, WNOHANG)) == -1 &&
	    errno == EINTR)
		;
	if (pid == ej->ej_pid || (pid == -1 && errno == ECHILD))
		ej->ej_exited = 1;
	if (pid == -1 && errno == ECHILD)
		ej->ej_status = 0xff00;		/* lost: treat as 255 */
	if (ej->ej_exited && ej->ej_errfd != -1 &&
	    read(ej->ej_errfd, &e, sizeof(e)) == (ssize_t)sizeof(e)) {
		/* It never became the program. */
		ej->ej_error = e;
		ej->ej_exited = 0;
		ej->ej_execfailed = 1;
	}
	if (ej->ej_exited || ej->ej_execfailed)
		exec_close_fd(&ej->ej_errfd);
	else {
		if (pidfd_said)
			exec_close_fd(&ej->ej_pidfd);
		if (kill_group && ej->ej_killed == 0)
			ej->ej_killed = util_now_ms();
	}
}

/* Three poll entries: stdout, stderr, the pidfd (-1: none). */
void
exec_pollfds(const struct exec_job *ej, struct pollfd *pfd)
{
	pfd[0].fd = ej->ej_out.eo_fd;
	pfd[1].fd = ej->ej_err.eo_fd;
	pfd[2].fd = ej->ej_pidfd;
	pfd[0].events = pfd[1].events = pfd[2].events = POLLIN;
	pfd[0].revents = pfd[1].revents = pfd[2].revents = 0;
}

/*
 * Milliseconds until ej wants a look without an event; -1: none.  After
 * the kill, one look when it has had EXEC_GONE_MS to go (exec_stuck).
 */
int
exec_timeout(const struct exec_job *ej)
{
	long long	 gone = ej->ej_killed + EXEC_GONE_MS;
	int		 ms = -1;

	if (ej->ej_killed > 0 && gone > util_now_ms())
		ms = util_ms_left(gone);
	else if (ej->ej_deadline > 0 && ej->ej_killed == 0)
		ms = util_ms_left(ej->ej_deadline);
	if (ej->ej_pidfd == -1 && (ms == -1 || ms > EXEC_POLL_MS))
		ms = EXEC_POLL_MS;
	return ms;
}

/*
 * After poll(): read what is there, reap at the exit, kill at the
 * deadline.  Returns 1 when the run is over: its output is then taken as
 * far as it is there (a background process that inherited the pipes does
 * not hold up the reply).
 */
int
exec_done(struct exec_job *ej, const struct pollfd *pfd, long long now)
{
	if (pfd[0].revents != 0)
		exec_read(&ej->ej_out, 1);
	if (pfd[1].revents != 0)
		exec_read(&ej->ej_err, 1);
	if (ej->ej_pidfd == -1 || pfd[2].revents != 0)
		exec_reap(ej, 0, pfd[2].revents != 0);
	if (!ej->ej_exited && !ej->ej_execfailed && !ej->ej_killed &&
	    ej->ej_deadline > 0 && now >= ej->ej_deadline) {
		ej->ej_timedout = 1;
		exec_reap(ej, 1, 0);
		/* And what it left in other groups of its session. */
		progs_timedout(ej->ej_pid);
	}
	if (!ej->ej_exited && !ej->ej_execfailed)
		return 0;
	exec_read(&ej->ej_out, EXEC_DRAIN);
	exec_read(&ej->ej_err, EXEC_DRAIN);
	exec_close_fds(ej);
	return 1;
}

/*
 * A run killed at its deadline that is still not reaped EXEC_GONE_MS
 * later: its answer (timed out) need not wait for it.
 */
int
exec_stuck(const struct exec_job *ej, long long now)
{
	return ej->ej_killed > 0 && !ej->ej_exited && !ej->ej_execfailed &&
	    now - ej->ej_killed >= EXEC_GONE_MS;
}

/*
 * The run's output is nobody's any more (its answer went): closed, so
 * that what still writes to it is not read for nothing.
 */
void
exec_drop_output(struct exec_job *ej)
{
	exec_close_fd(&ej->ej_out.eo_fd);
	exec_close_fd(&ej->ej_err.eo_fd);
}

/*
 * Run ej to its end here, for a process that waits for nothing else: 0;
 * or -1 when it was killed at its deadline and is not gone EXEC_GONE_MS
 * later (exec_stuck): its descriptors closed, the process left a child
 * of ours that only exiting hands on (to init, which reaps it).
 */
int
exec_wait(struct exec_job *ej)
{
	struct pollfd	 pfd[3];
	long long	 now;

	do {
		exec_pollfds(ej, pfd);
		if (poll(pfd, 3, exec_timeout(ej)) == -1 &&
		    errno != EINTR)
			fatal("poll");
		now = util_now_ms();
		if (exec_done(ej, pfd, now))
			return 0;
	} while (!exec_stuck(ej, now));
	exec_close_fds(ej);
	return -1;
}

/* Our ends of a run: its output pipes, its pidfd, its exec report. */
void
exec_close_fds(struct exec_job *ej)
{
	exec_drop_output(ej);
	exec_close_fd(&ej->ej_pidfd);
	exec_close_fd(&ej->ej_errfd);
}
