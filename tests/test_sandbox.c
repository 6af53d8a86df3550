/*
 * test_sandbox.c: a session child's system call filter (os.c
 * os_sandbox()): no new process, signals to itself only, the scoreboard's
 * mapping kept in place; its Landlock domain (os_landlock()): no way into
 * another process of its user; and os_pidfd_alive(), which the broker
 * asks about the programs it counts.
 */

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <linux/sockios.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpd.h"

/* Each refusal the filter must make, as a bit of the exit status. */
static int
sandboxed(void)
{
	struct f_owner_ex	 ex;
	struct iovec		 local, remote;
	int			 bad = 0, sv[2], n, owner = (int)getppid();
	int			 prio, policy;
	pid_t			 pid;
	struct rlimit		 rl;
	struct sched_param	 sp;
	cpu_set_t		 cpus;

	if (os_sandbox(getpid(), NULL, 0) == -1)
		return 64;
	if ((pid = fork()) == 0)
		_exit(0);
	if (pid != -1 || errno != EPERM)
		bad |= 1;
	if (kill(getppid(), 0) != -1 || errno != EPERM)
		bad |= 2;
	if (kill(0, 0) != -1 || errno != EPERM)
		bad |= 4;
	if (kill(-1, 0) != -1 || errno != EPERM)
		bad |= 8;
	/* Nor any other way to a new process, or a signal to another. */
	if (syscall(SYS_vfork) != -1 || errno != EPERM)
		bad |= 1;
#ifdef SYS_clone3
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != EPERM)
		bad |= 1;
#endif
#ifdef SYS_pidfd_open
	if (syscall(SYS_pidfd_open, getppid(), 0) != -1 || errno != EPERM)
		bad |= 2;
#endif
	/* Nor into a process's memory, its own included. */
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != -1 || errno != EPERM)
		bad |= 2;
	n = 0;
	local.iov_base = remote.iov_base = &n;
	local.iov_len = remote.iov_len = sizeof(n);
	if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != -1 ||
	    errno != EPERM)
		bad |= 2;
	if (syscall(SYS_tkill, getppid(), 0) != -1 || errno != EPERM ||
	    syscall(SYS_tgkill, getppid(), getppid(), 0) != -1 ||
	    errno != EPERM)
		bad |= 2;
#if defined(__x86_64__)
	/* The x32 entry of kill(getpid(), 0), refused whatever it names. */
	if (syscall(SYS_kill | 0x40000000, getpid(), 0) != -1 ||
	    errno != EPERM)
		bad |= 2;
#endif
	/* Nor the kernel's SIGIO to a descriptor's owner. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		return 128;
	ex.type = F_OWNER_PGRP;
	ex.pid = getpgrp();
	if (fcntl(sv[0], F_SETOWN, getppid()) != -1 || errno != EPERM ||
	    fcntl(sv[0], F_SETOWN_EX, &ex) != -1 || errno != EPERM ||
	    fcntl(sv[0], F_SETSIG, SIGSTOP) != -1 || errno != EPERM ||
	    ioctl(sv[0], FIOSETOWN, &owner) != -1 || errno != EPERM ||
	    ioctl(sv[0], SIOCSPGRP, &owner) != -1 || errno != EPERM)
		bad |= 32;
	/* Other fcntl() and ioctl() calls go on. */
	if (fcntl(sv[0], F_GETFL) == -1 || ioctl(sv[0], FIONREAD, &n) == -1)
		bad |= 64;
	/*
	 * Nor another process's limits, priority, scheduling or CPUs (the
	 * same values as it has, or none: harmless where they are not
	 * refused), while its own stay its to change.
	 */
	if (prlimit(getppid(), RLIMIT_CORE, NULL, &rl) != -1 ||
	    errno != EPERM)
		bad |= 2;
	if ((prio = getpriority(PRIO_PROCESS, (id_t)getppid())) != -1 &&
	    (setpriority(PRIO_PROCESS, (id_t)getppid(), prio) != -1 ||
	    errno != EPERM))
		bad |= 2;
	if (syscall(SYS_ioprio_set, 1, getppid(),
	    syscall(SYS_ioprio_get, 1, getppid())) != -1 || errno != EPERM)
		bad |= 2;
	if (sched_getaffinity(getppid(), sizeof(cpus), &cpus) == 0 &&
	    (sched_setaffinity(getppid(), sizeof(cpus), &cpus) != -1 ||
	    errno != EPERM))
		bad |= 2;
	if ((policy = sched_getscheduler(getppid())) != -1 &&
	    sched_getparam(getppid(), &sp) == 0 &&
	    (sched_setscheduler(getppid(), policy, &sp) != -1 ||
	    errno != EPERM || sched_setparam(getppid(), &sp) != -1 ||
	    errno != EPERM))
		bad |= 2;
	if (prlimit(0, RLIMIT_CORE, NULL, &rl) == -1 ||
	    prlimit(getpid(), RLIMIT_CORE, NULL, &rl) == -1 ||
	    setrlimit(RLIMIT_CORE, &rl) == -1 ||
	    setpriority(PRIO_PROCESS, 0, getpriority(PRIO_PROCESS, 0)) == -1 ||
	    sched_getaffinity(0, sizeof(cpus), &cpus) == -1 ||
	    sched_setaffinity(getpid(), sizeof(cpus), &cpus) == -1)
		bad |= 16;
	/* Its own signals still work (abort() is one). */
	if (kill(getpid(), 0) == -1 || raise(SIGCHLD) != 0)
		bad |= 16;
	return bad;
}

