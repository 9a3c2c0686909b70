/*
 * client.h: what the client files (client.c, client-*.c) share with each
 * other and with nothing else. The subcommands themselves are in sandd.h,
 * for sandd.c's table.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include <getopt.h>
#include <signal.h>

#include <openssl/evp.h>

/* Bytes read from a file or pipe at a time. */
#define CLIENT_CHUNK	(256 * 1024)
/* Stdin bytes per write request (base64 makes the line 4/3 of this). */
#define CLIENT_WRITE	(64 * 1024)
/*
 * Largest piece of one sendfile(2) of a raw payload: as big as the
 * socket takes at once, small enough for a progress line to move.
 */
#define CLIENT_SENDFILE	(1024 * 1024)
/* Send queue: stop producing (stdin, files) above this. */
#define CLIENT_OUT_HIGH	(1024 * 1024)

struct conn;

/* The long options of client_option, in every subcommand's table. */
#define CLIENT_LONGOPTS_COMMON				\
	{ "socket", required_argument, NULL, 'S' },	\
	{ "help", no_argument, NULL, 'h' }

/* client.c */
extern volatile sig_atomic_t client_got_signal;
extern volatile sig_atomic_t client_got_winch;
extern const struct option client_longopts[];
void		 client_warnx(const char *, ...)
		     __attribute__((format(printf, 1, 2)));
__dead void	 client_exit(int);
__dead void	 client_die(int, const char *, ...)
		     __attribute__((format(printf, 2, 3)));
__dead void	 client_die_reply(int, json_t *);
__dead void	 client_usage_error(void);
__dead void	 client_help(void);
void		 client_option(int, char **);
void		 client_option_kv(json_t *, int, const char *);
double		 client_option_secs(const char *);
const char	*client_reply_message(json_t *);
const char	*client_reply_code(json_t *);
int		 client_msg_final(json_t *);
size_t		 client_msg_bytes(json_t *, const char *, struct evbuffer *);
void		 client_msg_write(json_t *, const char *, int);
int		 client_write(int, const void *, size_t);
void		 client_write_all(int, const void *, size_t);
void		 client_signals_catch(int);
const char	*client_socket_option(void);
struct conn	*client_conn_try_open(char **);
struct conn	*client_conn_open(void);
void		 client_conn_close(struct conn *);
void		 client_conn_watch(struct conn *, const char *, int);
int		 client_conn_eof(struct conn *);
int		 client_conn_gone(struct conn *);
size_t		 client_conn_pending(struct conn *);
int		 client_conn_poll_ms(struct conn *, int, int);
int		 client_conn_poll(struct conn *, int);
void		 client_conn_add(struct conn *, const void *, size_t);
void		 client_conn_queue(struct conn *, const void *, size_t);
int		 client_conn_sendfile(struct conn *, int, off_t, size_t,
		     void (*)(size_t, void *), void *);
void		 client_conn_flush(struct conn *);
void		 client_conn_shutdown(struct conn *);
void		 client_conn_rest(struct conn *, int);
int		 client_conn_send(struct conn *, json_t *);
void		 client_conn_send_quiet(struct conn *, json_t *);
int		 client_conn_has_line(struct conn *);
json_t		*client_conn_take(struct conn *);
size_t		 client_conn_payload(struct conn *, json_t *, int,
		     EVP_MD_CTX *);
size_t		 client_conn_payload_skip(struct conn *, json_t *, size_t, int);
json_t		*client_conn_recv_id(struct conn *, int);
json_t		*client_conn_reply(struct conn *, int);
json_t		*client_conn_call(struct conn *, json_t *, int);

/* client-exec.c */
/* Where a streamed command's input comes from and its output goes. */
struct client_exec_io {
	int	in_fd;		/* to its stdin until its end; -1 for none */
	int	out_fd;		/* its stdout */
	int	err_fd;		/* its stderr */
#define CLIENT_EXEC_SOFT	0x1	/* a failed write to out_fd ... */
#define CLIENT_EXEC_BROKEN	0x2	/* ... sets this instead of exiting */
	int	flags;
};
json_t		*client_exec_run(struct conn *, json_t *,
		     struct client_exec_io *);
int		 client_exec_status(json_t *);
__dead void	 client_exec_error(json_t *);

/* client-shell.c */
/* What shell, attach and exec --pty ask of the terminal. */
struct client_term_opts {
	int	 readonly;	/* attach -r: no keys, no sizes */
	int	 reconnect;	/* attach again when the controller is back */
	int	 no_wait;	/* not for a disconnected worker */
	double	 timeout;	/* exec --pty -t; 0 for none */
};
int		 client_term_open(struct conn *, json_t *,
		     const struct client_term_opts *);
void		 client_tty_restore(void);
int		 client_tty_is_raw(void);

/* client-list.c */
struct table;
struct table	*table_create(const char **, const int *, size_t);
void		 table_add(struct table *, const char **);
void		 table_print(struct table *);
json_t		*list_fetch(json_t *, const char *, int, json_t **);
const char	*num_text(json_t *, char *, size_t);

/* client.c: -W, the workspace requests to a worker go into */
extern const char *client_workspace;

#endif
