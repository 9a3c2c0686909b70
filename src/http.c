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

/* Queue a whole HTTP response with a short body on bev. */
void
http_respond(struct bufferevent *bev, int status, const char *reason,
    const char *extra, const char *body)
{
	struct evbuffer	*out = bufferevent_get_output(bev);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n"
	    "%s\r\n%s", status, reason, strlen(body),
	    extra != NULL ? extra : "", body);
}
