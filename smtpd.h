/*
 * smtpd.h: shared types, limits and prototypes of smtpd.
 * Prototypes are grouped by the file that defines them.
 */

#ifndef SMTPD_H
#define SMTPD_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <syslog.h>

#ifndef SYSCONFDIR
#define SYSCONFDIR		"/usr/local/etc"
#endif
#ifndef LIBEXECDIR
#define LIBEXECDIR		"/usr/local/libexec/smtpd"
#endif
#define SMTPD_CONFIG		SYSCONFDIR "/smtpd.conf"

#define NITEMS(a)		(sizeof(a) / sizeof((a)[0]))

/* Defaults (smtpd.conf.5). */
#define DEF_BANNER		"ESMTP smtpd"
#define DEF_USER		"_smtpd"
#define DEF_USER_FALLBACK	"nobody"
#define DEF_DELIVER_USER	"_smtpd-deliver"
#define DEF_PIDFILE		"/var/run/smtpd.pid"
#define DEF_SPOOL		"/tmp"
#define DEF_PORT		25
#define DEF_PORT_TLS		465
#define DEF_PORT_LMTP		24
#define BUILTIN_CONFIG		"listen on 127.0.0.1 port 8025\n"
#define DEF_PREFORK		4
#define DEF_PREFORK_IDLE	100	/* seconds a child beyond prefork
					   may stay idle */
#define DEF_MAXCLIENTS		256
#define DEF_MAXPERADDR		32
#define DEF_MAXSESSIONS		1000
#define DEF_MAXMSGSIZE		(32LL * 1024 * 1024)
#define DEF_MAXLINE		1001
#define DEF_MAXLOCAL		0
#define DEF_MAXRCPT		1000
#define DEF_TIMEOUT		300
#define DEF_DELIVER_TIMEOUT	300
#define DEF_JUNK_LIMIT		100	/* as Postfix's smtpd_junk_command_limit */
#define DEF_SESSION_TIME	3600
#define DEF_UNIX_MODE		0666
#define DEF_CONTROL		"/run/smtpd/smtpd.sock"
#define SMTPD_VERSION		"1.0"

/* Ranges accepted by the configuration parser. */
#define MAX_PREFORK		1024
#define MAX_CLIENTS		65536
#define MIN_LINE		64
#define MAX_LINE		(1024 * 1024)
#define MAX_RCPT		100000
#define MAX_CMDLIMIT		1000000
#define MAX_DURATION		(7 * 24 * 3600)
#define MAX_MSGSIZE		(1LL << 40)
#define MAX_LISTENERS		64
#define MAX_CMDLIMITS		32
#define MAX_CONF_LINE		4096

/* Protocol constants (RFC 5321, smtpd.8 DIAGNOSTICS). */
#define CMD_LINE_MAX		512	/* RFC 5321 4.5.3.1.4 */
#define CMD_LIMIT_DEFAULT	20	/* per-verb limits without `*` */
#define REPLY_MAX		1024	/* one reply line, CRLF included */
#define REPLY_LINE_MAX		512	/* on the wire: RFC 5321 4.5.3.1.5 */
/*
 * An address escaped for a log line (log_escape: 4 characters for an
 * 8-bit octet, and room for its "..." and NUL): 256 octets of UTF-8
 * whole, as any ASCII one a command line can carry.
 */
#define LOG_ADDR_MAX		(4 * 256 + 16)
#define VERB_MAX		32
#define SID_TIME_DIGITS		11	/* base 32: microseconds, 55 bits */
#define SID_RAND_DIGITS		5	/* base 32: 25 random bits */
#define SESSION_ID_LEN		(SID_TIME_DIGITS + SID_RAND_DIGITS + 1)
/*
 * The recipients of one transaction, each with its separator, fit in
 * SMTPD_RECIPIENTS: Linux's MAX_ARG_STRLEN (32 pages, NUL included) less
 * the 17 octets of "SMTPD_RECIPIENTS=".
 */
#define RCPT_ENV_MAX		(32 * 4096 - 17)
#define MSG_ID_LEN		32
#define DEF_SHUTDOWN_GRACE	30	/* seconds for sessions at SIGTERM */
#define DELIVER_OUT_MAX		4096	/* captured program output */
#define BROKER_SLACK		30	/* seconds a child waits beyond
					   deliver-timeout for the broker */
#define SCORE_ADDR_LEN		64	/* a client address in a slot */
#define BROKER_FIELD_MAX	2048	/* one string of a request */
#define SHUTDOWN_KILL		10	/* then SIGTERM, and this long to end */

/* Listener flags. */
#define LF_TLS			0x0001	/* implicit TLS */
#define LF_STARTTLS		0x0002
#define LF_REQ_STARTTLS		0x0004
#define LF_AUTH			0x0008
#define LF_REQ_AUTH		0x0010
#define LF_AUTH_PLAIN		0x0020
#define LF_PROXY		0x0040
#define LF_LMTP			0x0080
#define LF_METRICS		0x0100	/* HTTP GET /metrics, not SMTP */

