/*
 * test_score.c: the scoreboard holds against what a child may do to it,
 * since every child maps it writable: its size cannot change, and a slot
 * count out of range is bounded before the master indexes with it.
 */

#include <sys/mman.h>

#include <errno.h>
#include <limits.h>
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

static struct score_board *
map_board(void)
{
	struct score_board	*b;

	assert_int_not_equal(score_fd(), -1);
	b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE, MAP_SHARED,
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

/* sb_used written by a child: the master reads no slot past the end. */
static void
test_used_bounded(void **state)
{
	struct score_board	*b = map_board();
	struct score_view	 v;

	(void)state;
	atomic_store(&b->sb_used, INT_MAX);
	assert_int_equal(score_nslots(), SCORE_SLOTS);
	assert_int_equal(score_slot(SCORE_SLOTS, &v), -1);
	print_all();
	atomic_store(&b->sb_used, -5);
	assert_int_equal(score_nslots(), 0);
	print_all();
	atomic_store(&b->sb_used, 0);
	munmap(b, sizeof(*b));
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
	atomic_store(&b->sb_slots[i].ss_seq, 7);
	score_release(i);
	assert_int_equal(score_claim(), i);
	assert_int_equal(atomic_load(&b->sb_slots[i].ss_seq), 0);
	score_release(i);
	munmap(b, sizeof(*b));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sealed),
		cmocka_unit_test(test_used_bounded),
		cmocka_unit_test(test_seq_reset),
	};

	score_init(-1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
