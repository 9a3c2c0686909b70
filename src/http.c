/*
 * http.c: a strict, bounded parser for the HTTP/1.1 head of a WebSocket
 * upgrade (request on the controller, response on the worker), and the
 * few responses the controller builds. Pure functions, no I/O but
 * http_respond.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "sandd.h"

#define WS_GUID	"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Free what a parse left in msg. */
void
http_msg_clear(struct http_msg *msg)
{
	int	i;

	free(msg->method);
	free(msg->target);
	free(msg->reason);
	for (i = 0; i < msg->nheaders; i++) {
		free(msg->names[i]);
		free(msg->values[i]);
	}
	memset(msg, 0, sizeof *msg);
}

static int
http_tchar(int c)
{
	return (isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c)));
}

/* Parse one header line (without CRLF) into msg. */
static int
http_parse_header(struct http_msg *msg, const char *line, size_t len)
{
	size_t		 i, vs, ve;

	for (i = 0; i < len && http_tchar((unsigned char)line[i]); i++)
		;
	if (i == 0 || i >= len || line[i] != ':')
		return (-1);
	vs = i + 1;
	while (vs < len && (line[vs] == ' ' || line[vs] == '\t'))
		vs++;
	ve = len;
	while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t'))
		ve--;
	for (size_t k = vs; k < ve; k++) {
		unsigned char c = (unsigned char)line[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return (-1);
	}
	if (msg->nheaders == (int)(sizeof msg->names / sizeof msg->names[0]))
		return (-1);
	msg->names[msg->nheaders] = xstrndup(line, i);
	msg->values[msg->nheaders] = xstrndup(line + vs, ve - vs);
	msg->nheaders++;
	return (0);
}

/* Parse "GET /ws HTTP/1.1". */
static int
http_parse_request_line(struct http_msg *msg, const char *line, size_t len)
{
	const char	*sp1, *sp2, *end = line + len;

	if ((sp1 = memchr(line, ' ', len)) == NULL || sp1 == line)
		return (-1);
	if ((sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1))) == NULL ||
	    sp2 == sp1 + 1)
		return (-1);
	if ((size_t)(end - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.1", 8) != 0)
		return (-1);
	for (const char *p = line; p < sp1; p++)
		if (!isupper((unsigned char)*p))
			return (-1);
	for (const char *p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return (-1);
	msg->method = xstrndup(line, (size_t)(sp1 - line));
	msg->target = xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	return (0);
}

/* Parse "HTTP/1.1 101 Switching Protocols". */
static int
http_parse_status_line(struct http_msg *msg, const char *line, size_t len)
{
	if (len < 12 || memcmp(line, "HTTP/1.1 ", 9) != 0)
		return (-1);
	if (!isdigit((unsigned char)line[9]) ||
	    !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]))
		return (-1);
	if (len > 12 && line[12] != ' ')
		return (-1);
	msg->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 +
	    (line[11] - '0');
	msg->reason = xstrndup(line + (len > 12 ? 13 : 12),
	    len > 12 ? len - 13 : 0);
	return (0);
}

/*
 * Parse an HTTP head from buf. Returns 1 when complete (*used is its length
 * with the blank line), 0 when more bytes are needed, -1 when malformed,
 * -2 when larger than HTTP_MAX_HEADER. msg is filled only on 1.
 */
int
http_msg_parse(struct http_msg *msg, const char *buf, size_t len,
    int request, int *used)
{
	const char	*end = NULL, *line, *eol;
	size_t		 i;
	int		 first = 1;

	memset(msg, 0, sizeof *msg);
	for (i = 0; i + 3 < len && i + 4 <= HTTP_MAX_HEADER; i++) {
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
			end = buf + i + 2;	/* after the last header CRLF */
			break;
		}
	}
	if (end == NULL)
		return (len >= HTTP_MAX_HEADER ? -2 : 0);
	for (line = buf; line < end; line = eol + 2) {
		eol = line;
		while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n'))
			eol++;
		for (const char *p = line; p < eol; p++)
			if (*p == '\r' || *p == '\n' || *p == '\0')
				goto bad;
		if (first) {
			if ((request ? http_parse_request_line(msg, line,
			    (size_t)(eol - line)) : http_parse_status_line(msg,
			    line, (size_t)(eol - line))) != 0)
				goto bad;
			first = 0;
		} else if (http_parse_header(msg, line, (size_t)(eol - line))
		    != 0)
			goto bad;
	}
	if (first)
		goto bad;
	*used = (int)(end - buf) + 2;
	return (1);
