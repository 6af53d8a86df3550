/*
 * fuzz_config.c: libFuzzer harness of config_load() (config.c) on the
 * input as a file.  When it loads, what config_print() prints (`smtpd
 * -n`) must load again and print the same text: the printed form is a
 * fixed point of load-and-print.
 *
 * The files are memfds opened by their /proc/self/fd path.  Directives
 * that read files (tls certificate, auth passwd, the address tables)
 * then read whatever exists; inputs naming devices or /proc are skipped,
 * so that no run blocks on one or reads without end.
 */

#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "smtpd.h"
#include "internal.h"

#include "fuzz.h"

static int	 fz_fd = -1;
static char	 fz_path[64];

static void
fuzz_setup(void)
{
	if ((fz_fd = memfd_create("fuzz_config", 0)) == -1)
		abort();
	snprintf(fz_path, sizeof(fz_path), "/proc/self/fd/%d", fz_fd);
}

/* The file's new content. */
static void
fz_put(const void *data, size_t len)
{
	if (ftruncate(fz_fd, 0) == -1 ||
	    pwrite(fz_fd, data, len, 0) != (ssize_t)len)
		abort();
}

/* config_print() into memory. */
static char *
fz_print(const struct config *c, size_t *len)
{
	FILE	*f;
	char	*s;

	if ((f = open_memstream(&s, len)) == NULL)
		abort();
	config_print(f, c);
	if (fclose(f) == EOF)
		abort();
	return (s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const	 skip[] = { "dev", "proc", "sys" };
	struct config			*c;
	char				*text, *again;
	size_t				 len, len2, i;

	for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (memmem(data, size, skip[i], strlen(skip[i])) != NULL)
			return (0);
	fz_put(data, size);
	if ((c = config_load(fz_path)) == NULL)
		return (0);
	text = fz_print(c, &len);
	config_free(c);
	fz_put(text, len);
	if ((c = config_load(fz_path)) == NULL)
		abort();
	again = fz_print(c, &len2);
	config_free(c);
	if (len != len2 || memcmp(text, again, len) != 0)
		abort();
	free(text);
	free(again);
	return (0);
}
