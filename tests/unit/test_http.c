/*
 * test_http.c: http_msg_parse (requests and responses) fed every prefix,
 * malformed heads, the size limit, header lookup, tokens and the
 * Sec-WebSocket-Accept of RFC 6455.
 */
#include "stubs.h"

static const char upgrade_req[] =
    "GET /ws HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "Upgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: sandd.1\r\n"
    "Authorization: Bearer 0123abcd\r\n"
    "X-Spaces:   padded value \t \r\n"
    "X-Empty:\r\n"
    "\r\n";

static const char upgrade_res[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Protocol: sandd.1\r\n"
    "\r\n";

/* Parse len bytes of s from an exact heap copy; returns the parse result. */
static int
parse(struct http_msg *msg, const char *s, size_t len, int request,
    int *used)
{
	char	*p = unit_copy(s, len);
	int	 r;

	*used = -1;
	r = http_msg_parse(msg, p, len, request, used);
	free(p);
	return (r);
}

/* Parse a string literal, which may hold NUL bytes. */
#define PARSE_LIT(msg, lit, request, used) \
	parse(msg, lit, sizeof(lit) - 1, request, used)

/* Printable form of s for a failure line (static buffer). */
static const char *
esc(const char *s, size_t len)
{
	static char	 buf[256];
	size_t		 o = 0, i;

	for (i = 0; i < len && o + 5 < sizeof buf; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, sizeof buf - o,
			    "\\x%02x", c);
	}
	buf[o] = '\0';
	return (buf);
}

/* Is msg empty, as the parser leaves it after anything but success? */
static int
msg_empty(const struct http_msg *msg)
{
	return (msg->method == NULL && msg->target == NULL &&
	    msg->reason == NULL && msg->nheaders == 0);
}

/* Every proper prefix of s needs more; s itself (and s + trailing) parses. */
static void
check_prefixes(const char *s, int request)
{
	struct http_msg	 msg;
	size_t		 len = strlen(s), i;
	char		*more;
	int		 used, r;

	for (i = 0; i < len; i++) {
		r = parse(&msg, s, i, request, &used);
		CHECKF(r == 0, "prefix of %zu/%zu bytes gave %d", i, len, r);
		CHECKF(msg_empty(&msg), "prefix %zu left fields set", i);
		if (r == 1)
			http_msg_clear(&msg);
	}
	r = parse(&msg, s, len, request, &used);
	CHECKF(r == 1, "whole head gave %d", r);
	CHECKF(used == (int)len, "used %d, want %zu", used, len);
	if (r == 1)
		http_msg_clear(&msg);

	/* Bytes after the head (the first WebSocket frame) are not used. */
	xasprintf(&more, "%s\x81\x05hello\r\n\r\n", s);
	r = parse(&msg, more, strlen(more), request, &used);
	CHECKF(r == 1 && used == (int)len, "head + data gave %d, used %d",
	    r, used);
	if (r == 1)
		http_msg_clear(&msg);
	free(more);
}

