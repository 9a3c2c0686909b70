/*
 * worker-view.c: views, so that every controller sees every session.
 *
 * A session is a channel of the link whose controller opened it (job.c
 * holds its output for that controller's acks). Every other link gets a
 * view of it: a channel numbered by the worker (WIRE_VIEW_BASE and up,
 * never one of the controller's), announced in that link's hello and,
 * for a session that starts while the link is up, by an "announce"
 * message. The controller adopts it like a channel it lost in a restart:
 * one it did not make, so only its root sees it (control-acl.c).
 *
 * A view sends the session's output from its ring, with its own offsets
 * (the session's absolute ones), acks and window. It holds nothing
 * back: a view whose controller falls behind just stops sending; if the
 * ring moves past what it sent, it skips ahead (a gap) and the
 * controller fetches what its clients still want with session.read,
 * as for any client that attaches late. Input, resize and signal from
 * the view go to the same terminal; its release, once the program is
 * gone, releases the session for every link; a cancel drops the view.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"
#include "job.h"

struct view {
	struct job	*job;
	struct wlink	*link;
	uint32_t	 ch;
	uint64_t	 sent;		/* next output offset to send */
	uint64_t	 acked;		/* its controller consumed up to */
	int		 end_sent;
	uint64_t	 in_off;	/* next input offset expected */
	uint64_t	 in_done;	/* input written (or dropped) */
	struct evbuffer	*in;		/* received, not yet written */
	struct event	*in_ev;
	TAILQ_ENTRY(view) entry;
};
static TAILQ_HEAD(, view) views = TAILQ_HEAD_INITIALIZER(views);

static void	 view_flush(struct view *);
static void	 view_write_cb(evutil_socket_t, short, void *);

/* The output window of a view: the controller cuts off more. */
static size_t
view_window(void)
{
	return (worker_opts.window < WIRE_WINDOW ? worker_opts.window :
	    WIRE_WINDOW);
}

/* The view on channel ch of link l, or NULL. */
static struct view *
view_find(struct wlink *l, uint32_t ch)
{
	struct view	*v;

	TAILQ_FOREACH(v, &views, entry)
		if (v->link == l && v->ch == ch)
			return (v);
	return (NULL);
}

/* Link l's view of session job j, or NULL. */
static struct view *
view_of(struct wlink *l, struct job *j)
{
	struct view	*v;

	TAILQ_FOREACH(v, &views, entry)
		if (v->link == l && v->job == j)
			return (v);
	return (NULL);
}

/* A new view of j on l; it starts at the end of the ring. */
static struct view *
view_create(struct wlink *l, struct job *j)
{
	struct view	*v;

	v = xcalloc(1, sizeof *v);
	v->job = j;
	v->link = l;
	v->ch = wlink_view_ch(l);
	v->sent = v->acked = worker_session_ring(j)->end;
	v->in = evbuffer_new();
	TAILQ_INSERT_TAIL(&views, v, entry);
	log_debug("session %s: view %u on link %s", j->handle, v->ch,
	    wlink_name(l));
	return (v);
}

static void
view_free(struct view *v)
{
	TAILQ_REMOVE(&views, v, entry);
	if (v->in_ev != NULL)
		event_free(v->in_ev);
	evbuffer_free(v->in);
	free(v);
}

/* What a hello (or an announce) says of view v, as for a channel. */
static json_t *
view_json(struct view *v)
{
	struct job	*j = v->job;
	json_t		*a;

	a = json_pack("{s:I, s:i, s:I, s:b, s:[I, I, I], s:b, s:s}",
	    "ch", (json_int_t)v->ch, "kind", CHAN_SESSION,
	    "in", (json_int_t)v->in_off, "eof", 0,
	    "out", (json_int_t)0, (json_int_t)v->acked, (json_int_t)0,
	    "detached", 0, "handle", j->handle);
	if (j->in_fd != -1)
		json_object_set_new(a, "stdin_open", json_true());
	if (j->owner != NULL)
		json_object_set(a, "owner", j->owner);
	if (j->ops != NULL && j->ops->describe != NULL)
		j->ops->describe(j, a);
	return (a);
}

/* Is j a session other links may see? */
static int
view_wanted(struct job *j)
{
	return (j->kind == CHAN_SESSION && worker_session_listed(j));
}

