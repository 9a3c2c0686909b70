/*
 * server-worker.h: the worker record and its link, shared by
 * server-worker.c (the registry: records, their states, channels and
 * calls) and server-link.c (one WebSocket link: hello, resume, dispatch
 * of what the worker sends). Everything else sees struct worker only
 * through the accessors in sandd.h.
 */
#ifndef SERVER_WORKER_H
#define SERVER_WORKER_H

struct worker {
	char		 id[WORKER_ID_MAX + 1];
	char		*info;		/* hostname\0os\0arch\0version\0 */
	json_t		*labels;	/* shared: lset->labels */
	struct label_set *lset;
	char		 boot[40];
	char		 addr[64];
	char		 why[128];	/* its last link went: why */
	time_t		 connected_at;

	int		 state;
#define WORKER_CONNECTED	1
#define WORKER_AWAY		2	/* inside its resume window */
#define WORKER_GONE		3	/* kept a while for `workers all` */
	struct ws_conn	*ws;		/* link->ws while connected */
	struct link	*link;
	struct worker_auth auth;	/* how its link proved who it is */
	struct event	*timer;		/* resume window, then expiry */
	uint32_t	 next_ch;
	struct chans	 chans;
	json_t		*pending;	/* messages held while away */
	TAILQ_HEAD(, worker_rpc) rpcs;	/* calls awaiting a `res` */
	uint32_t	 next_rid;
	TAILQ_ENTRY(worker) entry;
	struct worker	*hnext;		/* in the index by id */
};

/* A call to a worker awaiting its `res`. */
struct worker_rpc {
	struct worker	*worker;
	uint32_t	 rid;
	json_t		*msg;
	void		(*done)(json_t *, void *);
	void		*arg;
	TAILQ_ENTRY(worker_rpc) entry;
};


/* A link that has upgraded but not yet said hello. */
struct link {
	struct ws_conn	*ws;
	char		 addr[64];
	struct event	*timer;		/* hello timeout, NULL after */
	struct worker	*worker;	/* once registered */
	char		 id[WORKER_ID_MAX + 1];	/* authenticated at upgrade */
	struct worker_auth auth;	/* how it proved it */
	TAILQ_ENTRY(link) entry;	/* all_links */
};

/* server-worker.c */
extern int	 server_worker_stopping;
struct worker	*server_worker_find(const char *);
struct worker	*server_worker_create(const char *);
void		 server_worker_set_state(struct worker *, int);
void		 server_worker_set_hello(struct worker *, json_t *);
void		 server_worker_link_lost(struct worker *, const char *);
void		 server_worker_lose_chans(struct worker *, const char *, int);
int		 server_worker_pending_ends(struct worker *, uint32_t);
struct chan	*server_worker_chan_find(struct worker *, uint32_t);
int		 server_worker_links(void);

/* server-link.c */
void		 server_link_free(struct link *);

#endif
