/*
 * os.c: the calls that only Linux has, each behind one helper that fails
 * with ENOSYS where the call does not exist, so that a port to the BSDs
 * has one file to look at.  The callers keep a portable fallback: a named
 * and unlinked spool file, an anonymous mapping, polling waitpid().
 * (accept4, ppoll and pipe2 are used directly: the BSDs have them too.)
 */

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#if __has_include(<linux/landlock.h>)
#include <linux/landlock.h>
#endif
#endif

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
 * Whether the process of pidfd is still there, a zombie included: 1, or 0
 * once it has been reaped (signal 0 through the pidfd, Linux 5.1; the
 * pidfd itself keeps its pid from being reused), and when that cannot be
 * told (not a pidfd, no such system call).
 */
int
os_pidfd_alive(int pidfd)
{
#ifdef SYS_pidfd_send_signal
	return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0 ||
	    errno == EPERM;
#else
	(void)pidfd;
	return 0;
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
 * No core file of this process, and no ptrace or /proc/PID/mem of it by
 * another process of its user: the master holds the TLS private key and
 * the ticket keys.  Children inherit it; an execve() resets it.
 */
int
os_nodump(void)
{
	return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
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

/*
 * A session child's system call filter (seccomp, Linux 3.5), for the rest
 * of its life: no new process (fork, clone; a process left behind by a
 * child taken over would keep its page of the scoreboard after the slot
 * has gone to another child), no signal but to itself (all children run
 * as one user: one could stop or kill the others), and no other process
 * made a descriptor's owner, to whom the kernel would send SIGIO, or any
 * signal F_SETSIG names; no change to another process's resource limits,
 * priority, scheduling or CPUs (prlimit, setpriority, ioprio_set,
 * sched_set*), which a process of the same user may make and which
 * can kill it; nor mremap() of a mapping in [keep, keep + len)
 * (the scoreboard: its own page grown over the next slots, or copied,
 * where mseal(2) is missing, before Linux 6.10), by its address or a
 * tagged one (arm64; x86's LAM is refused), nor remap_file_pages() at
 * all (which would put another slot's page under its own).  Refused
 * calls fail with EPERM.  ENOSYS where it cannot be had: another
 * architecture, no seccomp.  Not in a sanitizer build, whose leak check
 * clones a task at exit.
 */
#if defined(__linux__) && !defined(__SANITIZE_ADDRESS__) && \
    (defined(__x86_64__) || defined(__aarch64__))
#if defined(__x86_64__)
#define OS_AUDIT_ARCH	AUDIT_ARCH_X86_64
#else
#define OS_AUDIT_ARCH	AUDIT_ARCH_AARCH64
#endif
#define OS_ARG0		offsetof(struct seccomp_data, args[0])	/* little-endian */
#define OS_ARG1		offsetof(struct seccomp_data, args[1])
#define OS_DENY(call)	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (call), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)
/* call only with the pid me as its first argument (its low word). */
#define OS_SELF(call, me)	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (call), 0, 4), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OS_ARG0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(me), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)

/* call only with 0 or the pid me as its first argument: itself. */
#define OS_SELF0(call, me)	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (call), 0, 5), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OS_ARG0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(me), 1, 0), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

/* call only with a as its first argument and itself (0, me) as its second. */
#define OS_WHO_SELF(call, a, me)	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (call), 0, 7), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OS_ARG0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (a), 0, 3), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OS_ARG1), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(me), 1, 0), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

#define OS_IOPRIO_WHO_PROCESS	1	/* <linux/ioprio.h> */

/* call, unless its second argument (its low word) is a, b or c. */
#define OS_ARG1_NOT(call, a, b, c)	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (call), 0, 6), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OS_ARG1), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (a), 3, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (b), 2, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (c), 1, 0), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)

#define OS_HI(v)	((uint32_t)((uint64_t)(v) >> 32))
#define OS_LO(v)	((uint32_t)(v))
#define OS_UNTAG	0x00ffffffU	/* the high word without the top byte */

/*
 * The first argument against v: on to the instruction after these six
 * when it is v or above, else to the one below instructions past that.
 */
#define OS_ARG0_VS(v, below)	\
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OS_ARG0 + 4), \
	BPF_STMT(BPF_ALU | BPF_AND | BPF_K, OS_UNTAG), \
	BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, OS_HI(v), 3, 0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, OS_HI(v), 0, (below) + 2), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OS_ARG0), \
	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, OS_LO(v), 0, (below))

/*
 * call, unless its first argument is below lo or at or above hi: 64-bit
 * values compared a 32-bit word at a time, the high one first, without
 * the address's top byte, which the kernel strips from mremap()'s
 * (arm64's tags: a tagged address of the range is the range).
 */
#define OS_ARG0_OUTSIDE(call, lo, hi)	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (call), 0, 14), \
	OS_ARG0_VS(lo, 6), \
	OS_ARG0_VS(hi, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)

/* call with a as its first argument (its low word). */
#define OS_ARG0_IS(call, a)	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (call), 0, 4), \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OS_ARG0), \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (a), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

