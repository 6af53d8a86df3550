/* tls.c: placeholder until the TLS work lands (being written now). */
#include <sys/types.h>
#include <errno.h>
#include "smtpd.h"

int tls_config_load(struct config *c) { (void)c; return 0; }
void tls_config_free(struct config *c) { (void)c; }
struct tls_conn *tls_accept(void *ctx, int fd, int t, const char *sid) { (void)ctx; (void)fd; (void)t; (void)sid; return NULL; }
ssize_t tls_read(struct tls_conn *t, void *b, size_t l) { (void)t; (void)b; (void)l; errno = EIO; return -1; }
ssize_t tls_write(struct tls_conn *t, const void *b, size_t l) { (void)t; (void)b; (void)l; errno = EIO; return -1; }
int tls_pending(struct tls_conn *t) { (void)t; return 0; }
int tls_want(struct tls_conn *t) { (void)t; return 0; }
const char *tls_info(struct tls_conn *t) { (void)t; return ""; }
void tls_close(struct tls_conn *t) { (void)t; }
