/*
 * test_util.c: UTF-8 splitting at every byte, the text/bytes rule of the
 * control protocol for every byte value, ids, signals, sizes, HOST:PORT.
 */
#include <errno.h>
#include <signal.h>

#include "stubs.h"

/* Length of the sequence a byte starts by its bit pattern; 0 if none. */
static int
ref_seqlen(uint8_t c)
{
	if (c < 0x80)
		return (1);
	if ((c & 0xe0) == 0xc0)
		return (2);
	if ((c & 0xf0) == 0xe0)
		return (3);
	if ((c & 0xf8) == 0xf0)
		return (4);
	return (0);
}

/* Reference (RFC 3629): are these n bytes exactly one valid sequence? */
static int
ref_decode(const uint8_t *p, int n)
{
	uint32_t	cp;
	int		i;

	if (ref_seqlen(p[0]) != n)
		return (0);
	if (n == 1)
		return (1);
	cp = p[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return (0);
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return (0);
	return (1);
}

#define REF_OK		0	/* all whole sequences */
#define REF_PARTIAL	1	/* ends with the start of a valid sequence */
/* ends with a cut sequence that can't be valid */
#define REF_DEADTAIL	2
#define REF_BAD		3	/* an invalid sequence before the end */

/* Reference scan; *k is where the cut-off tail starts (len if none). */
static int
ref_scan(const uint8_t *buf, size_t len, size_t *k)
{
	uint8_t	tmp[4];
	size_t	i = 0;
	int	n, j, fill, viable;

	*k = len;
	while (i < len) {
		if ((n = ref_seqlen(buf[i])) == 0)
			return (REF_BAD);
		if (i + (size_t)n > len) {
			/*
			 * Only the second byte has a narrower range than
			 * 80-bf, and each such range holds 80 or bf.
			 */
			viable = 0;
			for (fill = 0x80; fill <= 0xbf; fill += 0x3f) {
				for (j = 0; j < n; j++)
					tmp[j] = i + (size_t)j < len ?
					    buf[i + (size_t)j] : (uint8_t)fill;
				viable |= ref_decode(tmp, n);
			}
			*k = i;
			return (viable ? REF_PARTIAL : REF_DEADTAIL);
		}
		if (!ref_decode(buf + i, n))
			return (REF_BAD);
		i += (size_t)n;
	}
	return (REF_OK);
}

/*
 * Compare util_utf8_complete on buf with the reference; 1 if they agree.
 * Callers pass heap buffers of exactly len bytes, so ASan sees over-reads.
 */
static int
utf8_agrees(const uint8_t *buf, size_t len)
{
	size_t	 k, got;
	int	 st, valid, ok = 0;

	st = ref_scan(buf, len, &k);
	got = util_utf8_complete(buf, len, &valid);
	switch (st) {
	case REF_OK:
		ok = (valid == 1 && got == len);
		break;
	case REF_PARTIAL:
		ok = (valid == 1 && got == k);
		break;
	case REF_DEADTAIL:
		/* Saying "invalid" now or "wait for more" are both fine. */
		ok = (valid == 0 || got == k);
		break;
	case REF_BAD:
		ok = (valid == 0);
		break;
	}
	if (ok && util_utf8_valid(buf, len) != (st == REF_OK))
		ok = 0;
	return (ok);
}

/* utf8_agrees on an exact heap copy of len bytes of p. */
static int
utf8_agrees_copy(const uint8_t *p, size_t len)
{
	uint8_t	*q = unit_copy(p, len);
	int	 ok;

	ok = utf8_agrees(q, len);
	free(q);
	return (ok);
}

/* Print a buffer in hex for a failure line (static buffer). */
static const char *
hex(const uint8_t *p, size_t len)
{
	static char	buf[3 * 64 + 1];
	size_t		i, o = 0;

	for (i = 0; i < len && i < 64; i++)
		o += (size_t)snprintf(buf + o, sizeof buf - o, "%02x ", p[i]);
	buf[o] = '\0';
	return (buf);
}

static void
test_utf8_exhaustive(void)
{
	static const uint8_t interesting[] = {
		0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
		0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee,
		0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff,
	};
	const size_t	 ni = sizeof interesting;
	uint8_t		*p[5], *q, b[40];
	unsigned	 a, c, d, bad = 0;
	size_t		 i, len;

	for (len = 1; len <= 4; len++)
		p[len] = xmalloc(len);
	q = xmalloc(10);
	memcpy(q, "abcdefghi", 9);

	/* Every 1, 2 and 3 byte string; the 1 byte ones after ASCII too. */
	for (a = 0; a < 256; a++) {
		p[1][0] = p[2][0] = p[3][0] = q[9] = (uint8_t)a;
		if (!utf8_agrees(p[1], 1) || !utf8_agrees(q, 10))
			CHECKF(bad++ < 10, "disagree on %s", hex(p[1], 1));
		for (c = 0; c < 256; c++) {
			p[2][1] = p[3][1] = (uint8_t)c;
			if (!utf8_agrees(p[2], 2))
				CHECKF(bad++ < 10, "disagree on %s",
				    hex(p[2], 2));
			for (d = 0; d < 256; d++) {
				p[3][2] = (uint8_t)d;
				if (!utf8_agrees(p[3], 3))
					CHECKF(bad++ < 10, "disagree on %s",
					    hex(p[3], 3));
			}
		}
	}
	CHECKF(bad == 0, "%u 1-3 byte strings disagree", bad);

	/* 4 byte strings (and their prefixes) over interesting bytes. */
	bad = 0;
	for (a = 0; a < ni * ni * ni * ni; a++) {
		b[0] = interesting[a % ni];
		b[1] = interesting[a / ni % ni];
		b[2] = interesting[a / ni / ni % ni];
		b[3] = interesting[a / ni / ni / ni % ni];
		for (len = 1; len <= 4; len++) {
			memcpy(p[len], b, len);
			if (!utf8_agrees(p[len], len))
				CHECKF(bad++ < 10, "disagree on %s",
				    hex(b, len));
		}
	}
	CHECKF(bad == 0, "%u 4 byte strings disagree", bad);
	for (len = 1; len <= 4; len++)
		free(p[len]);
	free(q);

	/* Random mixes, mostly ASCII, to cross the 8-byte fast path. */
	bad = 0;
	srandom(6455);
	for (a = 0; a < 200000; a++) {
		len = 1 + (size_t)random() % sizeof b;
		for (i = 0; i < len; i++) {
			if (random() % 4 != 0)
				b[i] = (uint8_t)(0x20 + random() % 0x5f);
			else
				b[i] = interesting[random() % ni];
		}
		if (!utf8_agrees_copy(b, len))
			CHECKF(bad++ < 10, "disagree on %s", hex(b, len));
	}
	CHECKF(bad == 0, "%u random strings disagree", bad);
}

static const char mixed[] =
    "ascii \xc3\xa9t\xc3\xa9 \xe2\x82\xac\xe2\x82\xac "
    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80x\xc2\x80\xdf\xbf"
    "\xe0\xa0\x80\xef\xbf\xbf\xed\x9f\xbf\xee\x80\x80"
    "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf" "0123456789abcdef\xc3\xa9";

static void
test_utf8_splits(void)
{
	size_t		 len = sizeof mixed - 1, k, j, got, cut, b;
	const uint8_t	*m = (const uint8_t *)mixed;
	uint8_t		*p, out[sizeof mixed], carry[8];
	size_t		 o, nc;
	int		 valid;

	CHECK(util_utf8_valid(m, len));
	/* Every prefix ends at the last whole sequence before it. */
	for (k = 0; k <= len; k++) {
		p = unit_copy(m, k);
		got = util_utf8_complete(p, k, &valid);
		for (cut = k; cut > 0 && cut < len && (m[cut] & 0xc0) == 0x80;
		    cut--)
			;
		CHECKF(valid == 1 && got == cut, "prefix %zu: got %zu (want "
		    "%zu), valid %d", k, got, cut, valid);
		free(p);
	}

	/* Split in three at every pair of points, as a stream would be. */
	for (k = 0; k <= len; k++) {
		for (j = k; j <= len; j++) {
			size_t	bounds[4] = { 0, k, j, len };

			o = nc = 0;
			for (b = 0; b < 3; b++) {
				size_t n = nc + bounds[b + 1] - bounds[b];
				p = xmalloc(n + 1);
				memcpy(p, carry, nc);
				memcpy(p + nc, m + bounds[b],
				    bounds[b + 1] - bounds[b]);
				got = util_utf8_complete(p, n, &valid);
				if (!valid || n - got > 3) {
					CHECKF(0, "split %zu/%zu: chunk %zu "
					    "valid %d rest %zu", k, j, b,
					    valid, n - got);
					free(p);
					goto next;
				}
				CHECK(util_utf8_valid(p, got));
				memcpy(out + o, p, got);
				o += got;
				nc = n - got;
				memcpy(carry, p + got, nc);
				free(p);
			}
			CHECKF(nc == 0 && o == len && memcmp(out, m, len) == 0,
			    "split %zu/%zu: stream differs", k, j);
		next:	;
		}
	}
}

static const struct {
	const char	*s;
	size_t		 len;
} bad_utf8[] = {
#define B(x) { x, sizeof(x) - 1 }
	B("\x80"), B("a\xbf"), B("\xc0\x80"), B("\xc1\xbf"), B("\xc2"
	"A"), B("\xe2\x82" "A"), B("\xe2" "A\x82"), B("\xe0\x80\x80"),
	B("\xe0\x9f\xbf"), B("\xed\xa0\x80"), B("\xed\xbf\xbf"),
	B("\xf0\x80\x80\x80"), B("\xf0\x8f\xbf\xbf"), B("\xf4\x90\x80\x80"),
	B("\xf5\x80\x80\x80"), B("\xf8\x88\x80\x80\x80"), B("\xfe"),
	B("\xff"), B("\xf0\x9f\x98" "A"), B("\xf0\x9f\x98\x80\x80"),
	B("ok ok ok ok ok \xff ok"), B("0123456789abcdef\xc3\xa9\xa9"),
#undef B
};

static void
test_utf8_invalid(void)
{
	size_t		 i, got;
	uint8_t		*p;
	int		 valid;

	for (i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
		p = unit_copy(bad_utf8[i].s, bad_utf8[i].len);
		got = util_utf8_complete(p, bad_utf8[i].len, &valid);
		CHECKF(valid == 0, "%s: valid (returned %zu)",
		    hex(p, bad_utf8[i].len), got);
		CHECKF(!util_utf8_valid(p, bad_utf8[i].len), "%s: valid",
		    hex(p, bad_utf8[i].len));
		free(p);
	}
	/* Cut-off starts of valid sequences wait for more. */
	CHECK(util_utf8_complete((const uint8_t *)"ab\xf0\x9f\x98", 5,
	    &valid) == 2 && valid == 1);
	CHECK(util_utf8_complete((const uint8_t *)"\xe2\x82", 2,
	    &valid) == 0 && valid == 1);
	CHECK(util_utf8_complete((const uint8_t *)"\xc3", 1,
	    &valid) == 0 && valid == 1);
	CHECK(util_utf8_complete((const uint8_t *)"", 0, &valid) == 0 &&
	    valid == 1);
	/* NUL is a valid character. */
	CHECK(util_utf8_valid((const uint8_t *)"a\0b", 3));
}

/* Bytes of field name (or name_b64) of obj; NULL if it fails. */
static struct evbuffer *
get_bytes(json_t *obj, const char *name, int *ret)
{
	struct evbuffer	*b = evbuffer_new();
	char		*cause = NULL;

	*ret = util_json_get_bytes(obj, name, b, &cause);
	if (*ret < 0) {
		CHECKF(cause != NULL && *cause != '\0', "no cause for %s",
		    name);
		free(cause);
	} else
		CHECKF(cause == NULL, "cause set on success: %s", cause);
	return (b);
}

/* Set then get bytes (also through a dump and load); 1 if all agree. */
static int
roundtrip(const uint8_t *p, size_t len, const char *name, int want_text)
{
	json_t		*obj, *again;
	struct evbuffer	*b;
	char		*s, key[64];
	int		 r, ok = 1, text, b64;
	json_error_t	 jerr;

	snprintf(key, sizeof key, "%s_b64", name);
	obj = json_object();
	if (util_json_set_bytes(obj, name, p, len) != 0)
		ok = 0;
	text = json_is_string(json_object_get(obj, name));
	b64 = json_is_string(json_object_get(obj, key));
	if (text == b64 || text != want_text || json_object_size(obj) != 1)
		ok = 0;
	b = get_bytes(obj, name, &r);
	if (r != 1 || evbuffer_get_length(b) != len ||
	    (len > 0 && memcmp(evbuffer_pullup(b, -1), p, len) != 0))
		ok = 0;
	evbuffer_free(b);

	/* The same after the JSON text a client would see and send back. */
	s = json_dumps(obj, JSON_COMPACT);
	again = s != NULL ? json_loads(s, JSON_ALLOW_NUL, &jerr) : NULL;
	if (again == NULL)
		ok = 0;
	else {
		b = get_bytes(again, name, &r);
		if (r != 1 || evbuffer_get_length(b) != len ||
		    (len > 0 && memcmp(evbuffer_pullup(b, -1), p, len) != 0))
			ok = 0;
		evbuffer_free(b);
		json_decref(again);
	}
	free(s);
	json_decref(obj);
	return (ok);
}

static void
test_json_bytes(void)
{
	uint8_t		 all[256], two[2];
	unsigned	 i, j, bad = 0;
	size_t		 k;

	/* Every single byte value. */
	for (i = 0; i < 256; i++) {
		all[i] = (uint8_t)i;
		CHECKF(roundtrip(all + i, 1, "data", i < 0x80),
		    "byte %02x", i);
	}
	/* All of them at once, and every pair. */
	CHECK(roundtrip(all, sizeof all, "stdout", 0));
	for (i = 0; i < 256; i++) {
		for (j = 0; j < 256; j++) {
			two[0] = (uint8_t)i;
			two[1] = (uint8_t)j;
			if (!roundtrip(two, 2, "stdin",
			    util_utf8_valid(two, 2)))
				CHECKF(bad++ < 10, "pair %02x %02x", i, j);
		}
	}
	CHECKF(bad == 0, "%u pairs do not round-trip", bad);
	/* Every length near the base64 padding boundaries. */
	for (k = 0; k < 20; k++)
		CHECKF(roundtrip(all + 250 - k, k, "data", k == 0),
		    "length %zu", k);
	CHECK(roundtrip((const uint8_t *)"", 0, "data", 1));
	CHECK(roundtrip((const uint8_t *)"a\0b", 3, "data", 1));
	CHECK(roundtrip((const uint8_t *)mixed, sizeof mixed - 1, "data", 1));
}

static void
test_json_get_errors(void)
{
	static const struct {
		const char	*json;
		int		 ret;
		const char	*bytes;
		size_t		 len;
	} cases[] = {
		{ "{}", 0, "", 0 },
		{ "{\"other\":\"x\"}", 0, "", 0 },
		{ "{\"data\":\"hi\"}", 1, "hi", 2 },
		{ "{\"data\":\"\"}", 1, "", 0 },
		{ "{\"data\":\"a\\u0000b\"}", 1, "a\0b", 3 },
		{ "{\"data_b64\":\"\"}", 1, "", 0 },
		{ "{\"data_b64\":\"QQ==\"}", 1, "A", 1 },
		{ "{\"data_b64\":\"QUI=\"}", 1, "AB", 2 },
		{ "{\"data_b64\":\"QUJD\"}", 1, "ABC", 3 },
		{ "{\"data_b64\":\"AAAA\"}", 1, "\0\0\0", 3 },
		{ "{\"data_b64\":\"/w==\"}", 1, "\xff", 1 },
		{ "{\"data\":5}", -1, NULL, 0 },
		{ "{\"data\":null}", -1, NULL, 0 },
		{ "{\"data\":[\"x\"]}", -1, NULL, 0 },
		{ "{\"data_b64\":5}", -1, NULL, 0 },
		{ "{\"data_b64\":true}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QQ\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QUJ\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QUJDR\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"!!!!\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QU\\u0000D\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"====\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"Q===\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QQ=A\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QQ==QQ==\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QQ= \"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QUI \"}", -1, NULL, 0 },
		{ "{\"data_b64\":\" QUI\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QU\\nI\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QUJD-_==\"}", -1, NULL, 0 },
		{ "{\"data_b64\":\"QUJD+/==\"}", 1, "ABC\xfb", 4 },
	};
	json_t		*obj;
	json_error_t	 jerr;
	struct evbuffer	*b;
	size_t		 i;
	int		 r;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		obj = json_loads(cases[i].json, JSON_ALLOW_NUL, &jerr);
		if (obj == NULL) {
			CHECKF(0, "bad test JSON %s", cases[i].json);
			continue;
		}
		b = get_bytes(obj, "data", &r);
		CHECKF(r == cases[i].ret, "%s: returned %d, want %d",
		    cases[i].json, r, cases[i].ret);
		if (r == 1 && cases[i].ret == 1)
			CHECKF(evbuffer_get_length(b) == cases[i].len &&
			    (cases[i].len == 0 || memcmp(evbuffer_pullup(b,
			    -1), cases[i].bytes, cases[i].len) == 0),
			    "%s: got %zu bytes %s", cases[i].json,
			    evbuffer_get_length(b),
			    hex(evbuffer_pullup(b, -1),
			    evbuffer_get_length(b)));
		if (cases[i].ret == -1)
			CHECKF(evbuffer_get_length(b) == 0,
			    "%s: %zu bytes added on error", cases[i].json,
			    evbuffer_get_length(b));
		evbuffer_free(b);
		json_decref(obj);
	}
}

