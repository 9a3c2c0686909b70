/*
 * fuzz_http.c: http_msg_parse on any bytes, as a request (controller) and
 * as a response (worker), with the parser's own promises checked: a whole
 * head ends in CRLF CRLF, no shorter prefix is whole, nothing is kept on
 * failure, and every header can be looked up. A whole request then goes
 * through the controller's upgrade checks, a whole response through the
 * worker's.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

struct event_base	*ev_base;
struct serve_options	 serve_opts;
struct worker_options	 worker_opts;

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_http_one(const char *buf, size_t len, int request)
{
	struct http_msg	 msg, again;
	const char	*v;
	char		*accept, *cut;
	int		 used = -1, used2 = -1, r, i;

	r = http_msg_parse(&msg, buf, len, request, &used);
	if (r != 1) {
		if (r != 0 && r != -1 && r != -2)
			abort();
		if (r == -2 && len < HTTP_MAX_HEADER)
			abort();
		if (msg.method != NULL || msg.target != NULL ||
		    msg.reason != NULL || msg.nheaders != 0)
			abort();
		return;
	}
	if (used < 4 || (size_t)used > len || used > HTTP_MAX_HEADER ||
	    memcmp(buf + used - 4, "\r\n\r\n", 4) != 0)
		abort();
	if (request ? (msg.method == NULL || msg.target == NULL) :
	    (msg.reason == NULL || msg.status < 0 || msg.status > 999))
		abort();
	for (i = 0; i < msg.nheaders; i++) {
		if ((v = http_msg_get(&msg, msg.names[i])) == NULL)
			abort();
		(void)http_has_token(v, "upgrade");
		(void)http_has_token(msg.values[i], "sandd.1");
	}
	if ((v = http_msg_get(&msg, "Sec-WebSocket-Key")) != NULL) {
		accept = http_ws_accept(v);
		if (strlen(accept) != 28)
			abort();
		free(accept);
	}

	if (request) {
		struct http_upgrade	u;
		struct http_answer	a;

		if (http_upgrade_check(&msg, &u, &a) == 0) {
			struct evbuffer *b = evbuffer_new();

			if (u.key == NULL || u.id == NULL ||
			    !util_valid_id(u.id))
				abort();
			http_upgrade_response(b, &u);
			evbuffer_free(b);
		} else if (a.status < 400 || a.status > 499 ||
		    a.body == NULL)
			abort();
	} else {
		int	 mask;
		char	*cause = NULL;

		if (http_upgrade_accepted(&msg, "dGhlIHNhbXBsZSBub25jZQ==",
		    &mask, &cause) != 0) {
			if (cause == NULL)
				abort();
			free(cause);
		}
	}

	/* The head alone parses the same; one byte less needs more. */
	cut = malloc((size_t)used);
	if (cut == NULL)
		abort();
	memcpy(cut, buf, (size_t)used);
	if (http_msg_parse(&again, cut, (size_t)used, request, &used2) != 1 ||
	    used2 != used || again.nheaders != msg.nheaders)
		abort();
	http_msg_clear(&again);
	if (http_msg_parse(&again, cut, (size_t)used - 1, request,
	    &used2) != 0)
		abort();
	free(cut);
	http_msg_clear(&msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_http_one((const char *)data, size, 1);
	fuzz_http_one((const char *)data, size, 0);
	return (0);
}
