/*
 * testlib.c: what several unit tests need: capturing what log.c writes on
 * stderr (its debug-mode output) and looking for a line in it.
 */

#include <sys/types.h>

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
#include "testlib.h"

static int	 cap_fd = -1, cap_saved = -1;

/* stderr goes to an unlinked file until capture_end(). */
void
capture_start(void)
{
	char	 path[] = "/tmp/smtpd_test_log.XXXXXX";

	assert_true((cap_fd = mkstemp(path)) != -1);
	unlink(path);
	fflush(stderr);
	assert_true((cap_saved = dup(STDERR_FILENO)) != -1);
	assert_true(dup2(cap_fd, STDERR_FILENO) != -1);
}

/*
 * stderr back; what was written meanwhile, NUL-terminated, for the caller
 * to free.  TEST_VERBOSE=1 shows it as well.
 */
char *
capture_end(void)
{
	char	*buf;
	off_t	 size;

	fflush(stderr);
	dup2(cap_saved, STDERR_FILENO);
	close(cap_saved);
	size = lseek(cap_fd, 0, SEEK_END);
	assert_true(size >= 0);
	buf = xmalloc((size_t)size + 1);
	assert_int_equal(pread(cap_fd, buf, (size_t)size, 0), (ssize_t)size);
	buf[size] = '\0';
	close(cap_fd);
	cap_fd = cap_saved = -1;
	if (getenv("TEST_VERBOSE") != NULL)
		fputs(buf, stderr);
	return buf;
}

void
assert_has(const char *text, const char *want)
{
	if (strstr(text, want) == NULL)
		fail_msg("expected \"%s\" in:\n%s", want, text);
}