static void
test_base64(void)
{
	static const char *vec[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	size_t	 i;
	char	*s;

	for (i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		s = util_base64(vec[i][0], strlen(vec[i][0]));
		CHECKF(strcmp(s, vec[i][1]) == 0, "base64(%s) = %s",
		    vec[i][0], s);
		free(s);
	}
}

static void
test_valid_id(void)
{
	char	id[80];

	CHECK(util_valid_id("w1"));
	CHECK(util_valid_id("a"));
	CHECK(util_valid_id("build-host.example_1"));
	CHECK(util_valid_id("A-Z.a_z-0.9"));
	memset(id, 'x', 64);
	id[64] = '\0';
	CHECK(util_valid_id(id));
	id[64] = 'x';
	id[65] = '\0';
	CHECK(!util_valid_id(id));
	CHECK(!util_valid_id(""));
	CHECK(!util_valid_id("a b"));
	CHECK(!util_valid_id("a/b"));
	CHECK(!util_valid_id("a:b"));
	CHECK(!util_valid_id("w1\n"));
	CHECK(!util_valid_id("caf\xc3\xa9"));
	CHECK(!util_valid_id("a*"));
	CHECK(!util_valid_id("\x7f"));
}

static void
test_signals(void)
{
	static const struct {
		const char	*name;
		int		 sig;
	} sigs[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
		{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
		{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
		{ "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
		{ "TSTP", SIGTSTP }, { "WINCH", SIGWINCH }, { "SEGV", SIGSEGV },
		{ "ABRT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
		{ "ILL", SIGILL }, { "TRAP", SIGTRAP }, { "XCPU", SIGXCPU },
	};
	char	buf[32];
	size_t	i;
	int	s;

	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		CHECKF(util_signal_number(sigs[i].name) == sigs[i].sig, "%s",
		    sigs[i].name);
		snprintf(buf, sizeof buf, "SIG%s", sigs[i].name);
		CHECKF(util_signal_number(buf) == sigs[i].sig, "%s", buf);
		CHECKF(strcmp(util_signal_name(sigs[i].sig), sigs[i].name)
		    == 0, "name of %d is %s", sigs[i].sig,
		    util_signal_name(sigs[i].sig));
	}
	CHECK(util_signal_number("int") == SIGINT);
	CHECK(util_signal_number("Term") == SIGTERM);
	CHECK(util_signal_number("9") == 9);
	CHECK(util_signal_number("15") == 15);
	CHECK(util_signal_number("1") == 1);
	CHECK(util_signal_number("0") == -1);
	CHECK(util_signal_number("-9") == -1);
	CHECK(util_signal_number("") == -1);
	CHECK(util_signal_number("SIG") == -1);
	CHECK(util_signal_number("FOO") == -1);
	CHECK(util_signal_number("SIGFOO") == -1);
	CHECK(util_signal_number("9x") == -1);
	CHECK(util_signal_number("INT ") == -1);
	CHECK(util_signal_number("99999999999999999999") == -1);
	snprintf(buf, sizeof buf, "%d", NSIG);
	CHECK(util_signal_number(buf) == -1);
	/* Every number a name has maps back to it. */
	for (s = 1; s < NSIG; s++) {
		const char *n = util_signal_name(s);
		CHECKF(util_signal_number(n) == s, "signal %d named %s", s, n);
	}
}

static void
test_parse_size(void)
{
	static const struct {
		const char		*s;
		int			 ret;
		unsigned long long	 val;
	} cases[] = {
		{ "0", 0, 0 }, { "1", 0, 1 }, { "65536", 0, 65536 },
		{ "1k", 0, 1024 }, { "1K", 0, 1024 }, { "4m", 0, 4 << 20 },
		{ "4M", 0, 4 << 20 }, { "1G", 0, 1ULL << 30 },
		{ "3g", 0, 3ULL << 30 }, { "0K", 0, 0 },
		{ "1099511627776M", 0, 1ULL << 60 },
		{ "", -1, 0 }, { "-1", -1, 0 }, { "-0", -1, 0 },
		{ "k", -1, 0 }, { "1x", -1, 0 }, { "1KB", -1, 0 },
		{ "1 K", -1, 0 }, { "1.5M", -1, 0 }, { "1T", -1, 0 },
		{ "0x10", -1, 0 },
		{ "99999999999999999999", -1, 0 },
		{ "18446744073709551615", -1, 0 },
		/* Results that wrap around 2^64 are too large, not small. */
		{ "17179869184G", -1, 0 },	/* 2^64 */
		{ "17179869185G", -1, 0 },	/* 2^64 + 2^30 */
		{ "18014398509481984K", -1, 0 },/* 2^64 */
		{ "17592186044416M", -1, 0 },	/* 2^64 */
	};
	size_t	i, out;
	int	r;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		out = 12345;
		r = util_parse_size(cases[i].s, &out);
		if (cases[i].ret == 0)
			CHECKF(r == 0 && out == cases[i].val,
			    "\"%s\": returned %d, %zu", cases[i].s, r, out);
		else
			CHECKF(r == -1, "\"%s\": returned %d, %zu",
			    cases[i].s, r, out);
	}
}

static void
test_parse_seconds(void)
{
	int	v;

	CHECK(util_parse_seconds("0", &v) == 0 && v == 0);
	CHECK(util_parse_seconds("30", &v) == 0 && v == 30);
	CHECK(util_parse_seconds("31536000", &v) == 0 && v == 31536000);
	CHECK(util_parse_seconds("31536001", &v) == -1);
	CHECK(util_parse_seconds("-1", &v) == -1);
	CHECK(util_parse_seconds("", &v) == -1);
	CHECK(util_parse_seconds("1s", &v) == -1);
	CHECK(util_parse_seconds("1.5", &v) == -1);
	CHECK(util_parse_seconds("99999999999999999999", &v) == -1);
}

static void
test_hostport(void)
{
	static const struct {
		const char	*s;
		int		 ret;
		const char	*host;
		const char	*port;
	} cases[] = {
		{ "127.0.0.1:80", 0, "127.0.0.1", "80" },
		{ "localhost:8080", 0, "localhost", "8080" },
		{ "[::1]:80", 0, "::1", "80" },
		{ "[fe80::1%eth0]:4443", 0, "fe80::1%eth0", "4443" },
		{ "0.0.0.0:65535", 0, "0.0.0.0", "65535" },
		{ "example.com", -1, NULL, NULL },
		{ "example.com:", -1, NULL, NULL },
		{ "example.com:http", -1, NULL, NULL },
		{ "example.com:80x", -1, NULL, NULL },
		{ "example.com:-1", -1, NULL, NULL },
		{ "[::1]", -1, NULL, NULL },
		{ "[::1]:", -1, NULL, NULL },
		{ "[::1]80", -1, NULL, NULL },
		{ "[::1:80", -1, NULL, NULL },
		{ "", -1, NULL, NULL },
	};
	char	*host, *port;
	size_t	 i;
	int	 r;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		host = port = NULL;
		r = util_parse_hostport(cases[i].s, &host, &port);
		CHECKF(r == cases[i].ret, "\"%s\": returned %d", cases[i].s,
		    r);
		if (r == 0 && cases[i].ret == 0) {
			CHECKF(strcmp(host, cases[i].host) == 0 &&
			    strcmp(port, cases[i].port) == 0,
			    "\"%s\": host \"%s\" port \"%s\"", cases[i].s,
			    host, port);
		}
		if (r == 0) {
			free(host);
			free(port);
		}
	}
}

/* An evbuffer of s with a chain break at each offset in cuts. */
static struct evbuffer *
split_buffer(const uint8_t *s, size_t len, const size_t *cuts, int ncuts)
{
	struct evbuffer	*b = evbuffer_new();
	size_t		 at = 0;
	int		 i;

	for (i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		if (end > at)
			evbuffer_add_reference(b, s + at, end - at, NULL, NULL);
		at = end;
	}
	return (b);
}

/* Validity over evbuffer chains matches validity of the whole. */
static void
test_buffer_utf8(void)
{
	static const char *cases[] = {
		"", "abc", "caf\xc3\xa9", "\xe2\x82\xac\xe2\x82\xac",
		"\xf0\x9f\x98\x80x", "\xf0\x9f\x98", "\xff", "a\xc3",
		"\xed\xa0\x80", "\xc0\x80", "ok\xf4\x8f\xbf\xbf!",
		"\xe2\x82", "x\xe2\x28\xa1",
	};
	size_t	i, a, b, len, cuts[2];
	struct evbuffer *buf;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const uint8_t *p = (const uint8_t *)cases[i];
		len = strlen(cases[i]);
		for (a = 0; a <= len; a++) {
			for (b = a; b <= len; b++) {
				cuts[0] = a;
				cuts[1] = b;
				buf = split_buffer(p, len, cuts, 2);
				CHECKF(util_buffer_utf8_valid(buf) ==
				    util_utf8_valid(p, len), "case %zu cut "
				    "%zu,%zu", i, a, b);
				evbuffer_free(buf);
			}
		}
	}
}

/* Escaping a buffer gives jansson's own string text. */
static void
test_json_escape_buffer(void)
{
	uint8_t		 all[128 + 6];
	struct evbuffer	*src, *out;
	json_t		*s;
	char		*want;
	size_t		 i, cut, n;

	for (i = 0; i < 128; i++)
		all[i] = (uint8_t)i;
	memcpy(all + 128, "\xc3\xa9\xe2\x82\xac\"", 6);
	n = sizeof all;
	s = json_stringn((const char *)all, n);
	want = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);
	for (cut = 0; cut <= n; cut += 7) {
		src = split_buffer(all, n, &cut, 1);
		out = evbuffer_new();
		evbuffer_add(out, "\"", 1);
		util_json_escape_buffer(src, n, out);
		evbuffer_add(out, "\"", 1);
		CHECKF(evbuffer_get_length(out) == strlen(want) &&
		    memcmp(evbuffer_pullup(out, -1), want, strlen(want)) == 0,
		    "cut %zu", cut);
		CHECK(evbuffer_get_length(src) == 0);
		evbuffer_free(src);
		evbuffer_free(out);
	}
	free(want);
	json_decref(s);
}

