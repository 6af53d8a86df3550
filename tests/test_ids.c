/*
 * test_ids.c: unit tests of util_session_id(): the form (fixed length,
 * base-32 digits), ids that sort as the times they were made, and no id
 * twice among IDS_PER_PROC ids from each of IDS_PROCS processes making
 * them at the same time, as the children of a busy daemon do.
 */

#include <sys/types.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpd.h"

#define IDS_PROCS	4
#define IDS_PER_PROC	20000
#define IDS_TOTAL	(IDS_PROCS * IDS_PER_PROC)
#define ID_CHARS	(SESSION_ID_LEN - 1)

static int
id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, ID_CHARS);
}

static void
test_form(void **state)
{
	char	 a[SESSION_ID_LEN], b[SESSION_ID_LEN], msg[MSG_ID_LEN];

	(void)state;
	util_session_id(a, sizeof(a));
	assert_int_equal(strlen(a), ID_CHARS);
	assert_true(ID_CHARS * 5 >= 64 + 16);	/* time and randomness */
	assert_int_equal(strspn(a, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"),
	    ID_CHARS);
	usleep(2);
	util_session_id(b, sizeof(b));
	/* later is greater: the time digits come first */
	assert_true(memcmp(a, b, SID_TIME_DIGITS) < 0);
	assert_true(strcmp(a, b) < 0);
	/* the message id <session id>.<n> fits */
	assert_true(snprintf(msg, sizeof(msg), "%s.%u", a, 4000000000U) <
	    (int)sizeof(msg));
}

/* IDS_PER_PROC ids of one process, in the order made, into fd. */
static void
ids_write(int fd)
{
	char	 id[SESSION_ID_LEN];
	int	 i;

	for (i = 0; i < IDS_PER_PROC; i++) {
		util_session_id(id, sizeof(id));
		if (write(fd, id, ID_CHARS) != ID_CHARS)
			_exit(1);
	}
	_exit(0);
}

static void
test_unique(void **state)
{
	char	*ids, *p;
	int	 fds[IDS_PROCS][2], i, n, status;
	pid_t	 pids[IDS_PROCS];
	size_t	 got;

	(void)state;
	ids = malloc((size_t)IDS_TOTAL * ID_CHARS);
	assert_non_null(ids);
	for (i = 0; i < IDS_PROCS; i++) {
		assert_int_equal(pipe(fds[i]), 0);
		if ((pids[i] = fork()) == 0) {
			close(fds[i][0]);
			ids_write(fds[i][1]);
		}
		assert_true(pids[i] > 0);
		close(fds[i][1]);
	}
	for (i = 0; i < IDS_PROCS; i++) {
		p = ids + (size_t)i * IDS_PER_PROC * ID_CHARS;
		for (got = 0; got < (size_t)IDS_PER_PROC * ID_CHARS;
		    got += (size_t)n)
			if ((n = (int)read(fds[i][0], p + got,
			    (size_t)IDS_PER_PROC * ID_CHARS - got)) <= 0)
				break;
		assert_int_equal(got, (size_t)IDS_PER_PROC * ID_CHARS);
		close(fds[i][0]);
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_int_equal(status, 0);
		/* one process: in the order of time */
		for (n = 1; n < IDS_PER_PROC; n++)
			assert_true(memcmp(p + (size_t)(n - 1) * ID_CHARS,
			    p + (size_t)n * ID_CHARS, SID_TIME_DIGITS) <= 0);
	}
	qsort(ids, IDS_TOTAL, ID_CHARS, id_cmp);
	for (n = 1; n < IDS_TOTAL; n++)
		assert_true(id_cmp(ids + (size_t)(n - 1) * ID_CHARS,
		    ids + (size_t)n * ID_CHARS) != 0);
	printf("test_ids: %d ids from %d processes, none twice\n", IDS_TOTAL,
	    IDS_PROCS);
	free(ids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form),
		cmocka_unit_test(test_unique),
	};

	return (cmocka_run_group_tests_name("ids", tests, NULL, NULL));
}