#define LISTENER_MAXFD		2	/* `*` and `localhost`: v4 and v6 */
#define MAX_PROXY_FROM		16	/* networks of `proxy-protocol from` */
#define DEF_PROXY_TIMEOUT	5

/* A CIDR network (`proxy-protocol from`). */
struct netaddr {
	int			 na_family;	/* AF_INET, AF_INET6 */
	unsigned char		 na_addr[16];
	int			 na_prefix;
};

struct listener {
	TAILQ_ENTRY(listener)	 l_entry;
	char			*l_addr;	/* as written: IP, *, localhost, /path */
	int			 l_port;	/* 0 for UNIX sockets */
	int			 l_unix;
	mode_t			 l_mode;	/* UNIX socket mode */
	char			*l_owner;	/* UNIX socket owner, or NULL */
	char			*l_group;	/* UNIX socket group, or NULL */
	int			 l_flags;
	int			 l_line;	/* line in the config file */
	int			 l_fds[LISTENER_MAXFD];
	int			 l_nfds;
	int			 l_activated;	/* systemd's sockets: kept */
	char			 l_name[128];	/* "127.0.0.1:25", for logs */
	int			 l_proxy_timeout; /* seconds */
	struct netaddr		 l_proxy_from[MAX_PROXY_FROM];
	int			 l_nproxy_from;	/* 0: any peer */
	char			*l_deliver_user; /* NULL: the global one */
	int			 l_index;	/* place in c_listeners */
};
TAILQ_HEAD(listenerlist, listener);

struct cmdlimit {
	char			 cml_verb[VERB_MAX];
	long long		 cml_max;
};

#define TLSP_TLSv1_2		0x01
#define TLSP_TLSv1_3		0x02
#define TLSP_DEFAULT		(TLSP_TLSv1_2 | TLSP_TLSv1_3)
#define TLS_TICKET_ROTATE	3600	/* seconds: ticket key, ticket life */
#define TLS_TICKETS_SENT	1	/* per handshake (RFC 8446 4.6.1) */

#define AUTHM_LOGIN		0x01
#define AUTHM_PLAIN		0x02
#define AUTHM_DEFAULT		(AUTHM_LOGIN | AUTHM_PLAIN)
#define DEF_AUTH_MAXFAIL	3
#define DEF_AUTH_MAXFAIL_ADDR	10
#define DEF_AUTH_DELAY		1
#define AUTH_TIMEOUT		10	/* seconds for checkpassword */
#define AUTH_FIELD_MAX		512	/* user name, password */

enum auth_backend {
	AUTH_NONE,
	AUTH_PASSWD,		/* `auth passwd FILE` */
	AUTH_CHECKPASSWORD	/* `auth checkpassword PROGRAM` */
};

enum deliver_mode {
	DELIVER_STDOUT,		/* built-in debugging sink (-d, no config) */
	DELIVER_DISCARD,	/* accept and drop */
	DELIVER_PROGRAM		/* pipe to c_deliver_argv */
};

struct authdb;

/* Policy: the address tables, client networks, the policy server. */
#define PT_RCPT_ACCEPT		0	/* accept recipients FILE */
#define PT_SENDER_ACCEPT	1	/* accept senders FILE */
#define PT_SENDER_REJECT	2	/* reject senders FILE */
#define PT_NTABLES		3
#define PN_ACCEPT		0	/* accept clients NETWORK ... */
#define PN_REJECT		1	/* reject clients NETWORK ... */
#define PN_NLISTS		2
#define MAX_CLIENT_NETS		256
#define POLICY_DEFER		0
#define POLICY_DUNNO		1
#define POLICY_STAGE_RCPT	0x01
#define POLICY_STAGE_DATA	0x02
#define DEF_POLICY_TIMEOUT	10
#define BARE_KEEP		0	/* bare-newline: as the client sent it */
#define BARE_NORMALIZE		1	/* a bare LF becomes CRLF */
#define BARE_REJECT		2	/* 550 after the message */
#define MAX_POLICY_TIMEOUT	3600

struct policy_table;

/* Connection, session and transaction limits. */
struct conf_limits {
	int			 lim_prefork;
	int			 lim_prefork_idle; /* seconds, 0: never */
	int			 lim_maxclients;
	int			 lim_maxperaddr;
	int			 lim_maxsessions;
	long long		 lim_maxmsgsize; /* 0: unlimited */
	int			 lim_maxline;
	int			 lim_maxlocal;	/* 0: unlimited */
	int			 lim_maxrcpt;
	int			 lim_timeout;
	int			 lim_shutdown_grace; /* seconds */
	long long		 lim_cmdlimit;	/* -1: no command-limit */
	int			 lim_junk;	/* junk-command-limit, 0: off */
	int			 lim_session;	/* max-session-time, 0: off */
	struct cmdlimit		 lim_cmdlimits[MAX_CMDLIMITS];
	int			 lim_ncmdlimits;
};