#ifndef ARCH_ENABLE_TAGGED_ADDR
#define ARCH_ENABLE_TAGGED_ADDR	0x4002	/* x86's LAM, Linux 6.4 */
#endif

int
os_sandbox(pid_t self, const void *keep, size_t len)
{
	uint64_t		 lo = (uint64_t)(uintptr_t)keep, hi = lo + len;
	struct sock_filter	 f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, OS_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
		/* The x32 calls, none of which we make. */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		OS_DENY(__NR_fork),
		OS_DENY(__NR_vfork),
		/* Tagged addresses (LAM) would pass by mremap()'s check. */
		OS_ARG0_IS(__NR_arch_prctl, ARCH_ENABLE_TAGGED_ADDR),
#endif
		OS_DENY(__NR_clone),
#ifdef __NR_clone3
		OS_DENY(__NR_clone3),
#endif
#ifdef __NR_pidfd_open
		OS_DENY(__NR_pidfd_open),
		OS_DENY(__NR_pidfd_send_signal),
#endif
		/* Nor into another process's memory. */
		OS_DENY(__NR_ptrace),
		OS_DENY(__NR_process_vm_readv),
		OS_DENY(__NR_process_vm_writev),
		OS_SELF(__NR_kill, self),
		OS_SELF(__NR_tkill, self),
		OS_SELF(__NR_tgkill, self),
		OS_SELF(__NR_rt_sigqueueinfo, self),
		OS_SELF(__NR_rt_tgsigqueueinfo, self),
		/*
		 * Nor the limits, priority, scheduling class or CPUs of
		 * another process: the kernel lets a process of the same
		 * user change them, without the checks of tracing that
		 * Landlock adds to, and a hard RLIMIT_CPU below the CPU time
		 * a process has used kills it (SIGKILL); RLIMIT_NOFILE 0
		 * kills a child at its next client.
		 */
		OS_SELF0(__NR_prlimit64, self),
		OS_WHO_SELF(__NR_setpriority, PRIO_PROCESS, self),
		OS_WHO_SELF(__NR_ioprio_set, OS_IOPRIO_WHO_PROCESS, self),
		OS_SELF0(__NR_sched_setaffinity, self),
		OS_SELF0(__NR_sched_setscheduler, self),
		OS_SELF0(__NR_sched_setparam, self),
		OS_SELF0(__NR_sched_setattr, self),
		/* Nor through the kernel: SIGIO (or any F_SETSIG) to an owner. */
		OS_ARG1_NOT(__NR_fcntl, F_SETOWN, F_SETOWN_EX, F_SETSIG),
		OS_ARG1_NOT(__NR_ioctl, FIOSETOWN, SIOCSPGRP, SIOCSPGRP),
		OS_DENY(__NR_remap_file_pages),
		OS_ARG0_OUTSIDE(__NR_mremap, lo, hi),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
	};
	struct sock_fprog	 prog;

	prog.len = (unsigned short)(sizeof(f) / sizeof(f[0]));
	prog.filter = f;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1) {
		if (errno == EINVAL)
			errno = ENOSYS;
		return -1;
	}
	return 0;
}
#else
int
os_sandbox(pid_t self, const void *keep, size_t len)
{
	(void)self;
	(void)keep;
	(void)len;
	errno = ENOSYS;
	return -1;
}
#endif

/*
 * A Landlock domain of its own for the calling process (Linux 5.13), for
 * the rest of its life: the kernel then refuses it every access to a
 * process outside the domain that it checks as it checks ptrace(2):
 * ptrace itself, and /proc/PID/mem, fd/, environ and the like of any
 * process, even one of the same user that could be traced otherwise (a
 * checkpassword program that an AUTH worker started as the user).  The
 * ruleset handles only the creation of block devices, which the process
 * cannot do anyway: files stay as they were.  ENOSYS where Landlock is
 * missing or disabled at boot.
 */
int
os_landlock(void)
{
#if defined(__linux__) && defined(__NR_landlock_create_ruleset) && \
    defined(LANDLOCK_ACCESS_FS_MAKE_BLOCK)
	struct landlock_ruleset_attr	 attr;
	int				 fd, rv, save;

	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = LANDLOCK_ACCESS_FS_MAKE_BLOCK;
	fd = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof(attr),
	    0U);
	if (fd == -1) {
		if (errno == EOPNOTSUPP)
			errno = ENOSYS;
		return -1;
	}
	rv = -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
		rv = (int)syscall(__NR_landlock_restrict_self, fd, 0U);
	save = errno;
	close(fd);
	errno = save;
	return rv == -1 ? -1 : 0;
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* Whether this kernel has Landlock (os_landlock()). */
int
os_landlock_available(void)
{
#if defined(__linux__) && defined(__NR_landlock_create_ruleset) && \
    defined(LANDLOCK_CREATE_RULESET_VERSION)
	return syscall(__NR_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION) >= 1;
#else
	return 0;
#endif
}

/* Whether this kernel can filter system calls (os_sandbox()). */
int
os_sandbox_available(void)
{
#if defined(__linux__) && defined(PR_GET_SECCOMP)
	return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != -1;
#else
	return 0;
#endif
}