bad:
	http_msg_clear(msg);
	return (-1);
}

/* Value of the first header called name (case-insensitive), or NULL. */
const char *
http_msg_get(struct http_msg *msg, const char *name)
{
	int	i;

	for (i = 0; i < msg->nheaders; i++)
		if (strcasecmp(msg->names[i], name) == 0)
			return (msg->values[i]);
	return (NULL);
}

/* Does a comma-separated header value hold token (case-insensitive)? */
int
http_has_token(const char *value, const char *token)
{
	size_t		 tlen = strlen(token), n;
	const char	*p = value;

	if (value == NULL)
		return (0);
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == tlen && strncasecmp(p, token, n) == 0)
			return (1);
		p += strcspn(p, ",");
	}
	return (0);
}

/* Sec-WebSocket-Accept for a key (RFC 6455 4.2.2); caller frees. */
char *
http_ws_accept(const char *key)
{
	unsigned char	 md[SHA_DIGEST_LENGTH];
	char		*cat;
	EVP_MD_CTX	*ctx;
	unsigned int	 mdlen;

	xasprintf(&cat, "%s%s", key, WS_GUID);
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		fatalx("EVP_MD_CTX_new");
	if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, cat, strlen(cat)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		fatalx("SHA-1 failed");
	EVP_MD_CTX_free(ctx);
	free(cat);
	return (util_base64(md, mdlen));
}

/*
 * Queue a whole HTTP response a on bev: its status, Content-Type (plain
 * text unless a->type), extra header lines, and its body unless a->head
 * (the answer to a HEAD keeps the Content-Length of the body).
 */
void
http_respond(struct bufferevent *bev, const struct http_answer *a)
{
	struct evbuffer	*out = bufferevent_get_output(bev);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n"
	    "%s\r\n%s", a->status, a->reason, a->type != NULL ? a->type :
	    "text/plain; charset=utf-8", strlen(a->body), a->extra != NULL ?
	    a->extra : "", a->head ? "" : a->body);
}

/*
 * The worker's upgrade request for u, written to out: the WebSocket
 * handshake, our subprotocol and id, the bearer token if any, and the
 * offer to skip masking unless u->mask.
 */
void
http_upgrade_request(struct evbuffer *out, const struct http_upgrade *u)
{
	evbuffer_add_printf(out, "GET %s HTTP/1.1\r\n"
	    "Host: %s:%s\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Protocol: %s\r\n"
	    "Sandd-Worker-Id: %s\r\nUser-Agent: sandd/%s\r\n",
	    u->path, u->host, u->port, u->key, WIRE_SUBPROTOCOL, u->id,
	    SANDD_VERSION);
	if (u->token != NULL)
		evbuffer_add_printf(out, "Authorization: Bearer %s\r\n",
		    u->token);
	if (u->secret != NULL)
		evbuffer_add_printf(out, "%s: %s\r\n", WIRE_SECRET_HEADER,
		    u->secret);
	if (!u->mask)
		evbuffer_add_printf(out, "%s: %s\r\n", WIRE_FRAMES_HEADER,
		    WIRE_FRAMES_UNMASKED);
	evbuffer_add(out, "\r\n", 2);
}

/* Fill a refusal. */
static int
http_refuse(struct http_answer *a, int status, const char *reason,
    const char *extra, const char *body)
{
	memset(a, 0, sizeof *a);
	a->status = status;
	a->reason = reason;
	a->extra = extra;
	a->body = body;
	return (-1);
}

