/*
 * sandd.h: the internal header. Forward declarations, shared structures
 * and the prototypes of every file, under a banner naming the file.
 */
#ifndef SANDD_H
#define SANDD_H

#include <sys/types.h>
#include <sys/queue.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <jansson.h>

#include "compat.h"
#include "sandd-protocol.h"

struct ws_conn;
struct worker;
struct chan;
struct client;
struct req;
struct session;
struct chan_ops;

extern struct event_base *ev_base;

/* Options of `sandd serve`. */
struct serve_options {
	const char	*listen;
	const char	*control;
	int		 control_mode;
	const char	*token_file;
	const char	*tls_cert;
	const char	*tls_key;
	const char	*tls_client_ca;
	int		 resume_window;
	int		 ping_interval;
	int		 ping_timeout;
	size_t		 max_line;
	size_t		 max_output;
	int		 max_handshakes;
	int		 max_handshakes_addr;	/* per remote address */
	int		 handshake_rate;	/* per second, until measured */
	int		 ws_mask;	/* never agree to unmasked frames */
	int		 syslog;
	int		 verbose;
	const char	*state_dir;
	int		 tls_any_id;	/* one certificate for every id */
	const char	*metrics_token_file;
	const char	*metrics_listen;
	const char	*acl;
	const char	*rate;
	int		 max_inflight;
	int		 max_conns;
	const char	*audit;
	const char	*record;
};
extern struct serve_options serve_opts;

/* Options of `sandd worker`. */
struct worker_options {
	json_t		*urls;		/* --server-url, one or more */
	const char	*id;
	json_t		*labels;
	const char	*token_file;
	const char	*ca;
	const char	*tls_cert;
	const char	*tls_key;
	const char	*root;
	json_t		*allow;
	size_t		 window;
	size_t		 ring_size;
	int		 session_linger;
	int		 ping_interval;
	int		 ping_timeout;
	int		 ws_mask;	/* never offer unmasked frames */
	int		 syslog;
	int		 verbose;
	const char	*state_dir;
	json_t		*allow_env;
	int		 isolate;	/* only workspaces */
	int		 allow_host_network;
	int		 allow_setid;
	int		 max_jobs;
	int		 max_sessions;
	int		 max_workspaces;
	size_t		 ws_max_memory;	/* ceilings of a workspace */
	int		 ws_max_pids;
	double		 ws_max_cpu;
	size_t		 ws_max_disk;	/* 0: none */
};
extern struct worker_options worker_opts;

/* options.c */
struct opt_spec {
	const char	*name;		/* --name */
	int		 letter;	/* -l, or 0 */
	int		 type;
#define OPT_STRING	1	/* const char * */
#define OPT_FLAG	2	/* int, set to 1 */
#define OPT_COUNT	3	/* int, counted (-v -v) */
#define OPT_HOSTPORT	4	/* const char *, checked HOST:PORT */
#define OPT_SECONDS	5	/* int, whole seconds, min up */
#define OPT_INT		6	/* int, min to max */
#define OPT_OCTAL	7	/* int, min to max, in octal */
#define OPT_SIZE	8	/* size_t, with K/M/G, min to max (0: any) */
#define OPT_NUMBER	9	/* double, above 0, up to max */
#define OPT_LIST	10	/* json_t * array of strings, appended */
#define OPT_KV		11	/* json_t * object, one KEY=VALUE */
#define OPT_KVS		12	/* json_t * object, KEY=VALUE,KEY=VALUE */
#define OPT_HELP	13	/* calls the help */
#define OPT_SIZE_NONE	14	/* OPT_SIZE, or "none" for 0 */
	size_t		 off;		/* offsetof its field */
	long		 min;
	long		 max;
	const char	*arg;		/* its argument in --help */
	const char	*what;		/* the valid range, for errors */
	const char	*help;
};
__dead void opts_bad(const char *, const char *, ...)
	     __attribute__((format(printf, 2, 3)));
int	 opts_known(const struct opt_spec *, const char *);
int	 opts_parse(const char *, const struct opt_spec *, void *, int,
	     char **, __dead void (*)(void));
void	 opts_help(FILE *, const struct opt_spec *);

/* log.c */
void	 log_init(const char *, int, int);
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_audit(const char *, ...) __attribute__((format(printf, 1, 2)));
__dead void fatal(const char *, ...) __attribute__((format(printf, 1, 2)));
__dead void fatalx(const char *, ...) __attribute__((format(printf, 1, 2)));
char	*log_escape(const char *, size_t);

/* xmalloc.c */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...)
	     __attribute__((format(printf, 2, 3)));
int	 xvasprintf(char **, const char *, va_list)
	     __attribute__((format(printf, 2, 0)));

/* util.c */
double	 util_now(void);
void	 util_rfc3339(time_t, char *, size_t);
int	 util_valid_id(const char *);
int	 util_u32_cmp(const void *, const void *);
char	*util_escape_terminal(const char *);
size_t	 util_utf8_complete(const uint8_t *, size_t, int *);
int	 util_utf8_valid(const uint8_t *, size_t);
size_t	 util_utf8_lossy(const uint8_t *, size_t, struct evbuffer *, int);
json_t	*util_bytes_json(const void *, size_t);
int	 util_json_set_bytes(json_t *, const char *, const void *, size_t);
int	 util_buffer_utf8_valid(struct evbuffer *);
size_t	 util_utf8_cut(const uint8_t *, size_t);
void	 util_json_escape_buffer(struct evbuffer *, size_t, struct evbuffer *);
void	 util_base64_buffer(struct evbuffer *, size_t, struct evbuffer *);
int	 util_json_get_bytes(json_t *, const char *, struct evbuffer *,
	     char **);
