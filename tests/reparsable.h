/*
 * reparsable.h: for tests/test_addr.c and tests/fuzz/fuzz_addr.c.
 *
 * Normalising a normalised address gives it back, whole.  Not for the
 * two aiosmtpd forms that read differently bare (`@x`, `""@x`), nor for
 * domain literals whose quoted-pairs were decoded (as Python does).
 */
static int
reparsable(const char *s)
{
	const char	*lit;

	if (s[0] == '@' || strncmp(s, "\"\"", 2) == 0)
		return (0);
	if ((lit = strstr(s, "@[")) == NULL)
		return (1);
	return (strcspn(lit + 2, "[]\\") == strlen(lit + 2) - 1);
}
