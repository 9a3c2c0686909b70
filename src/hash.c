/*
 * hash.c: SHA-256 of file transfers, on a background thread.
 *
 * A worker hashes every byte it writes for a put or reads for a get, and
 * SHA-256 costs about 0.9 s of one core per GiB: as much as all the rest
 * of a transfer's work. Done in line it halves the rate; done here it
 * overlaps the I/O, and a transfer runs at nearly the hash's own speed.
 *
 * One thread hashes blocks in the order they were queued, so the blocks
 * of one stream go through its digest in order. A finished block goes
 * back to the event loop through a pipe, and its release callback runs
 * there: blocks and streams are only ever freed on the main thread, and
 * the thread touches nothing but the digest of the block in hand. When
 * the thread cannot be started, blocks are hashed in line.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sandd.h"

struct hash {
	EVP_MD_CTX	*md;		/* the thread's while pending > 0 */
	unsigned	 pending;	/* blocks queued and not yet back */
	size_t		 backlog;	/* their bytes */
	int		 dead;		/* owner gone: free once idle */
	size_t		 below;		/* call fn once backlog <= below */
	void		(*fn)(void *);
	void		*arg;
};

struct hash_block {
	struct hash		*h;
	const void		*data;
	size_t			 len;
	void			(*release)(void *);
	void			*arg;
	TAILQ_ENTRY(hash_block)	 entry;
};
TAILQ_HEAD(hash_blocks, hash_block);

static pthread_t		hash_thread;
static pthread_mutex_t		hash_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		hash_cond = PTHREAD_COND_INITIALIZER;
static struct hash_blocks	hash_todo = TAILQ_HEAD_INITIALIZER(hash_todo);
static struct hash_blocks	hash_done = TAILQ_HEAD_INITIALIZER(hash_done);
static int			hash_stop;
static int			hash_running;
static int			hash_pipe[2] = { -1, -1 };
static struct event		*hash_ev;

static void
hash_update(struct hash_block *b)
{
	if (EVP_DigestUpdate(b->h->md, b->data, b->len) != 1)
		fatalx("EVP_DigestUpdate");
}

static void *
hash_thread_main(__unused void *arg)
{
	struct hash_block	*b;
	int			 wake;

	compat_thread_name("sandd-hash");
	pthread_mutex_lock(&hash_lock);
	for (;;) {
		while (TAILQ_EMPTY(&hash_todo) && !hash_stop)
			pthread_cond_wait(&hash_cond, &hash_lock);
		if (hash_stop)
			break;
		b = TAILQ_FIRST(&hash_todo);
		TAILQ_REMOVE(&hash_todo, b, entry);
		pthread_mutex_unlock(&hash_lock);

		hash_update(b);

		pthread_mutex_lock(&hash_lock);
		wake = TAILQ_EMPTY(&hash_done);
		TAILQ_INSERT_TAIL(&hash_done, b, entry);
		if (wake)
			(void)write(hash_pipe[1], "", 1);
	}
	pthread_mutex_unlock(&hash_lock);
	return (NULL);
}

/* Are no more than below bytes waiting (with below 0: none at all)? */
static int
hash_caught_up(struct hash *h, size_t below)
{
	return (h->pending == 0 || (below > 0 && h->backlog <= below));
}

/* A block is hashed: release it; tell an idle stream's owner. */
static void
hash_block_done(struct hash_block *b)
{
	struct hash	*h = b->h;
	void		(*fn)(void *);

	h->pending--;
	h->backlog -= b->len;
	if (b->release != NULL)
		b->release(b->arg);
	free(b);
	if (h->dead) {
		if (h->pending == 0) {
			EVP_MD_CTX_free(h->md);
			free(h);
		}
		return;
	}
	if (h->fn != NULL && hash_caught_up(h, h->below)) {
		fn = h->fn;
		h->fn = NULL;
		fn(h->arg);	/* may free h */
	}
}

static void
hash_done_cb(__unused evutil_socket_t fd, __unused short what,
    __unused void *arg)
{
	struct hash_blocks	 list = TAILQ_HEAD_INITIALIZER(list);
	struct hash_block	*b;
	char			 drain[64];

	while (read(hash_pipe[0], drain, sizeof drain) > 0)
		;
	pthread_mutex_lock(&hash_lock);
	TAILQ_CONCAT(&list, &hash_done, entry);
	pthread_mutex_unlock(&hash_lock);
	while ((b = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, b, entry);
		hash_block_done(b);
	}
}

