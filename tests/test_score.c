/*
 * test_score.c: the scoreboard holds against what a child may do to it:
 * its size cannot change, a child writes its own slot and nothing else
 * (not even through mprotect()), and a slot count out of range is
 * bounded before the master indexes with it.
 */

#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpd.h"
#include "internal.h"

static size_t	 board_len;

/* The whole board, writable, as the master maps it. */
static struct score_board *
map_board(void)
{
	struct score_board	*b;

	assert_int_not_equal(score_fd(), -1);
	b = mmap(NULL, sizeof(*b), PROT_READ, MAP_SHARED, score_fd(), 0);
	assert_true(b != MAP_FAILED);
	board_len = b->sb_slotoff + (size_t)SCORE_SLOTS * b->sb_slotsize;
	munmap(b, sizeof(*b));
	b = mmap(NULL, board_len, PROT_READ | PROT_WRITE, MAP_SHARED,
	    score_fd(), 0);
	assert_true(b != MAP_FAILED);
	return b;
}

/* A truncated board would be SIGBUS in the master at its next count. */
static void
test_sealed(void **state)
{
	(void)state;
	assert_int_equal(ftruncate(score_fd(), 0), -1);
	assert_int_equal(errno, EPERM);
	score_count(SC_CONN_ACCEPTED);
	assert_int_equal(score_get(SC_CONN_ACCEPTED), 1);
}

static void
print_all(void)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*fp;

	assert_non_null(fp = open_memstream(&buf, &len));
	control_print_sessions(fp, 1);
	score_print_metrics(fp);
	assert_int_equal(fclose(fp), 0);
	free(buf);
}

/*
 * sb_used as a board handed on at an upgrade may have it: the master
 * reads no slot past the end.
 */
static void
test_used_bounded(void **state)
{
	struct score_board	*b = map_board();
	struct score_view	 v;

	(void)state;
	atomic_store(&b->sb_used, INT_MAX);
	assert_int_equal(score_nslots(), SCORE_SLOTS);
	assert_int_equal(score_slot(SCORE_SLOTS, &v), -1);
	atomic_store(&b->sb_used, -5);
	assert_int_equal(score_nslots(), 0);
	print_all();
	atomic_store(&b->sb_used, 0);
	munmap(b, board_len);
}

/*
 * A child killed while writing its address leaves the slot's sequence
 * odd: the next child of the slot starts even, or every reader would
 * take its address for one being written, for good.
 */
static void
test_seq_reset(void **state)
{
	struct score_board	*b = map_board();
	int			 i;

	(void)state;
	assert_int_not_equal(i = score_claim(), -1);
	atomic_store(&score_slot_of(b, i)->ss_seq, 7);
	score_release(i);
	assert_int_equal(score_claim(), i);
	assert_int_equal(atomic_load(&score_slot_of(b, i)->ss_seq), 0);
	score_release(i);
	munmap(b, board_len);
}

/* How the child pid ended: 0 (exit 0), -1 (another exit), or its signal. */
static int
child_end(pid_t pid)
{
	int	 status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return WTERMSIG(status);
	return WEXITSTATUS(status) == 0 ? 0 : -1;
}

/*
 * A child, after score_child(slot), writes (or reads) an int through the
 * board it has (score_board()) at offset target: 0 when it could, or how
 * it died.
 */
