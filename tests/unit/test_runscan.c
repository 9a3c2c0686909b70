/*
 * test_runscan.c: the marker scanner of session.run (worker-run.c), fed
 * each input whole, split at every byte, and one byte at a time: the
 * ordinary bytes and the markers must come out the same each way.
 */
#include "stubs.h"
#include "job.h"

#define SECRET	"0123456789abcdef"

struct got {
	uint8_t	bytes[1024];
	size_t	nbytes;
	char	marks[256];	/* "B1 E1:0 " ... */
	size_t	nmarks;
};

static void
got_bytes(void *arg, const uint8_t *p, size_t n)
{
	struct got	*g = arg;

	CHECK(n > 0);
	if (g->nbytes + n <= sizeof g->bytes) {
		memcpy(g->bytes + g->nbytes, p, n);
		g->nbytes += n;
	}
}

static void
got_mark(void *arg, int type, unsigned long seq, int code)
{
	struct got	*g = arg;
	int		 k;

	if (type == 'E')
		k = snprintf(g->marks + g->nmarks, sizeof g->marks - g->nmarks,
		    "E%lu:%d ", seq, code);
	else
		k = snprintf(g->marks + g->nmarks, sizeof g->marks - g->nmarks,
		    "%c%lu ", type, seq);
	if (k > 0 && (size_t)k < sizeof g->marks - g->nmarks)
		g->nmarks += (size_t)k;
}

/* A scanner of SECRET whose output goes to g (emptied). */
static void
scan_init(struct run_scan *sc, struct got *g)
{
	memset(sc, 0, sizeof *sc);
	memset(g, 0, sizeof *g);
	snprintf(sc->secret, sizeof sc->secret, "%s", SECRET);
	sc->bytes = got_bytes;
	sc->mark = got_mark;
	sc->arg = g;
}

/* Feed in pieces cut at cut1 and cut2 (0: none), then flush. */
static void
feed(struct got *g, const char *in, size_t cut1, size_t cut2)
{
	struct run_scan	sc;
	size_t		n = strlen(in);

	scan_init(&sc, g);
	if (cut1 > n)
		cut1 = n;
	if (cut2 < cut1 || cut2 > n)
		cut2 = cut1;
	run_scan_feed(&sc, (const uint8_t *)in, cut1);
	run_scan_feed(&sc, (const uint8_t *)in + cut1, cut2 - cut1);
	run_scan_feed(&sc, (const uint8_t *)in + cut2, n - cut2);
	run_scan_flush(&sc);
}

/* Feed one byte at a time. */
static void
feed_bytes(struct got *g, const char *in)
{
	struct run_scan	sc;
	size_t		i, n = strlen(in);

	scan_init(&sc, g);
	for (i = 0; i < n; i++)
		run_scan_feed(&sc, (const uint8_t *)in + i, 1);
	run_scan_flush(&sc);
}

/* in gives out (ordinary bytes) and marks, however it is cut. */
static void
check_scan(const char *in, const char *out, const char *marks)
{
	struct got	g;
	size_t		n = strlen(in), i, j;

	for (i = 0; i <= n; i++) {
		for (j = i; j <= n; j++) {
			feed(&g, in, i, j);
			CHECKF(g.nbytes == strlen(out) &&
			    memcmp(g.bytes, out, g.nbytes) == 0,
			    "%s: cut at %zu, %zu: bytes differ", marks, i, j);
			CHECKF(strcmp(g.marks, marks) == 0, "cut at %zu, %zu: "
			    "marks '%s', want '%s'", i, j, g.marks, marks);
		}
	}
	feed_bytes(&g, in);
	CHECK(g.nbytes == strlen(out) && memcmp(g.bytes, out, g.nbytes) == 0);
	CHECKF(strcmp(g.marks, marks) == 0, "bytewise: marks '%s', want '%s'",
	    g.marks, marks);
}

static void
test_scan(void)
{
	check_scan("plain text\r\n", "plain text\r\n", "");
	check_scan("\033]sandd;B;" SECRET ";7\007hi\r\n\033]sandd;E;" SECRET
	    ";7;0\007$ ", "hi\r\n$ ", "B7 E7:0 ");
	check_scan("a\033]sandd;E;" SECRET ";12;255\007b", "ab", "E12:255 ");
	/* Not ours, or not markers: output as they are. */
	check_scan("\033]sandd;B;fedcba9876543210;7\007x",
	    "\033]sandd;B;fedcba9876543210;7\007x", "");
	check_scan("\033]0;title\007\033[?2004h$ \033",
	    "\033]0;title\007\033[?2004h$ \033", "");
	check_scan("\033]sandd;E;" SECRET ";3\007", "\033]sandd;E;" SECRET
	    ";3\007", "");
	check_scan("\033]sandd;E;" SECRET ";3;256\007", "\033]sandd;E;" SECRET
	    ";3;256\007", "");
	check_scan("\033]sandd;B;" SECRET ";\007", "\033]sandd;B;" SECRET
	    ";\007", "");
	check_scan("\033\033]sandd;B;" SECRET ";1\007\033", "\033\033", "B1 ");
	/* A cut marker at the end is output after all. */
	check_scan("x\033]sandd;B;" SECRET ";1", "x\033]sandd;B;" SECRET ";1",
	    "");
}

static void
test_echo(void)
{
	const char	*t = "S;1;%d\\007' \"$?\"; fi";
	const char	*h = "\a cmd S;1;%d\\007' \"$?\"; fi\r\n\033[?2004l\r";
	struct evbuffer	*b;

	CHECK(run_echo_end((const uint8_t *)h, strlen(h), t) ==
	    (ssize_t)(strlen(h) - strlen("\r\n\033[?2004l\r")));
	CHECK(run_echo_end((const uint8_t *)"abc", 3, t) == -1);
	CHECK(run_echo_end((const uint8_t *)"", 0, t) == -1);
	b = evbuffer_new();
	run_typed_form(b, "echo a\tb\necho \001\177");
	CHECK(evbuffer_get_length(b) == strlen("echo a\tb\r\necho ^A^?") &&
	    memcmp(evbuffer_pullup(b, -1), "echo a\tb\r\necho ^A^?",
	    evbuffer_get_length(b)) == 0);
	evbuffer_free(b);
}

int
main(void)
{
	test_scan();
	test_echo();
	return (unit_done("test_runscan"));
}
