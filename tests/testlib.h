/*
 * testlib.h: helpers shared by the cmocka unit tests (tests/testlib.c).
 */

#ifndef SMTPD_TESTLIB_H
#define SMTPD_TESTLIB_H

void	 capture_start(void);
char	*capture_end(void);
void	 assert_has(const char *, const char *);

#endif /* SMTPD_TESTLIB_H */
