/*
 * sandd-protocol.h: constants of the two protocols, control (clients) and
 * wire (worker <-> controller). The wire protocol is described in
 * sandd-wire(7); the control protocol in sandd-control(7).
 */
#ifndef SANDD_PROTOCOL_H
#define SANDD_PROTOCOL_H

#define SANDD_VERSION		"0.1.0"
#define CONTROL_PROTOCOL	1
#define WIRE_PROTOCOL		1
#define WIRE_SUBPROTOCOL	"sandd.1"
#define WIRE_PATH		"/ws"

/*
 * Binary frame header: every binary WebSocket message starts with it.
 *   u8 type, u8 flags, u16 zero, u32 channel, u64 offset (all big endian)
 * followed by the payload. offset is the absolute position of the first
 * payload byte in its stream.
 */
#define WIRE_HDR_LEN		16
/* controller -> worker: stdin, pty, put */
#define WIRE_IN			0
/* worker -> controller: stdout, pty, get */
#define WIRE_OUT		1
/* worker -> controller: stderr */
#define WIRE_ERR		2
#define WIRE_NSTREAMS		3

/* Largest payload in one binary frame. */
#define WIRE_CHUNK		(256 * 1024)
/* Largest WebSocket message either side accepts. */
#define WIRE_MAX_MSG		(WIRE_CHUNK + WIRE_HDR_LEN + 64 * 1024)
/* Default credit window of one stream, in bytes. */
#define WIRE_WINDOW		(1024 * 1024)
/*
 * Window of the bulk streams of files (put input, get output). A round
 * trip of acks through both daemons takes a few ms on a loaded host, and
 * 1 MiB per round trip held a 1 GiB put to disk at 230-290 MB/s; 4 MiB
 * lets it run at ~470 MB/s (8 MiB gains another ~5% for twice the
 * memory). Only a transfer in progress holds this much.
 */
#define WIRE_FILE_WINDOW	(4 * 1024 * 1024)
#define WIRE_MIN_WINDOW		(64 * 1024)
#define WIRE_MAX_WINDOW		(64 * 1024 * 1024)

/* Upgrade header by which both ends agree to skip client masking. */
#define WIRE_FRAMES_HEADER	"Sandd-Frames"
#define WIRE_FRAMES_UNMASKED	"unmasked"

/* Upgrade header with the secret a worker was given at registration. */
#define WIRE_SECRET_HEADER	"Sandd-Worker-Secret"

/* WebSocket close code: a worker with the same id took over; do not redial. */
#define WS_CLOSE_REPLACED	4001

/*
 * Most channels a worker may hold (and announce in its hello): its
 * commands, sessions and transfers. A hello listing more is refused.
 */
#define WIRE_MAX_CHANNELS	16384

/*
 * Channel numbers from here up are the worker's: a view of a session
 * another link opened (worker-view.c). A controller numbers its own
 * channels below, so the two never meet.
 */
#define WIRE_VIEW_BASE		0x80000000u

/* Channel kinds. */
#define CHAN_EXEC		1
#define CHAN_SESSION		2
#define CHAN_PUT		3
#define CHAN_GET		4

/*
 * An `until` regex (read, session.read) is matched against the last
 * UNTIL_WINDOW bytes of the output it waits on, not all of it, so one
 * match attempt reads at most this much whatever the output and the
 * regex (a prompt or a marker is at the end of what arrived). 64 KiB:
 * a full screen many times over, and a few ms of glibc regexec.
 */
#define UNTIL_WINDOW		(64 * 1024)

/* Limits of the control socket. */
#define CONTROL_MAX_LINE	(4 * 1024 * 1024)	/* default --max-line */
#define CONTROL_MAX_OUTPUT	(16 * 1024 * 1024)	/* default max_output */
#define CONTROL_MAX_INLINE	(16 * 1024 * 1024)	/* inline get */
/* client backlog: stop feeding */
#define CONTROL_OUT_HIGH	(1024 * 1024)
/*
 * Unread output past which a subscription's events are dropped (the
 * client gets an overflow event): a few seconds of a busy fleet's
 * events, far above what a client that reads ever lets pile up.
 */
#define CONTROL_EVENT_MAX	(4 * 1024 * 1024)
/*
 * Unread output past which a client is dropped: streams stop at
 * CONTROL_OUT_HIGH, so only replies that pile up unread get here; one
 * reply may still be a whole inline get or a max_output exec reply.
 */
#define CONTROL_OUT_MAX		(64 * 1024 * 1024)
#define CONTROL_MAX_CLIENTS	1024

/* Limits of the WebSocket listener. */
#define HTTP_MAX_HEADER		(8 * 1024)
#define HTTP_HANDSHAKE_TIMEOUT	10	/* worker: dial to 101 */
/*
 * Controller: from accept to a whole request head (TLS included). A
 * worker sends its head at once; an idle connection must not hold an
 * admission slot for long.
 */
