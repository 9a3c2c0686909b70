/*
 * fuzz_utf8.c: util_utf8_complete on any bytes, split where the input says,
 * and the text/bytes rule: util_json_set_bytes then util_json_get_bytes
 * (directly and through the JSON text) gives back the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

struct event_base	*ev_base;
struct serve_options	 serve_opts;
struct worker_options	 worker_opts;

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Check the bytes of name in obj are p; abort if not. */
static void
fuzz_utf8_get(json_t *obj, const char *name, const uint8_t *p, size_t len)
{
	struct evbuffer	*b = evbuffer_new();
	char		*cause = NULL;

	if (util_json_get_bytes(obj, name, b, &cause) != 1 || cause != NULL)
		abort();
	if (evbuffer_get_length(b) != len ||
	    (len > 0 && memcmp(evbuffer_pullup(b, -1), p, len) != 0))
		abort();
	evbuffer_free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t		*obj, *again;
	json_error_t	 jerr;
	size_t		 got, split, got2;
	char		*s;
	int		 valid, valid2, text;

	got = util_utf8_complete(data, size, &valid);
	if (got > size)
		abort();
	if (valid) {
		if (size - got > 3 || !util_utf8_valid(data, got))
			abort();
		if (util_utf8_valid(data, size) != (got == size))
			abort();
		/* Any split: the first part's answer never goes past it. */
		split = size > 0 ? data[0] % (size + 1) : 0;
		got2 = util_utf8_complete(data, split, &valid2);
		if (!valid2 || got2 > split || got2 > got)
			abort();
	} else if (util_utf8_valid(data, size))
		abort();

	obj = json_object();
	if (util_json_set_bytes(obj, "data", data, size) != 0)
		abort();
	text = json_object_get(obj, "data") != NULL;
	if (text == (json_object_get(obj, "data_b64") != NULL))
		abort();
	if (text != (size == 0 || util_utf8_valid(data, size)))
		abort();
	fuzz_utf8_get(obj, "data", data, size);
	s = json_dumps(obj, JSON_COMPACT);
	if (s == NULL)
		abort();
	if ((again = json_loads(s, JSON_ALLOW_NUL, &jerr)) == NULL)
		abort();
	fuzz_utf8_get(again, "data", data, size);
	json_decref(again);
	free(s);
	json_decref(obj);
	return (0);
}
