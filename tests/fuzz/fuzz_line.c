/*
 * fuzz_line.c: bytes as a client sends them on the control socket, split
 * by the controller's own splitter (control_split_next) into lines, raw
 * payloads (control_line_payload) and refused long lines, as control.c
 * does; each line is parsed the way control.c does (JSON_ALLOW_NUL, no
 * newline) and its byte fields "stdin" and "data" (or their _b64 forms)
 * are read as the op handlers read them. The same bytes fed in two
 * pieces must split the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

struct event_base	*ev_base;
struct serve_options	 serve_opts;
struct worker_options	 worker_opts;

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MAX_LINE	64	/* small, so long lines are common */

/* Read the byte fields of one parsed line as the handlers do. */
static void
fuzz_line_fields(json_t *msg)
{
	static const char *fields[] = { "stdin", "data" };
	json_t		*v;
	struct evbuffer	*b;
	char		*cause;
	size_t		 i;
	int		 r;

	for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		b = evbuffer_new();
		cause = NULL;
		r = util_json_get_bytes(msg, fields[i], b, &cause);
		if (r < -1 || r > 1 || (r == -1) != (cause != NULL))
			abort();
		if (r != 1 && evbuffer_get_length(b) != 0)
			abort();
		if (r == 1 && (v = json_object_get(msg, fields[i])) != NULL &&
		    evbuffer_get_length(b) != json_string_length(v))
			abort();
		free(cause);
		evbuffer_free(b);
	}
}

/*
 * Split data as it arrives in pieces of at most chunk bytes; returns a
 * digest of what came out (lines, payload sizes, refusals) to compare.
 */
static uint64_t
fuzz_line_split(const uint8_t *data, size_t size, size_t chunk)
{
	struct control_split	 st;
	uint8_t			*buf;
	const uint8_t		*nl;
	size_t			 have = 0, fed = 0, n, take;
	uint64_t		 payload = 0, digest = 1469598103934665603ULL;
	json_t			*msg;
	json_error_t		 jerr;
	int			 r;

	memset(&st, 0, sizeof st);
	if ((buf = malloc(size + 1)) == NULL)
		abort();
	while (fed < size || have > 0) {
		take = size - fed < chunk ? size - fed : chunk;
		memcpy(buf + have, data + fed, take);
		have += take;
		fed += take;
		for (;;) {
			if (payload > 0) {
				n = payload < have ? (size_t)payload : have;
				payload -= n;
				memmove(buf, buf + n, have - n);
				have -= n;
				if (payload > 0)
					break;
			}
			nl = memchr(buf, '\n', have);
			r = control_split_next(&st, nl == NULL ? -1 :
			    (ssize_t)(nl - buf), have, MAX_LINE, &n);
			if (r == SPLIT_MORE)
				break;
			if (n > have || (r == SPLIT_LINE && n + 1 > have))
				abort();
			digest = (digest ^ (uint64_t)(r * 1000003 + n)) *
			    1099511628211ULL;
			if (r == SPLIT_LINE) {
				if (n > MAX_LINE || memchr(buf, '\n', n) != NULL)
					abort();
				msg = json_loadb((const char *)buf, n,
				    JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
				if (msg != NULL && json_is_object(msg))
					fuzz_line_fields(msg);
				payload = control_line_payload(msg);
				digest = (digest ^ payload) * 1099511628211ULL;
				json_decref(msg);
				n++;
			}
			memmove(buf, buf + n, have - n);
			have -= n;
		}
		if (fed == size)
			break;
	}
	free(buf);
	return (digest);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/*
	 * The same bytes at once and in small pieces give the same lines
	 * (refusals may differ in how many bytes each drop covers, so only
	 * inputs without an over-long line are compared).
	 */
	uint64_t	whole = fuzz_line_split(data, size, size + 1);
	uint64_t	bits = fuzz_line_split(data, size, 7);
	const uint8_t	*p = data, *nl;
	size_t		 left = size;
	int		 long_line = 0;

	while (left > 0) {
		nl = memchr(p, '\n', left);
		if ((nl == NULL ? left : (size_t)(nl - p)) > MAX_LINE)
			long_line = 1;
		if (nl == NULL)
			break;
		left -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	if (!long_line && whole != bits)
		abort();
	return (0);
}