char	*util_base64(const void *, size_t);
void	 util_random_hex(char *, size_t);
void	 util_sha256_hex(const unsigned char *, char [65]);
int	 util_signal_number(const char *);
const char *util_signal_name(int);
const char *util_errno_name(int);
void	 util_timeval(struct timeval *, double);
int	 util_parse_hostport(const char *, char **, char **);
char	*util_default_control_path(int *);
int	 util_control_dir_ok(const char *, int, char **);
int	 util_parse_size(const char *, size_t *);
int	 util_parse_seconds(const char *, int *);
void	 util_bev_slurp(struct bufferevent *, size_t);
struct util_flush *util_flush_new(struct bufferevent *);
void	 util_flush_drained(struct util_flush *);
void	 util_flush_free(struct util_flush *);

/* hash.c */
struct hash;
void	 hash_init(void);
void	 hash_shutdown(void);
struct hash *hash_create(void);
void	 hash_free(struct hash *);
void	 hash_add(struct hash *, const void *, size_t, void (*)(void *),
	     void *);
size_t	 hash_backlog(struct hash *);
void	 hash_when_below(struct hash *, size_t, void (*)(void *), void *);
void	 hash_final(struct hash *, char [65]);

/* http.c */
struct http_msg {
	char	*method;	/* request only */
	char	*target;	/* request only */
	int	 status;	/* response only */
	char	*reason;	/* response only */
	int	 nheaders;
	char	*names[64];
	char	*values[64];
};
int	 http_msg_parse(struct http_msg *, const char *, size_t, int, int *);
void	 http_msg_clear(struct http_msg *);
const char *http_msg_get(struct http_msg *, const char *);
int	 http_has_token(const char *, const char *);
char	*http_ws_accept(const char *);
/* A worker's WebSocket upgrade, as sent or as checked. */
struct http_upgrade {
	const char	*host;		/* request: where to */
	const char	*port;
	const char	*path;
	const char	*key;		/* Sec-WebSocket-Key */
	const char	*id;		/* Sandd-Worker-Id */
	const char	*token;		/* bearer token, NULL for none */
	const char	*secret;	/* the worker's secret, NULL for none */
	int		 mask;		/* 1: RFC 6455 masking kept */
	int		 subprotocol;	/* check: sandd.1 was offered */
};
/* A whole HTTP answer (anything but the 101 of an upgrade). */
struct http_answer {
	int		 status;
	const char	*reason;
	const char	*type;		/* Content-Type, NULL: plain text */
	const char	*extra;		/* more header lines, CRLF each */
	const char	*body;
	int		 head;		/* answer to HEAD: no body */
};
void	 http_respond(struct bufferevent *, const struct http_answer *);
void	 http_upgrade_request(struct evbuffer *, const struct http_upgrade *);
int	 http_upgrade_check(struct http_msg *, struct http_upgrade *,
	     struct http_answer *);
void	 http_upgrade_response(struct evbuffer *, const struct http_upgrade *);
int	 http_upgrade_accepted(struct http_msg *, const char *, int *, char **);

/* tls.c */
struct ssl_ctx_st;
struct ssl_ctx_st *tls_server_ctx(const char *, const char *, const char *,
	     char **);
struct ssl_ctx_st *tls_client_ctx(const char *, const char *, const char *,
	     char **);
void	*tls_client_ssl(struct ssl_ctx_st *, const char *);
void	*tls_server_ssl(struct ssl_ctx_st *);
char	*tls_error_string(void);
char	*tls_bev_error(struct bufferevent *);

/* ws.c */
struct ws_callbacks {
	void	(*text)(struct ws_conn *, const char *, size_t, void *);
	void	(*binary)(struct ws_conn *, const uint8_t *, size_t, void *);
	void	(*closed)(struct ws_conn *, const char *, void *);
	void	(*drained)(struct ws_conn *, void *);
};
struct ws_params {
	int		 flags;
#define WS_ROLE_SERVER	0x1	/* we accepted the connection */
#define WS_NO_MASK	0x2	/* the upgrade agreed on unmasked frames */
	int		 ping_interval;
	int		 ping_timeout;
	size_t		 max_message;
};
struct ws_conn *ws_conn_create(struct bufferevent *, const struct ws_params *,
	     const struct ws_callbacks *, void *);
void	 ws_conn_free(struct ws_conn *);
void	 ws_conn_free_lingering(void);
int	 ws_conn_send_json(struct ws_conn *, json_t *);
int	 ws_conn_send_binary_buf(struct ws_conn *, const void *, size_t,
	     struct evbuffer *, size_t, size_t);
size_t	 ws_conn_backlog(struct ws_conn *);
int	 ws_conn_writable(struct ws_conn *);
void	 ws_conn_close(struct ws_conn *, uint16_t, const char *);
int	 ws_conn_close_code(struct ws_conn *);