/* Start the thread; without it, hashing happens in line. */
void
hash_init(void)
{
	const char	*inline_only = getenv("SANDD_HASH_INLINE");
	sigset_t	 all, old;

	/* For tests: the way without a thread. */
	if (inline_only != NULL && *inline_only != '\0')
		return;
	if (pipe(hash_pipe) == -1) {
		log_warn("%s: pipe; hashing in line", __func__);
		return;
	}
	fcntl(hash_pipe[0], F_SETFL, O_NONBLOCK);
	fcntl(hash_pipe[0], F_SETFD, FD_CLOEXEC);
	fcntl(hash_pipe[1], F_SETFD, FD_CLOEXEC);
	/*
	 * Signals stay with the main thread: the new one starts with all
	 * blocked.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	errno = pthread_create(&hash_thread, NULL, hash_thread_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (errno != 0) {
		log_warn("%s: pthread_create; hashing in line", __func__);
		close(hash_pipe[0]);
		close(hash_pipe[1]);
		hash_pipe[0] = hash_pipe[1] = -1;
		return;
	}
	hash_ev = event_new(ev_base, hash_pipe[0], EV_READ | EV_PERSIST,
	    hash_done_cb, NULL);
	event_add(hash_ev, NULL);
	hash_running = 1;
}

/* Stop the thread, finishing (unhashed) what is queued. */
void
hash_shutdown(void)
{
	struct hash_block	*b;

	if (!hash_running)
		return;
	pthread_mutex_lock(&hash_lock);
	hash_stop = 1;
	pthread_cond_signal(&hash_cond);
	pthread_mutex_unlock(&hash_lock);
	pthread_join(hash_thread, NULL);
	hash_running = 0;
	TAILQ_CONCAT(&hash_done, &hash_todo, entry);
	while ((b = TAILQ_FIRST(&hash_done)) != NULL) {
		TAILQ_REMOVE(&hash_done, b, entry);
		hash_block_done(b);
	}
	event_free(hash_ev);
	close(hash_pipe[0]);
	close(hash_pipe[1]);
}

/* A new SHA-256 stream. */
struct hash *
hash_create(void)
{
	struct hash	*h;

	h = xcalloc(1, sizeof *h);
	if ((h->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1)
		fatalx("EVP_DigestInit_ex");
	return (h);
}

/* Drop a stream; blocks still queued are released as they come back. */
void
hash_free(struct hash *h)
{
	if (h == NULL)
		return;
	h->fn = NULL;
	if (h->pending > 0) {
		h->dead = 1;
		return;
	}
	EVP_MD_CTX_free(h->md);
	free(h);
}

/*
 * Hash len bytes at data, after the ones queued before. data must stay
 * as it is until release(arg) is called, from the event loop (or before
 * this returns, when hashing in line).
 */
void
hash_add(struct hash *h, const void *data, size_t len,
    void (*release)(void *), void *arg)
{
	struct hash_block	*b;

	b = xcalloc(1, sizeof *b);
	b->h = h;
	b->data = data;
	b->len = len;
	b->release = release;
	b->arg = arg;
	h->pending++;
	h->backlog += len;
	if (!hash_running) {
		hash_update(b);
		hash_block_done(b);
		return;
	}
	pthread_mutex_lock(&hash_lock);
	TAILQ_INSERT_TAIL(&hash_todo, b, entry);
	pthread_cond_signal(&hash_cond);
	pthread_mutex_unlock(&hash_lock);
}

/* Bytes queued and not yet hashed. */
size_t
hash_backlog(struct hash *h)
{
	return (h->backlog);
}

/*
 * Call fn(arg) once no more than below bytes wait to be hashed (with
 * below 0: once every block queued so far is hashed): at once if so
 * already, else from the event loop. Replaces an earlier request.
 */
void
hash_when_below(struct hash *h, size_t below, void (*fn)(void *), void *arg)
{
	if (hash_caught_up(h, below)) {
		h->fn = NULL;
		fn(arg);
		return;
	}
	h->below = below;
	h->fn = fn;
	h->arg = arg;
}

/* The digest as hex; only once the stream is idle. */
void
hash_final(struct hash *h, char hex[65])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	len;

	if (h->pending > 0)
		fatalx("%s: %u blocks still pending", __func__, h->pending);
	if (EVP_DigestFinal_ex(h->md, md, &len) != 1)
		fatalx("EVP_DigestFinal_ex");
	util_sha256_hex(md, hex);
}
