/*
 * reparsable.h: for tests/test_addr.c and tests/fuzz/fuzz_addr.c.
 *
 * Normalising a normalised address gives it back, whole.  Not for the
 * two aiosmtpd forms that read differently bare (`@x`, `""@x`).
 */
static int
reparsable(const char *s)
{
	return (s[0] != '@' && strncmp(s, "\"\"", 2) != 0);
}
