/*
 * fuzz_frame.c: wire_frame_parse on any bytes (a binary WebSocket message
 * from a peer); the fields it returns must lie inside the message.
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
	const uint8_t	*payload;
	size_t		 dlen;
	uint64_t	 off;
	uint32_t	 ch;
	int		 type;
	volatile uint8_t sum = 0;
	size_t		 i;

	if (wire_frame_parse(data, size, &type, &ch, &off, &payload,
	    &dlen) != 0) {
		if (size >= WIRE_HDR_LEN && data[0] < WIRE_NSTREAMS)
			abort();
		return (0);
	}
	if (size < WIRE_HDR_LEN || type < 0 || type >= WIRE_NSTREAMS ||
	    type != data[0] || payload != data + WIRE_HDR_LEN ||
	    dlen != size - WIRE_HDR_LEN)
		abort();
	if (ch != ((uint32_t)data[4] << 24 | (uint32_t)data[5] << 16 |
	    (uint32_t)data[6] << 8 | data[7]))
		abort();
	if ((uint32_t)(off >> 32) != ((uint32_t)data[8] << 24 |
	    (uint32_t)data[9] << 16 | (uint32_t)data[10] << 8 | data[11]))
		abort();
	/* Touch the payload: ASan checks it is all inside the message. */
	for (i = 0; i < dlen; i++)
		sum ^= payload[i];
	(void)sum;
	return (0);
}