/* Delivery: the program, its limits, the spool. */
struct conf_deliver {
	enum deliver_mode	 dl_mode;
	char			*dl_cmd;	/* as written */
	char		       **dl_argv;	/* split, NULL-terminated */
	int			 dl_per_rcpt;	/* uses %{recipient} */
	int			 dl_line;	/* where `deliver` is */
	int			 dl_timeout;
	int			 dl_received;	/* prepend a Received: header */
	char			*dl_spool;
	char			*dl_user;	/* deliver-user; NULL: default */
};

/* TLS: the files as written; tls.c loads tl_ctx from them. */
struct conf_tls {
	char			*tl_cert;
	char			*tl_key;
	char			*tl_ciphers;	/* NULL: OpenSSL's default */
	int			 tl_protocols;	/* TLSP_* bits */
	int			 tl_line;	/* where `tls certificate` is */
	int			 tl_line_ciphers; /* `tls ciphers`, or 0 */
	int			 tl_line_protocols; /* `tls protocols`, or 0 */
	int			 tl_tickets;	/* send session tickets */
	void			*tl_ctx;	/* SSL_CTX * */
};

/* AUTH: the backend; auth.c loads au_db from a passwd file. */
struct conf_auth {
	enum auth_backend	 au_backend;
	char			*au_path;	/* passwd file or program line */
	char		       **au_argv;	/* checkpassword, split */
	int			 au_line;
	int			 au_mechs;	/* AUTHM_* bits */
	int			 au_maxfail;
	int			 au_delay;	/* seconds before each 535 */
	int			 au_maxfail_addr; /* 535s per address, 0: off */
	struct netaddr		 au_exempt[MAX_CLIENT_NETS];
	int			 au_nexempt;	/* never throttled */
	struct authdb		*au_db;
};

/*
 * The addresses of a policy server, tried in turn until one connects
 * (a name with an IPv6 and an IPv4 address, the server on one of them).
 */
#define POLICY_ADDRS	4
struct policy_addrs {
	struct sockaddr_storage	 pa_ss[POLICY_ADDRS];
	socklen_t		 pa_len[POLICY_ADDRS];
	int			 pa_n;		/* 0: look it up at each request */
};

/* Policy: tables (policy.c loads po_table[]), networks, the server. */
struct conf_policy {
	char			*po_table_file[PT_NTABLES];
	int			 po_table_nocase[PT_NTABLES];
	int			 po_table_line[PT_NTABLES];
	struct policy_table	*po_table[PT_NTABLES];
	struct netaddr		 po_clients[PN_NLISTS][MAX_CLIENT_NETS];
	int			 po_nclients[PN_NLISTS];
	int			 po_rcpt_delim;	/* 0: no recipient-delimiter */
	char			*po_server;	/* unix:PATH, inet:HOST:PORT */
	struct policy_addrs	 po_addrs;	/* inet: with chroot, looked up */
	int			 po_timeout;
	int			 po_default;	/* POLICY_DEFER, _DUNNO */
	int			 po_stages;	/* POLICY_STAGE_* bits */
	int			 po_bare;	/* BARE_* */
	struct netaddr		 po_bare_exempt[MAX_CLIENT_NETS];
	int			 po_nbare_exempt; /* clients that get keep */
};

struct config {
	char			*c_file;	/* NULL: built-in default */
	char			*c_hostname;
	char			*c_banner;
	char			*c_user;	/* NULL: the default */
	int			 c_user_line;	/* where `user` is, or 0 */
	int			 c_chroot_line;	/* where `chroot` is, or 0 */
	int			 c_spool_line;	/* where `spool` is, or 0 */
	char			*c_chroot;
	char			*c_pidfile;	/* NULL: the default */
	int			 c_pidfile_line; /* where `pidfile` is, or 0 */
	char			*c_control;	/* NULL: DEF_CONTROL */
	int			 c_smtputf8;
	int			 c_batch;	/* children in SCHED_BATCH */
	int			 c_chunking;	/* RFC 3030 CHUNKING, BDAT */
	int			 c_enhanced;	/* RFC 2034 status codes */
	struct conf_limits	 c_lim;
	struct conf_deliver	 c_dlv;
	struct conf_tls		 c_tls;
	struct conf_auth	 c_auth;
	struct conf_policy	 c_pol;
	struct listenerlist	 c_listeners;
	int			 c_nlisteners;
};

/* The envelope of one transaction and what delivery needs to know. */
struct envelope {
	char			*e_sender;	/* normalised; "" null sender */
	char		       **e_rcpts;	/* normalised, in RCPT order */
	size_t			 e_nrcpts;
	size_t			 e_rcptcap;
	size_t			 e_rcptlen;	/* sum of (length + 1) */
	int			 e_body8;	/* BODY=8BITMIME */
	int			 e_smtputf8;
	char			 e_id[MSG_ID_LEN];
	char			*e_prepend;	/* policy PREPEND headers, each
						   ending in CRLF, or NULL */
	char			 e_instance[MSG_ID_LEN]; /* policy.c's name
						   of the message; "" at reset */
};