#define OS_TAG	((size_t)0x5a << 56)	/* an address tag in the top byte */

/* A page at addr (if it is free there): 0 unless mremap() was refused. */
static int
page_refused(char *addr, size_t pg)
{
	void	*q = mmap(addr, pg, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (q == MAP_FAILED || q != addr)
		return 0;
	return mremap(q, pg, 2 * pg, MREMAP_MAYMOVE) == MAP_FAILED &&
	    errno == EPERM;
}

/*
 * Five shared pages of a file, the middle three given to the filter as
 * the board: no mremap() of any of those (grown, or copied with size 0),
 * nor by a tagged address, while the pages before and after still move,
 * and pages farther away; remap_file_pages() fails everywhere.
 * Where that address is free, the range crosses a 4 GiB boundary, so
 * that the filter must compare both words of an address.
 */
static int
sandboxed_board(void)
{
	size_t	 pg = (size_t)sysconf(_SC_PAGESIZE);
	char	*p, *hint = (char *)(uintptr_t)0x700000000000ULL - 3 * pg;
	/*
	 * Outside: a high word past the end's; the start's high word with
	 * a low word of 0; a high word below every low word of the range.
	 */
	char	*above = (char *)(uintptr_t)0x700100000000ULL;
	char	*below = (char *)(uintptr_t)0x6fff00000000ULL;
	char	*low = (char *)(uintptr_t)0x000200000000ULL;
	int	 bad = 0, fd, i;

	if ((fd = os_memfd("board")) == -1 ||
	    ftruncate(fd, (off_t)(5 * pg)) == -1)
		return 128;
	p = mmap(hint, 5 * pg, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	if (p == MAP_FAILED)
		p = mmap(NULL, 5 * pg, PROT_READ | PROT_WRITE, MAP_SHARED,
		    fd, 0);
	if (p == MAP_FAILED)
		return 128;
	if (os_sandbox(getpid(), p + pg, 3 * pg) == -1)
		return 64;
	for (i = 1; i <= 3; i++)
		if (mremap(p + i * pg, pg, 2 * pg, MREMAP_MAYMOVE) !=
		    MAP_FAILED || errno != EPERM ||
		    mremap(p + i * pg, 0, pg, MREMAP_MAYMOVE) != MAP_FAILED ||
		    errno != EPERM)
			bad |= 1 << i;
	/* Nor by a tagged address, which the kernel untags (arm64). */
	if (mremap(p + 2 * pg + OS_TAG, pg, 2 * pg, MREMAP_MAYMOVE) !=
	    MAP_FAILED || errno != EPERM)
		bad |= 64;
	if (mremap(p + OS_TAG, pg, 2 * pg, MREMAP_MAYMOVE) == MAP_FAILED &&
	    errno == EPERM)
		bad |= 64;
#if defined(__x86_64__)
	/* Nor with tags enabled (LAM): arch_prctl(ARCH_ENABLE_TAGGED_ADDR) */
	if (syscall(SYS_arch_prctl, 0x4002, 6) != -1 || errno != EPERM)
		bad |= 64;
#endif
	if (mremap(p, pg, 2 * pg, MREMAP_MAYMOVE) == MAP_FAILED)
		bad |= 1;
	if (mremap(p + 4 * pg, pg, 2 * pg, MREMAP_MAYMOVE) == MAP_FAILED ||
	    page_refused(above, pg) || page_refused(below, pg) ||
	    page_refused(low, pg))
		bad |= 16;
	if (remap_file_pages(p + pg, pg, 0, 3, 0) != -1 || errno != EPERM)
		bad |= 32;
	return bad;
}

/* Runs sandboxed (its exit status, 0: as it should be) in a child. */
static void
run_sandboxed(int (*fn)(void))
{
	int	 status;
	pid_t	 pid;

	if ((pid = fork()) == 0)
		_exit(fn());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_sandbox(void **state)
{
	(void)state;
#if defined(__SANITIZE_ADDRESS__)
	skip();
#endif
	run_sandboxed(sandboxed);
}

static void
test_sandbox_board(void **state)
{
	(void)state;
#if defined(__SANITIZE_ADDRESS__)
	skip();
#endif
	run_sandboxed(sandboxed_board);
}

#define LANDLOCK_SKIP	77	/* no Landlock, or the target not reachable */
#define LANDLOCK_UID	65534	/* nobody: the user when the test is root */

static pid_t	 landlock_target;	/* a process of the same user */

/* As the session children run: not root (nobody, when we are root). */
static int
landlock_user(void)
{
	gid_t	 g = LANDLOCK_UID;

	if (geteuid() != 0)
		return 0;
	return setgroups(1, &g) == -1 || setresgid(g, g, g) == -1 ||
	    setresuid(LANDLOCK_UID, LANDLOCK_UID, LANDLOCK_UID) == -1 ? -1 : 0;
}

static int
proc_open(const char *what)
{
	char	 path[64];

	(void)snprintf(path, sizeof(path), "/proc/%ld/%s",
	    (long)landlock_target, what);
	return open(path, O_RDONLY);
}

/* Whether what is refused as a process outside the domain is. */
static int
proc_refused(const char *what)
{
	int	 fd;

	if ((fd = proc_open(what)) == -1)
		return errno == EACCES;
	close(fd);
	return 0;
}

/*
 * Reaches the target's descriptors, then restricts itself: after that,
 * none of the ways in that the kernel checks as ptrace (each refusal a bit
 * of the exit status), while /proc stays open to it.
 */
static int
landlocked(void)
{
	int	 bad = 0, fd;

	if (landlock_user() == -1)
		return 65;
	if ((fd = proc_open("fd/0")) == -1)
		return LANDLOCK_SKIP;
	close(fd);
	if (os_landlock() == -1)
		return errno == ENOSYS ? LANDLOCK_SKIP : 64;
	if (!proc_refused("fd/0"))
		bad |= 1;
	if (!proc_refused("mem"))
		bad |= 2;
	if (!proc_refused("environ"))
		bad |= 4;
	if (ptrace(PTRACE_ATTACH, landlock_target, NULL, NULL) != -1 ||
	    errno != EPERM)
		bad |= 8;
	if ((fd = open("/proc/self/status", O_RDONLY)) == -1)
		bad |= 16;
	if (fd != -1)
		close(fd);
	return bad;
}

/*
 * The target execs, as a checkpassword program does: a process that
 * changed its user is not dumpable (nor reachable) until it runs a new
 * program.
 */
static void
test_landlock(void **state)
{
	pid_t	 pid;
	int	 status;

	(void)state;
	if ((landlock_target = fork()) == 0) {
		if (landlock_user() == 0)
			execl("/bin/sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	assert_true(landlock_target > 0);
	usleep(100000);		/* past its execl() */
	if ((pid = fork()) == 0)
		_exit(landlocked());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	(void)kill(landlock_target, SIGKILL);
	(void)waitpid(landlock_target, NULL, 0);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == LANDLOCK_SKIP)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * A process is alive until it is reaped, a zombie included; what is not
 * a pidfd, or cannot be asked, is not counted as alive.
 */
static void
test_pidfd_alive(void **state)
{
	pid_t	 pid;
	int	 fd, status, null;

	(void)state;
	if ((pid = fork()) == 0) {
		pause();
		_exit(0);
	}
	assert_true(pid > 0);
	if ((fd = os_pidfd_open(pid)) == -1) {
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, &status, 0);
		skip();		/* no pidfds: nothing is counted */
	}
	assert_int_equal(os_pidfd_alive(fd), 1);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitid(P_PID, (id_t)pid, NULL, WEXITED | WNOWAIT),
	    0);
	assert_int_equal(os_pidfd_alive(fd), 1);	/* a zombie */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(os_pidfd_alive(fd), 0);
	close(fd);
	assert_int_equal(os_pidfd_alive(-1), 0);
	null = open("/dev/null", O_RDONLY);
	assert_true(null != -1);
	assert_int_equal(os_pidfd_alive(null), 0);
	close(null);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sandbox),
		cmocka_unit_test(test_sandbox_board),
		cmocka_unit_test(test_landlock),
		cmocka_unit_test(test_pidfd_alive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
