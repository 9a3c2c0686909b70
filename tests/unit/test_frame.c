/*
 * test_frame.c: wire_frame_parse, the 16-byte header of binary wire frames
 * (u8 type, u8 flags, u16 zero, u32 channel, u64 offset, big endian).
 */
#include "stubs.h"

/* Build a frame of header + payload into a new exact-size buffer. */
static uint8_t *
frame(int type, uint32_t ch, uint64_t off, const char *payload, size_t plen,
    size_t *len)
{
	uint8_t	*p;
	int	 i;

	*len = WIRE_HDR_LEN + plen;
	p = xmalloc(*len);
	memset(p, 0, WIRE_HDR_LEN);
	p[0] = (uint8_t)type;
	for (i = 0; i < 4; i++)
		p[4 + i] = (uint8_t)(ch >> (24 - 8 * i));
	for (i = 0; i < 8; i++)
		p[8 + i] = (uint8_t)(off >> (56 - 8 * i));
	if (plen > 0)
		memcpy(p + WIRE_HDR_LEN, payload, plen);
	return (p);
}

/* Parse a frame and check every field comes back as built. */
static void
check_fields(int type, uint32_t ch, uint64_t off, const char *payload,
    size_t plen)
{
	const uint8_t	*data = NULL;
	uint8_t		*p;
	size_t		 len, dlen = 12345;
	uint64_t	 goff = 1;
	uint32_t	 gch = 1;
	int		 gtype = -1, r;

	p = frame(type, ch, off, payload, plen, &len);
	r = wire_frame_parse(p, len, &gtype, &gch, &goff, &data, &dlen);
	CHECKF(r == 0, "type %d ch %u: returned %d", type, ch, r);
	if (r == 0) {
		CHECKF(gtype == type, "type %d, want %d", gtype, type);
		CHECKF(gch == ch, "channel %#x, want %#x", gch, ch);
		CHECKF(goff == off, "offset %#llx, want %#llx",
		    (unsigned long long)goff, (unsigned long long)off);
		CHECKF(data == p + WIRE_HDR_LEN, "payload pointer off by %td",
		    data - p);
		CHECKF(dlen == plen, "payload length %zu, want %zu", dlen,
		    plen);
	}
	free(p);
}

static void
test_fields(void)
{
	check_fields(WIRE_IN, 1, 0, "hello", 5);
	check_fields(WIRE_OUT, 0x01020304, 0x0102030405060708ULL, "x", 1);
	check_fields(WIRE_ERR, 0x80000001, 0x8000000000000001ULL, "", 0);
	check_fields(WIRE_OUT, 0xffffffff, UINT64_MAX, "\0\xff", 2);
	check_fields(WIRE_IN, 0, 0, "", 0);
	check_fields(WIRE_OUT, 7, 1ULL << 40, "abc\r\n", 5);
}

static void
test_big_payload(void)
{
	char	*payload;

	payload = xmalloc(WIRE_CHUNK);
	memset(payload, 'z', WIRE_CHUNK);
	check_fields(WIRE_OUT, 3, 123456789, payload, WIRE_CHUNK);
	free(payload);
}

static void
test_short(void)
{
	const uint8_t	*data;
	uint8_t		*full, *p;
	size_t		 len, dlen, n;
	uint64_t	 off;
	uint32_t	 ch;
	int		 type, r;

	/* Every cut of the header is too short, from an exact buffer. */
	full = frame(WIRE_OUT, 9, 99, "payload", 7, &len);
	for (n = 0; n < WIRE_HDR_LEN; n++) {
		p = unit_copy(full, n);
		r = wire_frame_parse(p, n, &type, &ch, &off, &data, &dlen);
		CHECKF(r == -1, "%zu bytes: returned %d", n, r);
		free(p);
	}
	/* From the header on, every length parses. */
	for (n = WIRE_HDR_LEN; n <= len; n++) {
		p = unit_copy(full, n);
		r = wire_frame_parse(p, n, &type, &ch, &off, &data, &dlen);
		CHECKF(r == 0 && dlen == n - WIRE_HDR_LEN && ch == 9 &&
		    off == 99, "%zu bytes: returned %d", n, r);
		free(p);
	}
	free(full);
}

static void
test_unknown_type(void)
{
	const uint8_t	*data;
	uint8_t		*p;
	size_t		 len, dlen;
	uint64_t	 off;
	uint32_t	 ch;
	int		 type, t, r;

	for (t = 0; t < 256; t++) {
		p = frame(t, 1, 0, "x", 1, &len);
		r = wire_frame_parse(p, len, &type, &ch, &off, &data, &dlen);
		if (t < WIRE_NSTREAMS)
			CHECKF(r == 0 && type == t, "type %d: returned %d", t,
			    r);
		else
			CHECKF(r == -1, "type %d: returned %d", t, r);
		free(p);
	}
}

int
main(void)
{
	test_fields();
	test_big_payload();
	test_short();
	test_unknown_type();
	return (unit_done("test_frame"));
}