static int
child_touches(int slot, size_t target, int write)
{
	_Atomic int	*p;
	pid_t		 pid;

	if ((pid = fork()) == 0) {
		/* cmocka's handlers would catch the fault. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		score_child(slot);
		p = (_Atomic int *)(void *)((char *)score_board() + target);
		if (write)
			atomic_store(p, 0x41414141);
		_exit(write || atomic_load(p) != -1 ? 0 : 1);
	}
	return child_end(pid);
}

/* Whether this kernel has mseal(2) (Linux 6.10). */
static int
seal_works(void)
{
	void	*p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);

	assert_true(p != MAP_FAILED);
	return os_mseal(p, 4096) == 0;
}

/*
 * A child, after score_child(slot), tries to reach the next slot's page
 * through its own page's mapping: grown by mremap() (how 0), or that
 * mapping's page replaced by the next one of the file (remap_file_pages,
 * how 1).  0 when that failed.
 */
static int
child_moves(int slot, int how)
{
	struct score_board	*b;
	char			*own;
	void			*p;
	pid_t			 pid;

	if ((pid = fork()) == 0) {
		score_child(slot);
		b = score_board();
		own = (char *)score_slot_of(b, slot);
		if (how == 0)
			p = mremap(own, b->sb_slotsize, 2 * b->sb_slotsize,
			    MREMAP_MAYMOVE);
		else
			p = remap_file_pages(own, b->sb_slotsize, 0,
			    (size_t)(own - (char *)b) / 4096 + 1, 0) == 0 ?
			    own : MAP_FAILED;
		_exit(p == MAP_FAILED ? 0 : 1);
	}
	return child_end(pid);
}

/*
 * A child taken over cannot make the master see the others as busy (their
 * pids), take slots (owners, the slots used) or change any count but its
 * own: it has its slot's page writable and the rest read-only, from a
 * read-only descriptor, so that mprotect() cannot make it writable, and
 * all of it sealed, so that its page's mapping cannot grow or move
 * (where the kernel has mseal).
 */
static void
test_child_confined(void **state)
{
	struct score_board	*b = map_board();
	unsigned long long	 n = score_get(SC_SESS_QUIT);
	size_t			 other, own;
	int			 i, j;
	pid_t			 pid;

	(void)state;
	assert_int_not_equal(i = score_claim(), -1);
	assert_int_not_equal(j = score_claim(), -1);
	other = (size_t)((char *)score_slot_of(b, j) - (char *)b);
	own = (size_t)((char *)score_slot_of(b, i) - (char *)b);
	assert_int_equal(child_touches(i, own + offsetof(struct score_slot,
	    ss_state), 1), 0);
	assert_int_equal(child_touches(i, other + offsetof(struct score_slot,
	    ss_pid), 1), SIGSEGV);
	assert_int_equal(child_touches(i, offsetof(struct score_board,
	    sb_used), 1), SIGSEGV);
	assert_int_equal(child_touches(i, offsetof(struct score_board,
	    sb_owner) + (size_t)j * sizeof(int), 1), SIGSEGV);
	assert_int_equal(child_touches(i, offsetof(struct score_board,
	    sb_count), 1), SIGSEGV);
	/*
	 * Past the slots claimed, the file ends: reading the whole board
	 * cannot make it take memory.
	 */
	assert_int_equal(child_touches(i, other, 0), 0);
	assert_int_equal(child_touches(i, (size_t)((char *)score_slot_of(b,
	    SCORE_SLOTS - 1) - (char *)b), 0), SIGBUS);
	/* Without a slot: nothing at all. */
	assert_int_equal(child_touches(-1, own, 1), SIGSEGV);
	if ((pid = fork()) == 0) {
		score_child(i);
		_exit(mprotect(score_board(), board_len, PROT_READ |
		    PROT_WRITE) == -1 && errno == EACCES ? 0 : 1);
	}
	assert_int_equal(child_end(pid), 0);
	if (seal_works()) {
		assert_int_equal(child_moves(i, 0), 0);
		assert_int_equal(child_moves(i, 1), 0);
	}
	/* What it counts is in the totals; its session, in its slot. */
	if ((pid = fork()) == 0) {
		score_child(i);
		score_count(SC_SESS_QUIT);
		score_session("192.0.2.7", SS_INIT);
		_exit(0);
	}
	assert_int_equal(child_end(pid), 0);
	assert_int_equal(score_get(SC_SESS_QUIT), n + 1);
	assert_string_equal(score_slot_of(b, i)->ss_addr, "192.0.2.7");
	score_release(i);
	score_release(j);
	munmap(b, board_len);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sealed),
		cmocka_unit_test(test_used_bounded),
		cmocka_unit_test(test_seq_reset),
		cmocka_unit_test(test_child_confined),
	};

	score_init(-1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
