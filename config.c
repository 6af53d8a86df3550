/*
 * config.c: smtpd.conf.  The built-in defaults, the parser (a sorted
 * keyword table, every error reported as file:line), the canonical
 * printout of `smtpd -n`, and the splitter of the delivery command.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netdb.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "smtpd.h"
#include "internal.h"

#define CONF_MAXWORDS	128	/* words on one line */
#define CONF_ESCLEN	100	/* a value quoted in an error message */
#define HOSTNAME_MAX	253
#define BANNER_MAX	200
#define USER_MAX	32
#define CONF_PATH_MAX	1024
#define MODE_MAX	0777
#define CIPHERS_MAX	1024
#define MAX_AUTH_MAXFAIL 1000
#define MAX_AUTH_DELAY	60	/* seconds: longer only ties up a child */
#define SUBFORM_MAX	64	/* "auth failure-delay" */

#define HOST_CHARS	"abcdefghijklmnopqrstuvwxyz" \
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-."
#define USER_CHARS	HOST_CHARS "_"
/* Words printed without quotes by config_print. */
#define PLAIN_CHARS	USER_CHARS "/:@+,=%*"

enum kw_type {
	KW_INT,		/* int in k_min..k_max */
	KW_SIZE,	/* long long, K/M/G suffix */
	KW_DURATION,	/* int seconds, s/m/h suffix */
	KW_BOOL,	/* int, yes|no */
	KW_STRING,	/* char *, checked by k_check */
	KW_FUNC,	/* a special form: k_func parses, k_print prints */
	KW_SUB		/* sub-forms named by the second word: subforms[] */
};

#define KF_REPEAT	0x01	/* may appear on several lines */
#define KF_QUOTE	0x02	/* a text: printed quoted */
#define KF_QUIET	0x04	/* printed by the printer of another one */


enum {
	RL_OK,
	RL_LONG,
	RL_NUL,
	RL_EOF
};

struct parse;

/*
 * The words of `tls protocols`, `auth mechanisms` and `policy-stages`
 * with their bits, of `bare-newline` and `policy-default` with their
 * values.
 */
struct confword {
	const char	*cw_name;
	int		 cw_value;
};

struct keyword;
/* A special form's parser (k_func) and a directive's printer (k_print). */
typedef int	 kw_parse_fn(struct parse *, int, char **);
typedef void	 kw_print_fn(FILE *, const struct config *,
		    const struct keyword *);

struct keyword {
	const char	*k_name;
	enum kw_type	 k_type;
	size_t		 k_off;		/* in struct config */
	size_t		 k_count;	/* a list's int count, ditto */
	long long	 k_min;
	long long	 k_max;
	int		 k_flags;
	const char	*k_usage;	/* the argument, for messages */
	const struct confword *k_words;	/* the words it takes, NULL ends */
	long long	 k_def;		/* the default of a number or word */
	const char	*k_text;	/* the default of a string, or NULL */
	const char	*k_unset;	/* the start's default, for -n */
	const char	*(*k_check)(const char *);
	kw_parse_fn	*k_func;
	kw_print_fn	*k_print;
};

static const char *config_check_hostname(const char *);
static const char *config_check_banner(const char *);
static const char *config_check_user(const char *);
static const char *config_check_deliver_user(const char *);
static const char *config_check_path(const char *);
static const char *config_check_socket(const char *);
static const char *config_check_control(const char *);
static void	 config_listener_free(struct listener *);
static const char *config_check_ciphers(const char *);
static kw_parse_fn config_auth_parse, config_bits_parse, config_choice_parse,
    config_nets_parse, config_tlscert_parse, config_cmdlimit_parse,
    config_deliver_parse, config_listen_parse, config_table_parse,
    config_policy_parse, config_delim_parse;
static kw_print_fn config_backend_print, config_bits_print,
    config_choice_print, config_netlist_print, config_tlscert_print,
    config_cmdlimit_print, config_deliver_print, config_table_print,
    config_policy_print, config_delim_print;

/* Each list ends with a NULL name. */
static const struct confword tls_protocols[] = {
	{ "TLSv1.2", TLSP_TLSv1_2 }, { "TLSv1.3", TLSP_TLSv1_3 }, { NULL, 0 }
};
/* SASL names (RFC 4422 3.1) are upper case: matched as they are. */
static const struct confword auth_mechs[] = {
	{ "LOGIN", AUTHM_LOGIN }, { "PLAIN", AUTHM_PLAIN }, { NULL, 0 }
};
static const struct confword policy_stages[] = {
	{ "rcpt", POLICY_STAGE_RCPT }, { "data", POLICY_STAGE_DATA },
	{ NULL, 0 }
};
static const struct confword policy_defaults[] = {
	{ "defer", POLICY_DEFER }, { "dunno", POLICY_DUNNO }, { NULL, 0 }
};
static const struct confword bare_modes[] = {
	{ "keep", BARE_KEEP }, { "normalize", BARE_NORMALIZE },
	{ "reject", BARE_REJECT }, { NULL, 0 }
};
static const struct confword table_forms[] = {
	{ "accept recipients", PT_RCPT_ACCEPT },
	{ "accept senders", PT_SENDER_ACCEPT },
	{ "reject senders", PT_SENDER_REJECT }, { NULL, 0 }
};
/* The listener options without an argument; require-X implies X. */
static const struct confword listen_flags[] = {
	{ "tls", LF_TLS }, { "starttls", LF_STARTTLS },
	{ "require-starttls", LF_STARTTLS | LF_REQ_STARTTLS },
	{ "auth", LF_AUTH }, { "require-auth", LF_AUTH | LF_REQ_AUTH },
	{ "auth-plaintext", LF_AUTH_PLAIN }, { "lmtp", LF_LMTP },
	{ "metrics", LF_METRICS }, { NULL, 0 }
};

/*
 * A row of the tables below: the typed directives store their one value
 * at k_off, and start as k_def (k_text for a string); the word lists and
 * the networks are parsed and printed by one function each, which finds
 * the member by k_off (and k_count).
 */
#define OFF(m)		offsetof(struct config, m)
#define K_VALUE(n, t, fl, m, lo, hi, def, u) \
	{ .k_name = (n), .k_type = (t), .k_flags = (fl), .k_off = OFF(m), \
	  .k_min = (lo), .k_max = (hi), .k_def = (def), .k_usage = (u) }
#define K_INT(n, m, lo, hi, def) \
	K_VALUE(n, KW_INT, 0, m, lo, hi, def, "N")
#define K_DURATION(n, m, lo, hi, def) \
	K_VALUE(n, KW_DURATION, 0, m, lo, hi, def, "DURATION")
#define K_BOOL(n, m, def)	K_VALUE(n, KW_BOOL, 0, m, 0, 1, def, "yes|no")
#define K_TEXTS(n, fl, m, u, chk, def) \
	{ .k_name = (n), .k_type = KW_STRING, .k_flags = (fl), \
	  .k_off = OFF(m), .k_usage = (u), .k_check = (chk), .k_text = (def) }
#define K_STRING(n, m, u, chk)	K_TEXTS(n, 0, m, u, chk, NULL)
/*
 * A string whose default the start decides (a fallback account, none with
 * -d): -n prints it as a comment, which reads back as nothing.
 */
#define K_LATE(n, m, u, chk, note) \
	{ .k_name = (n), .k_type = KW_STRING, .k_off = OFF(m), .k_usage = (u), \
	  .k_check = (chk), .k_unset = (note) }
#define K_TEXT(n, m, u, chk, def) \
	K_TEXTS(n, KF_QUOTE, m, u, chk, def)
#define K_PARSER(n, fl, u, fn, pr) \
	{ .k_name = (n), .k_type = KW_FUNC, .k_flags = (fl), .k_usage = (u), \
	  .k_func = (fn), .k_print = (pr) }
#define K_FUNC(n, fl, fn, pr)	K_PARSER(n, fl, NULL, fn, pr)
#define K_FORM(n, u, fn, pr)	K_PARSER(n, 0, u, fn, pr)
/* accept|reject ... FILE [ignore-case]: the index by config_table_index. */
#define K_TABLE(n) \
	K_FORM(n, "FILE [ignore-case]", config_table_parse, config_table_print)
#define K_SUB(n, u) \
	{ .k_name = (n), .k_type = KW_SUB, .k_flags = KF_REPEAT, \
	  .k_usage = (u) }
#define K_WORDS(n, fl, m, w, u, def, fn, pr) \
	{ .k_name = (n), .k_type = KW_FUNC, .k_off = OFF(m), .k_flags = (fl), \
	  .k_usage = (u), .k_words = (w), .k_def = (def), .k_func = (fn), \
	  .k_print = (pr) }
/* One word or more of w, their bits or'ed into the int m. */
#define K_BITS(n, fl, m, w, u, def) \
	K_WORDS(n, fl, m, w, u, def, config_bits_parse, config_bits_print)
/* One word of w: its value into the int m. */
#define K_CHOICE(n, fl, m, w, u, def) \
	K_WORDS(n, fl, m, w, u, def, config_choice_parse, config_choice_print)
/* Networks added to the array m (MAX_CLIENT_NETS) of *cnt of them. */
#define K_NETS(n, m, cnt) \
	{ .k_name = (n), .k_type = KW_FUNC, .k_off = OFF(m), \
	  .k_count = OFF(cnt), .k_flags = KF_REPEAT, \
	  .k_usage = "NETWORK ...", .k_func = config_nets_parse, \
	  .k_print = config_netlist_print }

/*
 * The sub-forms of `accept`, `auth`, `reject` and `tls`, named by their
 * first two words, in strcmp order.  Each may appear once (the client
 * networks: on several lines); printed in this order.
 */
static const struct keyword subforms[] = {
	K_NETS("accept clients", c_pol.po_clients[PN_ACCEPT],
	    c_pol.po_nclients[PN_ACCEPT]),
	K_TABLE("accept recipients"),
	K_TABLE("accept senders"),
	K_FORM("auth checkpassword", "\"PROGRAM ARGS...\"", config_auth_parse,
	    config_backend_print),
	K_NETS("auth exempt", c_auth.au_exempt, c_auth.au_nexempt),
	K_DURATION("auth failure-delay", c_auth.au_delay, 0, MAX_AUTH_DELAY,
	    DEF_AUTH_DELAY),
	K_INT("auth max-failures", c_auth.au_maxfail, 1, MAX_AUTH_MAXFAIL,
	    DEF_AUTH_MAXFAIL),
	K_INT("auth max-failures-per-address", c_auth.au_maxfail_addr, 0,
	    MAX_CLIENTS, DEF_AUTH_MAXFAIL_ADDR),
	K_BITS("auth mechanisms", 0, c_auth.au_mechs, auth_mechs, "M ...",
	    AUTHM_DEFAULT),
	K_FORM("auth passwd", "FILE", config_auth_parse, config_backend_print),
	K_NETS("reject clients", c_pol.po_clients[PN_REJECT],
	    c_pol.po_nclients[PN_REJECT]),
	K_TABLE("reject senders"),
	K_FORM("tls certificate", "FILE key FILE", config_tlscert_parse,
	    config_tlscert_print),
	K_TEXT("tls ciphers", c_tls.tl_ciphers, "\"LIST\"",
	    config_check_ciphers, NULL),
	K_BITS("tls protocols", 0, c_tls.tl_protocols, tls_protocols, "P ...",
	    TLSP_DEFAULT),
	K_BOOL("tls tickets", c_tls.tl_tickets, 1)
};
#define NSUBFORMS	NITEMS(subforms)