static void
test_request(void)
{
	struct http_msg	 msg;
	int		 used, r;

	check_prefixes(upgrade_req, 1);

	r = parse(&msg, upgrade_req, strlen(upgrade_req), 1, &used);
	CHECK(r == 1);
	if (r != 1)
		return;
	CHECK(msg.method != NULL && strcmp(msg.method, "GET") == 0);
	CHECK(msg.target != NULL && strcmp(msg.target, "/ws") == 0);
	CHECK(msg.nheaders == 9);
	CHECK(strcmp(http_msg_get(&msg, "Host"), "127.0.0.1:8080") == 0);
	/* Lookup is case-insensitive. */
	CHECK(http_msg_get(&msg, "upgrade") != NULL &&
	    strcmp(http_msg_get(&msg, "upgrade"), "websocket") == 0);
	CHECK(http_msg_get(&msg, "SEC-WEBSOCKET-KEY") != NULL &&
	    strcmp(http_msg_get(&msg, "SEC-WEBSOCKET-KEY"),
	    "dGhlIHNhbXBsZSBub25jZQ==") == 0);
	CHECK(http_msg_get(&msg, "sec-websocket-version") != NULL &&
	    strcmp(http_msg_get(&msg, "sec-websocket-version"), "13") == 0);
	CHECK(http_msg_get(&msg, "authorization") != NULL &&
	    strcmp(http_msg_get(&msg, "authorization"),
	    "Bearer 0123abcd") == 0);
	/* Surrounding white space is not part of a value. */
	CHECK(http_msg_get(&msg, "x-spaces") != NULL &&
	    strcmp(http_msg_get(&msg, "x-spaces"), "padded value") == 0);
	CHECK(http_msg_get(&msg, "X-Empty") != NULL &&
	    strcmp(http_msg_get(&msg, "X-Empty"), "") == 0);
	CHECK(http_msg_get(&msg, "Sec-WebSocket-Extensions") == NULL);
	CHECK(http_msg_get(&msg, "Hos") == NULL);
	CHECK(http_msg_get(&msg, "Hostt") == NULL);
	CHECK(http_has_token(http_msg_get(&msg, "connection"), "upgrade"));
	http_msg_clear(&msg);
	CHECK(msg_empty(&msg));

	/* The first of two headers with the same name is the one returned. */
	r = PARSE_LIT(&msg, "GET / HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n", 1, &used);
	CHECK(r == 1);
	if (r == 1) {
		CHECK(strcmp(http_msg_get(&msg, "a"), "1") == 0);
		http_msg_clear(&msg);
	}

	/* A request line alone is a whole head; other methods parse too. */
	check_prefixes("GET /health HTTP/1.1\r\n\r\n", 1);
	check_prefixes("POST /x?y=1&z=%20 HTTP/1.1\r\n"
	    "Content-Length: 0\r\n\r\n", 1);
}

