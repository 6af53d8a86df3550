/*
 * benchio.h: what the bench clients (bdat-client, tls-client, spawn-floor,
 * switch-floor) share: connecting, SMTP replies over a plain or TLS
 * stream, parallel worker processes that report records to the parent,
 * and the clock.
 */

#ifndef BENCHIO_H
#define BENCHIO_H

#include <sys/types.h>

#include <stddef.h>

#define BENCH_BUFSIZE		16384	/* read buffer of a connection */
#define BENCH_REPLYMAX		4096	/* text of one (multi-line) reply */
#define BENCH_TIMEOUT_S		60	/* per read or write: never hang */
#define BENCH_MAXWORKERS	1000
#define BENCH_RECMAX		64	/* a record is written atomically */

struct bconn {
	int	  bc_fd;
	void	 *bc_tls;	/* the SSL * once TLS is on, else NULL */
	ssize_t	(*bc_read)(struct bconn *, void *, size_t);
	ssize_t	(*bc_write)(struct bconn *, const void *, size_t);
	char	  bc_buf[BENCH_BUFSIZE];
	size_t	  bc_off;
	size_t	  bc_len;
	char	  bc_reply[BENCH_REPLYMAX];	/* the last reply, lines \n */
};

/* A worker: index, the record pipe, the caller's argument; exit status. */
typedef int	(*bench_worker_fn)(int, int, void *);
/* The parent's view of each record a worker wrote. */
typedef void	(*bench_record_fn)(const void *, void *);

/* benchio.c */
double	 bench_now(void);
int	 bench_connect(const char *);
void	 bconn_init(struct bconn *, int);
int	 bconn_send(struct bconn *, const void *, size_t);
int	 bconn_cmd(struct bconn *, const char *);
int	 bconn_reply(struct bconn *);
int	 bconn_expect(struct bconn *, int, const char *);
int	 bconn_has_ext(const struct bconn *, const char *);
long long bench_number(const char *, long long, long long, const char *);
int	 bench_workers(int, bench_worker_fn, void *, size_t, bench_record_fn,
	    void *);
int	 bench_record(int, const void *, size_t);

#endif