/* In strcmp order: looked up with bsearch, printed in this order. */
static const struct keyword keywords[] = {
	K_SUB("accept", "recipients|senders FILE [ignore-case], "
	    "accept clients NETWORK ..."),
	K_SUB("auth", "passwd|checkpassword|mechanisms|max-failures|"
	    "max-failures-per-address|failure-delay|exempt ..."),
	K_TEXT("banner", c_banner, "\"TEXT\"", config_check_banner,
	    DEF_BANNER),
	K_CHOICE("bare-newline", 0, c_pol.po_bare, bare_modes,
	    "keep|normalize|reject", BARE_KEEP),
	K_NETS("bare-newline-exempt", c_pol.po_bare_exempt,
	    c_pol.po_nbare_exempt),
	K_BOOL("batch-scheduling", c_batch, 1),
	K_STRING("chroot", c_chroot, "DIR", config_check_path),
	K_BOOL("chunking", c_chunking, 1),
	K_FUNC("command-limit", KF_REPEAT, config_cmdlimit_parse,
	    config_cmdlimit_print),
	K_LATE("control", c_control, "PATH", config_check_control,
	    DEF_CONTROL " (the default)"),
	K_FUNC("deliver", 0, config_deliver_parse, config_deliver_print),
	K_DURATION("deliver-timeout", c_dlv.dl_timeout, 1, MAX_DURATION,
	    DEF_DELIVER_TIMEOUT),
	K_LATE("deliver-user", c_dlv.dl_user, "NAME", config_check_deliver_user,
	    DEF_DELIVER_USER " (the default; " DEF_USER_FALLBACK " when there "
	    "is no " DEF_DELIVER_USER ")"),
	K_BOOL("enhanced-status-codes", c_enhanced, 0),
	K_STRING("hostname", c_hostname, "NAME", config_check_hostname),
	K_INT("junk-command-limit", c_lim.lim_junk, 0, MAX_CMDLIMIT,
	    DEF_JUNK_LIMIT),
	/* Listeners are printed after every global directive. */
	K_FUNC("listen", KF_REPEAT, config_listen_parse, NULL),
	K_INT("max-clients", c_lim.lim_maxclients, 1, MAX_CLIENTS,
	    DEF_MAXCLIENTS),
	K_INT("max-clients-per-address", c_lim.lim_maxperaddr, 1, MAX_CLIENTS,
	    DEF_MAXPERADDR),
	K_INT("max-line-length", c_lim.lim_maxline, MIN_LINE, MAX_LINE,
	    DEF_MAXLINE),
	K_INT("max-local-part", c_lim.lim_maxlocal, 0, MAX_LINE,
	    DEF_MAXLOCAL),
	K_VALUE("max-message-size", KW_SIZE, 0, c_lim.lim_maxmsgsize, 0,
	    MAX_MSGSIZE, DEF_MAXMSGSIZE, "SIZE"),
	K_INT("max-recipients", c_lim.lim_maxrcpt, 1, MAX_RCPT, DEF_MAXRCPT),
	K_DURATION("max-session-time", c_lim.lim_session, 0, MAX_DURATION,
	    DEF_SESSION_TIME),
	K_INT("max-sessions-per-child", c_lim.lim_maxsessions, 1, 1000000,
	    DEF_MAXSESSIONS),
	K_LATE("pidfile", c_pidfile, "FILE", config_check_path,
	    DEF_PIDFILE " (the default; none with -d)"),
	/* The policy-* lines are printed with `policy`, when it is set. */
	K_FORM("policy", "unix:PATH|inet:HOST:PORT", config_policy_parse,
	    config_policy_print),
	K_CHOICE("policy-default", KF_QUIET, c_pol.po_default,
	    policy_defaults, "defer|dunno", POLICY_DEFER),
	K_BITS("policy-stages", KF_QUIET, c_pol.po_stages, policy_stages,
	    "rcpt|data ...", POLICY_STAGE_RCPT),
	K_VALUE("policy-timeout", KW_DURATION, KF_QUIET, c_pol.po_timeout, 1,
	    MAX_POLICY_TIMEOUT, DEF_POLICY_TIMEOUT, "DURATION"),
	K_INT("prefork", c_lim.lim_prefork, 1, MAX_PREFORK, DEF_PREFORK),
	K_DURATION("prefork-idle-time", c_lim.lim_prefork_idle, 0,
	    MAX_DURATION, DEF_PREFORK_IDLE),
	K_BOOL("received-header", c_dlv.dl_received, 1),
	K_FORM("recipient-delimiter", "CHAR", config_delim_parse,
	    config_delim_print),
	K_SUB("reject", "senders FILE [ignore-case], "
	    "reject clients NETWORK ..."),
	K_DURATION("shutdown-grace", c_lim.lim_shutdown_grace, 0,
	    MAX_DURATION, DEF_SHUTDOWN_GRACE),
	K_BOOL("smtputf8", c_smtputf8, 0),
	K_TEXTS("spool", 0, c_dlv.dl_spool, "DIR", config_check_path,
	    DEF_SPOOL),
	K_DURATION("timeout", c_lim.lim_timeout, 1, MAX_DURATION,
	    DEF_TIMEOUT),
	K_SUB("tls", "certificate|ciphers|protocols|tickets ..."),
	K_LATE("user", c_user, "NAME", config_check_user,
	    DEF_USER " (the default; " DEF_USER_FALLBACK " when there is no "
	    DEF_USER ")")
};
#define NKEYWORDS	NITEMS(keywords)

struct parse {
	const char	*p_file;
	int		 p_line;	/* 0: a whole-config check */
	int		 p_errors;
	struct config	*p_conf;
	int		 p_seen[NKEYWORDS];	/* line that set it */
	int		 p_subseen[NSUBFORMS];
	const struct keyword *p_kw;	/* the one being parsed */
	char		 p_esc[2][CONF_ESCLEN];
	int		 p_esci;
};

/* The member of struct config at off. */
static void *
config_member(struct config *c, size_t off)
{
	return (char *)c + off;
}

static const void *
config_cmember(const struct config *c, size_t off)
{
	return (const char *)c + off;
}

static void	 config_error(struct parse *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));

/*
 * Every problem of a file goes through here: logged with its place, and
 * counted so that config_load can fail once at the end.
 */
static void
config_error(struct parse *p, const char *fmt, ...)
{
	char	 msg[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->p_line > 0)
		log_warnx("%s:%d: %s", p->p_file, p->p_line, msg);
	else
		log_warnx("%s: %s", p->p_file, msg);
	p->p_errors++;
}

/* A word of the file, escaped and cut for an error message. */
static const char *
config_esc(struct parse *p, const char *s)
{
	char	*buf = p->p_esc[p->p_esci];

	/* Two buffers: one message may quote two words. */
	p->p_esci = (p->p_esci + 1) % 2;
	return log_escape(s, strlen(s), buf, CONF_ESCLEN);
}

static int
config_kwcmp(const void *key, const void *elem)
{
	const struct keyword	*k = elem;

	return strcmp(key, k->k_name);
}

static int
config_sorted(const struct keyword *k, size_t n)
{
	size_t	 i;

	for (i = 1; i < n; i++)
		if (strcmp(k[i - 1].k_name, k[i].k_name) >= 0)
			return 0;
	return 1;
}

/* Both tables are searched with bsearch. */
int
config_table_sorted(void)
{
	return config_sorted(keywords, NKEYWORDS) &&
	    config_sorted(subforms, NSUBFORMS);
}

static const struct keyword *
config_keyword(const char *name)
{
	return bsearch(name, keywords, NKEYWORDS, sizeof(keywords[0]),
	    config_kwcmp);
}

/* The line that set the sub-form name ("tls ciphers"), or 0. */
static int
config_subseen(const struct parse *p, const char *name)
{
	const struct keyword	*s;

	s = bsearch(name, subforms, NSUBFORMS, sizeof(subforms[0]),
	    config_kwcmp);
	return s != NULL ? p->p_subseen[s - subforms] : 0;
}

/*
 * The system FQDN: gethostname(), and when that has no dot, the canonical
 * name the resolver gives for it.  A name the parser would refuse is not
 * used, so that `smtpd -n` output always loads again.  Looked up once per
 * process: the master asks at start, and a reload never waits on DNS.
 */
static const char *
config_default_hostname(void)
{
	static char	*fqdn;
	char		 name[256];
	struct addrinfo	 hints, *res;

	if (fqdn != NULL)
		return fqdn;
	if (gethostname(name, sizeof(name)) == -1)
		name[0] = '\0';
	name[sizeof(name) - 1] = '\0';
	if (name[0] != '\0' && strchr(name, '.') == NULL) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_flags = AI_CANONNAME;
		if (getaddrinfo(name, NULL, &hints, &res) == 0) {
			if (res->ai_canonname != NULL &&
			    config_check_hostname(res->ai_canonname) == NULL)
				fqdn = xstrdup(res->ai_canonname);
			freeaddrinfo(res);
		}
	}
	if (fqdn == NULL)
		fqdn = xstrdup(config_check_hostname(name) == NULL ?
		    name : "localhost");
	return fqdn;
}

/* The defaults of the typed rows and the word lists, at their offsets. */
static void
config_defaults(struct config *c, const struct keyword *k, size_t n)
{
	void	*base;

	for (; n > 0; k++, n--) {
		base = config_member(c, k->k_off);
		switch (k->k_type) {
		case KW_INT:
		case KW_DURATION:
		case KW_BOOL:
			*(int *)base = (int)k->k_def;
			break;
		case KW_SIZE:
			*(long long *)base = k->k_def;
			break;
		case KW_STRING:
			if (k->k_text != NULL)
				*(char **)base = xstrdup(k->k_text);
			break;
		case KW_FUNC:
			if (k->k_words != NULL)
				*(int *)base = (int)k->k_def;
			break;
		default:
			break;
		}
	}
}

