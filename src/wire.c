/*
 * wire.c: the messages of the wire protocol between controller and
 * worker (sandd-wire(7)), shared by both sides. Text messages are JSON
 * objects whose "t" names their type; each side turns "t" into an enum
 * wire_type once and dispatches on it through a table. Binary messages
 * carry a 16-byte header (stream, channel, offset) before their payload.
 * The error object {code, message, errno} is built here and nowhere
 * else. Pure functions: no I/O.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

static const char *wire_type_names[WIRE_NTYPES] = {
	[WIRE_T_UNKNOWN] = "?",
	[WIRE_T_HELLO] = "hello",
	[WIRE_T_WELCOME] = "welcome",
	[WIRE_T_OPEN] = "open",
	[WIRE_T_STARTED] = "started",
	[WIRE_T_END] = "end",
	[WIRE_T_ACK] = "ack",
	[WIRE_T_EOF] = "eof",
	[WIRE_T_SIGNAL] = "signal",
	[WIRE_T_DETACH] = "detach",
	[WIRE_T_RELEASE] = "release",
	[WIRE_T_CANCEL] = "cancel",
	[WIRE_T_RESIZE] = "resize",
	[WIRE_T_INFO] = "info",
	[WIRE_T_REQ] = "req",
	[WIRE_T_RES] = "res",
	[WIRE_T_ANNOUNCE] = "announce",
};

/* The "t" of a message type. */
const char *
wire_type_name(enum wire_type type)
{
	if ((unsigned)type >= WIRE_NTYPES)
		return (wire_type_names[WIRE_T_UNKNOWN]);
	return (wire_type_names[type]);
}

/* The type of a received message, WIRE_T_UNKNOWN if "t" is not ours. */
enum wire_type
wire_type_of(json_t *msg)
{
	const char	*t = json_string_value(json_object_get(msg, "t"));
	int		 i;

	if (t == NULL)
		return (WIRE_T_UNKNOWN);
	for (i = 1; i < WIRE_NTYPES; i++)
		if (strcmp(t, wire_type_names[i]) == 0)
			return ((enum wire_type)i);
	return (WIRE_T_UNKNOWN);
}

/* A new message of type; caller owns it. */
json_t *
wire_msg(enum wire_type type)
{
	return (json_pack("{s:s}", "t", wire_type_name(type)));
}

/* A new message of type about channel ch; caller owns it. */
json_t *
wire_chan_msg(enum wire_type type, uint32_t ch)
{
	return (json_pack("{s:s, s:I}", "t", wire_type_name(type), "ch",
	    (json_int_t)ch));
}

/* The channel a message names, 0 (never a channel) when none. */
uint32_t
wire_msg_chan(json_t *msg)
{
	json_t	*v = json_object_get(msg, "ch");

	if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
	    json_integer_value(v) > UINT32_MAX)
		return (0);
	return ((uint32_t)json_integer_value(v));
}

/*
 * The error object of both protocols: {code, message} and, when err is
 * not 0, the errno's name. Caller owns it.
 */
json_t *
wire_verror(const char *code, int err, const char *fmt, va_list ap)
{
	char	*msg;
	json_t	*e;

	xvasprintf(&msg, fmt, ap);
	e = json_pack("{s:s, s:s}", "code", code, "message", msg);
	if (err != 0)
		json_object_set_new(e, "errno", json_string(
		    util_errno_name(err)));
	free(msg);
	return (e);
}

json_t *
wire_error(const char *code, int err, const char *fmt, ...)
{
	va_list	 ap;
	json_t	*e;

	va_start(ap, fmt);
	e = wire_verror(code, err, fmt, ap);
	va_end(ap);
	return (e);
}

/* Encode the header of a binary message for (stream, ch, off). */
void
wire_frame_header(uint8_t h[WIRE_HDR_LEN], int stream, uint32_t ch,
    uint64_t off)
{
	int	i;

	h[0] = (uint8_t)stream;
	h[1] = h[2] = h[3] = 0;
	for (i = 0; i < 4; i++)
		h[4 + i] = (uint8_t)(ch >> (24 - 8 * i));
	for (i = 0; i < 8; i++)
		h[8 + i] = (uint8_t)(off >> (56 - 8 * i));
}

/*
 * Split a received binary message into its header fields and payload.
 * Returns -1 if it is too short or names an unknown stream.
 */
int
wire_frame_parse(const uint8_t *msg, size_t len, int *stream, uint32_t *ch,
    uint64_t *off, const uint8_t **data, size_t *dlen)
{
	int	i;

	if (len < WIRE_HDR_LEN || msg[0] >= WIRE_NSTREAMS)
		return (-1);
	*stream = msg[0];
	*ch = 0;
	for (i = 0; i < 4; i++)
		*ch = (*ch << 8) | msg[4 + i];
	*off = 0;
	for (i = 0; i < 8; i++)
		*off = (*off << 8) | msg[8 + i];
	*data = msg + WIRE_HDR_LEN;
	*dlen = len - WIRE_HDR_LEN;
	return (0);
}