struct client {
	char			 ci_addr[64];	/* numeric address, "" if none */
	char			 ci_port[8];
	char			 ci_helo[CMD_LINE_MAX];
	char			 ci_user[AUTH_FIELD_MAX]; /* authenticated user */
	char			 ci_tls[128];	/* "TLSv1.3 CIPHER" or "" */
	int			 ci_esmtp;
	int			 ci_lmtp;
	int			 ci_listener;	/* l_index of its listener */
	char			 ci_sid[SESSION_ID_LEN];
};

/*
 * The spool of one message: memory up to a limit, then an unlinked
 * file in the spool directory.  Holds the dot-unstuffed content.
 */
struct spool {
	char			*sp_buf;
	size_t			 sp_len;
	size_t			 sp_cap;
	int			 sp_fd;		/* -1 while in memory */
	long long		 sp_size;	/* total octets, kept or not */
	int			 sp_error;	/* a write failed */
	const char		*sp_dir;
	const char		*sp_sid;	/* the session's, for its log lines */
};

/*
 * The content rules of one message (content.c), fed by DATA after dot
 * removal and by BDAT chunks alike: line length, bare CR and LF.
 */
struct content {
	struct spool		*ct_spool;	/* where kept octets go */
	size_t			 ct_maxline;	/* octets with CRLF */
	int			 ct_bare;	/* BARE_* for this client */
	size_t			 ct_linelen;	/* of the current line */
	int			 ct_cr;		/* the last octet was a CR */
	int			 ct_toolong;	/* a line passed ct_maxline */
	int			 ct_sawbare;	/* a bare CR or LF came */
	int			 ct_stop;	/* refused: keep nothing more */
	int			 ct_inplace;	/* the octets are spooled already */
};

/* addr.c */
#define ADDR_OK			0
#define ADDR_NULL		1	/* <> */
#define ADDR_EMPTY		2	/* a bare "": parses, names nothing */
#define ADDR_BAD		(-1)
int		 addr_parse(const char *, char *, size_t, size_t *,
		    const char **);

/* auth.c */
#define AUTH_OK			0
#define AUTH_FAILED		1	/* 535 */
#define AUTH_TEMPFAIL		2	/* 454 */
int		 auth_config_load(struct config *);
void		 auth_config_free(struct config *);
int		 auth_b64_decode(const char *, unsigned char *, size_t,
		    size_t *);
int		 auth_plain_split(unsigned char *, size_t, const char **,
		    const char **);
pid_t		 auth_left_behind(int *);
int		 auth_check(const struct config *, const char *,
		    const char *);

/* broker.c */
#define BR_CLIENT		1	/* master: a child's socket */
#define BR_DELIVER		2	/* child: run the program */
#define BR_RESULT		3	/* broker: how it ended */
#define BR_AUTH			4	/* child: check these credentials */
#define BR_VERDICT		5	/* broker: AUTH_OK, _FAILED, _TEMPFAIL */
#define BR_FORGET		6	/* child: the session ended (no answer) */
#define BR_LEFT			7	/* AUTH worker: ends; its program is stuck */
#define BMF_BODY8		0x01
#define BMF_SMTPUTF8		0x02

/*
 * A delivery request: with it the message as a descriptor, and the
 * envelope after this header in the same datagram when it has no more
 * than BROKER_ENV_INLINE octets, in a file of its own (a second
 * descriptor) when it is larger.
 */
#define BROKER_ENV_INLINE	2048
struct broker_msg {
	uint32_t		 bm_type;
	uint32_t		 bm_id;
	int32_t			 bm_listener;	/* l_index */
	uint32_t		 bm_flags;	/* BMF_* */
	uint32_t		 bm_nrcpts;
	uint32_t		 bm_envlen;	/* octets of the envelope */
	int64_t			 bm_startby;	/* not run after: util_now_ms() */
};

/*
 * The answer: the run as exec.c saw it.  br_text holds the output, then
 * the error output; the datagram ends with them.
 */
struct broker_result {
	uint32_t		 br_type;
	uint32_t		 br_id;
	int32_t			 br_exited;
	int32_t			 br_status;	/* from waitpid */
	int32_t			 br_timedout;
	int32_t			 br_error;	/* errno: nothing ran */
	uint32_t		 br_outlen;
	uint32_t		 br_errlen;
	char			 br_text[2 * DELIVER_OUT_MAX];
};
#define BROKER_RESULT_HDR	offsetof(struct broker_result, br_text)

/* AUTH: user and password, NUL-terminated, wiped after use. */
struct broker_auth {
	uint32_t		 ba_type;
	uint32_t		 ba_id;
	char			 ba_user[AUTH_FIELD_MAX];
	char			 ba_pass[AUTH_FIELD_MAX];
};

struct broker_verdict {
	uint32_t		 bv_type;
	uint32_t		 bv_id;
	int32_t			 bv_result;
};

/* The envelope of a request, parsed in place. */
struct broker_env {
	const char		*be_sender;
	const char		*be_addr;
	const char		*be_port;
	const char		*be_helo;
	const char		*be_tls;
	const char		*be_id;
	char		       **be_rcpts;
	size_t			 be_nrcpts;
};