struct config *
config_default(void)
{
	struct config	*c;

	c = xcalloc(1, sizeof(*c));
	config_defaults(c, keywords, NKEYWORDS);
	config_defaults(c, subforms, NSUBFORMS);
	c->c_hostname = xstrdup(config_default_hostname());
	/* -1: no `command-limit N` line (see config_cmdlimit). */
	c->c_lim.lim_cmdlimit = -1;
	c->c_dlv.dl_mode = DELIVER_STDOUT;
	c->c_auth.au_backend = AUTH_NONE;
	TAILQ_INIT(&c->c_listeners);
	return c;
}

static void
config_free_argv(char **argv)
{
	size_t	 i;

	if (argv == NULL)
		return;
	for (i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

void
config_free(struct config *c)
{
	struct listener	*l;
	int		 i;

	if (c == NULL)
		return;
	while ((l = TAILQ_FIRST(&c->c_listeners)) != NULL) {
		TAILQ_REMOVE(&c->c_listeners, l, l_entry);
		config_listener_free(l);
	}
	config_free_argv(c->c_dlv.dl_argv);
	free(c->c_dlv.dl_cmd);
	free(c->c_file);
	free(c->c_hostname);
	free(c->c_banner);
	free(c->c_user);
	free(c->c_chroot);
	free(c->c_pidfile);
	free(c->c_control);
	free(c->c_dlv.dl_spool);
	free(c->c_dlv.dl_user);
	free(c->c_tls.tl_cert);
	free(c->c_tls.tl_key);
	free(c->c_tls.tl_ciphers);
	free(c->c_auth.au_path);
	config_free_argv(c->c_auth.au_argv);
	for (i = 0; i < PT_NTABLES; i++)
		free(c->c_pol.po_table_file[i]);
	free(c->c_pol.po_server);
	free(c);
}

long long
config_cmdlimit(const struct config *c, const char *verb)
{
	int	 i;

	for (i = 0; i < c->c_lim.lim_ncmdlimits; i++)
		if (strcasecmp(c->c_lim.lim_cmdlimits[i].cml_verb, verb) == 0)
			return c->c_lim.lim_cmdlimits[i].cml_max;
	if (c->c_lim.lim_cmdlimit != -1)
		return c->c_lim.lim_cmdlimit;
	/* Per-verb limits without `*` leave the default at 20. */
	if (c->c_lim.lim_ncmdlimits > 0)
		return CMD_LIMIT_DEFAULT;
	return -1;
}

/*
 * Value checks of the string directives: NULL when fine, else what is
 * wrong, for the message.
 */

/* A host name's labels (RFC 1123 2.1): 1 to 63 characters, no '-' at an end. */
static const char *
config_check_labels(const char *s)
{
	size_t	 n;

	for (;;) {
		n = strcspn(s, ".");
		if (n == 0 || n > 63)
			return "must be labels of 1 to 63 characters "
			    "between single dots";
		if (s[0] == '-' || s[n - 1] == '-')
			return "may not have '-' at the start or end of a label";
		if (s[n] == '\0')
			return NULL;
		s += n + 1;
	}
}

static const char *
config_check_hostname(const char *s)
{
	size_t	 len = strlen(s);

	if (len == 0 || len > HOSTNAME_MAX)
		return "must be 1 to 253 characters long";
	if (strspn(s, HOST_CHARS) != len)
		return "may contain only letters, digits, '-' and '.'";
	return config_check_labels(s);
}

static const char *
config_check_cntrl(const char *s)
{
	const unsigned char	*u;

	for (u = (const unsigned char *)s; *u != '\0'; u++)
		if (iscntrl(*u))
			return "contains a control character";
	return NULL;
}

/* A text of at most max octets, without control characters. */
static const char *
config_check_text(const char *s, size_t max, const char *toolong)
{
	return strlen(s) > max ? toolong : config_check_cntrl(s);
}

static const char *
config_check_banner(const char *s)
{
	/* It goes verbatim into the 220 greeting line. */
	return config_check_text(s, BANNER_MAX,
	    "is longer than 200 characters");
}

/* OpenSSL judges the list itself when tls.c loads it. */
static const char *
config_check_ciphers(const char *s)
{
	return s[0] == '\0' ? "is empty" : config_check_text(s, CIPHERS_MAX,
	    "is longer than 1024 characters");
}

static const char *
config_check_user(const char *s)
{
	size_t	 len = strlen(s);

	if (len == 0 || len > USER_MAX)
		return "must be 1 to 32 characters long";
	if (strspn(s, USER_CHARS) != len || s[0] == '-')
		return "is not a user name (letters, digits, '.', '_', '-')";
	return NULL;
}

/*
 * The delivery program's user must exist now (an error with the line, not
 * a surprise at the first message) and must not be root.
 */
static const char *
config_check_deliver_user(const char *s)
{
	const struct passwd	*pw;
	const char		*why;

	if ((why = config_check_user(s)) != NULL)
		return why;
	if ((pw = getpwnam(s)) == NULL)
		return "is not a user of this system";
	if (pw->pw_uid == 0)
		return "has uid 0; programs never run as root";
	return NULL;
}

static const char *
config_check_path(const char *s)
{
	if (s[0] != '/')
		return "is not an absolute path";
	return config_check_text(s, CONF_PATH_MAX,
	    "is longer than 1024 characters");
}

/* A UNIX socket's path must fit struct sockaddr_un. */
static const char *
config_check_socket(const char *s)
{
	struct sockaddr_un	 sun;

	if (strlen(s) >= sizeof(sun.sun_path))
		return "is too long for a socket";
	return config_check_path(s);
}

/*
 * The control socket: the master creates its directory when it is
 * missing, one level (control.c), so the directory's parent at least
 * must be there, or the start would fail.
 */
static const char *
config_check_control(const char *s)
{
	struct stat	 st;
	const char	*why;
	char		 dir[CONF_PATH_MAX + 1], *slash;
	int		 up;

	if ((why = config_check_socket(s)) != NULL)
		return why;
	(void)strlcpy(dir, s, sizeof(dir));
	for (up = 0; up < 2; up++) {
		if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
			return NULL;
		*slash = '\0';
		if (stat(dir, &st) == 0)
			return S_ISDIR(st.st_mode) ? NULL :
			    "is below a file that is not a directory";
		if (errno != ENOENT)
			return NULL;	/* the start says why */
	}
	return "is in a directory that cannot be created (its parent is "
	    "missing)";
}

/* A decimal number of digits only: strtonum alone accepts "+1", " 1". */
static int
config_number(const char *s, long long min, long long max, long long *np)
{
	const char	*errstr;

	if (s[0] == '\0' || strspn(s, "0123456789") != strlen(s))
		return -1;
	*np = strtonum(s, min, max, &errstr);
	return errstr == NULL ? 0 : -1;
}

/*
 * A number with an optional unit suffix (case-insensitive), scaled by
 * mult[] of that unit, in min..max; the product is checked before it
 * is computed, so it cannot overflow.
 */
static int
config_scaled(const char *s, const char *units, const long long *mult,
    long long min, long long max, long long *np)
{
	char		 num[24];
	const char	*u;
	size_t		 len = strlen(s);
	long long	 m = 1, n;

	if (len > 0 && (u = strchr(units,
	    toupper((unsigned char)s[len - 1]))) != NULL) {
		m = mult[u - units];
		len--;
	}
	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len);
	num[len] = '\0';
	if (config_number(num, 0, LLONG_MAX, &n) == -1 || n > max / m)
		return -1;
	n *= m;
	if (n < min)
		return -1;
	*np = n;
	return 0;
}

static int
config_size(const char *s, long long min, long long max, long long *np)
{
	static const long long	 mult[] = { 1LL << 10, 1LL << 20,
	    1LL << 30 };

	return config_scaled(s, "KMG", mult, min, max, np);
}

static int
config_duration(const char *s, long long min, long long max, long long *np)
{
	static const long long	 mult[] = { 1, 60, 3600 };

	return config_scaled(s, "SMH", mult, min, max, np);
}

/* A size in the largest unit that shows it exactly: it parses back. */
static const char *
config_fmt_size(long long n, char *buf, size_t len)
{
	static const char	 units[] = "GMK";
	static const int	 shift[] = { 30, 20, 10 };
	size_t			 i;

	for (i = 0; i < NITEMS(shift); i++) {
		if (n != 0 && n % (1LL << shift[i]) == 0) {
			snprintf(buf, len, "%lld%c", n >> shift[i], units[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%lld", n);
	return buf;
}

/* The numeric directives: plain numbers, durations and sizes. */
static int
config_set_number(struct parse *p, const struct keyword *k, const char *val)
{
	void		*base = config_member(p->p_conf, k->k_off);
	long long	 n;
	char		 max[32];

	if (k->k_type == KW_SIZE) {
		if (config_size(val, k->k_min, k->k_max, &n) == -1) {
			config_error(p, "%s: \"%s\" is not a size in %lld..%s "
			    "(N, NK, NM or NG)", k->k_name, config_esc(p, val),
			    k->k_min, config_fmt_size(k->k_max, max,
			    sizeof(max)));
			return -1;
		}
		*(long long *)base = n;
		return 0;
	}
	if (k->k_type == KW_INT ?
	    config_number(val, k->k_min, k->k_max, &n) == -1 :
	    config_duration(val, k->k_min, k->k_max, &n) == -1) {
		config_error(p, "%s: \"%s\" is not %s in %lld..%lld%s",
		    k->k_name, config_esc(p, val), k->k_type == KW_INT ?
		    "a number" : "a duration", k->k_min, k->k_max,
		    k->k_type == KW_INT ? "" : " seconds (N, Ns, Nm or Nh)");
		return -1;
	}
	*(int *)base = (int)n;
	return 0;
}

/* Stores the one value of a typed directive at its offset. */
static int
config_set(struct parse *p, const struct keyword *k, const char *val)
{
	void		*base = config_member(p->p_conf, k->k_off);
	const char	*why;

	switch (k->k_type) {
	case KW_INT:
	case KW_DURATION:
	case KW_SIZE:
		return config_set_number(p, k, val);
	case KW_BOOL:
		if (strcmp(val, "yes") != 0 && strcmp(val, "no") != 0) {
			config_error(p, "%s: \"%s\" is not yes or no",
			    k->k_name, config_esc(p, val));
			return -1;
		}
		*(int *)base = strcmp(val, "yes") == 0;
		return 0;
	case KW_STRING:
		if ((why = k->k_check(val)) != NULL) {
			config_error(p, "%s: \"%s\" %s", k->k_name,
			    config_esc(p, val), why);
			return -1;
		}
		free(*(char **)base);
		*(char **)base = xstrdup(val);
		return 0;
	default:
		fatalx("%s: bad type %d", __func__, k->k_type);
	}
}

/* "k: expected k USAGE", for the keyword being parsed. */
static int
config_usage(struct parse *p)
{
	config_error(p, "%s: expected %s %s", p->p_kw->k_name,
	    p->p_kw->k_name, p->p_kw->k_usage);
	return -1;
}

/*
 * Hands the words to the parser of k, a keyword or a sub-form; *seen is
 * the line that set it before, or 0.
 */
static void
config_run(struct parse *p, const struct keyword *k, int *seen, int argc,
    char **argv)
{
	int	 rc;

	if (*seen != 0 && (k->k_flags & KF_REPEAT) == 0) {
		config_error(p, "%s: already set on line %d", k->k_name,
		    *seen);
		return;
	}
	p->p_kw = k;
	if (k->k_type == KW_FUNC)
		rc = k->k_func(p, argc, argv);
	else if (argc != 2) {
		config_error(p, "%s: expected one argument: %s %s",
		    k->k_name, k->k_name, k->k_usage);
		rc = -1;
	} else
		rc = config_set(p, k, argv[1]);
	if (rc == 0)
		*seen = p->p_line;
}

/*
 * `tls` and `auth`: the first two words name the sub-form, and the rest
 * is parsed as if the sub-form were a keyword of its own.
 */
static void
config_subform(struct parse *p, const struct keyword *k, int argc,
    char **argv)
{
	const struct keyword	*s = NULL;
	char			 name[SUBFORM_MAX];
	int			 n;

	if (argc >= 2) {
		n = snprintf(name, sizeof(name), "%s %s", argv[0], argv[1]);
		if (n > 0 && (size_t)n < sizeof(name))
			s = bsearch(name, subforms, NSUBFORMS,
			    sizeof(subforms[0]), config_kwcmp);
	}
	if (s == NULL) {
		p->p_kw = k;
		config_usage(p);
		return;
	}
	config_run(p, s, &p->p_subseen[s - subforms], argc - 1, argv + 1);
}

/* One line: look the keyword up and hand the words to its parser. */
static void
config_directive(struct parse *p, int argc, char **argv)
{
	const struct keyword	*k;

	if ((k = config_keyword(argv[0])) == NULL) {
		config_error(p, "unknown keyword \"%s\"",
		    config_esc(p, argv[0]));
		return;
	}
	if (k->k_type == KW_SUB)
		config_subform(p, k, argc, argv);
	else
		config_run(p, k, &p->p_seen[k - keywords], argc, argv);
}

static const struct confword *
config_confword(const struct confword *w, const char *name)
{
	for (; w->cw_name != NULL; w++)
		if (strcmp(name, w->cw_name) == 0)
			return w;
	return NULL;
}

/* The words after argv[0], each one of k_words; at least one, repeats. */
static int
config_bits_parse(struct parse *p, int argc, char **argv)
{
	const struct keyword	*k = p->p_kw;
	const struct confword	*w;
	int			 i, bits = 0;

	if (argc < 2)
		return config_usage(p);
	for (i = 1; i < argc; i++) {
		if ((w = config_confword(k->k_words, argv[i])) == NULL) {
			/* Each set of bits has two names. */
			config_error(p, "%s: \"%s\" is not %s or %s",
			    k->k_name, config_esc(p, argv[i]),
			    k->k_words[0].cw_name, k->k_words[1].cw_name);
			return -1;
		}
		bits |= w->cw_value;
	}
	*(int *)config_member(p->p_conf, k->k_off) = bits;
	return 0;
}

/* The one word after argv[0], one of k_words. */
static int
config_choice_parse(struct parse *p, int argc, char **argv)
{
	const struct confword	*w;

	if (argc != 2 ||
	    (w = config_confword(p->p_kw->k_words, argv[1])) == NULL)
		return config_usage(p);
	*(int *)config_member(p->p_conf, p->p_kw->k_off) = w->cw_value;
	return 0;
}

/* A path argument of a sub-form, checked; -1 after the message. */
static int
config_path_arg(struct parse *p, const char *path)
{
	const char	*why;

	if ((why = config_check_path(path)) == NULL)
		return 0;
	config_error(p, "%s: \"%s\" %s", p->p_kw->k_name,
	    config_esc(p, path), why);
	return -1;
}

/* tls certificate FILE key FILE */
static int
config_tlscert_parse(struct parse *p, int argc, char **argv)
{
	struct config	*c = p->p_conf;

	if (argc != 4 || strcmp(argv[2], "key") != 0)
		return config_usage(p);
	if (config_path_arg(p, argv[1]) == -1 ||
	    config_path_arg(p, argv[3]) == -1)
		return -1;
	free(c->c_tls.tl_cert);
	free(c->c_tls.tl_key);
	c->c_tls.tl_cert = xstrdup(argv[1]);
	c->c_tls.tl_key = xstrdup(argv[3]);
	c->c_tls.tl_line = p->p_line;
	return 0;
}

/*
 * auth passwd FILE | auth checkpassword "PROGRAM ARGS...": the one
 * backend.  The program line is split like the delivery command.
 */
static int
config_auth_parse(struct parse *p, int argc, char **argv)
{
	struct config	*c = p->p_conf;
	char		**av = NULL, err[256];
	int		  passwd = strcmp(argv[0], "passwd") == 0;

	if (argc != 2)
		return config_usage(p);
	if (c->c_auth.au_backend != AUTH_NONE) {
		config_error(p, "%s: only one backend: auth %s is set on "
		    "line %d", p->p_kw->k_name,
		    c->c_auth.au_backend == AUTH_PASSWD ?
		    "passwd" : "checkpassword", c->c_auth.au_line);
		return -1;
	}
	if (passwd && config_path_arg(p, argv[1]) == -1)
		return -1;
	if (!passwd && config_split_argv(argv[1], &av, err,
	    sizeof(err)) == -1) {
		config_error(p, "%s: %s", p->p_kw->k_name, err);
		return -1;
	}
	if (!passwd && av[0][0] != '/') {
		config_error(p, "%s: the program \"%s\" is not an absolute "
		    "path", p->p_kw->k_name, config_esc(p, av[0]));
		config_free_argv(av);
		return -1;
	}
	c->c_auth.au_backend = passwd ? AUTH_PASSWD : AUTH_CHECKPASSWORD;
	c->c_auth.au_path = xstrdup(argv[1]);
	c->c_auth.au_argv = av;
	c->c_auth.au_line = p->p_line;
	return 0;
}

/* The index in c_pol.po_table_*[] of the sub-form parsed or printed. */
static int
config_table_index(const char *name)
{
	const struct confword	*w = config_confword(table_forms, name);

	if (w == NULL)
		fatalx("%s: bad table %s", __func__, name);
	return w->cw_value;
}

/* accept recipients|senders FILE [ignore-case], reject senders ... */
static int
config_table_parse(struct parse *p, int argc, char **argv)
{
	struct config	*c = p->p_conf;
	int		 i = config_table_index(p->p_kw->k_name);

	if (argc < 2 || argc > 3 ||
	    (argc == 3 && strcmp(argv[2], "ignore-case") != 0))
		return config_usage(p);
	if (config_path_arg(p, argv[1]) == -1)
		return -1;
	free(c->c_pol.po_table_file[i]);
	c->c_pol.po_table_file[i] = xstrdup(argv[1]);
	c->c_pol.po_table_nocase[i] = argc == 3;
	c->c_pol.po_table_line[i] = p->p_line;
	return 0;
}

/*
 * NETWORK ...: CIDR, added to the list at k_off of k_count entries
 * (MAX_CLIENT_NETS): `accept|reject clients`, `auth exempt` (never
 * throttled per address), `bare-newline-exempt`.
 */
static int
config_nets_parse(struct parse *p, int argc, char **argv)
{
	const struct keyword	*k = p->p_kw;
	struct netaddr		*nets = config_member(p->p_conf, k->k_off);
	int			*n = config_member(p->p_conf, k->k_count);
	int			 i;

	if (argc < 2)
		return config_usage(p);
	for (i = 1; i < argc; i++) {
		if (*n == MAX_CLIENT_NETS) {
			config_error(p, "%s: more than %d networks",
			    k->k_name, MAX_CLIENT_NETS);
			return -1;
		}
		if (net_parse(argv[i], &nets[*n]) == -1) {
			config_error(p, "%s: \"%s\" is not an address or "
			    "network (CIDR, host bits zero)", k->k_name,
			    config_esc(p, argv[i]));
			return -1;
		}
		(*n)++;
	}
	return 0;
}

/* policy unix:/PATH | inet:HOST:PORT ([HOST] for an IPv6 address) */
/*
 * The HOST of `policy inet:HOST:PORT` (len octets at h): an IPv6 address
 * in brackets, or an IPv4 address or a name, without brackets or colons.
 */
static int
config_policy_host(const char *h, size_t len)
{
	char	 in6[INET6_ADDRSTRLEN], name[HOSTNAME_MAX + 1];
	struct in6_addr a6;

	if (len > 2 && h[0] == '[' && h[len - 1] == ']') {
		if (len - 2 >= sizeof(in6))
			return -1;
		memcpy(in6, h + 1, len - 2);
		in6[len - 2] = '\0';
		return inet_pton(AF_INET6, in6, &a6) == 1 ? 0 : -1;
	}
	/*
	 * A name as `hostname` takes it: "..." or "-x" never resolves.  The
	 * final dot of a fully qualified name ("policy.example.org.") is
	 * the resolver's, not a label's.
	 */
	if (len > 1 && h[len - 1] == '.')
		len--;
	if (len >= sizeof(name))
		return -1;
	memcpy(name, h, len);
	name[len] = '\0';
	return config_check_hostname(name) == NULL ? 0 : -1;
}

static int
config_policy_parse(struct parse *p, int argc, char **argv)
{
	const char	*s, *colon, *errstr;

	if (argc != 2)
		return config_usage(p);
	s = argv[1];
	if (strncmp(s, "unix:", 5) == 0 && s[5] == '/' &&
	    strlen(s + 5) < sizeof(((struct sockaddr_un *)0)->sun_path) &&
	    config_check_cntrl(s) == NULL)
		goto ok;
	colon = strrchr(s, ':');
	if (strncmp(s, "inet:", 5) == 0 && colon > s + 5 &&
	    colon - s < HOSTNAME_MAX && colon[1] >= '0' && colon[1] <= '9' &&
	    config_policy_host(s + 5, (size_t)(colon - (s + 5))) == 0) {
		strtonum(colon + 1, 1, 65535, &errstr);
		if (errstr == NULL)
			goto ok;
	}
	config_error(p, "policy: \"%s\" is not unix:/PATH or "
	    "inet:HOST:PORT", config_esc(p, s));
	return -1;
 ok:
	free(p->p_conf->c_pol.po_server);
	p->p_conf->c_pol.po_server = xstrdup(s);
	return 0;
}

/*
 * recipient-delimiter CHAR: one character that may be in a local part
 * (RFC 5322 atext), not a letter or digit.
 */
static int
config_delim_parse(struct parse *p, int argc, char **argv)
{
	if (argc != 2 || strlen(argv[1]) != 1 ||
	    strchr("!#$%&'*+-/=?^_`{|}~", argv[1][0]) == NULL) {
		config_error(p, "recipient-delimiter: expected one of "
		    "!#$%%&'*+-/=?^_`{|}~%s", argc == 1 ?
		    " (# in quotes: \"#\")" : "");
		return -1;
	}
	p->p_conf->c_pol.po_rcpt_delim = (unsigned char)argv[1][0];
	return 0;
}

/* Sets the budget of one verb, a new entry or the one it had. */
static int
config_cmdlimit_verb(struct parse *p, const char *verb, long long n)
{
	struct config	*c = p->p_conf;
	struct cmdlimit	*cl;
	size_t		 len = strlen(verb);
	int		 i;

	if (len == 0 || len >= VERB_MAX || strspn(verb,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != len) {
		config_error(p, "command-limit: \"%s\" is not a command "
		    "(1 to %d letters) or *", config_esc(p, verb),
		    VERB_MAX - 1);
		return -1;
	}
	for (i = 0; i < c->c_lim.lim_ncmdlimits; i++)
		if (strcasecmp(c->c_lim.lim_cmdlimits[i].cml_verb, verb) == 0)
			break;
	if (i == MAX_CMDLIMITS) {
		config_error(p, "command-limit: more than %d commands",
		    MAX_CMDLIMITS);
		return -1;
	}
	cl = &c->c_lim.lim_cmdlimits[i];
	/* Sessions look verbs up upper-cased. */
	for (len = 0; verb[len] != '\0'; len++)
		cl->cml_verb[len] = (char)toupper((unsigned char)verb[len]);
	cl->cml_verb[len] = '\0';
	cl->cml_max = n;
	if (i == c->c_lim.lim_ncmdlimits)
		c->c_lim.lim_ncmdlimits++;
	return 0;
}

/*
 * command-limit N | command-limit * N | command-limit CMD N.  The first
 * two set the default budget, the third one verb's (smtpd.conf.5).
 */
static int
config_cmdlimit_parse(struct parse *p, int argc, char **argv)
{
	long long	 n;

	if (argc != 2 && argc != 3) {
		config_error(p, "command-limit: expected command-limit "
		    "[CMD | *] N");
		return -1;
	}
	if (config_number(argv[argc - 1], 1, MAX_CMDLIMIT, &n) == -1) {
		config_error(p, "command-limit: \"%s\" is not a number in "
		    "1..%d", config_esc(p, argv[argc - 1]), MAX_CMDLIMIT);
		return -1;
	}
	if (argc == 3 && strcmp(argv[1], "*") != 0)
		return config_cmdlimit_verb(p, argv[1], n);
	p->p_conf->c_lim.lim_cmdlimit = n;
	return 0;
}

/*
 * The placeholders of a split delivery command: known names only, the
 * program path free of them, %{recipients} a whole word (it becomes
 * several arguments).  Sets *per_rcpt when %{recipient} is used.
 */
static int
config_deliver_check(char **argv, int *per_rcpt, char *err, size_t errlen)
{
	const char	*s, *end;
	size_t		 i, len;
	int		 j;

	*per_rcpt = 0;
	if (argv[0][0] != '/') {
		snprintf(err, errlen, "the program \"%.64s\" is not an "
		    "absolute path", argv[0]);
		return -1;
	}
	for (i = 0; argv[i] != NULL; i++) {
		for (s = argv[i]; (s = strstr(s, "%{")) != NULL; s = end + 1) {
			if ((end = strchr(s, '}')) == NULL) {
				snprintf(err, errlen, "unterminated "
				    "placeholder \"%.40s\"", s);
				return -1;
			}
			len = (size_t)(end - s) + 1;
			if ((j = deliver_placeholder(s, len)) == -1) {
				snprintf(err, errlen, "unknown placeholder "
				    "\"%.*s\"", (int)(len > 40 ? 40 : len), s);
				return -1;
			}
			if (i == 0) {
				snprintf(err, errlen, "placeholder %s in the "
				    "program path",
				    deliver_placeholder_name(j));
				return -1;
			}
			if (j == PH_RECIPIENTS &&
			    (s != argv[i] || end[1] != '\0')) {
				snprintf(err, errlen, "%%{recipients} must be "
				    "a word by itself");
				return -1;
			}
			if (j == PH_RECIPIENT)
				*per_rcpt = 1;
		}
	}
	return 0;
}

/* deliver discard | deliver "PROGRAM ARGS..." */
static int
config_deliver_parse(struct parse *p, int argc, char **argv)
{
	struct config	*c = p->p_conf;
	char		**av, err[256];
	int		 per_rcpt;

	if (argc != 2) {
		config_error(p, "deliver: expected deliver discard or "
		    "deliver \"PROGRAM ARGS...\"");
		return -1;
	}
	if (strcmp(argv[1], "discard") == 0) {
		c->c_dlv.dl_mode = DELIVER_DISCARD;
		return 0;
	}
	if (config_split_argv(argv[1], &av, err, sizeof(err)) == -1) {
		config_error(p, "deliver: %s", err);
		return -1;
	}
	if (config_deliver_check(av, &per_rcpt, err, sizeof(err)) == -1) {
		config_free_argv(av);
		config_error(p, "deliver: %s", err);
		return -1;
	}
	config_free_argv(c->c_dlv.dl_argv);
	free(c->c_dlv.dl_cmd);
	c->c_dlv.dl_mode = DELIVER_PROGRAM;
	c->c_dlv.dl_cmd = xstrdup(argv[1]);
	c->c_dlv.dl_argv = av;
	c->c_dlv.dl_per_rcpt = per_rcpt;
	c->c_dlv.dl_line = p->p_line;
	return 0;
}

/*
 * One word of a delivery command at *sp into out (which has room for
 * the whole rest): "double" and 'single' quotes may join parts of a word,
 * a backslash outside single quotes takes the next character as is.
 */
static int
config_split_word(const char **sp, char *out, char *err, size_t errlen)
{
	const char	*s;
	char		 q = '\0';

	for (s = *sp; *s != '\0'; s++) {
		if (q == '\0' && (*s == ' ' || *s == '\t'))
			break;
		if (q == '\0' && (*s == '"' || *s == '\'')) {
			q = *s;
			continue;
		}
		if (q != '\0' && *s == q) {
			q = '\0';
			continue;
		}
		if (*s == '\\' && q != '\'' && *++s == '\0') {
			snprintf(err, errlen, "backslash at the end");
			return -1;
		}
		*out++ = *s;
	}
	if (q != '\0') {
		snprintf(err, errlen, "unterminated %s quote",
		    q == '"' ? "double" : "single");
		return -1;
	}
	*out = '\0';
	*sp = s;
	return 0;
}

int
config_split_argv(const char *s, char ***argvp, char *err, size_t errlen)
{
	char	**av = NULL, *word;
	size_t	  ac = 0;

	*argvp = NULL;
	word = xmalloc(strlen(s) + 1);
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		if (config_split_word(&s, word, err, errlen) == -1)
			goto fail;
		av = xreallocarray(av, ac + 2, sizeof(*av));
		av[ac++] = xstrdup(word);
		av[ac] = NULL;
	}
	if (ac == 0) {
		snprintf(err, errlen, "empty command");
		goto fail;
	}
	free(word);
	*argvp = av;
	return (int)ac;
 fail:
	free(word);
	config_free_argv(av);
	return -1;
}

/*
 * A socket path in the one spelling its listener is known by: repeated
 * slashes and "." components out ("/run//smtpd/./lmtp" is
 * "/run/smtpd/lmtp"), so that two spellings of one socket are found the
 * same here and at a reload.  ".." is refused before (config_dotdot).
 */
static void
config_path_clean(char *path)
{
	char	*r = path, *w = path;

	while (*r != '\0') {
		if (r[0] == '/' && (r[1] == '/' ||
		    (r[1] == '.' && (r[2] == '/' || r[2] == '\0')))) {
			r += r[1] == '/' ? 1 : 2;
			continue;
		}
		*w++ = *r++;
	}
	if (w == path)
		*w++ = '/';
	*w = '\0';
}

/*
 * A ".." component of a socket path: through a symbolic link it is not the
 * directory above, so the path cannot be put in one spelling, and two
 * spellings of one socket would pass the check and fail at the start.
 */
static int
config_dotdot(const char *path)
{
	const char	*p;

	for (p = path; (p = strstr(p, "/..")) != NULL; p += 3)
		if (p[3] == '/' || p[3] == '\0')
			return 1;
	return 0;
}

/* ADDRESS of `listen on`: an IP literal, `*`, `localhost` or a path. */
static int
config_listen_addr(struct parse *p, struct listener *l, const char *addr)
{
	struct sockaddr_un	 sun;
	struct in6_addr		 bin;	/* either family's, aligned */

	if (addr[0] == '/') {
		if (strlen(addr) >= sizeof(sun.sun_path)) {
			config_error(p, "listen: socket path \"%s\" is longer "
			    "than %zu characters", config_esc(p, addr),
			    sizeof(sun.sun_path) - 1);
			return -1;
		}
		if (config_dotdot(addr)) {
			config_error(p, "listen: socket path \"%s\" has a "
			    "\"..\" component", config_esc(p, addr));
			return -1;
		}
		/* A tab passes the lexer in quotes; no other path takes one. */
		if (config_check_cntrl(addr) != NULL) {
			config_error(p, "listen: socket path \"%s\" contains a "
			    "control character", config_esc(p, addr));
			return -1;
		}
		l->l_unix = 1;
		l->l_mode = DEF_UNIX_MODE;
	} else if (strcmp(addr, "*") != 0 && strcmp(addr, "localhost") != 0 &&
	    inet_pton(AF_INET, addr, &bin) != 1 &&
	    inet_pton(AF_INET6, addr, &bin) != 1) {
		config_error(p, "listen: \"%s\" is not an IPv4 or IPv6 "
		    "address, *, localhost or an absolute path",
		    config_esc(p, addr));
		return -1;
	} else if (strchr(addr, ':') != NULL &&
	    IN6_IS_ADDR_V4MAPPED(&bin)) {
		/*
		 * An IPv6 listener is IPv6 only (IPV6_V6ONLY), where bind()
		 * refuses a mapped address: the start would fail.
		 */
		config_error(p, "listen: \"%s\" is an IPv4-mapped address; "
		    "write the IPv4 address", config_esc(p, addr));
		return -1;
	}
	l->l_addr = xstrdup(addr);
	if (l->l_unix)
		config_path_clean(l->l_addr);
	/* "/run/smtpd/" names a directory: bind() would fail at the start. */
	if (l->l_unix && l->l_addr[strlen(l->l_addr) - 1] == '/') {
		config_error(p, "listen: socket path \"%s\" ends in /",
		    config_esc(p, addr));
		return -1;
	}
	return 0;
}

/* The argument of `port` or `mode`, the option that takes one. */
static int
config_listen_arg(struct parse *p, struct listener *l, const char *opt,
    const char *arg)
{
	long long	 n = 0;
	size_t		 i;

	if (strcmp(opt, "port") == 0) {
		if (arg == NULL || config_number(arg, 1, 65535, &n) == -1) {
			config_error(p, "listen: port must be a number in "
			    "1..65535");
			return -1;
		}
		l->l_port = (int)n;
		return 0;
	}
	/* mode: octal, like chmod(1); a socket has no use for 07000. */
	for (i = 0; arg != NULL && arg[i] >= '0' && arg[i] <= '7' && i < 5;
	    i++)
		n = n * 8 + (arg[i] - '0');
	if (arg == NULL || i == 0 || arg[i] != '\0' || n > MODE_MAX) {
		config_error(p, "listen: mode must be an octal number in "
		    "0..0777");
		return -1;
	}
	l->l_mode = (mode_t)n;
	return 0;
}

/*
 * `owner USER`, `group GROUP`: who owns a UNIX socket (an LMTP client in
 * another group, say).  The master looks the names up when it binds.
 */
static int
config_listen_owner(struct parse *p, struct listener *l, const char *opt,
    const char *arg)
{
	char		**dst = opt[0] == 'o' ? &l->l_owner : &l->l_group;
	const char	 *why;

	if (!l->l_unix) {
		config_error(p, "listen: %s is only for UNIX sockets", opt);
		return -1;
	}
	if (arg == NULL || (why = config_check_user(arg)) != NULL) {
		config_error(p, "listen: %s: \"%s\" %s", opt,
		    arg == NULL ? "" : config_esc(p, arg),
		    arg == NULL ? "is missing" : why);
		return -1;
	}
	free(*dst);
	*dst = xstrdup(arg);
	return 0;
}

/* `deliver-user NAME`: this listener's messages go to another store. */
static int
config_listen_user(struct parse *p, struct listener *l, const char *arg)
{
	const char	*why;

	if (arg == NULL || (why = config_check_deliver_user(arg)) != NULL) {
		config_error(p, "listen: deliver-user: \"%s\" %s",
		    arg == NULL ? "" : config_esc(p, arg),
		    arg == NULL ? "is missing" : why);
		return -1;
	}
	free(l->l_deliver_user);
	l->l_deliver_user = xstrdup(arg);
	return 0;
}

static void
config_listener_free(struct listener *l)
{
	free(l->l_addr);
	free(l->l_owner);
	free(l->l_group);
	free(l->l_deliver_user);
	free(l);
}

/* The flags a listener option without an argument sets, else 0. */
static int
config_listen_flag(const char *opt)
{
	const struct confword	*w = config_confword(listen_flags, opt);

	return w != NULL ? w->cw_value : 0;
}

/* Any listener option: it ends the networks of `proxy-protocol from`. */
static int
config_listen_keyword(const char *opt)
{
	return config_listen_flag(opt) != 0 || strcmp(opt, "port") == 0 ||
	    strcmp(opt, "mode") == 0 || strcmp(opt, "owner") == 0 ||
	    strcmp(opt, "group") == 0 || strcmp(opt, "proxy-protocol") == 0 ||
	    strcmp(opt, "deliver-user") == 0;
}

/* The networks of `proxy-protocol from`, up to the next option. */
static int
config_listen_from(struct parse *p, struct listener *l, int argc,
    char **argv)
{
	int	 i;

	for (i = 0; i < argc && !config_listen_keyword(argv[i]); i++) {
		if (l->l_nproxy_from == MAX_PROXY_FROM) {
			config_error(p, "listen: proxy-protocol from: more "
			    "than %d networks", MAX_PROXY_FROM);
			return -1;
		}
		if (net_parse(argv[i],
		    &l->l_proxy_from[l->l_nproxy_from]) == -1) {
			config_error(p, "listen: proxy-protocol from: \"%s\" "
			    "is not ADDRESS or ADDRESS/PREFIX without host "
			    "bits", config_esc(p, argv[i]));
			return -1;
		}
		l->l_nproxy_from++;
	}
	if (i == 0) {
		config_error(p, "listen: proxy-protocol from: expected a "
		    "network");
		return -1;
	}
	return i;
}

/*
 * proxy-protocol [timeout DURATION] [from NETWORK ...]: the words after
 * the option at argv; returns how many it took, or -1.
 */
static int
config_listen_proxy(struct parse *p, struct listener *l, int argc,
    char **argv)
{
	long long	 n;
	int		 i = 0, nets;

	if (l->l_flags & LF_PROXY) {
		config_error(p, "listen: proxy-protocol given twice");
		return -1;
	}
	l->l_flags |= LF_PROXY;
	if (i < argc && strcmp(argv[i], "timeout") == 0) {
		if (i + 1 == argc || config_duration(argv[i + 1], 1,
		    MAX_DURATION, &n) == -1) {
			config_error(p, "listen: proxy-protocol timeout must "
			    "be a duration in 1..%d seconds", MAX_DURATION);
			return -1;
		}
		l->l_proxy_timeout = (int)n;
		i += 2;
	}
	if (i < argc && strcmp(argv[i], "from") == 0) {
		if ((nets = config_listen_from(p, l, argc - i - 1,
		    argv + i + 1)) == -1)
			return -1;
		i += 1 + nets;
	}
	return i;
}

/*
 * Whether opt, an option that takes an argument, was given before on
 * this line (*seen holds their bits): the second would silently win
 * ("port 25 port 26" listened on 26 only), so it is an error.
 */
static int
config_listen_twice(struct parse *p, const char *opt, int *seen)
{
	static const char *const argopts[] = { "port", "mode", "owner",
	    "group", "deliver-user" };
	size_t	 i;

	for (i = 0; i < NITEMS(argopts); i++)
		if (strcmp(opt, argopts[i]) == 0)
			break;
	if (i == NITEMS(argopts))
		return 0;
	if (*seen & (1 << i)) {
		config_error(p, "listen: %s given twice", opt);
		return 1;
	}
	*seen |= 1 << i;
	return 0;
}

/* The options after ADDRESS; the first error ends the line. */
static int
config_listen_opts(struct parse *p, struct listener *l, int argc,
    char **argv)
{
	const char	*opt, *arg;
	int		 i, n, seen = 0;

	for (i = 0; i < argc; i++) {
		opt = argv[i];
		arg = i + 1 < argc ? argv[i + 1] : NULL;
		if (config_listen_twice(p, opt, &seen))
			return -1;
		if ((n = config_listen_flag(opt)) != 0) {
			l->l_flags |= n;
			continue;
		}
		if (strcmp(opt, "proxy-protocol") == 0) {
			if ((n = config_listen_proxy(p, l, argc - i - 1,
			    argv + i + 1)) == -1)
				return -1;
			i += n;
			continue;
		}
		if (strcmp(opt, "owner") == 0 || strcmp(opt, "group") == 0) {
			if (config_listen_owner(p, l, opt, arg) == -1)
				return -1;
			i++;
			continue;
		}
		if (strcmp(opt, "deliver-user") == 0) {
			if (config_listen_user(p, l, arg) == -1)
				return -1;
			i++;
			continue;
		}
		if (strcmp(opt, "port") == 0 || strcmp(opt, "mode") == 0) {
			if (l->l_unix != (strcmp(opt, "mode") == 0)) {
				config_error(p, "listen: %s", l->l_unix ?
				    "port is not for UNIX sockets" :
				    "mode is only for UNIX sockets");
				return -1;
			}
			if (config_listen_arg(p, l, opt, arg) == -1)
				return -1;
			i++;
			continue;
		}
		config_error(p, "listen: unknown option \"%s\"",
		    config_esc(p, opt));
		return -1;
	}
	return 0;
}

/*
 * A metrics listener speaks HTTP, not SMTP: none of the SMTP options
 * apply, and no SMTP port is a sensible default for it.
 */
static int
config_listen_metrics(struct parse *p, const struct listener *l)
{
	if ((l->l_flags & LF_METRICS) == 0)
		return 0;
	if (l->l_unix || l->l_port == 0) {
		config_error(p, "listen: metrics needs an explicit port");
		return -1;
	}
	if (l->l_flags != LF_METRICS || l->l_deliver_user != NULL) {
		config_error(p, "listen: metrics takes no other option");
		return -1;
	}
	return 0;
}

/* listen on ADDRESS [port N] [OPTIONS...] */
static int
config_listen_parse(struct parse *p, int argc, char **argv)
{
	struct config	*c = p->p_conf;
	struct listener	*l;
	int		 i;

	if (argc < 3 || strcmp(argv[1], "on") != 0) {
		config_error(p, "listen: expected listen on ADDRESS "
		    "[port N] [OPTIONS...]");
		return -1;
	}
	if (c->c_nlisteners == MAX_LISTENERS) {
		config_error(p, "listen: more than %d listeners",
		    MAX_LISTENERS);
		return -1;
	}
	l = xcalloc(1, sizeof(*l));
	l->l_proxy_timeout = DEF_PROXY_TIMEOUT;
	if (config_listen_addr(p, l, argv[2]) == -1 ||
	    config_listen_opts(p, l, argc - 3, argv + 3) == -1 ||
	    config_listen_metrics(p, l) == -1) {
		config_listener_free(l);
		return -1;
	}
	if (l->l_unix)
		snprintf(l->l_name, sizeof(l->l_name), "%s", l->l_addr);
	else {
		/* LMTP has no implicit-TLS port of its own: 24 it is. */
		if (l->l_port == 0 && (l->l_flags & LF_LMTP))
			l->l_port = DEF_PORT_LMTP;
		else if (l->l_port == 0)
			l->l_port = (l->l_flags & LF_TLS) ? DEF_PORT_TLS :
			    DEF_PORT;
		snprintf(l->l_name, sizeof(l->l_name),
		    strchr(l->l_addr, ':') != NULL ? "[%s]:%d" : "%s:%d",
		    l->l_addr, l->l_port);
	}
	l->l_line = p->p_line;
	l->l_nfds = 0;
	for (i = 0; i < LISTENER_MAXFD; i++)
		l->l_fds[i] = -1;
	l->l_index = c->c_nlisteners;
	TAILQ_INSERT_TAIL(&c->c_listeners, l, l_entry);
	c->c_nlisteners++;
	return 0;
}

/* One address a TCP listener binds. */
struct laddr {
	int		 la_af;
	unsigned char	 la_b[sizeof(struct in6_addr)];
};

/*
 * The addresses smtpd.c binds for a TCP listener's ADDRESS: `*` and
 * `localhost` stand for one of each family.  Returns how many.
 */
static int
config_listen_addrs(const char *name, struct laddr *la)
{
	const char	*v[2];
	int		 i, n;

	n = net_listen_hosts(name, v);
	for (i = 0; i < n; i++) {
		memset(&la[i], 0, sizeof(la[i]));
		la[i].la_af = strchr(v[i], ':') != NULL ? AF_INET6 : AF_INET;
		if (inet_pton(la[i].la_af, v[i], la[i].la_b) != 1)
			return 0;
	}
	return n;
}

/*
 * Whether a and b cannot both be bound: 1 for the same socket (IPs
 * compare as binary), 2 when a wildcard of one family takes the port of
 * every address of that family.
 */
static int
config_listen_same(const struct listener *a, const struct listener *b)
{
	static const unsigned char	 any[sizeof(struct in6_addr)];
	struct laddr			 la[2], lb[2];
	int				 na, nb, i, j, same = 0;

	if (a->l_unix != b->l_unix || a->l_port != b->l_port)
		return 0;
	if (strcmp(a->l_addr, b->l_addr) == 0)
		return 1;
	if (a->l_unix)
		return 0;
	na = config_listen_addrs(a->l_addr, la);
	nb = config_listen_addrs(b->l_addr, lb);
	for (i = 0; i < na; i++)
		for (j = 0; j < nb; j++) {
			if (la[i].la_af != lb[j].la_af)
				continue;
			if (memcmp(la[i].la_b, lb[j].la_b, sizeof(any)) == 0)
				same = 1;
			else if (same == 0 && (memcmp(la[i].la_b, any,
			    sizeof(any)) == 0 || memcmp(lb[j].la_b, any,
			    sizeof(any)) == 0))
				same = 2;
		}
	return same;
}

/*
 * Listener options that contradict each other or the global directives
 * (smtpd.conf.5, listen), blamed on the `listen` line.
 */
static void
config_check_listener(struct parse *p, const struct listener *l)
{
	const struct config	*c = p->p_conf;
	const char		*st, *au;

	st = (l->l_flags & LF_REQ_STARTTLS) ? "require-starttls" : "starttls";
	au = (l->l_flags & LF_REQ_AUTH) ? "require-auth" : "auth";
	p->p_line = l->l_line;
	if ((l->l_flags & LF_TLS) && (l->l_flags & LF_STARTTLS))
		config_error(p, "listen: tls cannot be combined with %s", st);
	if ((l->l_flags & LF_AUTH) && c->c_auth.au_backend == AUTH_NONE)
		config_error(p, "listen: %s needs \"auth passwd\" or "
		    "\"auth checkpassword\"", au);
	if ((l->l_flags & (LF_TLS | LF_STARTTLS)) && c->c_tls.tl_cert == NULL)
		config_error(p, "listen: %s needs \"tls certificate\"",
		    (l->l_flags & LF_TLS) ? "tls" : st);
}

/* What no single line shows: checked once the whole file is read. */
static void
config_check(struct parse *p)
{
	struct config		*c = p->p_conf;
	const struct listener	*l, *m;
	int			 a, b, same;

	p->p_line = 0;
	if (c->c_nlisteners == 0)
		config_error(p, "no \"listen on\" directive");
	TAILQ_FOREACH(l, &c->c_listeners, l_entry) {
		for (m = TAILQ_FIRST(&c->c_listeners); m != l;
		    m = TAILQ_NEXT(m, l_entry)) {
			if ((same = config_listen_same(l, m)) == 0)
				continue;
			p->p_line = l->l_line;
			config_error(p, "listen: %s %s the listener of line %d",
			    l->l_name, same == 1 ? "duplicates" :
			    "overlaps (a wildcard takes every address)",
			    m->l_line);
			break;
		}
		config_check_listener(p, l);
	}
	/* For the errors found later: the user (smtpd.c), OpenSSL's. */
	c->c_user_line = p->p_seen[config_keyword("user") - keywords];
	c->c_chroot_line = p->p_seen[config_keyword("chroot") - keywords];
	c->c_spool_line = p->p_seen[config_keyword("spool") - keywords];
	c->c_pidfile_line = p->p_seen[config_keyword("pidfile") - keywords];
	c->c_tls.tl_line_ciphers = config_subseen(p, "tls ciphers");
	c->c_tls.tl_line_protocols = config_subseen(p, "tls protocols");
	if (c->c_lim.lim_prefork > c->c_lim.lim_maxclients) {
		/* Blame the later of the two lines. */
		a = p->p_seen[config_keyword("prefork") - keywords];
		b = p->p_seen[config_keyword("max-clients") - keywords];
		p->p_line = a > b ? a : b;
		config_error(p, "prefork %d is larger than max-clients %d",
		    c->c_lim.lim_prefork, c->c_lim.lim_maxclients);
	}
}

/*
 * The next word of line at *rp, unquoted in place.  In a "quoted string"
 * \" and \\ stand for " and \; any other backslash stays, as in sh.
 * Returns 1 when more may follow, 0 at the end of the line (or of the
 * words: a comment), -1 after an error.
 */
static int
config_word(struct parse *p, char **rp)
{
	char	*r = *rp, *w = *rp, sep;
	int	 q = *r == '"' ? 1 : 0;	/* 1: in quotes, 2: closed */

	for (r += q; *r != '\0'; r++) {
		if (q == 0 && (*r == ' ' || *r == '\t' || *r == '#'))
			break;
		if (iscntrl((unsigned char)*r) && *r != '\t') {
			config_error(p, "control character 0x%02x",
			    (unsigned char)*r);
			return -1;
		}
		if (*r == '"' && q == 0) {
			config_error(p, "quote inside a word");
			return -1;
		}
		if (*r == '"') {
			q = 2;
			r++;
			break;
		}
		if (q == 1 && *r == '\\' && (r[1] == '"' || r[1] == '\\'))
			r++;
		*w++ = *r;
	}
	if (q == 1) {
		config_error(p, "unterminated quoted string");
		return -1;
	}
	if (q == 2 && *r != '\0' && *r != ' ' && *r != '\t' && *r != '#') {
		config_error(p, "text after a closing quote");
		return -1;
	}
	/* w may be r itself: keep the separator before ending the word. */
	sep = *r;
	*w = '\0';
	if (sep == '\0' || sep == '#')
		return 0;
	*rp = r + 1;
	return 1;
}

/* Splits a line into words; returns their number or -1. */
static int
config_words(struct parse *p, char *line, char **words)
{
	char	*r = line;
	int	 n = 0, more = 1;

	while (more) {
		while (*r == ' ' || *r == '\t')
			r++;
		if (*r == '\0' || *r == '#')
			break;
		if (n == CONF_MAXWORDS) {
			config_error(p, "more than %d words", CONF_MAXWORDS);
			return -1;
		}
		words[n++] = r;
		if ((more = config_word(p, &r)) == -1)
			return -1;
	}
	return n;
}

/*
 * One line into buf, without its LF and a CR before that.  Reads an
 * over-long line to its end, so that the next one starts in sync.
 */
static int
config_read_line(FILE *fp, char *buf, size_t size)
{
	size_t	 len = 0;
	int	 c, nul = 0, cut = 0;

	while ((c = getc(fp)) != EOF && c != '\n') {
		if (c == '\0')
			nul = 1;
		if (len + 1 < size)
			buf[len++] = (char)c;
		else
			cut = 1;
	}
	if (c == EOF && len == 0)
		return RL_EOF;
	if (len > 0 && buf[len - 1] == '\r' && !cut)
		len--;
	buf[len] = '\0';
	if (cut || len > MAX_CONF_LINE)
		return RL_LONG;
	return nul ? RL_NUL : RL_OK;
}

static int
config_parse_file(struct parse *p, FILE *fp)
{
	char	 line[MAX_CONF_LINE + 2];
	char	*words[CONF_MAXWORDS];
	int	 st, n;

	while ((st = config_read_line(fp, line, sizeof(line))) != RL_EOF) {
		if (p->p_line == INT_MAX) {
			config_error(p, "too many lines");
			break;
		}
		p->p_line++;
		if (st == RL_LONG)
			config_error(p, "line longer than %d characters",
			    MAX_CONF_LINE);
		else if (st == RL_NUL)
			config_error(p, "NUL character");
		else if ((n = config_words(p, line, words)) > 0)
			config_directive(p, n, words);
	}
	return ferror(fp) ? -1 : 0;
}

/*
 * A configuration from fp, called name in messages; path is the file it
 * came from (NULL: built in).  NULL, with every error logged, if bad.
 */
static struct config *
config_parse_stream(FILE *fp, const char *name, const char *path)
{
	struct parse	 p;

	memset(&p, 0, sizeof(p));
	p.p_file = name;
	p.p_conf = config_default();
	if (path != NULL)
		p.p_conf->c_file = xstrdup(path);
	if (config_parse_file(&p, fp) == -1) {
		log_warn("%s", name);
		p.p_errors++;
	} else
		config_check(&p);
	if (p.p_errors > 0) {
		log_warnx("%s: %d error(s)", name, p.p_errors);
		config_free(p.p_conf);
		return NULL;
	}
	return p.p_conf;
}

struct config *
config_load(const char *path)
{
	struct config	*c;
	FILE		*fp;

	if ((fp = fopen(path, "r")) == NULL) {
		log_warn("%s", path);
		return NULL;
	}
	c = config_parse_stream(fp, path, path);
	fclose(fp);
	return c;
}

/*
 * The built-in default (no configuration file): read through the parser
 * like any file, so it is built and checked by the same code.
 */
struct config *
config_builtin(void)
{
	static const char	 text[] = BUILTIN_CONFIG;
	struct config		*c;
	FILE			*fp;

	if ((fp = fmemopen((void *)(uintptr_t)text, sizeof(text) - 1,
	    "r")) == NULL)
		fatal("fmemopen");
	c = config_parse_stream(fp, "built-in configuration", NULL);
	fclose(fp);
	if (c == NULL)
		fatalx("%s: the built-in configuration is bad", __func__);
	return c;
}

/*
 * A word as the lexer reads it back: bare when that is safe and quoting
 * is not asked for, else quoted.  In quotes a backslash is doubled only
 * before a quote, a backslash or the end, where config_word would take
 * it for an escape; elsewhere it stays as it is read.  Doubling them
 * all made a line of "\d"s longer than the file had it, so that the
 * printout of a line near MAX_CONF_LINE did not load again.
 */
static void
config_print_word(FILE *fp, const char *s, int quote)
{
	if (!quote && s[0] != '\0' && strspn(s, PLAIN_CHARS) == strlen(s)) {
		fputs(s, fp);
		return;
	}
	putc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"' || (*s == '\\' &&
		    (s[1] == '"' || s[1] == '\\' || s[1] == '\0')))
			putc('\\', fp);
		putc(*s, fp);
	}
	putc('"', fp);
}

static void
config_print_value(FILE *fp, const struct config *c,
    const struct keyword *k)
{
	const void	*base = config_cmember(c, k->k_off);
	const char	*s;
	char		 buf[32];

	switch (k->k_type) {
	case KW_INT:
	case KW_DURATION:
		fprintf(fp, "%s %d\n", k->k_name, *(const int *)base);
		break;
	case KW_SIZE:
		fprintf(fp, "%s %s\n", k->k_name, config_fmt_size(
		    *(const long long *)base, buf, sizeof(buf)));
		break;
	case KW_BOOL:
		fprintf(fp, "%s %s\n", k->k_name,
		    *(const int *)base ? "yes" : "no");
		break;
	case KW_STRING:
		/* NULL: the default the start decides, or none. */
		if ((s = *(const char *const *)base) == NULL) {
			if (k->k_unset != NULL)
				fprintf(fp, "# %s %s\n", k->k_name, k->k_unset);
			break;
		}
		fprintf(fp, "%s ", k->k_name);
		config_print_word(fp, s, k->k_flags & KF_QUOTE);
		putc('\n', fp);
		break;
	default:
		break;
	}
}

static void
config_print_any(FILE *fp, const struct config *c, const struct keyword *k)
{
	if (k->k_print != NULL)
		k->k_print(fp, c, k);
	else
		config_print_value(fp, c, k);
}

static void
config_print_kw(FILE *fp, const struct config *c, const struct keyword *k)
{
	if ((k->k_flags & KF_QUIET) == 0)
		config_print_any(fp, c, k);
}

/* `command-limit *` when per-verb lines follow, for the reader. */
static void
config_cmdlimit_print(FILE *fp, const struct config *c,
    const struct keyword *k)
{
	int	 i;

	if (c->c_lim.lim_cmdlimit != -1)
		fprintf(fp, "%s %s%lld\n", k->k_name,
		    c->c_lim.lim_ncmdlimits > 0 ? "* " : "",
		    c->c_lim.lim_cmdlimit);
	for (i = 0; i < c->c_lim.lim_ncmdlimits; i++)
		fprintf(fp, "%s %s %lld\n", k->k_name,
		    c->c_lim.lim_cmdlimits[i].cml_verb,
		    c->c_lim.lim_cmdlimits[i].cml_max);
}

/* The stdout sink has no directive: it is what no `deliver` means. */
static void
config_deliver_print(FILE *fp, const struct config *c,
    const struct keyword *k)
{
	if (c->c_dlv.dl_mode == DELIVER_DISCARD)
		fprintf(fp, "%s discard\n", k->k_name);
	else if (c->c_dlv.dl_mode == DELIVER_PROGRAM) {
		fprintf(fp, "%s ", k->k_name);
		config_print_word(fp, c->c_dlv.dl_cmd, 1);
		putc('\n', fp);
	}
}

/* The names of the bits set, in the order of k_words. */
static void
config_bits_print(FILE *fp, const struct config *c, const struct keyword *k)
{
	const struct confword	*w;
	int			 bits;

	bits = *(const int *)config_cmember(c, k->k_off);
	fputs(k->k_name, fp);
	for (w = k->k_words; w->cw_name != NULL; w++)
		if (bits & w->cw_value)
			fprintf(fp, " %s", w->cw_name);
	putc('\n', fp);
}

static void
config_choice_print(FILE *fp, const struct config *c,
    const struct keyword *k)
{
	const struct confword	*w;
	int			 v;

	v = *(const int *)config_cmember(c, k->k_off);
	for (w = k->k_words; w->cw_name != NULL; w++)
		if (w->cw_value == v)
			fprintf(fp, "%s %s\n", k->k_name, w->cw_name);
}

static void
config_tlscert_print(FILE *fp, const struct config *c,
    const struct keyword *k)
{
	if (c->c_tls.tl_cert == NULL)
		return;
	fprintf(fp, "%s ", k->k_name);
	config_print_word(fp, c->c_tls.tl_cert, 1);
	fputs(" key ", fp);
	config_print_word(fp, c->c_tls.tl_key, 1);
	putc('\n', fp);
}

/* `auth passwd` or `auth checkpassword`: the one that is set. */
static void
config_backend_print(FILE *fp, const struct config *c,
    const struct keyword *k)
{
	enum auth_backend	 backend;

	backend = strcmp(k->k_name, "auth passwd") == 0 ? AUTH_PASSWD :
	    AUTH_CHECKPASSWORD;
	if (c->c_auth.au_backend != backend)
		return;
	fprintf(fp, "%s ", k->k_name);
	config_print_word(fp, c->c_auth.au_path, 1);
	putc('\n', fp);
}

/* " NET/PREFIX" for each of the n networks. */
static void
config_nets_print(FILE *fp, const struct netaddr *na, int n)
{
	char	 buf[INET6_ADDRSTRLEN];
	int	 i;

	for (i = 0; i < n; i++) {
		if (inet_ntop(na[i].na_family, na[i].na_addr, buf,
		    sizeof(buf)) == NULL)
			fatal("%s: inet_ntop", __func__);
		fprintf(fp, " %s/%d", buf, na[i].na_prefix);
	}
}

static void
config_proxy_print(FILE *fp, const struct listener *l)
{
	fprintf(fp, " proxy-protocol timeout %d", l->l_proxy_timeout);
	if (l->l_nproxy_from > 0)
		fputs(" from", fp);
	config_nets_print(fp, l->l_proxy_from, l->l_nproxy_from);
}

static void
config_table_print(FILE *fp, const struct config *c,
    const struct keyword *k)
{
	int	 i = config_table_index(k->k_name);

	if (c->c_pol.po_table_file[i] == NULL)
		return;
	fprintf(fp, "%s ", k->k_name);
	config_print_word(fp, c->c_pol.po_table_file[i], 1);
	fputs(c->c_pol.po_table_nocase[i] ? " ignore-case\n" : "\n", fp);
}

/*
 * A list of networks, NETS_PER_LINE a line (a list of MAX_CLIENT_NETS
 * on one would be more words, and longer, than a line may hold), or
 * nothing when there are none.
 */
#define NETS_PER_LINE	64
static void
config_netlist_print(FILE *fp, const struct config *c,
    const struct keyword *k)
{
	const struct netaddr	*na = config_cmember(c, k->k_off);
	int			 n = *(const int *)config_cmember(c, k->k_count);
	int			 i;

	for (i = 0; i < n; i += NETS_PER_LINE) {
		fputs(k->k_name, fp);
		config_nets_print(fp, na + i, n - i < NETS_PER_LINE ?
		    n - i : NETS_PER_LINE);
		putc('\n', fp);
	}
}

/*
 * `policy` with its settings, which mean nothing without it: the quiet
 * policy-* rows that follow it in keywords[].
 */
static void
config_policy_print(FILE *fp, const struct config *c,
    const struct keyword *k)
{
	const struct keyword	*q;

	if (c->c_pol.po_server == NULL)
		return;
	fprintf(fp, "%s ", k->k_name);
	config_print_word(fp, c->c_pol.po_server, 0);
	putc('\n', fp);
	for (q = k + 1; q < keywords + NKEYWORDS &&
	    (q->k_flags & KF_QUIET) != 0; q++)
		config_print_any(fp, c, q);
}

static void
config_delim_print(FILE *fp, const struct config *c,
    const struct keyword *k)
{
	char	 d[2];

	if (c->c_pol.po_rcpt_delim == 0)
		return;
	/* Quoted when it must be: # would start a comment. */
	d[0] = (char)c->c_pol.po_rcpt_delim;
	d[1] = '\0';
	fprintf(fp, "%s ", k->k_name);
	config_print_word(fp, d, 0);
	putc('\n', fp);
}

/* The options in a fixed order; require-X stands for X too. */
static void
config_listen_print(FILE *fp, const struct listener *l)
{
	fputs("listen on ", fp);
	config_print_word(fp, l->l_addr, 0);
	if (l->l_unix) {
		fprintf(fp, " mode %04o", (unsigned int)l->l_mode);
		if (l->l_owner != NULL)
			fprintf(fp, " owner %s", l->l_owner);
		if (l->l_group != NULL)
			fprintf(fp, " group %s", l->l_group);
	} else
		fprintf(fp, " port %d", l->l_port);
	if (l->l_flags & LF_TLS)
		fputs(" tls", fp);
	if (l->l_flags & LF_REQ_STARTTLS)
		fputs(" require-starttls", fp);
	else if (l->l_flags & LF_STARTTLS)
		fputs(" starttls", fp);
	if (l->l_flags & LF_REQ_AUTH)
		fputs(" require-auth", fp);
	else if (l->l_flags & LF_AUTH)
		fputs(" auth", fp);
	if (l->l_flags & LF_AUTH_PLAIN)
		fputs(" auth-plaintext", fp);
	if (l->l_flags & LF_PROXY)
		config_proxy_print(fp, l);
	if (l->l_flags & LF_LMTP)
		fputs(" lmtp", fp);
	if (l->l_flags & LF_METRICS)
		fputs(" metrics", fp);
	if (l->l_deliver_user != NULL)
		fprintf(fp, " deliver-user %s", l->l_deliver_user);
	putc('\n', fp);
}

void
config_print(FILE *fp, const struct config *c)
{
	const struct keyword	*k, *s;
	const struct listener	*l;
	size_t			 len;

	for (k = keywords; k < keywords + NKEYWORDS; k++) {
		if (k->k_type != KW_SUB) {
			config_print_kw(fp, c, k);
			continue;
		}
		len = strlen(k->k_name);
		for (s = subforms; s < subforms + NSUBFORMS; s++)
			if (strncmp(s->k_name, k->k_name, len) == 0 &&
			    s->k_name[len] == ' ')
				config_print_kw(fp, c, s);
	}
	TAILQ_FOREACH(l, &c->c_listeners, l_entry)
		config_listen_print(fp, l);
}
