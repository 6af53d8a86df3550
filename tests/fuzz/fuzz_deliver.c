/*
 * fuzz_deliver.c: libFuzzer harness of the argv of a delivery run
 * (deliver.c's deliver_argv() and deliver_expand(), reached by including
 * deliver.c).  Every %{name} of smtpd.conf.5 is replaced by its value,
 * inserted as it is; %{recipients} as a word by itself is one argument
 * per recipient of the run; nothing else changes.
 *
 * Input: NUL-separated fields; octet 0 chooses one run for all the
 * recipients or one run per recipient, then come sender, client, helo,
 * user and id, the words of the deliver string up to an empty field,
 * and the recipients.
 */

#include "../../deliver.c"

#include <stdint.h>
#include <syslog.h>

#define FZ_MAXFIELDS	64

#include "fuzz.h"

static void
fuzz_setup(void)
{
}

/* One word by the manual, matching each placeholder where it starts. */
static char *
fz_expand(const char *w, const char *const names[], const char *const vals[],
    size_t n)
{
	char	*out, *tmp;
	size_t	 i, len;

	out = xstrdup("");
	while (*w != '\0') {
		for (i = 0; i < n; i++) {
			len = strlen(names[i]);
			if (strncmp(w, names[i], len) == 0)
				break;
		}
		if (i < n) {
			xasprintf(&tmp, "%s%s", out, vals[i]);
			w += len;
		} else
			xasprintf(&tmp, "%s%c", out, *w++);
		free(out);
		out = tmp;
	}
	return (out);
}

/* The argv of the run of rcpts, against deliver_argv(). */
static void
fz_check_run(const struct config *c, const struct client *cl,
    const struct envelope *e, char **rcpts, size_t nrcpts)
{
	static const char *const names[] = { "%{sender}", "%{recipient}",
	    "%{client}", "%{helo}", "%{user}", "%{id}" };
	const char		*vals[6];
	char			**argv, *want;
	size_t			 w, i, n = 0;

	vals[0] = e->e_sender;
	vals[1] = nrcpts > 0 ? rcpts[0] : "";
	vals[2] = cl->ci_addr;
	vals[3] = cl->ci_helo;
	vals[4] = cl->ci_user;
	vals[5] = e->e_id;
	argv = deliver_argv(c, cl, e, rcpts, nrcpts);
	for (w = 0; c->c_dlv.dl_argv[w] != NULL; w++) {
		if (strcmp(c->c_dlv.dl_argv[w], "%{recipients}") == 0) {
			for (i = 0; i < nrcpts; i++)
				if (argv[n] == NULL ||
				    strcmp(argv[n++], rcpts[i]) != 0)
					abort();
			continue;
		}
		want = fz_expand(c->c_dlv.dl_argv[w], names, vals, 6);
		if (argv[n] == NULL || strcmp(argv[n++], want) != 0)
			abort();
		free(want);
	}
	if (argv[n] != NULL)
		abort();
	deliver_free(argv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	 c;
	struct client	 cl;
	struct envelope	 e;
	char		*buf, *f[FZ_MAXFIELDS + 1], *words[FZ_MAXFIELDS + 1];
	size_t		 nf = 0, nw = 0, i, k;

	if (size < 1 || size > 4096)
		return (0);
	buf = xmalloc(size + 1);
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	buf[size] = '\0';
	for (i = 0; i < size - 1 && nf < FZ_MAXFIELDS;
	    i += strlen(buf + i) + 1)
		f[nf++] = buf + i;
	for (; nf < 5; nf++)
		f[nf] = buf + size - 1;
	memset(&c, 0, sizeof(c));
	memset(&cl, 0, sizeof(cl));
	memset(&e, 0, sizeof(e));
	e.e_sender = f[0];
	strlcpy(cl.ci_addr, f[1], sizeof(cl.ci_addr));
	strlcpy(cl.ci_helo, f[2], sizeof(cl.ci_helo));
	strlcpy(cl.ci_user, f[3], sizeof(cl.ci_user));
	strlcpy(e.e_id, f[4], sizeof(e.e_id));
	for (k = 5; k < nf && f[k][0] != '\0'; k++)
		words[nw++] = f[k];
	words[nw] = NULL;
	c.c_dlv.dl_argv = words;
	e.e_rcpts = f + k + (k < nf);
	e.e_nrcpts = nf - k - (k < nf);
	if (data[0] & 1)
		for (i = 0; i < e.e_nrcpts; i++)
			fz_check_run(&c, &cl, &e, e.e_rcpts + i, 1);
	else
		fz_check_run(&c, &cl, &e, e.e_rcpts, e.e_nrcpts);
	free(buf);
	return (0);
}
