/*
 * job.h: the worker's channel object, shared by job.c (the channel
 * engine) and the files of each kind: worker-exec.c (commands),
 * worker-session.c (PTY sessions) and worker-file.c (transfers).
 */
#ifndef JOB_H
#define JOB_H

struct job;

/* One output stream: bytes [base, base+len(buf)) are unacknowledged. */
struct job_stream {
	struct job	*job;
	int		 fd;
	struct event	*ev;
	struct evbuffer	*buf;
	uint64_t	 base;		/* acked by the controller */
	uint64_t	 sent;		/* sent on the current link */
	int		 eof;
	int		 paused;	/* window full: not reading */
};

/* What differs between kinds of job; every hook may be NULL. */
struct job_ops {
	/* Bytes read from stream s, already queued to be sent. */
	void	(*output)(struct job *, int, const uint8_t *, size_t);
	/*
	 * With JOB_FILTER: bytes read from stream s, not yet queued; the
	 * hook queues what it keeps with job_stream_push().
	 */
	void	(*filter)(struct job *, int, const uint8_t *, size_t);
	/* Stream s reached EOF (its descriptor is closed). */
	void	(*eof)(struct job *, int);
	/* The controller acknowledged output of stream s. */
	void	(*acked)(struct job *, int);
	/* Input bytes, in order; instead of writing them to stdin. */
	void	(*input)(struct job *, const uint8_t *, size_t);
	/* The input ends at in_eof_at; instead of closing stdin there. */
	void	(*input_eof)(struct job *);
	/* A message for the channel that job.c does not handle. */
	void	(*message)(struct job *, enum wire_type, json_t *);
	/* The controller is done with it; instead of cancel or free. */
	void	(*release)(struct job *);
	/* Nobody waits for it (JOB_CANCELLED is set); instead of stopping. */
	void	(*cancel)(struct job *);
	/* More fields for the job's entry in the hello. */
	void	(*describe)(struct job *, json_t *);
	/* The link is back: say again what may have been lost. */
	void	(*link_up)(struct job *);
	/* The job is being freed: free data. */
	void	(*free)(struct job *);
};

struct job {
	struct wlink		*link;		/* whose channel; NULL: gone */
	uint32_t		 ch;
	int			 kind;
	char			 handle[40];
	int			 flags;
#define JOB_DETACHED	0x1	/* survives its requester (yield_after) */
#define JOB_CANCELLED	0x2
#define JOB_TIMED_OUT	0x4
#define JOB_END_SENT	0x8
#define JOB_FILTER	0x10	/* output goes through ops->filter */
#define JOB_SHARED	0x20	/* a session: every link sees it */
#define JOB_NO_STARTED	0x40	/* the open said "started": false */
	pid_t			 pid;
	int			 fail_fd;	/* start's report: ns_spawn */
	pid_t			 started_pid;	/* its process, once started */
	double			 started;
	double			 kill_grace;
	size_t			 granted;	/* output window, 0: ours */
	const struct job_ops	*ops;

	struct job_stream	 out[WIRE_NSTREAMS];	/* [1] and [2] used */

	int			 in_fd;
	struct event		*in_ev;
	struct evbuffer		*in_buf;	/* received, not yet written */
	uint64_t		 in_off;	/* next input offset expected */
	uint64_t		 in_done;	/* input consumed */
	uint64_t		 in_acked;	/* consumed and acked */
	int			 in_eof_set;
	uint64_t		 in_eof_at;

	json_t			*end;
	json_t			*owner;		/* who asked, as sent */
	struct workspace	*ws;		/* where it runs, NULL: host */
	uint64_t		 ws_ooms;	/* its OOM kills at the start */
	struct cgroup		*cg;		/* its group, see job-tree.c */
	struct event		*timeout_ev;
	struct event		*kill_ev;
	struct event		*flush_ev;	/* output sent soon, in bulk */
	void			*data;		/* per kind */
	TAILQ_ENTRY(job)	 entry;
};

/* job.c */
struct job	*job_find_handle(const char *);
struct job	*job_next(struct job *);
void		 job_message_to(struct job *, enum wire_type, json_t *);
int		 job_count(int, const struct job *, int);
void		 job_free(struct job *);
void		 job_maybe_free(struct job *);
void		 job_flush(struct job *);
void		 job_stream_attach(struct job *, int, int);
void		 job_stream_push(struct job *, int, const uint8_t *, size_t);
void		 job_close_stream(struct job *, int);
size_t		 job_stream_room(struct job *, int);
void		 job_stdin_attach(struct job *, int);
void		 job_ack_input(struct job *);
void		 job_set_end(struct job *, json_t *);
void		 job_fail(struct job *, const char *, int, const char *, ...)
		     __attribute__((format(printf, 4, 5)));
void		 job_terminate(struct job *);

/* job-tree.c */
int		 job_tree_prepare(struct job *, json_t *, struct spawn_req *);
void		 job_tree_started(struct job *, struct spawn_req *);
int		 job_tree_failed(struct job *);
char		**job_tree_env(struct job *, json_t *, int, const char *,
		     const char *);
void		 job_tree_kill(struct job *);
const char	*job_tree_reason(struct job *, int, const char *);
void		 job_tree_free(struct job *);

/* worker-exec.c */
void		 worker_exec_open(struct job *, json_t *);

/* worker-session.c */
void		 worker_session_open(struct job *, json_t *);
const struct ring *worker_session_ring(struct job *);
int		 worker_session_listed(struct job *);
void		 worker_session_view_release(struct job *);

/* worker-shell.c */
struct passwd;
char		*shell_default(struct passwd *);
char		*shell_login(struct job *, struct spawn_req *, struct passwd *,
		     char **);
char		*shell_cmd_string(json_t *, char **);
const char	*shell_term(json_t *);
char		**shell_env(json_t *, const char *);

/* worker-view.c */
void		 view_job_output(struct job *);
void		 view_job_started(struct job *);
void		 view_job_free(struct job *);

/* worker-run.c */
#define RUN_MARK_MAX	64	/* longer than any marker of a run */
struct runner;
/* Finds a run's markers in a session's output; what is not one passes. */
struct run_scan {
	char		 secret[17];
	uint8_t		 part[RUN_MARK_MAX];	/* a marker cut by a read */
	size_t		 plen;
	void		(*bytes)(void *, const uint8_t *, size_t);
	void		(*mark)(void *, int, unsigned long, int);
	void		*arg;
};
void		 run_scan_feed(struct run_scan *, const uint8_t *, size_t);
void		 run_scan_flush(struct run_scan *);
ssize_t		 run_echo_end(const uint8_t *, size_t, const char *);
void		 run_typed_form(struct evbuffer *, const char *);
struct runner	*runner_create(struct job *, int);
void		 runner_free(struct runner *);
void		 runner_request(struct runner *, json_t *);
void		 runner_filter(struct runner *, const uint8_t *, size_t);
void		 runner_eof(struct runner *);
void		 runner_exited(struct runner *, json_t *);

/* worker-file.c */
void		 worker_file_open(struct job *, json_t *);

#endif