/* wire.c */
enum wire_type {
	WIRE_T_UNKNOWN = 0,
	WIRE_T_HELLO,		/* worker: who it is, what it holds */
	WIRE_T_WELCOME,		/* controller: registered */
	WIRE_T_OPEN,		/* controller: start a channel */
	WIRE_T_STARTED,		/* worker: the command runs */
	WIRE_T_END,		/* worker: the channel's result */
	WIRE_T_ACK,		/* both: consumed up to an offset */
	WIRE_T_EOF,		/* controller: no more input */
	WIRE_T_SIGNAL,		/* controller: signal the command */
	/* controller: the command outlives its client */
	WIRE_T_DETACH,
	WIRE_T_RELEASE,		/* controller: forget a finished channel */
	WIRE_T_CANCEL,		/* controller: stop and forget a channel */
	WIRE_T_RESIZE,		/* controller: a session's terminal size */
	WIRE_T_INFO,		/* worker: a session started or is gone */
	WIRE_T_REQ,		/* controller: an RPC */
	WIRE_T_RES,		/* worker: an RPC's answer */
	WIRE_T_ANNOUNCE,	/* worker: a view of another link's session */
	WIRE_NTYPES
};
const char *wire_type_name(enum wire_type);
enum wire_type wire_type_of(json_t *);
json_t	*wire_msg(enum wire_type);
json_t	*wire_chan_msg(enum wire_type, uint32_t);
uint32_t wire_msg_chan(json_t *);
json_t	*wire_verror(const char *, int, const char *, va_list)
	     __attribute__((format(printf, 3, 0)));
json_t	*wire_error(const char *, int, const char *, ...)
	     __attribute__((format(printf, 3, 4)));
void	 wire_frame_header(uint8_t [WIRE_HDR_LEN], int, uint32_t, uint64_t);
int	 wire_frame_parse(const uint8_t *, size_t, int *, uint32_t *,
	     uint64_t *, const uint8_t **, size_t *);

/* server-auth.c */
/* How a worker proved who it is at its upgrade. */
struct worker_auth {
	int		 token;		/* by a token of the token file */
	int		 own_grant;	/* ... of a grant for its very id */
	int		 cert;		/* a certificate naming its id */
	int		 secret;	/* its secret */
	unsigned char	 digest[32];	/* the token's SHA-256 */
};
int	 auth_load_grants(const char *, char **);
void	 auth_init(const char *);
char	*auth_secret(const char *);
int	 auth_admit(struct bufferevent *, const struct http_upgrade *,
	     struct worker_auth *, struct http_answer *);
int	 auth_labels_ok(const char *, const struct worker_auth *, json_t *,
	     char **);
int	 auth_still_granted(const char *, const struct worker_auth *);
const char *auth_controller_id(void);
void	 auth_handle(const char *, const char *, char *, size_t);
int	 auth_handle_ok(const char *, const char *);
void	 auth_free(void);

/* server.c */
struct server_stats {
	uint64_t	 execs_total;
	uint64_t	 bytes_in;
	uint64_t	 bytes_out;
	uint64_t	 auth_failures;
	uint64_t	 handshakes_refused;
	uint64_t	 denied;	/* by the control socket's rules */
	uint64_t	 rate_limited;
	json_t		*errors;
};
extern struct server_stats server_stats;
int	 server_main(void);
void	 server_count_error(const char *);

/* server-metrics.c */
json_t	*server_stats_json(void);
char	*server_metrics(void);
int	 server_metrics_load_token(const char *, char **);
int	 server_metrics_allowed(struct http_msg *);

/* server-worker.c */
struct worker_rpc;
struct worker *server_worker_next(struct worker *);
json_t	*server_worker_labels(struct worker *);
const char *server_worker_addr(struct worker *);
const char *server_worker_why(struct worker *);
int	 server_worker_claimed(const char *);
void	 server_worker_recheck_grants(void);
struct worker *server_worker_reachable(const char *);
json_t	*server_worker_json(struct worker *);
int	 server_worker_matches(struct worker *, json_t *);
int	 server_worker_connected(struct worker *);
size_t	 server_worker_count(int);
void	 server_worker_send(struct worker *, json_t *);
struct chan *server_worker_chan_open(struct worker *,
	     const struct chan_ops *, json_t *);
void	 server_worker_free_all(void);
int	 server_worker_close_all(void);
int	 server_worker_count_chans(struct worker *, int);
const char *server_worker_id(struct worker *);
void	 server_worker_chan_unlink(struct worker *, struct chan *);
struct chans *server_worker_chan_list(struct worker *);
int	 server_worker_writable(struct worker *);
void	 server_worker_send_buf(struct worker *, int, uint32_t, uint64_t,
	     struct evbuffer *, size_t, size_t);
struct worker_rpc *server_worker_rpc(struct worker *, json_t *,
	     void (*)(json_t *, void *), void *);
void	 server_worker_rpc_cancel(struct worker_rpc *);
void	 server_worker_watch(void (*)(struct worker *, const char *));

/* server-admit.c */
int	 server_admit_enter(const char *, const char **, int *,
	     const char **);
void	 server_admit_leave(const char *, int);
int	 server_admit_busy(void);
double	 server_admit_rate(void);

/* server-link.c */
void	 server_link_free_all(void);
void	 server_link_accept(struct bufferevent *, const char *,
	     const char *, int, const struct worker_auth *);

