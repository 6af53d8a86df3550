/* proxy.c: placeholder until the PROXY protocol work lands (being written now). */
#include <sys/types.h>
#include <sys/socket.h>
#include "smtpd.h"

int proxy_parse(const unsigned char *b, size_t l, struct proxy_info *pi, const char **e) { (void)b; (void)l; (void)pi; *e = "not implemented"; return -1; }
int proxy_net_match(const struct netaddr *n, int c, const struct sockaddr *sa) { (void)n; (void)c; (void)sa; return 0; }
