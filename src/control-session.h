/*
 * control-session.h: the controller's session object, shared by
 * control-session.c (its life and the session ops), control-attach.c
 * (each control connection's view: attach, replay, output events,
 * session.read) and control-run.c (session.run, forwarded to the worker).
 */
#ifndef CONTROL_SESSION_H
#define CONTROL_SESSION_H

struct sconn;
struct record;

struct session {
	struct chan	*c;
	char		 id[40];
	char		 worker[WORKER_ID_MAX + 1];
	struct req	*open_req;	/* referenced until answered */
	int		 attach_on_open;
	int		 attach_raw;	/* with raw output events */
	int		 started;
	int		 exited;
	int		 announced;	/* "exited" sent to subscribers */
	json_t		*exit_code;
	json_t		*signal;
	json_t		*reason;	/* why it ended, NULL: not said */
	json_int_t	 pid;
	char		*cmd;
	int		 rows;
	int		 cols;
	char		 created[32];
	struct record	*rec;		/* --record */
	TAILQ_HEAD(, sconn) conns;
	TAILQ_ENTRY(session) entry;
};

/* control-session.c */
struct session	*session_next(struct session *);
struct session	*session_find(const char *);
struct session	*session_get(struct req *);
uint64_t	 session_recv(struct session *);
uint64_t	 session_base(struct session *);
void		 session_copy_held(struct session *, uint64_t, uint8_t *,
		     size_t);
void		 session_consume(struct session *);
void		 session_exited(struct session *, json_t *);

/* control-attach.c */
int		 attach_readonly(struct req *, struct session *);
void		 attach_on_open(struct session *, struct client *, int);
int		 attach_count(struct session *);
void		 attach_deliver_all(struct session *);
void		 attach_exit_all(struct session *, json_t *);
void		 attach_free_all(struct session *);
int		 attach_min(struct session *, uint64_t *);
void		 attach_client_gone(struct client *);
void		 attach_client_drained(struct client *);

/* control-record.c */
void		 record_start(struct session *);
void		 record_feed(struct session *);
void		 record_resize(struct session *);
void		 record_stop(struct session *);

#endif