static void
test_response(void)
{
	struct http_msg	 msg;
	int		 used, r;

	check_prefixes(upgrade_res, 0);
	r = parse(&msg, upgrade_res, strlen(upgrade_res), 0, &used);
	CHECK(r == 1);
	if (r != 1)
		return;
	CHECK(msg.status == 101);
	CHECK(msg.reason != NULL &&
	    strcmp(msg.reason, "Switching Protocols") == 0);
	CHECK(msg.method == NULL && msg.target == NULL);
	CHECK(msg.nheaders == 4);
	CHECK(http_msg_get(&msg, "sec-websocket-accept") != NULL &&
	    strcmp(http_msg_get(&msg, "sec-websocket-accept"),
	    "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
	http_msg_clear(&msg);

	check_prefixes("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
	    "\r\n", 0);
	r = PARSE_LIT(&msg, "HTTP/1.1 401 Unauthorized\r\n\r\n", 0, &used);
	CHECK(r == 1 && msg.status == 401);
	if (r == 1)
		http_msg_clear(&msg);

	/* The reason phrase may be empty or missing. */
	r = PARSE_LIT(&msg, "HTTP/1.1 200\r\n\r\n", 0, &used);
	CHECK(r == 1 && msg.status == 200 && msg.reason != NULL &&
	    msg.reason[0] == '\0');
	if (r == 1)
		http_msg_clear(&msg);
	r = PARSE_LIT(&msg, "HTTP/1.1 503 \r\n\r\n", 0, &used);
	CHECK(r == 1 && msg.status == 503);
	if (r == 1)
		http_msg_clear(&msg);
}

static const char *bad_requests[] = {
	/* request lines */
	"\r\n\r\n",
	"get /ws HTTP/1.1\r\n\r\n",
	"GET /ws HTTP/1.0\r\n\r\n",
	"GET /ws http/1.1\r\n\r\n",
	"GET /ws HTTP/2\r\n\r\n",
	"GET /ws\r\n\r\n",
	"GET\r\n\r\n",
	"GET  /ws HTTP/1.1\r\n\r\n",
	"GET /ws  HTTP/1.1\r\n\r\n",
	" GET /ws HTTP/1.1\r\n\r\n",
	"GET /ws HTTP/1.1 \r\n\r\n",
	"GET /ws HTTP/1.1 extra\r\n\r\n",
	"GET /w\x01s HTTP/1.1\r\n\r\n",
	"GET /w\x7fs HTTP/1.1\r\n\r\n",
	"GET /w\xc3\xa9 HTTP/1.1\r\n\r\n",
	"GET /w\ts HTTP/1.1\r\n\r\n",
	"GET /ws HTTP/1.1\n\r\n\r\n",
	"GET /ws HTTP/1.1\rX\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\n\r\n",
	/* headers */
	"GET /ws HTTP/1.1\r\nHost\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
	"GET /ws HTTP/1.1\r\n: value\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost : x\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHo st: x\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHo(st: x\r\n\r\n",
	"GET /ws HTTP/1.1\r\nH\xc3\xa9: x\r\n\r\n",
	"GET /ws HTTP/1.1\r\n\tHost: x\r\n\r\n",
	/* obs-fold: a continuation line */
	"GET /ws HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n",
	"GET /ws HTTP/1.1\r\nX-A: one\r\n\ttwo\r\n\r\n",
	/* control characters in a value */
	"GET /ws HTTP/1.1\r\nX-A: a\x01z\r\n\r\n",
	"GET /ws HTTP/1.1\r\nX-A: a\x1bz\r\n\r\n",
	"GET /ws HTTP/1.1\r\nX-A: a\x7fz\r\n\r\n",
	"GET /ws HTTP/1.1\r\nX-A: a\rz\r\n\r\n",
	"GET /ws HTTP/1.1\r\nX-A: a\nz\r\n\r\n",
	"GET /ws HTTP/1.1\r\nX-A: z\n\r\n\r\n",
	"GET /ws HTTP/1.1\r\nX-A: z\r\r\n\r\n",
	NULL
};

static const char *bad_responses[] = {
	"\r\n\r\n",
	"HTTP/1.0 101 Switching Protocols\r\n\r\n",
	"HTTP/1.1 10 Short\r\n\r\n",
	"HTTP/1.1 1010 Long\r\n\r\n",
	"HTTP/1.1 1x1 Bad\r\n\r\n",
	"HTTP/1.1 101X\r\n\r\n",
	"http/1.1 101 Switching Protocols\r\n\r\n",
	"HTTP/1.1  101 Two spaces\r\n\r\n",
	"GET /ws HTTP/1.1\r\n\r\n",
	"HTTP/1.1 101 OK\r\nUpgrade websocket\r\n\r\n",
	"HTTP/1.1 101 OK\r\nUpgrade: web\x01socket\r\n\r\n",
	"HTTP/1.1 101 OK\r\nUpgrade: a\r\n b\r\n\r\n",
	"HTTP/1.1 101 OK\r\nX: a\rb\r\n\r\n",
	NULL
};

static void
test_malformed(void)
{
	struct http_msg	 msg;
	const char	**s;
	int		 used, r;

	for (s = bad_requests; *s != NULL; s++) {
		r = parse(&msg, *s, strlen(*s), 1, &used);
		CHECKF(r == -1, "request %.60s: got %d", esc(*s, strlen(*s)),
		    r);
		CHECKF(msg_empty(&msg), "request left fields set");
		if (r == 1)
			http_msg_clear(&msg);
	}
	for (s = bad_responses; *s != NULL; s++) {
		r = parse(&msg, *s, strlen(*s), 0, &used);
		CHECKF(r == -1, "response %.60s: got %d", esc(*s, strlen(*s)),
		    r);
		CHECKF(msg_empty(&msg), "response left fields set");
		if (r == 1)
			http_msg_clear(&msg);
	}

	/* A NUL anywhere in the head. */
	r = PARSE_LIT(&msg, "GET /ws HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 1, &used);
	CHECKF(r == -1, "NUL in a value: got %d", r);
	r = PARSE_LIT(&msg, "GET /w\0 HTTP/1.1\r\n\r\n", 1, &used);
	CHECKF(r == -1, "NUL in the target: got %d", r);
	r = PARSE_LIT(&msg, "GET /ws HTTP/1.1\r\nX-\0: b\r\n\r\n", 1, &used);
	CHECKF(r == -1, "NUL in a name: got %d", r);
	r = PARSE_LIT(&msg, "HTTP/1.1 101 O\0K\r\n\r\n", 0, &used);
	CHECKF(r == -1, "NUL in a reason: got %d", r);
}

static void
test_limits(void)
{
	struct http_msg	 msg;
	char		*big;
	size_t		 len, fill;
	int		 used, r, i;

	/* A head of exactly HTTP_MAX_HEADER bytes parses. */
	len = HTTP_MAX_HEADER;
	big = xmalloc(len + 64);
	memcpy(big, "GET /ws HTTP/1.1\r\nX-Pad: ", 25);
	fill = len - 25 - 4;
	memset(big + 25, 'a', fill);
	memcpy(big + 25 + fill, "\r\n\r\n", 4);
	r = parse(&msg, big, len, 1, &used);
	CHECKF(r == 1 && used == (int)len, "head of %zu bytes: %d", len, r);
	if (r == 1)
		http_msg_clear(&msg);

	/* One byte more: -2, and no prefix below the limit fails. */
	memmove(big + 25 + fill + 1, big + 25 + fill, 4);
	big[25 + fill] = 'a';
	len++;
	r = parse(&msg, big, len, 1, &used);
	CHECKF(r == -2, "head of %zu bytes: %d", len, r);
	CHECK(msg_empty(&msg));
	r = parse(&msg, big, HTTP_MAX_HEADER - 1, 1, &used);
	CHECKF(r == 0, "%d bytes of a big head: %d", HTTP_MAX_HEADER - 1, r);
	r = parse(&msg, big, HTTP_MAX_HEADER, 1, &used);
	CHECKF(r == -2, "%d bytes of a big head: %d", HTTP_MAX_HEADER, r);
	free(big);

	/* Much more than 8 KiB with no end at all. */
	len = 3 * HTTP_MAX_HEADER;
	big = xmalloc(len);
	memset(big, 'A', len);
	memcpy(big, "GET /ws HTTP/1.1\r\nX: ", 21);
	r = parse(&msg, big, len, 1, &used);
	CHECKF(r == -2, "24 KiB without an end: %d", r);
	r = parse(&msg, big, len, 0, &used);
	CHECKF(r == -2, "24 KiB response without an end: %d", r);
	/* ... even when the blank line comes after the limit. */
	memcpy(big + 2 * HTTP_MAX_HEADER, "\r\n\r\n", 4);
	r = parse(&msg, big, len, 1, &used);
	CHECKF(r == -2, "blank line past the limit: %d", r);
	free(big);

	/* At most 64 headers are kept; more is malformed, not a crash. */
	len = 0;
	big = xmalloc(4096);
	len += (size_t)sprintf(big, "GET /ws HTTP/1.1\r\n");
	for (i = 0; i < 64; i++)
		len += (size_t)sprintf(big + len, "H%d: %d\r\n", i, i);
	memcpy(big + len, "\r\n", 2);
	r = parse(&msg, big, len + 2, 1, &used);
	CHECKF(r == 1 && msg.nheaders == 64, "64 headers: %d", r);
	if (r == 1) {
		CHECK(http_msg_get(&msg, "h63") != NULL &&
		    strcmp(http_msg_get(&msg, "h63"), "63") == 0);
		http_msg_clear(&msg);
	}
	len += (size_t)sprintf(big + len, "H64: 64\r\n\r\n");
	r = parse(&msg, big, len, 1, &used);
	CHECKF(r == -1, "65 headers: %d", r);
	CHECK(msg_empty(&msg));
	free(big);
}

static void
test_tokens(void)
{
	CHECK(http_has_token("Upgrade", "upgrade"));
	CHECK(http_has_token("upgrade", "Upgrade"));
	CHECK(http_has_token("keep-alive, Upgrade", "upgrade"));
	CHECK(http_has_token("keep-alive,Upgrade", "upgrade"));
	CHECK(http_has_token("Upgrade , keep-alive", "upgrade"));
	CHECK(http_has_token("\tUpgrade\t", "upgrade"));
	CHECK(http_has_token(" , ,upgrade,", "upgrade"));
	CHECK(http_has_token("chat, sandd.1", "sandd.1"));
	CHECK(!http_has_token("Upgrades", "upgrade"));
	CHECK(!http_has_token("xupgrade", "upgrade"));
	CHECK(!http_has_token("up grade", "upgrade"));
	CHECK(!http_has_token("upgrade2, close", "upgrade"));
	CHECK(!http_has_token("sandd.10", "sandd.1"));
	CHECK(!http_has_token("", "upgrade"));
	CHECK(!http_has_token(",,, ", "upgrade"));
	CHECK(!http_has_token(NULL, "upgrade"));
}

static void
test_accept(void)
{
	char	*a;

	/* RFC 6455 section 1.3. */
	a = http_ws_accept("dGhlIHNhbXBsZSBub25jZQ==");
	CHECK(a != NULL && strcmp(a, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
	free(a);
	/* RFC 6455 section 4.2.2 example uses the same key. */
	a = http_ws_accept("x3JJHMbDL1EzLkh9GBhXDw==");
	CHECK(a != NULL && strcmp(a, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=") == 0);
	free(a);
}

/* Parse what an evbuffer holds as a head. */
static int
parse_buf(struct http_msg *msg, struct evbuffer *b, int request)
{
	size_t	len = evbuffer_get_length(b);
	int	used;

	return (parse(msg, (char *)evbuffer_pullup(b, -1), len, request,
	    &used));
}

/* The worker's request, the controller's checks and answer, and back. */
static void
test_upgrade(void)
{
	struct http_upgrade	 u, got;
	struct http_answer	 a;
	struct http_msg		 m;
	struct evbuffer		*b;
	char			*cause = NULL;
	int			 mask, masks[2] = { 0, 1 }, i;

	for (i = 0; i < 2; i++) {
		memset(&u, 0, sizeof u);
		u.host = "127.0.0.1";
		u.port = "7000";
		u.path = "/ws";
		u.key = "dGhlIHNhbXBsZSBub25jZQ==";
		u.id = "w-1";
		u.token = i == 0 ? "tok" : NULL;
		u.mask = masks[i];
		b = evbuffer_new();
		http_upgrade_request(b, &u);
		CHECK(parse_buf(&m, b, 1) == 1);
		evbuffer_free(b);
		CHECK(http_upgrade_check(&m, &got, &a) == 0);
		CHECK(got.id != NULL && strcmp(got.id, "w-1") == 0);
		CHECK(i == 0 ? got.token != NULL && strcmp(got.token, "tok")
		    == 0 : got.token == NULL);
		CHECK(got.mask == masks[i] && got.subprotocol);
		b = evbuffer_new();
		http_upgrade_response(b, &got);
		http_msg_clear(&m);
		CHECK(parse_buf(&m, b, 0) == 1);
		evbuffer_free(b);
		CHECK(http_upgrade_accepted(&m, u.key, &mask, &cause) == 0);
		CHECK(mask == masks[i]);
		CHECK(http_upgrade_accepted(&m, "x3JJHMbDL1EzLkh9GBhXDw==",
		    &mask, &cause) == -1 && cause != NULL);
		free(cause);
		cause = NULL;
		http_msg_clear(&m);
	}

	/* Refusals, each with its status. */
	{
		static const struct {
			const char	*head;
			int		 status;
		} bad[] = {
			{ "GET /x HTTP/1.1\r\n\r\n", 404 },
			{ "POST /ws HTTP/1.1\r\n\r\n", 405 },
			{ "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
			    426 },
			{ "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n"
			    "Connection: upgrade\r\nSec-WebSocket-Version: 8"
			    "\r\n\r\n", 426 },
			{ "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n"
			    "Connection: upgrade\r\nSec-WebSocket-Version: 13"
			    "\r\nSec-WebSocket-Key: short\r\n\r\n", 400 },
			{ "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n"
			    "Connection: upgrade\r\nSec-WebSocket-Version: 13"
			    "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
			    "\r\nSandd-Worker-Id: a/b\r\n\r\n", 400 },
		};
		size_t	k;
		int	used;

		for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
			CHECKF(parse(&m, bad[k].head, strlen(bad[k].head), 1,
			    &used) == 1, "%zu", k);
			CHECKF(http_upgrade_check(&m, &got, &a) == -1 &&
			    a.status == bad[k].status, "%zu: %d", k,
			    a.status);
			http_msg_clear(&m);
		}
	}
}

int
main(void)
{
	test_request();
	test_response();
	test_malformed();
	test_limits();
	test_tokens();
	test_accept();
	test_upgrade();
	return (unit_done("test_http"));
}