/* chan.c (controller side of one channel) */
struct chan_ops {
	const char	*name;		/* for logs */
	int		 kind;		/* CHAN_EXEC, ... on the wire */
	/* what server_worker_count_chans sees */
	int		 counts;
#define CHAN_COUNT_COMMAND	0x1	/* a running command */
#define CHAN_COUNT_SESSION	0x2	/* a session */
	const char	*prefix;	/* of its handles */
	size_t		 in_window;	/* input in flight at most */
	size_t		 out_window;	/* output the worker may send ahead */
	int		 gaps;		/* the worker may skip output ahead */

	/* Hooks on one channel; any may be NULL. */
	void	(*started)(struct chan *, json_t *);
	void	(*output)(struct chan *);	/* output or the end arrived */
	void	(*info)(struct chan *, json_t *);
	void	(*input_acked)(struct chan *);
	void	(*lost)(struct chan *, const char *, const char *);
	void	(*freed)(struct chan *);
	void	(*owner_gone)(struct chan *);	/* its request's client */
	void	(*owner_drained)(struct chan *);
	int	(*adopt)(struct chan *, json_t *);	/* -1: cancel it */

	/* Hooks on the kind, for state it keeps per control client. */
	void	(*client_gone)(struct client *);
	void	(*client_drained)(struct client *);
};
extern const struct chan_ops chan_exec_ops, chan_session_ops, chan_put_ops,
	     chan_get_ops;

#define CHAN_BUFFERED	0x1	/* collect output for the final reply */
#define CHAN_STREAM	0x2	/* output goes to the owner as events */
#define CHAN_HANDLE	0x4	/* detached: output waits for `read` */
#define CHAN_ENDED	0x8	/* worker sent `end` */
#define CHAN_HOLD	0x10	/* buffered: keep past max_output, unacked */
#define CHAN_STDIN_OPEN	0x20
#define CHAN_RAW	0x80	/* get: raw data events */
#define CHAN_SENT	0x100	/* the open reached a link */
#define CHAN_STARTED	0x200	/* `started` seen */
#define CHAN_FOREIGN	0x400	/* adopted, not made by this controller */
struct chan {
	struct worker	*worker;
	uint32_t	 ch;
	const struct chan_ops *ops;
	int		 flags;
	struct req	*req;		/* its request, NULL when detached */
	json_t		*owner;		/* uid and controller, as sent */
	char		 handle[40];	/* exec handle or session id */
	json_t		*open;		/* the open message, for resend */
	json_t		*end;		/* the worker's end message */

	struct evbuffer	*out[WIRE_NSTREAMS];	/* received, not consumed */
	uint64_t	 recv[WIRE_NSTREAMS];	/* next offset expected */
	uint64_t	 acked[WIRE_NSTREAMS];	/* consumed and acked */
	uint64_t	 dropped[WIRE_NSTREAMS];/* past max_output */
	size_t		 max_output;
	uint8_t		 carry[WIRE_NSTREAMS][4];
	size_t		 ncarry[WIRE_NSTREAMS];

	struct evbuffer	*in;		/* input not yet acked */
	uint64_t	 in_base;	/* offset of first byte of in */
	uint64_t	 in_sent;	/* offset up to which sent */
	int		 in_eof;	/* eof requested */
	int		 in_eof_sent;

	void		*data;		/* per-kind state */
	TAILQ_ENTRY(chan) wentry;	/* worker's list */
	TAILQ_ENTRY(chan) rentry;	/* request's list */
};
TAILQ_HEAD(chans, chan);
struct chan *chan_create(struct worker *, uint32_t, const struct chan_ops *);
void	 chan_free(struct chan *);
void	 chan_kinds_client_gone(struct client *);
void	 chan_kinds_client_drained(struct client *);
int	 chan_data(struct chan *, int, uint64_t, const uint8_t *, size_t);
int	 chan_over_max(struct chan *);
void	 chan_ack(struct chan *, int);
void	 chan_consume(struct chan *, int, size_t);
void	 chan_input(struct chan *, const void *, size_t);
void	 chan_input_buffer(struct chan *, struct evbuffer *, size_t);
void	 chan_input_eof(struct chan *);
void	 chan_input_acked(struct chan *, uint64_t);
void	 chan_flush_input(struct chan *);
size_t	 chan_input_backlog(struct chan *);
void	 chan_resume(struct chan *, json_t *);
void	 chan_started(struct chan *, json_t *);
void	 chan_info(struct chan *, json_t *);
void	 chan_end(struct chan *, json_t *);
void	 chan_lost(struct chan *, const char *, const char *);
void	 chan_cancel(struct chan *);
void	 chan_release(struct chan *);
struct chan *chan_adopt(struct worker *, uint32_t, json_t *);
struct chan *chan_find_handle(const char *, const struct chan_ops *);
json_t	*chan_take_output(struct chan *, int, size_t);
size_t	 chan_take_buffer(struct chan *, int, size_t, struct evbuffer *);
size_t	 chan_event_bytes(json_t *, const char *, struct chan *, int,
	     const uint8_t *, size_t, int);

/* control.c */
struct client *control_client_ref(struct client *);
void	 control_client_unref(struct client *);
int	 control_client_dead(struct client *);
int	 control_client_writable(struct client *);
void	 control_client_send(struct client *, json_t *);
void	 control_client_send_raw(struct client *, json_t *, struct evbuffer *);
void	 control_client_send_stream(struct client *, json_t *, const char **,
	     struct evbuffer **, int);