/* For link l's hello: a view of every session another link holds. */
void
view_hello(struct wlink *l, json_t *list)
{
	struct job	*j;
	struct view	*v;

	for (j = job_next(NULL); j != NULL; j = job_next(j)) {
		if (j->link == l || !view_wanted(j))
			continue;
		if ((v = view_of(l, j)) == NULL)
			v = view_create(l, j);
		json_array_append_new(list, view_json(v));
	}
}

/* A new view of j on l, announced to l's controller. */
static void
view_announce(struct wlink *l, struct job *j)
{
	struct view	*v;
	json_t		*m;

	v = view_create(l, j);
	m = view_json(v);
	json_object_set_new(m, "t", json_string(wire_type_name(
	    WIRE_T_ANNOUNCE)));
	wlink_send(l, m);
	json_decref(m);
}

/* Session job j started: announce it on every other link that is up. */
void
view_job_started(struct job *j)
{
	struct wlink	*l;

	for (l = wlink_next(NULL); l != NULL; l = wlink_next(l))
		if (l != j->link && wlink_connected(l) && view_of(l, j) == NULL)
			view_announce(l, j);
}

/* Send the end to v once all output is sent (the session exited). */
static void
view_try_end(struct view *v, const struct ring *r)
{
	struct job	*j = v->job;
	json_t		*m;

	if (v->end_sent || j->end == NULL || !j->out[WIRE_OUT].eof ||
	    v->sent != r->end)
		return;
	m = json_deep_copy(j->end);
	json_object_set_new(m, "ch", json_integer((json_int_t)v->ch));
	wlink_send(v->link, m);
	json_decref(m);
	v->end_sent = 1;
}

/*
 * Send v what the ring has past what it sent, within its window and as
 * the link takes it; skip ahead to the ring's start if it fell behind it.
 */
static void
view_flush(struct view *v)
{
	const struct ring	*r = worker_session_ring(v->job);
	struct evbuffer		*b;
	struct evbuffer_iovec	 vec;
	uint64_t		 start = ring_start(r);
	size_t			 n, win = view_window();

	if (!wlink_connected(v->link))
		return;
	if (v->sent < start) {
		log_info("session %s: view %u skips %llu bytes",
		    v->job->handle, v->ch,
		    (unsigned long long)(start - v->sent));
		v->sent = v->acked = start;
	}
	while (v->sent < r->end && v->sent - v->acked < win &&
	    wlink_writable(v->link)) {
		n = (size_t)(r->end - v->sent);
		if (n > win - (size_t)(v->sent - v->acked))
			n = win - (size_t)(v->sent - v->acked);
		if (n > WIRE_CHUNK)
			n = WIRE_CHUNK;
		b = evbuffer_new();
		if (evbuffer_reserve_space(b, (ev_ssize_t)n, &vec, 1) < 1)
			fatalx("%s: evbuffer_reserve_space", __func__);
		ring_copy(r, v->sent, vec.iov_base, n);
		vec.iov_len = n;
		evbuffer_commit_space(b, &vec, 1);
		wlink_send_buf(v->link, WIRE_OUT, v->ch, v->sent, b, 0, n);
		evbuffer_free(b);
		v->sent += n;
	}
	view_try_end(v, r);
}

/* Session job j has new output (or its end): every view sends it. */
void
view_job_output(struct job *j)
{
	struct view	*v;

	TAILQ_FOREACH(v, &views, entry)
		if (v->job == j)
			view_flush(v);
}

/* Tell the controller how much of v's input went to the terminal. */
static void
view_ack_input(struct view *v)
{
	json_t	*m;

	m = wire_chan_msg(WIRE_T_ACK, v->ch);
	json_object_set_new(m, "in", json_integer((json_int_t)v->in_done));
	wlink_send(v->link, m);
	json_decref(m);
}

/*
 * Link l is welcomed: its views send again from their acks, and a
 * session that started after its hello went out is announced.
 */
void
view_link_up(struct wlink *l)
{
	struct view	*v;
	struct job	*j;

	TAILQ_FOREACH(v, &views, entry) {
		if (v->link != l)
			continue;
		v->sent = v->acked;
		v->end_sent = 0;
		view_ack_input(v);
		view_flush(v);
	}
	for (j = job_next(NULL); j != NULL; j = job_next(j))
		if (j->link != l && view_wanted(j) && view_of(l, j) == NULL)
			view_announce(l, j);
}

