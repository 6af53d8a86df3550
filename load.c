/*
 * load.c: the files a configuration names (TLS keys and certificates,
 * the passwd file, the address tables), loaded in one place once the
 * configuration has parsed, and released with it.  config.c parses and
 * knows none of the modules that own these files.
 */

#include <stdlib.h>

#include "smtpd.h"

struct loader {
	int	(*ld_load)(struct config *);	/* logs its own errors */
	void	(*ld_free)(struct config *);
};

static const struct loader loaders[] = {
	{ tls_config_load, tls_config_free },
	{ auth_config_load, auth_config_free },
	{ policy_config_load, policy_config_free }
};

/* Parses path and loads what it names; NULL (errors logged) if either fails. */
struct config *
load_config(const char *path)
{
	struct config	*c;
	size_t		 i;
	int		 errors = 0;

	if ((c = config_load(path)) == NULL)
		return NULL;
	for (i = 0; i < NITEMS(loaders); i++)
		if (loaders[i].ld_load(c) == -1)
			errors++;
	if (errors > 0) {
		log_warnx("%s: %d error(s)", path, errors);
		load_release(c);
		return NULL;
	}
	return c;
}

/* Frees what load_config loaded, then the configuration itself. */
void
load_release(struct config *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	for (i = 0; i < NITEMS(loaders); i++)
		loaders[i].ld_free(c);
	config_free(c);
}