/* Text for a terminal: controls and stray bytes escaped, UTF-8 kept. */
static void
test_escape_terminal(void)
{
	static const struct {
		const char	*in;
		const char	*out;
	} cases[] = {
		{ "plain", "plain" },
		{ "", "" },
		{ "a\x1b[2Jb", "a\\x1b[2Jb" },
		{ "bell\x07", "bell\\x07" },
		{ "del\x7f", "del\\x7f" },
		{ "back\\slash", "back\\x5cslash" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
		{ "c1\xc2\x9b", "c1\\xc2\\x9b" },
		{ "nbsp\xc2\xa0", "nbsp\xc2\xa0" },
		{ "stray\xff", "stray\\xff" },
		{ "cut\xe2\x82", "cut\\xe2\\x82" },
		{ "euro\xe2\x82\xac", "euro\xe2\x82\xac" },
	};
	size_t	 i;
	char	*o;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		o = util_escape_terminal(cases[i].in);
		CHECKF(strcmp(o, cases[i].out) == 0, "case %zu: %s", i, o);
		free(o);
	}
}

int
main(void)
{
	test_escape_terminal();
	test_buffer_utf8();
	test_json_escape_buffer();
	test_utf8_exhaustive();
	test_utf8_splits();
	test_utf8_invalid();
	test_json_bytes();
	test_json_get_errors();
	test_base64();
	test_valid_id();
	test_signals();
	test_parse_size();
	test_parse_seconds();
	test_hostport();
	return (unit_done("test_util"));
}