void	 control_client_subscribe(struct client *, int);
void	 control_client_set_sink(struct client *, struct chan *);
void	 control_client_sink_gone(struct chan *);
void	 control_client_sink_drained(struct chan *);
void	 control_client_wait_sink(struct client *, struct chan *);
void	 control_client_check_finished(struct client *);
int	 control_listen(const char *, int, char **);
void	 control_close(void);
void	 control_reap(void);
size_t	 control_client_count(void);
long	 control_client_uid(struct client *);
const struct compat_peer *control_client_peer(struct client *);
void	 control_broadcast_event(int, json_t *,
	     int (*)(struct client *, void *), void *);
#define TOPIC_WORKERS	0x1
#define TOPIC_SESSIONS	0x2
/* The control line splitter: pure, see control.c. */
struct control_split {
	int		 discard;	/* inside a line over the limit */
};
#define SPLIT_MORE	0	/* no whole line yet */
#define SPLIT_LINE	1	/* a line of *n bytes, then its newline */
#define SPLIT_TOO_LONG	2	/* a line over the limit: drop *n bytes */
#define SPLIT_SKIP	3	/* the rest of a dropped line: drop *n */
int	 control_split_next(struct control_split *, ssize_t, size_t, size_t,
	     size_t *);
uint64_t control_line_payload(json_t *);

/* control-req.c */
/* Field specs of an op, checked before its handler runs. */
struct req_field {
	const char	*name;
	int		 type;
#define FIELD_ANY	0
#define FIELD_STRING	1
#define FIELD_BOOL	2
#define FIELD_OBJECT	3
#define FIELD_ARRAY	4
#define FIELD_SECONDS	5	/* a number, 0 to FIELD_MAX_SECONDS */
#define FIELD_COUNT	6	/* a whole number, min to max (0: no max) */
#define FIELD_PATH	7	/* an absolute path without NUL */
#define FIELD_ARGV	8	/* a non-empty array of strings */
#define FIELD_ENV	9	/* an object of NAME: string */
#define FIELD_COUNTS	10	/* an object of NAME: whole number */
	int		 flags;
#define FIELD_REQUIRED	0x1
#define FIELD_NONUL	0x2	/* a string without NUL bytes */
	json_int_t	 min;
	json_int_t	 max;
	const char	*what;		/* "must be ..." for the message */
};
#define FIELD_MAX_SECONDS	(10 * 365 * 86400)
#define FIELD_MAX_BYTES		((json_int_t)1 << 53)

struct req_call;
struct req {
	int		 refs;
	int		 flags;
#define REQ_DEAD	0x1	/* answered, or its client went */
#define REQ_BROADCAST	0x2
#define REQ_WAIT	0x4	/* a `wait` op */
#define REQ_EXPIRED	0x8	/* its deadline passed */
#define REQ_MISS_OK	0x10	/* ENOENT is an answer, not an error */
#define REQ_AUDIT	0x20	/* its end goes to the audit file */
	struct client	*client;
	json_t		*id;		/* echoed, may be NULL */
	json_t		*msg;		/* the request */
	const char	*op;
	struct worker	*worker;	/* the one named, for OP_WORKER */
	double		 started;
	struct chans	 chans;		/* channels it owns */
	TAILQ_HEAD(, req_call) calls;	/* calls to workers in flight */
	struct event	*timer;
	void		*data;		/* per-op state */
	void		(*data_free)(void *);
	TAILQ_ENTRY(req) entry;
};
TAILQ_HEAD(reqs, req);
struct req *req_create(struct client *, json_t *);
struct req *req_ref(struct req *);
void	 req_unref(struct req *);
int	 req_dead(struct req *);
void	 req_add_chan(struct req *, struct chan *);
void	 req_remove_chan(struct chan *);
void	 req_event(struct req *, json_t *);
void	 req_reply(struct req *, json_t *);
void	 req_reply_stream(struct req *, json_t *, const char **,
	     struct evbuffer **, int);
void	 req_error(struct req *, const char *, const char *, ...)
	     __attribute__((format(printf, 3, 4)));
void	 req_error_json(struct req *, json_t *);
int	 req_check_fields(struct req *, const struct req_field *);
json_t	*req_field(struct req *, const char *);
const char *req_string(struct req *, const char *);
double	 req_number(struct req *, const char *, double);
json_int_t req_int(struct req *, const char *, json_int_t);
int	 req_bool(struct req *, const char *, int);
void	 req_rpc(struct req *, struct worker *, json_t *,
	     void (*)(struct req *, json_t *));
void	 req_rpc_forward(struct req *, json_t *);
json_t	*req_owner(struct req *);
int	 req_client_pending(struct client *);
void	 req_client_gone(struct client *);
void	 req_client_drained(struct client *);
void	 req_foreach(void (*)(struct req *, void *), void *);

/* control-cmd.c */
/* The command fields shared by exec and session.open. */
#define REQ_COMMAND_FIELDS						\
	{ "cmd", FIELD_STRING, 0, 0, 0, NULL },				\
	{ "argv", FIELD_ARGV, 0, 0, 0, "a non-empty array of strings" }, \
	{ "env", FIELD_ENV, 0, 0, 0, "an object mapping names to strings" }, \
	{ "cwd", FIELD_STRING, 0, 0, 0, NULL },				\
	{ "user", FIELD_STRING, 0, 0, 0, NULL }
