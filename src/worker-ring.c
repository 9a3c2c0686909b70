/*
 * worker-ring.c: the ring of a session's recent output on the worker:
 * the last `size` bytes, addressed by their absolute offset since the
 * session started, so a client that comes back reads what it missed.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

/* An empty ring of size bytes; ring_free() lets it go. */
void
ring_init(struct ring *r, size_t size)
{
	r->size = size;
	r->buf = xmalloc(size);
	r->end = 0;
}

void
ring_free(struct ring *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Offset of the oldest byte kept. */
uint64_t
ring_start(const struct ring *r)
{
	return (r->end > r->size ? r->end - r->size : 0);
}

/* Append bytes, overwriting the oldest. */
void
ring_add(struct ring *r, const uint8_t *p, size_t n)
{
	size_t	pos, first;

	if (n > r->size) {
		r->end += n - r->size;
		p += n - r->size;
		n = r->size;
	}
	pos = (size_t)(r->end % r->size);
	first = r->size - pos;
	if (first > n)
		first = n;
	memcpy(r->buf + pos, p, first);
	memcpy(r->buf, p + first, n - first);
	r->end += n;
}

/* Copy n bytes from offset off (all kept in the ring) to dst. */
void
ring_copy(const struct ring *r, uint64_t off, uint8_t *dst, size_t n)
{
	size_t	pos = (size_t)(off % r->size), first;

	first = r->size - pos;
	if (first > n)
		first = n;
	memcpy(dst, r->buf + pos, first);
	memcpy(dst + first, r->buf, n - first);
}