/*
 * Check a request head for the WebSocket upgrade of a worker. On success
 * returns 0 with u->key, u->id and u->token (pointers into m, NULL when
 * absent), u->subprotocol and u->mask (1 unless the worker offered to
 * skip masking). Otherwise returns -1 with the answer to send in *a.
 * The token is not checked here.
 */
int
http_upgrade_check(struct http_msg *m, struct http_upgrade *u,
    struct http_answer *a)
{
	const char	*key, *ver, *auth, *id;

	memset(u, 0, sizeof *u);
	if (strcmp(m->target, WIRE_PATH) != 0)
		return (http_refuse(a, 404, "Not Found", NULL, "not found\n"));
	if (strcmp(m->method, "GET") != 0)
		return (http_refuse(a, 405, "Method Not Allowed",
		    "Allow: GET\r\n", "method not allowed\n"));
	if (!http_has_token(http_msg_get(m, "Upgrade"), "websocket") ||
	    !http_has_token(http_msg_get(m, "Connection"), "upgrade"))
		return (http_refuse(a, 426, "Upgrade Required",
		    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
		    "websocket upgrade required\n"));
	ver = http_msg_get(m, "Sec-WebSocket-Version");
	if (ver == NULL || strcmp(ver, "13") != 0)
		return (http_refuse(a, 426, "Upgrade Required",
		    "Sec-WebSocket-Version: 13\r\n",
		    "websocket version 13 required\n"));
	key = http_msg_get(m, "Sec-WebSocket-Key");
	if (key == NULL || strlen(key) != 24)
		return (http_refuse(a, 400, "Bad Request", NULL,
		    "bad Sec-WebSocket-Key\n"));
	id = http_msg_get(m, "Sandd-Worker-Id");
	u->id = id;
	if (id == NULL || !util_valid_id(id))
		return (http_refuse(a, 400, "Bad Request", NULL,
		    "invalid worker id (1 to 64 of A-Za-z0-9._-)\n"));
	auth = http_msg_get(m, "Authorization");
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
		u->token = auth + 7;
	u->secret = http_msg_get(m, WIRE_SECRET_HEADER);
	u->key = key;
	u->subprotocol = http_has_token(http_msg_get(m,
	    "Sec-WebSocket-Protocol"), WIRE_SUBPROTOCOL);
	u->mask = !http_has_token(http_msg_get(m, WIRE_FRAMES_HEADER),
	    WIRE_FRAMES_UNMASKED);
	return (0);
}

/* The controller's 101 answer to an upgrade u checked above, to out. */
void
http_upgrade_response(struct evbuffer *out, const struct http_upgrade *u)
{
	char	*accept;

	accept = http_ws_accept(u->key);
	evbuffer_add_printf(out, "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n", accept);
	free(accept);
	if (u->subprotocol)
		evbuffer_add_printf(out, "Sec-WebSocket-Protocol: %s\r\n",
		    WIRE_SUBPROTOCOL);
	if (!u->mask)
		evbuffer_add_printf(out, "%s: %s\r\n", WIRE_FRAMES_HEADER,
		    WIRE_FRAMES_UNMASKED);
	evbuffer_add(out, "\r\n", 2);
}

/*
 * Check the controller's answer to our upgrade with key: 0 with *mask
 * (0 when the controller agreed to skip masking), or -1 with *cause.
 */
int
http_upgrade_accepted(struct http_msg *m, const char *key, int *mask,
    char **cause)
{
	const char	*acc;
	char		*want;
	int		 ok;

	if (m->status != 101) {
		xasprintf(cause, "answered %d %s", m->status, m->reason);
		return (-1);
	}
	acc = http_msg_get(m, "Sec-WebSocket-Accept");
	want = http_ws_accept(key);
	ok = acc != NULL && strcmp(acc, want) == 0;
	free(want);
	if (!ok) {
		xasprintf(cause, "bad Sec-WebSocket-Accept");
		return (-1);
	}
	*mask = !http_has_token(http_msg_get(m, WIRE_FRAMES_HEADER),
	    WIRE_FRAMES_UNMASKED);
	return (0);
}
