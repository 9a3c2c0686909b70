/*
 * worker-link.h: a worker's links to its controllers, shared by
 * worker-link.c (a link: dial, hello, dispatch, backoff) and
 * worker-resolve.c (the targets: URLs, names, addresses).
 */
#ifndef WORKER_LINK_H
#define WORKER_LINK_H

#include <sys/socket.h>

/* One --server-url. */
struct wtarget {
	int		 tls;
	int		 literal;	/* host is an address: one link */
	char		*host;
	char		*port;
	char		*path;
	char		*text;		/* as given */
	int		 index;		/* of the --server-url */
	int		 made;		/* links made, names the next */
	double		 resolved;	/* when the last resolution began */
	struct evdns_getaddrinfo_request *req;
	struct event	*resolve_ev;
	TAILQ_ENTRY(wtarget) entry;
};

struct wlink {
	struct wtarget	*t;
	int		 serial;	/* for logs and replies */
	int		 index;		/* in its target */
	struct sockaddr_storage sa;
	socklen_t	 salen;		/* 0: no address yet */
	char		 addr[64];	/* numeric */
	char		 name[128];	/* for logs */
	double		 missing;	/* left the name's addresses at, or 0 */

	int		 state;
#define LINK_IDLE	0	/* waiting to dial */
#define LINK_DIALING	1	/* TCP/TLS connect and HTTP upgrade */
#define LINK_UP		2	/* hello sent */
#define LINK_WELCOMED	3	/* controller answered */
#define LINK_STOPPING	4
	struct bufferevent *dial_bev;
	struct ws_conn	*ws;
	char		 ws_key[25];
	struct event	*redial_ev;
	struct event	*stable_ev;
	struct event	*orphan_ev;
	int		 attempt;
	double		 retry_after;
	int		 fast_retry;	/* the next dial comes within 1 s */
	double		 last_fast;	/* when the last fast retry was due */
	int		 window;	/* resume window from the welcome */
	char		*secret;	/* given by its controller */
	char		 secret_file[32];
	uint32_t	 next_view;
	json_t		*later;		/* sent once it is back */
	TAILQ_ENTRY(wlink) entry;
};

/* worker-link.c */
struct wlink	*link_create(struct wtarget *, const struct sockaddr *,
		     socklen_t, const char *);
void		 link_free(struct wlink *);
void		 link_dial(struct wlink *);
void		 link_set_name(struct wlink *);
int		 link_count(void);

/* worker-resolve.c */
void		 target_resolve(struct wtarget *);
void		 target_start_all(void);
void		 target_free_all(void);

#endif