#define HTTP_HEAD_TIMEOUT	5
#define WS_OUT_HIGH		(4 * 1024 * 1024)	/* link backlog */
#define WS_IO_CHUNK		(256 * 1024)	/* socket read/write size */
#define WS_OUT_LOW		(1024 * 1024)
/*
 * Admission control (server-admit.c). Handshakes in progress at once:
 * enough that the CPU, not the bound, paces a herd (at the TLS rate
 * below 1,024 clear in about a second, well inside the 5 s head
 * deadline), few enough to bound their memory (a TLS handshake uses tens
 * of KiB while it runs). One address may take every free slot, but
 * keeps only half once all are taken (server-admit.c), so idle
 * connections from one place never keep others out, and a fleet behind
 * one NAT address has all 1,024 in flight when it is alone.
 */
#define SERVER_MAX_HANDSHAKES	1024
#define SERVER_MAX_HANDSHAKES_ADDR 512
/*
 * Handshakes per second the controller is assumed to finish until it
 * has measured its rate (Retry-After is sized from it; --handshake-rate).
 * Measured here as registrations (accept, upgrade, hello, welcome) per
 * CPU second of serve, 10,000 fake workers from one address on a 2-core
 * VM under load: ~5,600/s plain, ~1,000/s over TLS 1.3 with an ECDSA
 * P-256 certificate. A little under, so that a first herd is not told
 * to come back too early.
 */
#define SERVER_HANDSHAKE_RATE	5000
#define SERVER_HANDSHAKE_RATE_TLS 1000
/* Floor of the measured rate: a queue that did not move in a second. */
#define SERVER_ADMIT_MIN_RATE	10
/* Longest Retry-After: the worker's own longest backoff. */
#define SERVER_RETRY_AFTER_MAX	30
/*
 * Listen backlog: a herd's SYNs arrive faster than one accept loop turn;
 * an overflowing queue drops them and costs each a 1 s SYN retry. The
 * kernel caps it at net.core.somaxconn (4096 on Linux since 5.4).
 */
#define SERVER_LISTEN_BACKLOG	4096

/* Worker ids: 1 to 64 of A-Za-z0-9._- */
#define WORKER_ID_MAX		64

/* Defaults of timers, in seconds. */
#define DEFAULT_RESUME_WINDOW	30
#define DEFAULT_PING_INTERVAL	10
#define DEFAULT_PING_TIMEOUT	30
#define DEFAULT_KILL_GRACE	2
#define DEFAULT_SESSION_LINGER	600
#define DEFAULT_RING_SIZE	(1024 * 1024)
/*
 * The worker's dials: the first after losing a controller it was
 * registered with comes within BACKOFF_FIRST_MS (a restarted controller
 * is back in well under a second), then full jitter over a cap that
 * starts at BACKOFF_START_MS and doubles up to BACKOFF_CAP_MS. A link
 * up for BACKOFF_STABLE_S starts the count over, and a fast first retry
 * comes at most once in that time. A Retry-After is waited out, plus up
 * to BACKOFF_FIRST_MS of jitter.
 */
#define BACKOFF_FIRST_MS	1000
#define BACKOFF_START_MS	500
#define BACKOFF_CAP_MS		30000
#define BACKOFF_STABLE_S	60

/*
 * A --server-url whose name resolves to several addresses has a link to
 * each: the name is resolved again this often, and a link whose address
 * left it (and that is not registered) goes after LINK_STALE_S.
 */
#define LINK_RESOLVE_S		30
#define LINK_STALE_S		120
#define LINK_RESOLVE_RETRY_S	2	/* after a failed resolution */
#define LINK_MAX		64	/* links of one worker */

/*
 * Workspace limits: the range a request's must be in (the controller and
 * the worker check alike), and the worker's default ceilings, the limits
 * of a workspace that asks for none. 1 MiB is about the least a shell
 * starts in; 4194304 is Linux's most pids; an ext4 of 16 MiB still has
 * room next to its journal. 1024 processes hold a parallel build; 2 GiB
 * a compiler or a package manager (a quarter of the host's memory where
 * that is less); 10 GiB of disk a checkout with its dependencies, and
 * costs only what is written (a sparse image).
 */
#define WS_MIN_MEMORY		(1024 * 1024)
#define WS_MAX_PIDS		4194304
#define WS_MAX_CPU		1024
#define WS_MIN_DISK		(16 * 1024 * 1024)
#define WS_DEFAULT_PIDS		1024
#define WS_DEFAULT_MEMORY	(2ULL * 1024 * 1024 * 1024)
#define WS_DEFAULT_DISK		(10ULL * 1024 * 1024 * 1024)

#endif