struct exec_ident;
int		 broker_env_parse(char *, size_t, size_t, struct broker_env *,
		    const char **);
char		*broker_env_encode(const struct client *,
		    const struct envelope *, char *const *, size_t, size_t *);
int		 broker_msg_check(const struct broker_msg *, size_t, int, int,
		    const char **);
const char	*broker_msg_late(const struct broker_msg *, int, long long);
const char	*broker_msg_file(int, uid_t);
int		 broker_ident(const struct config *, const struct listener *,
		    struct exec_ident *, char *, size_t);
void		 broker_ident_free(struct exec_ident *);
int		 broker_pass(int, int);
void		 broker_main(struct config *, int, int,
		    const struct exec_ident *);
void		 broker_attach(int);
int		 broker_socket(void);
pid_t		 broker_local(struct config *);
int		 broker_local_end(pid_t);
int		 broker_deliver(const struct client *, const struct envelope *,
		    char *const *, size_t, int, int, struct broker_result *);
int		 broker_auth(const char *, const char *, int);
void		 broker_forget(void);

/* config.c */
struct config	*config_default(void);
struct config	*config_load(const char *);
struct config	*config_builtin(void);
void		 config_print(FILE *, const struct config *);
void		 config_free(struct config *);
long long	 config_cmdlimit(const struct config *, const char *);

/* content.c */
void		 content_init(struct content *, struct spool *, size_t, int);
void		 content_count(struct content *, size_t);
void		 content_write(struct content *, const char *, size_t);
void		 content_end(struct content *);
void		 content_scan(struct content *, const char *, size_t);
int		 content_inplace_ok(const struct content *);

/* deliver.c */
enum placeholder {		/* %{...} of the deliver command */
	PH_SENDER,
	PH_RECIPIENTS,
	PH_RECIPIENT,
	PH_CLIENT,
	PH_HELO,
	PH_USER,
	PH_ID,
	PH_COUNT
};
int		 deliver_placeholder(const char *, size_t);
const char	*deliver_placeholder_name(int);
/*
 * A reply of the delivery; LMTP stops on -1 (the client cannot get it),
 * -2 (the session's time is up: no new run starts) or -3 (the reply was
 * a 421: the connection closes after it).  With a NULL reply,
 * SMTP's runs per recipient ask whether another may start (0) or not.
 */
typedef int	(*deliver_reply_cb)(void *, const char *);
void		 spool_init(struct spool *, const char *);
int		 spool_write(struct spool *, const void *, size_t);
char		*spool_reserve(struct spool *, size_t, size_t *);
void		 spool_commit(struct spool *, size_t);
void		 spool_reset(struct spool *);
void		 spool_clear(struct spool *, size_t);
int		 spool_append(int, const void *, size_t);
int		 spool_probe(const char *);
char		**deliver_argv(const struct config *, const struct client *,
		    const struct envelope *, char *const *, size_t);
char		**deliver_envp(const struct client *, const struct envelope *,
		    char *const *, size_t);
void		 deliver_free(char **);
int		 deliver_message(const struct config *, const struct client *,
		    const struct envelope *, struct spool *, deliver_reply_cb,
		    void *);

/* exec.c */
/* Who a program runs as; ei_change 0: as we are (not started as root). */
struct exec_ident {
	int			 ei_change;
	uid_t			 ei_uid;
	gid_t			 ei_gid;
	gid_t			*ei_groups;
	int			 ei_ngroups;
	char			*ei_home;	/* its cwd; "/" if unusable */
	char			*ei_name;	/* for messages */
};

/* What to start: argv[0] is an absolute path; -1 fds are /dev/null. */
struct exec_spec {
	char *const		*es_argv;
	char *const		*es_envp;
	int			 es_stdin;
	int			 es_fd3;	/* -1: no descriptor 3 */
	int			 es_capture;	/* stdout, stderr to pipes */
	int			 es_timeout;	/* ms; 0: none */
	const struct exec_ident	*es_ident;	/* NULL: as we are */
};

/* One program output stream: the first DELIVER_OUT_MAX octets are kept. */
struct exec_out {
	int			 eo_fd;
	size_t			 eo_len;
	char			 eo_buf[DELIVER_OUT_MAX];
};

struct exec_job {
	pid_t			 ej_pid;
	int			 ej_pidfd;	/* -1: poll waitpid instead */
	int			 ej_errfd;	/* execve()'s errno, or EOF */
	long long		 ej_start;	/* monotonic ms */
	long long		 ej_deadline;	/* 0: none */
	int			 ej_exited;
	int			 ej_status;	/* from waitpid */
	int			 ej_timedout;
	long long		 ej_killed;	/* ms of the kill; 0: none */
	int			 ej_execfailed;
	int			 ej_error;	/* errno: no start, no execve */
	struct exec_out		 ej_out;
	struct exec_out		 ej_err;
};
struct pollfd;
int		 exec_setuser(const struct exec_ident *);
void		 exec_priority_raise(void);
void		 exec_priority_drop(void);
void		 exec_init(struct exec_job *);
int		 exec_start(struct exec_job *, const struct exec_spec *);
void		 exec_pollfds(const struct exec_job *, struct pollfd *);
int		 exec_timeout(const struct exec_job *);
int		 exec_done(struct exec_job *, const struct pollfd *, long long);
int		 exec_wait(struct exec_job *);
void		 exec_close_fds(struct exec_job *);
int		 exec_stuck(const struct exec_job *, long long);
void		 exec_drop_output(struct exec_job *);

