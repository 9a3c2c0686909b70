/*
 * fuzz_line.c: one control line as a client sends it. jansson parses it the
 * way control.c does (JSON_ALLOW_NUL, no newline); then the payload size
 * and the byte fields "stdin" and "data" (or their _b64 forms) are read as
 * the op handlers read them.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

struct event_base	*ev_base;
struct serve_options	 serve_opts;
struct worker_options	 worker_opts;

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *fields[] = { "stdin", "data" };
	json_t		*msg, *v;
	json_error_t	 jerr;
	struct evbuffer	*b;
	const char	*nl;
	char		*cause;
	size_t		 len = size, i;
	uint64_t	 bytes = 0;
	int		 r;

	/* control.c hands jansson the line without its newline. */
	if ((nl = memchr(data, '\n', size)) != NULL)
		len = (size_t)(nl - (const char *)data);
	msg = json_loadb((const char *)data, len, JSON_ALLOW_NUL, &jerr);
	if (msg == NULL || !json_is_object(msg)) {
		json_decref(msg);
		return (0);
	}
	v = json_object_get(msg, "bytes");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		bytes = (uint64_t)json_integer_value(v);
	(void)bytes;
	(void)json_string_value(json_object_get(msg, "op"));

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
	json_decref(msg);
	return (0);
}
