/* auth.c: placeholder until the AUTH work lands (being written now). */
#include <sys/types.h>
#include "smtpd.h"

int auth_config_load(struct config *c) { (void)c; return 0; }
void auth_config_free(struct config *c) { (void)c; }
int auth_b64_decode(const char *in, unsigned char *out, size_t outsz, size_t *outlen) { (void)in; (void)out; (void)outsz; (void)outlen; return -1; }
int auth_plain_split(unsigned char *b, size_t l, const char **u, const char **p) { (void)b; (void)l; (void)u; (void)p; return -1; }
int auth_check(const struct config *c, const char *u, const char *p) { (void)c; (void)u; (void)p; return AUTH_TEMPFAIL; }