int	 control_cmd_command(struct req *, int);
void	 control_cmd_dispatch(struct client *, json_t *, const char *);
void	 control_cmd_init(void);

/* control-acl.c */
#define ACL_VIEW	0x1	/* hello, workers, wait, subscribe, lists */
#define ACL_EXEC	0x2	/* exec and its handles */
#define ACL_SESSION	0x4
#define ACL_FILES	0x8
#define ACL_WORKSPACE	0x10
#define ACL_ALL		0x1f
#define ACL_WS_ONLY	0x100	/* rule: work only inside a workspace */
#define ACL_HOST_NET	0x200	/* rule: ... and workspaces on the host net */
int	 control_acl_load(const char *, char **);
void	 control_acl_free(void);
int	 control_acl_privileged(struct client *);
int	 control_acl_covers(struct client *, struct worker *);
int	 control_acl_covers_id(struct client *, const char *);
int	 control_acl_owns(struct client *, json_t *);
int	 control_acl_visible(struct client *, const char *, json_t *);
int	 control_acl_check(struct req *, int);
int	 control_acl_check_network(struct req *);

/* control-limit.c */
int	 control_limit_parse_rate(const char *, char **);
void	 control_limit_count(struct req *);
int	 control_limit_rate(struct req *);
int	 control_limit_inflight(struct req *);
void	 control_limit_metrics(struct evbuffer *);
void	 control_limit_free(void);

/* control-audit.c */
int	 control_audit_open(const char *, char **);
void	 control_audit_reopen(void);
void	 control_audit_close(void);
void	 control_audit_request(struct req *, json_t *, json_t *);
void	 control_audit_worker(const char *, const char *, const char *,
	     const char *);

/* control-exec.c */
void	 control_exec_cmd(struct req *);
void	 control_exec_read(struct req *);
void	 control_exec_write(struct req *);
void	 control_exec_signal(struct req *);

/* control-session.c */
void	 control_session_open(struct req *);
void	 control_session_attach(struct req *);
void	 control_session_detach(struct req *);
void	 control_session_write(struct req *);
void	 control_session_resize(struct req *);
void	 control_session_read(struct req *);
void	 control_session_close(struct req *);
void	 control_session_list(struct req *);
void	 control_session_signal(struct req *);

/* control-run.c */
void	 control_run_cmd(struct req *);

/* control-file.c */
void	 control_file_put(struct req *);
void	 control_file_get(struct req *);
void	 control_file_stat(struct req *);
void	 control_file_payload_done(struct chan *);

/* control-workspace.c */
void	 control_workspace_pass(struct req *, json_t *);
void	 control_workspace_create(struct req *);
void	 control_workspace_list(struct req *);
void	 control_workspace_destroy(struct req *);

/* worker.c */
int	 worker_main(void);
void	 worker_child_add(pid_t, void (*)(pid_t, int, void *), void *);
void	 worker_rpc(json_t *);
void	 worker_replaced(void);
const char *worker_boot(void);
void	 worker_reap(void);
void	 worker_reply(json_t *, json_t *);
void	 worker_reply_error(json_t *, const char *, int, const char *, ...)
	     __attribute__((format(printf, 4, 5)));

/* worker-link.c */
struct wlink;
int	 wlink_parse(json_t *, char **);
int	 wlink_need_tls(void);
void	 wlink_start(void *, const char *);
int	 wlink_stop_all(void);
void	 wlink_free_all(void);
struct wlink *wlink_next(struct wlink *);
struct wlink *wlink_of_req(json_t *);
int	 wlink_connected(struct wlink *);
int	 wlink_any_connected(void);
int	 wlink_writable(struct wlink *);
int	 wlink_window(struct wlink *);
void	 wlink_send(struct wlink *, json_t *);
void	 wlink_send_later(struct wlink *, json_t *);
int	 wlink_send_buf(struct wlink *, int, uint32_t, uint64_t,
	     struct evbuffer *, size_t, size_t);
uint32_t wlink_view_ch(struct wlink *);
const char *wlink_name(struct wlink *);
struct wlink_addr {
	char		 text[64];	/* numeric, the key */
	int		 up;		/* its link is registered */
};
void	 wlink_plan(const struct wlink_addr *, size_t, const char **, size_t,
	     int *, int *);

/* worker-view.c */
void	 view_hello(struct wlink *, json_t *);
void	 view_link_up(struct wlink *);
void	 view_link_writable(struct wlink *);
void	 view_link_gone(struct wlink *);
void	 view_message(struct wlink *, uint32_t, enum wire_type, json_t *);
void	 view_input(struct wlink *, uint32_t, uint64_t, const uint8_t *,
	     size_t);

/* worker-state.c */
void	 state_init(void);
const char *state_folder(void);
char	*state_read(const char *);
int	 state_write(const char *, const void *, size_t);
int	 state_mkdirs(char *, mode_t);