/* load.c */
struct config	*load_config(const char *);
void		 load_release(struct config *);

/* log.c */
void		 log_init(int, int);
void		 log_setverbose(int);
int		 log_getverbose(void);
void		 log_procinit(const char *);
#define LOG_F_ERRNO	0x01	/* the text of errno appended */
void		 log_at(int, int, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
void		 log_fatal(int, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3), __noreturn__));
/* The names of OpenBSD's log.h: syslog(3) priorities; x: without errno. */
#define log_warn(...)	log_at(LOG_WARNING, LOG_F_ERRNO, __VA_ARGS__)
#define log_warnx(...)	log_at(LOG_WARNING, 0, __VA_ARGS__)
#define log_info(...)	log_at(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...)	log_at(LOG_DEBUG, 0, __VA_ARGS__)
#define fatal(...)	log_fatal(LOG_F_ERRNO, __VA_ARGS__)
#define fatalx(...)	log_fatal(0, __VA_ARGS__)
const char	*log_escape(const char *, size_t, char *, size_t);

/* metrics.c */
#define METRICS_REQ_MAX		8192	/* request line and headers */
#define METRICS_TIMEOUT		5	/* seconds for the whole request */
#define METRICS_MAX_BUSY	4	/* scrapes at once, over max-clients */
void		 metrics_serve(int, const char *);

/* net.c */
int		 net_match(const struct netaddr *, int,
		    const struct sockaddr *);
int		 net_parse(const char *, struct netaddr *);
int		 net_sockaddr(const char *, struct sockaddr_storage *);
void		 net_client_key(const char *, char *, size_t);
int		 net_listen_hosts(const char *, const char *[2]);

/* policy.c */
struct policy_conn;
int		 policy_config_load(struct config *);
void		 policy_config_free(struct config *);
int		 policy_client(const struct config *, const struct client *,
		    char *, size_t);
int		 policy_sender(const struct config *, const char *, char *,
		    size_t);
int		 policy_bare_newline(const struct config *,
		    const struct client *);
struct policy_conn *policy_open(const struct config *);
void		 policy_close(struct policy_conn *);
int		 policy_rcpt(struct policy_conn *, const struct config *,
		    const struct client *, struct envelope *, const char *,
		    char *, size_t);
int		 policy_data(struct policy_conn *, const struct config *,
		    const struct client *, struct envelope *, long long,
		    char *, size_t);

/* proxy.c */
#define PROXY_MAX_LEN		(16 + 4096)	/* longest v2 header taken */

struct proxy_info {
	int			 pi_version;	/* 1 or 2 */
	int			 pi_local;	/* no address: keep the peer's */
	struct sockaddr_storage	 pi_src;
	socklen_t		 pi_srclen;
	struct sockaddr_storage	 pi_dst;
	socklen_t		 pi_dstlen;
};
int		 proxy_parse(const unsigned char *, size_t,
		    struct proxy_info *, const char **);

/* control.c */
#define CONTROL_MAX_CLIENTS	4
#define CONTROL_TIMEOUT		5	/* seconds for a whole exchange */
typedef void	(*control_status_cb)(FILE *, int);
int		 control_open(const char *, int, control_status_cb);
void		 control_reopen(const char *);
void		 control_close(int);
int		 control_fd(void);
int		 control_listen_fd(long long);
void		 control_accept(void);
int		 control_client_fd(int, short *);
void		 control_client_io(int);
long long	 control_expire(long long);
void		 control_print_sessions(FILE *, int);
int		 control_query(const char *, int);

/*
 * score.c.  To count an event: an SC_ value here, its metric name and
 * label in score.c's score_descs[] (a family's entries side by side, the
 * first with the help text), and score_count(SC_...) where it happens.
 */
