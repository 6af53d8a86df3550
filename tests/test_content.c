/*
 * test_content.c: the content rules of content.c (max-line-length,
 * bare-newline) on messages fed whole and in every split, as DATA lines
 * and BDAT chunks feed them.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpd.h"

struct result {
	int	 toolong;
	int	 sawbare;
	char	 kept[256];
	size_t	 len;
};

/* msg fed in two writes split at cut (0: one write), then the end. */
static void
feed(const char *msg, size_t cut, size_t maxline, int bare,
    struct result *r)
{
	struct spool	 sp;
	struct content	 ct;
	size_t		 len = strlen(msg);

	spool_init(&sp, "/tmp");
	content_init(&ct, &sp, maxline, bare);
	content_write(&ct, msg, cut);
	content_write(&ct, msg + cut, len - cut);
	content_end(&ct);
	assert_int_equal(sp.sp_error, 0);
	assert_true(sp.sp_len < sizeof(r->kept));
	r->toolong = ct.ct_toolong;
	r->sawbare = ct.ct_sawbare;
	r->len = sp.sp_len;
	if (sp.sp_len > 0)
		memcpy(r->kept, sp.sp_buf, sp.sp_len);
	r->kept[r->len] = '\0';
	spool_reset(&sp);
}

/* Every split of msg gives the same verdict and the same octets. */
static void
check(const char *msg, size_t maxline, int bare, int toolong, int sawbare,
    const char *kept)
{
	struct result	 r;
	size_t		 cut;

	for (cut = 0; cut <= strlen(msg); cut++) {
		feed(msg, cut, maxline, bare, &r);
		assert_int_equal(r.toolong, toolong);
		assert_int_equal(r.sawbare, sawbare);
		if (kept != NULL) {
			assert_int_equal(r.len, strlen(kept));
			assert_string_equal(r.kept, kept);
		}
	}
}

static void
test_keep(void **state)
{
	(void)state;
	check("a\r\nb\r\n", 100, BARE_KEEP, 0, 0, "a\r\nb\r\n");
	check("a\nb\rc\r\r\nd\n\r\n", 100, BARE_KEEP, 0, 1,
	    "a\nb\rc\r\r\nd\n\r\n");
	check("", 100, BARE_KEEP, 0, 0, "");
}

static void
test_normalize(void **state)
{
	(void)state;
	/* A bare LF becomes CRLF; a bare CR stays. */
	check("a\nb\rc\r\r\nd\n\r\n", 100, BARE_NORMALIZE, 0, 1,
	    "a\r\nb\rc\r\r\nd\r\n\r\n");
	check("\n\n", 100, BARE_NORMALIZE, 0, 1, "\r\n\r\n");
	check("a\r\nb\r\n", 100, BARE_NORMALIZE, 0, 0, "a\r\nb\r\n");
}

static void
test_reject(void **state)
{
	(void)state;
	check("a\r\nb\r\n", 100, BARE_REJECT, 0, 0, "a\r\nb\r\n");
	check("a\r\nb\nc\r\n", 100, BARE_REJECT, 0, 1, NULL);
	check("a\rb\r\n", 100, BARE_REJECT, 0, 1, NULL);
	/* A CR at the very end (a BDAT message) has no LF. */
	check("a\r\nb\r", 100, BARE_REJECT, 0, 1, NULL);
	check("\r", 100, BARE_KEEP, 0, 1, "\r");
}

/* Octets with CRLF: 10 fit a max-line-length of 10, 11 do not. */
static void
test_line_length(void **state)
{
	(void)state;
	check("12345678\r\n", 10, BARE_KEEP, 0, 0, "12345678\r\n");
	check("123456789\r\n", 10, BARE_KEEP, 1, 0, NULL);
	check("12345678\r\n12345678\r\n", 10, BARE_KEEP, 0, 0, NULL);
	/* Only CRLF ends a line, whatever bare-newline does. */
	check("123\n1234\r\n", 10, BARE_KEEP, 0, 1, NULL);
	check("1234\n12345\r\n", 10, BARE_KEEP, 1, 1, NULL);
	check("1234\n12345\r\n", 10, BARE_NORMALIZE, 1, 1, NULL);
	check("1234\r12345\r\n", 10, BARE_KEEP, 1, 1, NULL);
}

/*
 * Whole CRLF lines take content.c's memchr() path, the rest the octet
 * by octet one: the same verdicts wherever one hands over to the other.
 */
static void
test_lines_then_octets(void **state)
{
	(void)state;
	check("ab\r\ncd\r\n\r\nx\ry\r\nz\n", 100, BARE_KEEP, 0, 1,
	    "ab\r\ncd\r\n\r\nx\ry\r\nz\n");
	check("ab\r\ncd\r\nz\n\r\n", 100, BARE_NORMALIZE, 0, 1,
	    "ab\r\ncd\r\nz\r\n\r\n");
	check("12\r\n1234567\r\n123456789\r\n", 10, BARE_KEEP, 1, 0, NULL);
	check("12\r\n12345678\r\n\r\r\n", 10, BARE_KEEP, 0, 1, NULL);
	check("\r\n\r\n\n", 100, BARE_REJECT, 0, 1, NULL);
}

/* DATA's transparency dot counts for the line but is not kept. */
static void
test_count(void **state)
{
	struct spool	 sp;
	struct content	 ct;

	(void)state;
	spool_init(&sp, "/tmp");
	content_init(&ct, &sp, 10, BARE_KEEP);
	content_count(&ct, 1);
	content_write(&ct, "2345678\r\n", 9);
	assert_int_equal(ct.ct_toolong, 0);
	content_count(&ct, 1);
	content_write(&ct, "23456789\r\n", 10);
	assert_int_equal(ct.ct_toolong, 1);
	spool_reset(&sp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_reject),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_lines_then_octets),
		cmocka_unit_test(test_count),
	};

	return cmocka_run_group_tests_name("content", tests, NULL, NULL);
}