/* worker-workspace.c */
struct workspace;
/* What a workspace may take (0: no limit). */
struct ws_limits {
	uint64_t	 memory;	/* bytes */
	int		 pids;		/* processes at once */
	double		 cpu;		/* cores */
	uint64_t	 disk;		/* bytes of /workspace */
};
void	 workspace_init(void);
void	 workspace_shutdown(void);
void	 worker_workspace_create(json_t *);
void	 worker_workspace_list(json_t *);
void	 worker_workspace_destroy(json_t *);
int	 workspace_of(json_t *, struct workspace **, const char **, char **);
struct workspace *workspace_ref(struct workspace *);
void	 workspace_unref(struct workspace *);
const char *workspace_name(struct workspace *);
struct ns_init *workspace_ns(struct workspace *);
struct cgroup *workspace_cgroup(struct workspace *);
struct ns_file *workspace_file_open(struct workspace *, const char *, int,
	     int, void (*)(int, int, int, void *), void *, int *);
struct ns_file *workspace_file_parent(struct workspace *, const char *, int,
	     void (*)(int, int, int, void *), void *, int *);
int	 workspace_file_give(struct workspace *, int);
char	**workspace_env(struct workspace *, json_t *, const char *);
uint64_t workspace_ooms(struct workspace *);

/* worker-workspace-limits.c */
int	 workspace_limits_parse(json_t *, const struct ws_limits *,
	     const char *, struct ws_limits *, const char **, char **);
int	 workspace_limits_clamp(struct ws_limits *, const struct ws_limits *,
	     char **);
void	 workspace_limits_saved(json_t *, struct ws_limits *, char **);

/* worker-ring.c */
/* The last size bytes of a stream, addressed by absolute offset. */
struct ring {
	uint8_t		*buf;
	size_t		 size;
	uint64_t	 end;		/* bytes added so far */
};
void	 ring_init(struct ring *, size_t);
void	 ring_free(struct ring *);
uint64_t ring_start(const struct ring *);
void	 ring_add(struct ring *, const uint8_t *, size_t);
void	 ring_copy(const struct ring *, uint64_t, uint8_t *, size_t);

/* worker-session.c */
void	 worker_session_read(json_t *);
void	 worker_session_run(json_t *);
void	 worker_session_resize(json_t *);
void	 worker_session_signal(json_t *);
void	 worker_session_close(json_t *);

/* worker-file.c */
void	 worker_file_stat(json_t *);

/* worker-path.c */
int	 path_init(char **);
const char *path_root(void);
const char *path_root_real(void);
int	 path_outside(int);
int	 path_open(const char *, int, mode_t);
int	 path_open_parent(const char *, int, int, char **, char **);

/* job.c */
void	 job_free_all(void);
void	 job_open(struct wlink *, uint32_t, json_t *);
void	 job_message(struct wlink *, uint32_t, enum wire_type, json_t *);
void	 job_input(struct wlink *, uint32_t, uint64_t, const uint8_t *,
	     size_t);
void	 job_link_up(struct wlink *);
void	 job_link_orphans(struct wlink *);
void	 job_link_gone(struct wlink *);
void	 job_links_changed(void);
void	 job_link_writable(struct wlink *);
json_t	*job_list_json(struct wlink *);
void	 job_shutdown(void);

/* worker-policy.c */
int	 policy_init(char **);
int	 policy_files_allowed(char **);
int	 policy_command_allowed(char **, json_t *, char **);
int	 policy_env_ok(json_t *, char **);

/* spawn.c */
#define SPAWN_DEFAULT_PATH	"/usr/local/bin:/usr/bin:/bin"	/* no $PATH */
/* How a workspace command joins its groups (cgroup_join_open). */
struct cgroup_join {
	int		 fork[4];	/* joined by the process that forks */
	int		 nfork;
	int		 self[4];	/* joined by the command, first thing */
	int		 nself;
};
struct spawn_req {
	char		**argv;
	const char	*path;		/* what to run, NULL: argv[0] found */
	char		**envp;
	const char	*cwd;
	const char	*user;
	int		 fd_in;
	int		 fd_out;
	int		 fd_err;
	json_t		*limits;
	int		 rows;		/* spawn_pty: the terminal's size */
	int		 cols;

	/* Worked out before the fork by spawn_plan (see spawn.c). */
	uid_t		 uid;
	gid_t		 gid;
	gid_t		*groups;
	int		 ngroups;
	int		 nlimits;
	int		 limit_res[8];
	uint64_t	 limit_val[8];

	/* Where it runs: a workspace (NULL: the host), a job's groups. */
	struct ns_init	*ns;
	int		 cg_fds[4];	/* on the host */
	int		 ncg;
	int		 ncg_kept;	/* the first ones are a spare's */
	struct cgroup_join cg_join;	/* in a workspace */
	int		 fail_fd;	/* in a workspace: see ns_spawn */
	/* Set by a vfork child that failed: step + 1 and its errno. */
	volatile int	 child_step;
	volatile int	 child_errno;
};
int	 spawn_plan(struct spawn_req *, int *);
void	 spawn_plan_free(struct spawn_req *);
void	 spawn_note_signals(void);
void	 spawn_reset_signals(void);
pid_t	 spawn_process(struct spawn_req *, int *, char **);
pid_t	 spawn_pty(struct spawn_req *, int *, int *, char **);
char	**spawn_build_env(json_t *, int, const char *, const char *);
char	**spawn_build_argv(json_t *, char **);
void	 spawn_free_strv(char **);

