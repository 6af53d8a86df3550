/*
 * test_sandbox.c: a session child's system call filter (os.c
 * os_sandbox()): no new process, signals to itself only.
 */

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/sockios.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpd.h"

/* Each refusal the filter must make, as a bit of the exit status. */
static int
sandboxed(void)
{
	struct f_owner_ex	 ex;
	int			 bad = 0, sv[2], n, owner = (int)getppid();
	pid_t			 pid;

	if (os_sandbox(getpid()) == -1)
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
	/* Its own signals still work (abort() is one). */
	if (kill(getpid(), 0) == -1 || raise(SIGCHLD) != 0)
		bad |= 16;
	return bad;
}

static void
test_sandbox(void **state)
{
	int	 status;
	pid_t	 pid;

	(void)state;
#if defined(__SANITIZE_ADDRESS__)
	skip();
#endif
	if ((pid = fork()) == 0)
		_exit(sandboxed());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sandbox),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
