/*
 * internal.h: what one module keeps to itself but exposes to its unit
 * tests and fuzz harnesses (tests/).  Only the defining file and tests
 * include it; every other file sees smtpd.h alone.
 */

#ifndef SMTPD_INTERNAL_H
#define SMTPD_INTERNAL_H

/* config.c */
int		 config_split_argv(const char *, char ***, char *, size_t);
int		 config_table_sorted(void);

/* deliver.c */
#define SPOOL_MEM_MAX		(256 * 1024)	/* then an unlinked file */
int		 spool_flush(struct spool *);

/* policy.c */
#define PA_DUNNO		0	/* go on: OK, DUNNO */
#define PA_PREPEND		1	/* go on, and add the header */
#define PA_REFUSE		(-1)	/* the reply says why */
#define PA_BAD			(-2)	/* not understood: policy-default */
#define POLICY_HEADER_MAX	998	/* RFC 5322 2.1.1 */
struct policy_table *policy_table_load(const char *, int, const char *);
int		 policy_table_lookup(const struct policy_table *,
		    const char *, int);
size_t		 policy_table_count(const struct policy_table *);
void		 policy_table_free(struct policy_table *);
int		 policy_reply_action(const char *, size_t, char *, size_t);
int		 policy_action(const char *, const char *, char *, size_t,
		    char *, size_t);

/*
 * score.c: the board a memfd holds, shared by the master and children.
 * The header (counts of the master's own, which master owns each slot)
 * is written by masters only; each slot has a page of its own, which
 * only its child (and the masters) can write.
 */
#define SCORE_MAGIC		0x736d7470	/* "smtp" */
#define SCORE_VERSION		3
#define SCORE_SLOTS		(MAX_CLIENTS + MAX_PREFORK + 64)
#define SCORE_READ_TRIES	8
#define SCORE_GROW		64	/* slots the file grows by */

/* A child's slot: its session as `smtpd -s` shows it, what it counted. */
struct score_slot {
	_Atomic int		 ss_pid;	/* the child, 0 before it runs */
	_Atomic unsigned int	 ss_seq;	/* odd while ss_addr changes */
	_Atomic int		 ss_state;	/* SS_* */
	_Atomic long long	 ss_since;	/* session start, epoch seconds */
	_Atomic unsigned long long ss_bytes;	/* received in this session */
	_Atomic unsigned int	 ss_msgs;	/* messages of this session */
	_Atomic unsigned int	 ss_done;	/* connections the child ended */
	_Atomic int		 ss_notify;	/* the master wants CHAN_IDLE */
	char			 ss_addr[SCORE_ADDR_LEN]; /* client, "" for UNIX */
	/* The counts of every child this slot had: they only grow. */
	_Atomic unsigned long long ss_count[SC_NCOUNTERS];
};

struct score_board {
	uint32_t		 sb_magic;
	uint32_t		 sb_version;
	uint32_t		 sb_nslots;
	uint32_t		 sb_slotsize;	/* a page, or more */
	uint64_t		 sb_slotoff;	/* where slot 0 begins */
	long long		 sb_started;	/* epoch seconds of the start */
	_Atomic int		 sb_used;	/* slots below this were used */
	_Atomic unsigned long long sb_count[SC_NCOUNTERS]; /* the masters' */
	_Atomic int		 sb_owner[SCORE_SLOTS]; /* master; 0: free */
};

struct score_board *score_board(void);

/* Slot i of board b. */
static inline struct score_slot *
score_slot_of(const struct score_board *b, int i)
{
	return (struct score_slot *)(void *)((char *)(uintptr_t)b +
	    b->sb_slotoff + (size_t)i * b->sb_slotsize);
}

/* session.c */
int		 session_bdat_parse(const char *, size_t, unsigned long long *,
		    int *);

/* proxy.c */
#define PROXY_V1_MAX		107

#endif /* SMTPD_INTERNAL_H */