/* cgroup.c */
#define CG_MEMORY	0
#define CG_PIDS		1
#define CG_CPU		2
#define CG_TRACK	3	/* finds and kills: v2, or v1 pids */
#define CG_NHIER	4
#define CGROUP_RMDIR	1
#define CGROUP_KILL	2
struct cgroup;
void	 cgroup_init(const char *, const char *, const char *);
void	 cgroup_make(void);
int	 cgroup_version(int);
int	 cgroup_tracking(void);
struct cgroup *cgroup_create(struct cgroup *, const char *, int, char **);
int	 cgroup_set_limits(struct cgroup *, uint64_t, int, double, char **);
int	 cgroup_procs_fds(struct cgroup *, int *, int);
int	 cgroup_enter(const int *, int);
int	 cgroup_join_open(struct cgroup *, struct cgroup_join *, char **);
void	 cgroup_join_close(struct cgroup_join *);
int	 cgroup_join_fork(const struct cgroup_join *);
int	 cgroup_join_self(const struct cgroup_join *);
int	 cgroup_count(struct cgroup *);
int	 cgroup_kill(struct cgroup *);
int	 cgroup_kill_pass(struct cgroup *);
uint64_t cgroup_memory_used(struct cgroup *);
uint64_t cgroup_oom_kills(struct cgroup *);
void	 cgroup_free(struct cgroup *, int);
int	 cgroup_spare_keep(struct cgroup *);
struct cgroup *cgroup_spare_take(void);
int	 cgroup_spare_procs(struct cgroup *);
void	 cgroup_sweep(void);
void	 cgroup_kill_all(void);
void	 cgroup_shutdown(void);
const char *cgroup_path(struct cgroup *, int);
void	 cgroup_guard_start(void);

/* seccomp.c */
int	 seccomp_init_filter(char **);
int	 seccomp_apply(void);
void	 seccomp_free_filter(void);

/* wsslot.c */
#define WSSLOT_DIR	"/var/lib/sandd-slots"	/* host-wide, not an id */
#define WSSLOT_COUNT	16384
int	 wsslot_take(const char *, int *, char **);
int	 wsslot_claim(int, const char *, int *, char **);
void	 wsslot_give(int, int);

/* disk.c */
int	 disk_probe(char **);
int	 disk_make(const char *, const char *, uint64_t, char **);
int	 disk_attach(const char *, char **, char **);
int	 disk_shrink(const char *, uint64_t, char **);
pid_t	 disk_copy_out(const char *, const char *, const char *, char **);

/* ns.c */
/* How a workspace's init is made. */
struct ns_config {
	const char	*hostname;
	const char	*work;		/* host folder bound at /workspace */
	const char	*disk;		/* or an ext4 device mounted there */
	const char	*stage;		/* an empty host folder to build in */
	const char	*hide;		/* host folder shown empty, or NULL */
	int		 host_network;
	uint64_t	 tmp_size;	/* bytes of /tmp (0: a default) */
	uid_t		 uid;		/* host ids of root inside */
	gid_t		 gid;
	unsigned	 count;		/* ids mapped from there */
};
/* A running init. */
struct ns_files;
struct ns_init {
	pid_t		 pid;
	int		 pidfd;
	struct ns_files	*files;		/* its file service */
	uid_t		 uid;
	gid_t		 gid;
	unsigned	 count;
	int		 host_network;
};
int	 ns_init_start(const struct ns_config *, struct cgroup *,
	     struct ns_init *, char **);
void	 ns_init_stop(struct ns_init *);
__dead void ns_child_fail(int, int);
void	 ns_send_fd(int, const void *, size_t, int);
ssize_t	 ns_recv_fd(int, void *, size_t, int, int *);
#define NS_INIT_ARGV0	"sandd-init"	/* a workspace's init, exec'd */
__dead void ns_init_main(void);

/* ns-file.c */
#define NS_FILE_MKDIRS	0x1	/* make the path's folders first */
#define NS_FILE_WRITABLE 0x2	/* the folder opened must be writable */
#define NS_WHY_OPEN	0	/* why a file request failed: open(2) */
#define NS_WHY_MKDIR	1	/* making its folders */
#define NS_WHY_PSEUDO	2	/* /proc or /sys: not served */
#define NS_WHY_INIT	3	/* the init did not answer, or is gone */
struct ns_file;
struct ns_file *ns_file_open(struct ns_init *, const char *, int, int, int,
	     void (*)(int, int, int, void *), void *, int *);
void	 ns_file_cancel(struct ns_file *);

/* ns-spawn.c */
int	 ns_spawn_failed(int, int *, char **);
pid_t	 ns_spawn(struct spawn_req *, struct ns_init *, int *, int *,
	     char **);

/* client.c */
int	 client_main(const char *, const char *, const char *, const char *,
	     int (*)(int, char **), int, char **);

/* client-exec.c */
int	 client_exec(int, char **);

/* client-list.c */
int	 client_workers(int, char **);
int	 client_wait(int, char **);
int	 client_stats(int, char **);
int	 client_sessions(int, char **);
int	 client_ctl(int, char **);

/* client-shell.c */
int	 client_shell(int, char **);
int	 client_attach(int, char **);

/* client-cp.c */
int	 client_cp(int, char **);

/* client-audit.c */
int	 client_audit(int, char **);

/* client-workspace.c */
int	 client_workspace_cmd(int, char **);

#endif