enum score_counter {
	SC_CONN_ACCEPTED,
	SC_CONN_MAXCLIENTS,
	SC_CONN_PERADDR,
	SC_CONN_PROXY,
	SC_SESS_QUIT,
	SC_SESS_DISCONNECT,
	SC_SESS_TIMEOUT,
	SC_SESS_CLOSED,
	SC_SESS_SHUTDOWN,
	SC_SESS_REJECTED,
	SC_SESS_ABORTED,
	SC_MSG_2XX,
	SC_MSG_4XX,
	SC_MSG_5XX,
	SC_RECEIVED,
	SC_DLV_0,
	SC_DLV_65,
	SC_DLV_67,
	SC_DLV_68,
	SC_DLV_69,
	SC_DLV_75,
	SC_DLV_77,
	SC_DLV_OTHER,
	SC_DLV_SIGNAL,
	SC_DLV_TIMEOUT,
	SC_DLV_EXEC,
	SC_DLV_NONE,
	SC_TLS_OK,
	SC_TLS_FAILED,
	SC_AUTH_OK,
	SC_AUTH_FAILED,
	SC_AUTH_TEMPFAIL,
	SC_POLICY_DUNNO,
	SC_POLICY_PREPEND,
	SC_POLICY_REFUSE,
	SC_POLICY_ERROR,
	SC_RELOAD_OK,
	SC_RELOAD_FAILED,
	SC_UPGRADE_OK,
	SC_UPGRADE_FAILED,
	SC_CHILD_STARTED,
	SC_CHILD_FAILED,
	/* Histogram buckets (the last one is +Inf) and sums. */
#define SC_DLV_TIME_NB		12
	SC_DLV_TIME_B0,
	SC_DLV_TIME_SUM = SC_DLV_TIME_B0 + SC_DLV_TIME_NB + 1,
#define SC_SIZE_NB		9
	SC_SIZE_B0,
	SC_SIZE_SUM = SC_SIZE_B0 + SC_SIZE_NB + 1,
	SC_NCOUNTERS
};
/* What a child is doing, in its slot. */
enum score_state {
	SS_IDLE,
	SS_INIT,
	SS_HELO,
	SS_MAIL,
	SS_RCPT,
	SS_DATA,
	SS_METRICS,
	SS_NSTATES
};
/* score_delivery(): runs without an exit status. */
#define SD_SIGNAL		(-1)
#define SD_TIMEOUT		(-2)
#define SD_EXEC			(-3)	/* the program did not start */
#define SD_NONE			(-4)	/* no message to give it */
struct score_view {
	int			 sv_pid;
	int			 sv_state;
	long long		 sv_since;
	unsigned long long	 sv_bytes;
	unsigned int		 sv_msgs;
	char			 sv_addr[SCORE_ADDR_LEN];
};
void		 score_init(int);
int		 score_fd(void);
long long	 score_started(void);
void		 score_add(enum score_counter, unsigned long long);
void		 score_count(enum score_counter);
int		 score_claim(void);
void		 score_release(int);
void		 score_child(int);
void		 score_forget(void);
void		 score_mapped(const void **, size_t *);
int		 score_ended(uint32_t *);
int		 score_done(int, pid_t, uint32_t *);
void		 score_notify(int, int);
void		 score_session(const char *, int);
void		 score_client(const char *);
int		 score_sessions_of(int, const char *);
void		 score_state(int);
void		 score_received(size_t);
void		 score_message(long long);
void		 score_reply(const char *);
void		 score_delivery(int, long long);
unsigned long long score_get(enum score_counter);
int		 score_slot(int, struct score_view *);
int		 score_nslots(void);
const char	*score_state_name(int);
void		 score_print_totals(FILE *);
void		 score_print_metrics(FILE *);

/* session.c */
extern volatile sig_atomic_t session_quit;	/* SIGTERM in a child */
extern int	(*session_peer_check)(const char *);
extern int	(*session_auth_check)(const char *);
extern void	(*session_auth_ended)(const char *, int);
void		 session_sigmask(const sigset_t *);
void		 session_interrupt(void);
void		 session_run(const struct config *, const struct listener *,
		    int, const struct sockaddr *, socklen_t);
const char	*session_status_code(int, const char *);

/* tls.c */
struct tls_conn;
int		 tls_config_load(struct config *);
void		 tls_config_free(struct config *);
struct tls_conn	*tls_accept(void *, int, int, const char *,
		    int (*)(struct pollfd *, int));
ssize_t		 tls_read(struct tls_conn *, void *, size_t);
ssize_t		 tls_read_wait(struct tls_conn *, void *, size_t);
ssize_t		 tls_write(struct tls_conn *, const void *, size_t);
int		 tls_pending(struct tls_conn *);
int		 tls_want(struct tls_conn *);
const char	*tls_info(struct tls_conn *);
void		 tls_close(struct tls_conn *);
void		 tls_ticket_rotate(void);
int		 tls_ticket_export(long long);
long long	 tls_ticket_import(int, pid_t);

/* systemd.c */
#define STATUS_INTERVAL		10	/* seconds between STATUS= updates */
void		 systemd_init(void);
int		 systemd_listen_fds(int *);
const char	*systemd_notify_socket(void);
void		 systemd_notify(const char *, ...)
		    __attribute__((__format__ (printf, 1, 2)));

/* upgrade.c */
#define UPGRADE_TIMEOUT		30	/* seconds for the new master */
#define UPGRADE_MAXFD		(MAX_LISTENERS * LISTENER_MAXFD)
struct upgrade_fds {
	int			 uf_listen[UPGRADE_MAXFD];
	int			 uf_activated[UPGRADE_MAXFD];
	int			 uf_nlisten;
	int			 uf_control;	/* -1: none */
	int			 uf_score;	/* -1: none */
	int			 uf_tickets;	/* TLS ticket keys; -1: none */
	int			 uf_ready;	/* -1: no upgrade */
	char			 uf_pidfile[1025]; /* the old one's; "" none */
};
void		 upgrade_save(int, char **);
pid_t		 upgrade_exec(struct upgrade_fds *, int *);
void		 upgrade_inherit(struct upgrade_fds *);
void		 upgrade_ready(struct upgrade_fds *);