/* Link l can take more. */
void
view_link_writable(struct wlink *l)
{
	struct view	*v;

	TAILQ_FOREACH(v, &views, entry) {
		if (v->link != l)
			continue;
		view_flush(v);
		if (!wlink_writable(l))
			break;
	}
}

/* Link l is going for good: its views go with it. */
void
view_link_gone(struct wlink *l)
{
	struct view	*v, *v1;

	TAILQ_FOREACH_SAFE(v, &views, entry, v1)
		if (v->link == l)
			view_free(v);
}

/* Session job j is freed: every view says it is gone (now or later). */
void
view_job_free(struct job *j)
{
	struct view	*v, *v1;
	json_t		*m;

	TAILQ_FOREACH_SAFE(v, &views, entry, v1) {
		if (v->job != j)
			continue;
		m = wire_chan_msg(WIRE_T_INFO, v->ch);
		json_object_update_new(m, json_pack("{s:s, s:s}", "state",
		    "gone", "session", j->handle));
		wlink_send_later(v->link, m);
		json_decref(m);
		view_free(v);
	}
}

/* A message from the view's controller. */
void
view_message(struct wlink *l, uint32_t ch, enum wire_type type, json_t *msg)
{
	struct view	*v = view_find(l, ch);
	struct job	*j;
	uint64_t	 off;

	if (v == NULL) {
		log_debug("view %u: '%s' for no view", ch,
		    wire_type_name(type));
		return;
	}
	switch (type) {
	case WIRE_T_ACK:
		off = (uint64_t)json_integer_value(json_object_get(msg, "off"));
		if (json_integer_value(json_object_get(msg, "s")) == WIRE_OUT &&
		    off > v->acked && off <= v->sent) {
			v->acked = off;
			view_flush(v);
		}
		break;
	case WIRE_T_SIGNAL:
	case WIRE_T_RESIZE:
		job_message_to(v->job, type, msg);
		break;
	case WIRE_T_RELEASE:
		j = v->job;
		view_free(v);
		worker_session_view_release(j);
		break;
	case WIRE_T_CANCEL:
		log_debug("session %s: view %u cancelled", v->job->handle, ch);
		view_free(v);
		break;
	default:
		break;		/* eof, detach: not for a session */
	}
}

/* Write v's input to the terminal, as much as it takes; ack it. */
static void
view_write(struct view *v)
{
	struct job	*j = v->job;
	size_t		 len;
	ssize_t		 n;

	while ((len = evbuffer_get_length(v->in)) > 0) {
		if (len > WIRE_CHUNK)
			len = WIRE_CHUNK;
		n = -1;
		if (j->in_fd != -1 && (n = write(j->in_fd,
		    evbuffer_pullup(v->in, (ssize_t)len), len)) == -1 &&
		    (errno == EAGAIN || errno == EINTR)) {
			if (v->in_ev == NULL)
				v->in_ev = event_new(ev_base, j->in_fd,
				    EV_WRITE, view_write_cb, v);
			event_add(v->in_ev, NULL);
			break;
		}
		if (n <= 0)	/* the terminal is gone: drop the rest */
			n = (ssize_t)evbuffer_get_length(v->in);
		evbuffer_drain(v->in, (size_t)n);
		v->in_done += (uint64_t)n;
	}
	view_ack_input(v);
}

static void
view_write_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	view_write(arg);
}

/* Input bytes [off, off+len) for view channel ch of link l. */
void
view_input(struct wlink *l, uint32_t ch, uint64_t off, const uint8_t *data,
    size_t len)
{
	struct view	*v = view_find(l, ch);
	uint64_t	 skip;

	if (v == NULL)
		return;
	if (off > v->in_off) {
		log_warnx("view %u: input gap at %llu", ch,
		    (unsigned long long)off);
		return;
	}
	skip = v->in_off - off;
	if (skip >= len)
		return;
	v->in_off += len - skip;
	evbuffer_add(v->in, data + skip, len - skip);
	if (v->in_ev == NULL || !event_pending(v->in_ev, EV_WRITE, NULL))
		view_write(v);
}
