/*
 * os.c: the calls that only Linux has, each behind one helper that fails
 * with ENOSYS where the call does not exist, so that a port to the BSDs
 * has one file to look at.  The callers keep a portable fallback: a named
 * and unlinked spool file, an anonymous mapping, polling waitpid().
 * (accept4, ppoll and pipe2 are used directly: the BSDs have them too.)
 */

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"

/*
 * An anonymous file in memory (memfd_create(2), Linux 3.17), which its
 * maker may seal (fcntl F_ADD_SEALS).
 */
int
os_memfd(const char *name)
{
#ifdef MFD_CLOEXEC
	return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
#else
	(void)name;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * An unnamed file in the directory dir (O_TMPFILE, Linux 3.11): nothing
 * is left behind when the process dies.  Not every file system has it.
 */
int
os_tmpfile(const char *dir)
{
#ifdef O_TMPFILE
	return open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#else
	(void)dir;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * A descriptor that polls readable when the child pid exits
 * (pidfd_open(2), Linux 5.3), close-on-exec as every pidfd is.  The child
 * must not have been reaped yet, so that its pid cannot have been reused.
 */
int
os_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * Whether the calling process is in the scheduler's default class, with
 * nothing that a fork resets (SCHED_RESET_ON_FORK comes back or-ed into
 * the policy): then the class is ours to choose, and not one the
 * administrator set with chrt(1) or systemd's CPUSchedulingPolicy=.
 */
int
os_sched_default(void)
{
#ifdef SCHED_BATCH
	return sched_getscheduler(0) == SCHED_OTHER;
#else
	return 0;
#endif
}

/*
 * The scheduler's batch class for the calling process (SCHED_BATCH,
 * Linux 2.6.16): when its client's next command wakes it, it waits for
 * the task running on that CPU to use up its slice instead of preempting
 * it.  A session child sleeps and wakes at every command, and each
 * preemption was a switch of address space both ways.
 */
int
os_sched_batch(void)
{
#ifdef SCHED_BATCH
	struct sched_param	 sp;

	memset(&sp, 0, sizeof(sp));
	return sched_setscheduler(0, SCHED_BATCH, &sp);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * Seal the mappings in [addr, addr + len) (mseal(2), Linux 6.10): no
 * mremap(), munmap(), mprotect() or mapping over them in this process
 * from now on.  Its number is the same on every architecture.
 */
int
os_mseal(void *addr, size_t len)
{
#if defined(__linux__)
#ifndef SYS_mseal
#define SYS_mseal	462
#endif
	return (int)syscall(SYS_mseal, addr, len, 0UL);
#else
	(void)addr;
	(void)len;
	errno = ENOSYS;
	return -1;
#endif
}