/* channel.c: the messages between the master and a child. */
#define CHAN_PAYLOAD_MAX	512
#define CHAN_ANSWER_MS		(10 * 1000)	/* a child waits this long */
enum chan_type {
	CHAN_HANDOFF = 1,	/* master: a client socket, struct handoff */
	CHAN_IDLE,		/* child: the session ended */
	CHAN_PEER,		/* child: the address a PROXY header named */
	CHAN_PEER_ANSWER,	/* master: 1 within max-clients-per-address */
	CHAN_AUTH_ASK,		/* child: may this address try AUTH? */
	CHAN_AUTH_ANSWER,	/* master: 1 yes, 0 throttled */
	CHAN_AUTH_FAILED,	/* child: a 535 to this address */
	CHAN_AUTH_DONE,		/* child: the check it asked for ended */
	CHAN_NTYPES
};
struct chan_hdr {
	uint16_t		 ch_type;
	uint16_t		 ch_len;	/* of the payload */
	uint32_t		 ch_id;		/* an answer's is the question's */
};
struct chan_msg {
	struct chan_hdr		 cm_hdr;
	unsigned char		 cm_data[CHAN_PAYLOAD_MAX + 1];
	int			 cm_fd;		/* CHAN_HANDOFF's socket */
};
/* What the master sends with each client socket. */
struct handoff {
	int			 h_listener;	/* index in c_listeners */
	int			 h_fd;		/* index in l_fds */
	socklen_t		 h_peerlen;
	struct sockaddr_storage	 h_peer;
};
const char	*chan_name(int);
ssize_t		 chan_encode(unsigned char *, size_t, int, uint32_t,
		    const void *, size_t);
int		 chan_decode(const unsigned char *, size_t, struct chan_msg *,
		    const char **);
int		 chan_send(int, int, uint32_t, const void *, size_t, int);
int		 chan_recv(int, struct chan_msg *);
int		 chan_ask(int, int, const char *, int, int, struct chan_msg *);
void		 chan_drop(struct chan_msg *, const char *);

/* anvil.c: AUTH failures per client address, in the master. */
#define ANVIL_SLOTS		1024
#define ANVIL_WINDOW_MS		(10 * 60 * 1000LL)
#define ANVIL_KEY_LEN		64
int		 anvil_key(const char *, char *, size_t);
int		 anvil_throttled(const char *, int, long long);
int		 anvil_begin(const char *, int, long long);
void		 anvil_end(const char *, long long);
void		 anvil_failed(const char *, int, long long);
void		 anvil_clear(void);

/* os.c: the Linux-only calls, ENOSYS elsewhere */
int		 os_memfd(const char *);
int		 os_tmpfile(const char *);
int		 os_pidfd_open(pid_t);
int		 os_pidfd_alive(int);
int		 os_sched_default(void);
int		 os_sched_batch(void);
int		 os_nodump(void);
int		 os_mseal(void *, size_t);
int		 os_sandbox(pid_t, const void *, size_t);
int		 os_sandbox_available(void);
int		 os_landlock(void);
int		 os_landlock_available(void);

/* progs.c */
void		 progs_new(size_t);
void		 progs_forked(pid_t);
void		 progs_drop(void);
void		 progs_started(pid_t);
void		 progs_ended(pid_t);
int		 progs_broker_gone(pid_t);
void		 progs_timedout(pid_t);

/* util.c */
void		*xmalloc(size_t);
void		*xcalloc(size_t, size_t);
void		*xreallocarray(void *, size_t, size_t);
char		*xstrdup(const char *);
int		 xasprintf(char **, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
void		 util_sockaddr_str(const struct sockaddr *, socklen_t,
		    char *, size_t, char *, size_t);
void		 util_session_id(char *, size_t);
int		 util_has_ctl(const char *);
int		 util_arg_unsafe(const char *);
long long	 util_now_ms(void);
int		 util_ms_left(long long);
int		 util_fd_above(int);
struct sockaddr_un;
struct stat;
void		 util_signals(void (*)(int), int, ...);
extern unsigned int util_signals_gen;
void		 util_sigunblock(void);
int		 util_sockaddr_un(struct sockaddr_un *, const char *);
int		 util_unlink_stale(const struct sockaddr_un *, char *, size_t);
int		 util_unix_path_is(int, const char *);
char		*util_unix_bound_path(int);
int		 util_wait(int, short, long long);
int		 util_open_regular(const char *, struct stat *);
#define UTIL_PROBE_NOTDIR	251	/* a probe's answer: no directory */
extern long long util_probe_wait_ms;
int		 util_probe(const char *, const char *,
		    const struct exec_ident *, int (*)(const char *), char *,
		    size_t);
int		 util_exec_check(const char *, const char *,
		    const struct exec_ident *, char *, size_t);

#endif /* SMTPD_H */
