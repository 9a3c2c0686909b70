/*
 * util.c: small pure helpers shared by every mode: time, ids, UTF-8,
 * base64 and the text/bytes rule, signal and errno names.
 */
#include <sys/time.h>

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "sandd.h"

/* Seconds since the epoch, as a double. */
double
util_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* Format t as RFC 3339 UTC: 2026-11-26T19:35:49Z. */
void
util_rfc3339(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int	utf8_seqlen(uint8_t);

/*
 * s made safe to print on a terminal: printable ASCII and whole UTF-8
 * characters stay; control bytes (C0, DEL, C1), stray bytes and "\\"
 * become \xNN, so text a peer sent (a hostname, a label) cannot move
 * the cursor or retitle the window. Caller frees.
 */
char *
util_escape_terminal(const char *s)
{
	const uint8_t	*p = (const uint8_t *)s;
	size_t		 len = strlen(s), i = 0, n;
	char		*out, *o;
	int		 valid;

	out = o = xmalloc(len * 4 + 1);
	while (i < len) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			*o++ = (char)p[i++];
			continue;
		}
		n = p[i] >= 0xc2 ? (size_t)utf8_seqlen(p[i]) : 0;
		if (n >= 2 && i + n <= len &&
		    util_utf8_complete(p + i, n, &valid) == n && valid &&
		    !(p[i] == 0xc2 && p[i + 1] < 0xa0)) {
			memcpy(o, p + i, n);
			o += n;
			i += n;
			continue;
		}
		o += sprintf(o, "\\x%02x", p[i++]);
	}
	*o = '\0';
	return (out);
}

/* qsort/bsearch order of uint32_t. */
int
util_u32_cmp(const void *x, const void *y)
{
	uint32_t	a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return (a < b ? -1 : a > b);
}

/* Is s a valid worker id: 1 to 64 of A-Za-z0-9._- ? */
int
util_valid_id(const char *s)
{
	size_t	n;

	for (n = 0; s[n] != '\0'; n++) {
		if (n >= WORKER_ID_MAX)
			return (0);
		if (!isalnum((unsigned char)s[n]) &&
		    strchr("._-", s[n]) == NULL)
			return (0);
	}
	return (n > 0);
}

/* Length of the UTF-8 sequence that starts with c, 0 if c cannot start one. */
static int
utf8_seqlen(uint8_t c)
{
	if (c < 0x80)
		return (1);
	if (c >= 0xc2 && c <= 0xdf)
		return (2);
	if (c >= 0xe0 && c <= 0xef)
		return (3);
	if (c >= 0xf0 && c <= 0xf4)
		return (4);
	return (0);
}

/* Check one sequence of n bytes at p (n from utf8_seqlen). */
static int
utf8_seq_ok(const uint8_t *p, int n)
{
	int	i;

	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return (0);
	if (n == 3) {
		if (p[0] == 0xe0 && p[1] < 0xa0)
			return (0);		/* overlong */
		if (p[0] == 0xed && p[1] >= 0xa0)
			return (0);		/* surrogate */
	}
	if (n == 4) {
		if (p[0] == 0xf0 && p[1] < 0x90)
			return (0);
		if (p[0] == 0xf4 && p[1] >= 0x90)
			return (0);
	}
	return (1);
}

/*
 * Return how many leading bytes of buf form whole UTF-8 sequences; the rest
 * (at most 3 bytes) is an incomplete sequence at the end. *valid is set to 0
 * if the bytes are not UTF-8 at all.
 */
size_t
util_utf8_complete(const uint8_t *buf, size_t len, int *valid)
{
	size_t	i = 0;
	int	n, k;

	*valid = 1;
	while (i < len) {
		/* Most output is ASCII: skip it eight bytes at a time. */
		while (i + 8 <= len) {
			uint64_t w;
			memcpy(&w, buf + i, sizeof w);
			if (w & 0x8080808080808080ULL)
				break;
			i += 8;
		}
		if (i >= len)
			break;
		if (buf[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = utf8_seqlen(buf[i])) == 0) {
			*valid = 0;
			return (len);
		}
		if (i + (size_t)n > len) {
			/* Possibly incomplete: check what is there. */
			for (k = 1; i + (size_t)k < len; k++) {
				if ((buf[i + k] & 0xc0) != 0x80) {
					*valid = 0;
					return (len);
				}
			}
			return (i);
		}
		if (!utf8_seq_ok(buf + i, n)) {
			*valid = 0;
			return (len);
		}
		i += (size_t)n;
	}
	return (len);
}

/*
 * How many of the last bytes of p (n of them) are the start of a UTF-8
 * character that goes on past them: 0 when p ends on a boundary.
 */
size_t
util_utf8_cut(const uint8_t *p, size_t n)
{
	size_t	k;
	int	len;

	for (k = 1; k <= n && k <= 3; k++) {
		if ((p[n - k] & 0xc0) == 0x80)
			continue;	/* a continuation byte: look further */
		len = utf8_seqlen(p[n - k]);
		return (len > (int)k ? k : 0);
	}
	return (0);
}

/*
 * Append buf to out as valid UTF-8: each byte that starts no valid
 * sequence becomes U+FFFD. An incomplete sequence at the end is left
 * (unless final); returns how many bytes were taken.
 */
size_t
util_utf8_lossy(const uint8_t *buf, size_t len, struct evbuffer *out,
    int final)
{
	size_t	i = 0, run = 0;
	int	n;

	while (i < len) {
		n = utf8_seqlen(buf[i]);
		if (n == 1 || (n > 1 && i + (size_t)n <= len &&
		    utf8_seq_ok(buf + i, n))) {
			i += (size_t)n;
			run += (size_t)n;
			continue;
		}
		evbuffer_add(out, buf + i - run, run);
		run = 0;
		if (n > 1 && i + (size_t)n > len && !final &&
		    utf8_seq_ok(buf + i, (int)(len - i)))
			return (i);	/* the rest comes with the next bytes */
		evbuffer_add(out, "\xef\xbf\xbd", 3);
		i++;
	}
	evbuffer_add(out, buf + i - run, run);
	return (len);
}

/* Are these bytes valid UTF-8? */
int
util_utf8_valid(const uint8_t *buf, size_t len)
{
	int	valid;

	return (util_utf8_complete(buf, len, &valid) == len && valid);
}

/* Base64 of len bytes, NUL-terminated; caller frees. */
char *
util_base64(const void *p, size_t len)
{
	char	*out;

	out = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return (out);
}

/*
 * Set field name (text) or name_b64 (base64) on obj from bytes, by the
 * text/bytes rule of the control protocol.
 */
int
util_json_set_bytes(json_t *obj, const char *name, const void *p, size_t len)
{
	char	*b64, key[64];

	if (len == 0)
		return (json_object_set_new(obj, name, json_string("")));
	if (util_utf8_valid(p, len))
		return (json_object_set_new(obj, name,
		    json_stringn_nocheck(p, len)));
	snprintf(key, sizeof key, "%s_b64", name);
	b64 = util_base64(p, len);
	json_object_set_new(obj, key, json_string(b64));
	free(b64);
	return (0);
}

/* Are the bytes of b valid, whole UTF-8? Reads the chains in place. */
int
util_buffer_utf8_valid(struct evbuffer *b)
{
	struct evbuffer_iovec	*v;
	const uint8_t		*p;
	uint8_t			 tmp[4];
	size_t			 carry = 0, n, whole;
	int			 nv, i, valid = 1;

	nv = evbuffer_peek(b, -1, NULL, NULL, 0);
	v = xcalloc((size_t)nv + 1, sizeof *v);
	nv = evbuffer_peek(b, -1, NULL, v, nv);
	for (i = 0; i < nv && valid; i++) {
		p = v[i].iov_base;
		n = v[i].iov_len;
		/* A character cut between chains: finish it first. */
		while (carry > 0 && n > 0 && valid) {
			tmp[carry++] = *p++;
			n--;
			whole = util_utf8_complete(tmp, carry, &valid);
			if (whole == carry)
				carry = 0;
			else if (carry == sizeof tmp)
				valid = 0;
		}
		if (!valid)
			break;
		if (carry > 0)
			continue;	/* this chain only went on with it */
		whole = util_utf8_complete(p, n, &valid);
		carry = n - whole;
		if (carry >= sizeof tmp)
			valid = 0;
		else
			memcpy(tmp, p + whole, carry);
	}
	free(v);
	return (valid && carry == 0);
}

/*
 * Move len bytes of src to out as the text of a JSON string (without
 * the quotes), escaped as jansson does: \", \\, the short escapes, other
 * control bytes as \u00XX; the rest as it is.
 */
void
util_json_escape_buffer(struct evbuffer *src, size_t len, struct evbuffer *out)
{
	struct evbuffer_iovec	 v;
	const uint8_t		*p, *run;
	size_t			 n;

	while (len > 0) {
		if (evbuffer_peek(src, (ev_ssize_t)len, NULL, &v, 1) < 1)
			break;
		n = v.iov_len < len ? v.iov_len : len;
		p = run = v.iov_base;
		for (; p < (const uint8_t *)v.iov_base + n; p++) {
			if (*p >= 0x20 && *p != '"' && *p != '\\')
				continue;
			evbuffer_add(out, run, (size_t)(p - run));
			switch (*p) {
			case '"':  evbuffer_add(out, "\\\"", 2); break;
			case '\\': evbuffer_add(out, "\\\\", 2); break;
			case '\b': evbuffer_add(out, "\\b", 2); break;
			case '\f': evbuffer_add(out, "\\f", 2); break;
			case '\n': evbuffer_add(out, "\\n", 2); break;
			case '\r': evbuffer_add(out, "\\r", 2); break;
			case '\t': evbuffer_add(out, "\\t", 2); break;
			default:
				evbuffer_add_printf(out, "\\u%04X", *p);
			}
			run = p + 1;
		}
		evbuffer_add(out, run, (size_t)(p - run));
		evbuffer_drain(src, n);
		len -= n;
	}
}

/*
 * Move len bytes of src to out as base64 (len a multiple of 3 unless
 * these are the last bytes).
 */
void
util_base64_buffer(struct evbuffer *src, size_t len, struct evbuffer *out)
{
	struct evbuffer_iovec	 v;
	unsigned char		*p;
	size_t			 n = (len + 2) / 3 * 4;

	if (len == 0)
		return;
	if (evbuffer_reserve_space(out, (ev_ssize_t)n + 1, &v, 1) < 1)
		fatalx("%s: evbuffer_reserve_space", __func__);
	p = evbuffer_pullup(src, (ev_ssize_t)len);
	v.iov_len = (size_t)EVP_EncodeBlock(v.iov_base, p, (int)len);
	evbuffer_commit_space(out, &v, 1);
	evbuffer_drain(src, len);
}

/* Strict base64: the alphabet, and '=' only as the last one or two. */
static int
util_base64_valid(const char *s, size_t len)
{
	size_t	i, pad = 0;

	if (len >= 1 && s[len - 1] == '=')
		pad++;
	if (len >= 2 && s[len - 2] == '=')
		pad++;
	for (i = 0; i < len - pad; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/')
			return (0);
	}
	return (1);
}

/*
 * Read bytes from field name or name_b64 of obj into out. Returns 1 if
 * present, 0 if absent, -1 with *cause if ill-typed.
 */
int
util_json_get_bytes(json_t *obj, const char *name, struct evbuffer *out,
    char **cause)
{
	json_t		*v;
	char		 key[64];
	const char	*s;
	size_t		 len, n;
	unsigned char	*dec;
	int		 r;

	if ((v = json_object_get(obj, name)) != NULL) {
		if (!json_is_string(v)) {
			xasprintf(cause, "field '%s' must be a string", name);
			return (-1);
		}
		evbuffer_add(out, json_string_value(v), json_string_length(v));
		return (1);
	}
	snprintf(key, sizeof key, "%s_b64", name);
	if ((v = json_object_get(obj, key)) == NULL)
		return (0);
	if (!json_is_string(v)) {
		xasprintf(cause, "field '%s' must be a string", key);
		return (-1);
	}
	s = json_string_value(v);
	len = json_string_length(v);
	if (len % 4 != 0 || !util_base64_valid(s, len)) {
		xasprintf(cause, "field '%s' is not valid base64", key);
		return (-1);
	}
	dec = xmalloc(len / 4 * 3 + 1);
	r = EVP_DecodeBlock(dec, (const unsigned char *)s, (int)len);
	if (r < 0) {
		free(dec);
		xasprintf(cause, "field '%s' is not valid base64", key);
		return (-1);
	}
	n = (size_t)r;
	/* EVP_DecodeBlock counts padding as zero bytes: take them off. */
	if (len >= 1 && s[len - 1] == '=')
		n--;
	if (len >= 2 && s[len - 2] == '=')
		n--;
	evbuffer_add(out, dec, n);
	free(dec);
	return (1);
}

/*
 * Random bytes kept at hand: RAND_bytes costs ~6,600 instructions a call
 * however few bytes it gives, and the controller takes 8 for each
 * handle it makes. Taken once each; a fork's child only execs.
 */
#define RANDOM_POOL	512

/* Fill buf (len-1 hex digits) with random hex and NUL-terminate it. */
void
util_random_hex(char *buf, size_t len)
{
	static unsigned char	 pool[RANDOM_POOL];
	static size_t		 left;
	unsigned char		*raw;
	size_t			 i, ndigits = len - 1, nbytes;

	if (ndigits > 128)
		ndigits = 128;
	nbytes = (ndigits + 1) / 2;
	if (left < nbytes) {
		if (RAND_bytes(pool, sizeof pool) != 1)
			fatalx("RAND_bytes failed");
		left = sizeof pool;
	}
	raw = pool + sizeof pool - left;
	for (i = 0; i < ndigits; i++)
		buf[i] = "0123456789abcdef"[(raw[i / 2] >>
		    (i % 2 ? 0 : 4)) & 0xf];
	buf[i] = '\0';
	compat_explicit_bzero(raw, nbytes);
	left -= nbytes;
}

/* Hex of a 32-byte SHA-256 digest. */
void
util_sha256_hex(const unsigned char *md, char out[65])
{
	int	i;

	for (i = 0; i < 32; i++) {
		out[i * 2] = "0123456789abcdef"[md[i] >> 4];
		out[i * 2 + 1] = "0123456789abcdef"[md[i] & 0xf];
	}
	out[64] = '\0';
}

static const struct {
	const char	*name;
	int		 sig;
} signal_names[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
	{ "ILL", SIGILL }, { "TRAP", SIGTRAP }, { "ABRT", SIGABRT },
	{ "BUS", SIGBUS }, { "FPE", SIGFPE }, { "KILL", SIGKILL },
	{ "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
	{ "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },
	{ "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH },
	{ "IO", SIGIO }, { "SYS", SIGSYS },
};

/* Signal number from a name (INT, SIGINT) or a number; -1 if unknown. */
int
util_signal_number(const char *name)
{
	size_t		i;
	char		*end;
	long		n;

	if (strncmp(name, "SIG", 3) == 0)
		name += 3;
	for (i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
		if (strcasecmp(name, signal_names[i].name) == 0)
			return (signal_names[i].sig);
	n = strtol(name, &end, 10);
	if (*name != '\0' && *end == '\0' && n > 0 && n < NSIG)
		return ((int)n);
	return (-1);
}

/* Name of a signal without SIG, or its number as text. */
const char *
util_signal_name(int sig)
{
	static char	buf[16];
	size_t		i;

	for (i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
		if (signal_names[i].sig == sig)
			return (signal_names[i].name);
	snprintf(buf, sizeof buf, "%d", sig);
	return (buf);
}

/* Symbolic name of an errno value: ENOENT. */
const char *
util_errno_name(int e)
{
	static const struct {
		int		 e;
		const char	*name;
	} names[] = {
		{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { EIO, "EIO" },
		{ EBADF, "EBADF" }, { ENOMEM, "ENOMEM" }, { EACCES, "EACCES" },
		{ EEXIST, "EEXIST" }, { ENOTDIR, "ENOTDIR" },
		{ EISDIR, "EISDIR" }, { EINVAL, "EINVAL" },
		{ EMFILE, "EMFILE" }, { ENFILE, "ENFILE" }, { EFBIG, "EFBIG" },
		{ ENOSPC, "ENOSPC" }, { EROFS, "EROFS" },
		{ ENAMETOOLONG, "ENAMETOOLONG" },
		{ ELOOP, "ELOOP" }, { ENOTEMPTY, "ENOTEMPTY" },
		{ EXDEV, "EXDEV" }, { ETXTBSY, "ETXTBSY" },
		{ EDQUOT, "EDQUOT" }, { EAGAIN, "EAGAIN" },
		{ ENOEXEC, "ENOEXEC" }, { E2BIG, "E2BIG" },
		{ ESRCH, "ESRCH" }, { EINTR, "EINTR" },
	};
	static char	buf[16];
	size_t		i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].e == e)
			return (names[i].name);
	snprintf(buf, sizeof buf, "E%d", e);
	return (buf);
}

/* A timeval from seconds. */
void
util_timeval(struct timeval *tv, double secs)
{
	if (secs < 0)
		secs = 0;
	tv->tv_sec = (time_t)secs;
	tv->tv_usec = (suseconds_t)((secs - (double)tv->tv_sec) * 1e6);
}

/* Split HOST:PORT (or [V6]:PORT); both allocated. */
int
util_parse_hostport(const char *s, char **host, char **port)
{
	const char	*colon;

	if (*s == '[') {
		if ((colon = strstr(s, "]:")) == NULL)
			return (-1);
		*host = xstrndup(s + 1, (size_t)(colon - s - 1));
		colon++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return (-1);
		*host = xstrndup(s, (size_t)(colon - s));
	}
	if (colon[1] == '\0' || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1)) {
		free(*host);
		return (-1);
	}
	*port = xstrdup(colon + 1);
	return (0);
}

/*
 * The control socket's path: $SANDD_CONTROL, else the built-in default
 * (*builtin set): /run/sandd/control.sock for root; for other users
 * $XDG_RUNTIME_DIR/sandd/control.sock, else /tmp/sandd-UID/control.sock.
 * Caller frees.
 */
char *
util_default_control_path(int *builtin)
{
	const char	*env;
	char		*path;

	*builtin = 0;
	if ((env = getenv("SANDD_CONTROL")) != NULL && *env != '\0')
		return (xstrdup(env));
	*builtin = 1;
	if (geteuid() == 0)
		return (xstrdup("/run/sandd/control.sock"));
	if ((env = getenv("XDG_RUNTIME_DIR")) != NULL && *env == '/')
		xasprintf(&path, "%s/sandd/control.sock", env);
	else
		xasprintf(&path, "/tmp/sandd-%ld/control.sock",
		    (long)geteuid());
	return (path);
}

/*
 * Is the folder of the control socket at path safe to use: a folder (not
 * a link) owned by this user (or root) that nobody else may write into?
 * With create, a missing folder is made (0700; 0755 for root). Another
 * local user who made /tmp/sandd-UID first could otherwise stand in for
 * the controller. 0, or -1 with *why.
 */
int
util_control_dir_ok(const char *path, int create, char **why)
{
	struct stat	 sb;
	char		*dir, *slash;
	int		 r = -1;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir) {
		free(dir);
		return (0);
	}
	*slash = '\0';
	if (create && mkdir(dir, geteuid() == 0 ? 0755 : 0700) == -1 &&
	    errno != EEXIST)
		xasprintf(why, "%s: %s", dir, strerror(errno));
	else if (lstat(dir, &sb) == -1) {
		if (!create && errno == ENOENT)
			r = 0;	/* nothing there: connecting says so */
		else
			xasprintf(why, "%s: %s", dir, strerror(errno));
	}
	else if (!S_ISDIR(sb.st_mode))
		xasprintf(why, "%s is not a folder", dir);
	else if (sb.st_uid != geteuid() && sb.st_uid != 0)
		xasprintf(why, "%s belongs to uid %ld, not to this user", dir,
		    (long)sb.st_uid);
	else if (sb.st_mode & 022)
		xasprintf(why, "%s may be written by others (mode %03o)", dir,
		    (unsigned)(sb.st_mode & 0777));
	else
		r = 0;
	free(dir);
	return (r);
}

/* Parse a size with an optional K, M or G suffix (powers of 1024). */
int
util_parse_size(const char *s, size_t *out)
{
	char			*end;
	unsigned long long	 n;
	int			 shift = 0;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *s == '-')
		return (-1);
	switch (*end) {
	case 'k': case 'K':
		shift = 10;
		end++;
		break;
	case 'm': case 'M':
		shift = 20;
		end++;
		break;
	case 'g': case 'G':
		shift = 30;
		end++;
		break;
	}
	if (*end != '\0' || n > ((unsigned long long)SIZE_MAX / 2) >> shift)
		return (-1);
	n <<= shift;
	*out = (size_t)n;
	return (0);
}

/* Parse a whole number of seconds, 0 to 1 year. */
int
util_parse_seconds(const char *s, int *out)
{
	char	*end;
	long	 n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n < 0 || n > 31536000)
		return (-1);
	*out = (int)n;
	return (0);
}

/*
 * libevent 2.1 reads at most 4 KiB per call on a socket. On a plain
 * socket bufferevent, read what is waiting in large pieces straight into
 * its input, until limit bytes are buffered or the socket is drained.
 * EOF and errors are left for libevent to see on its next read.
 */
void
util_bev_slurp(struct bufferevent *bev, size_t limit)
{
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_iovec	 vec;
	evutil_socket_t		 fd = bufferevent_getfd(bev);
	size_t			 have, want;
	ssize_t			 n;

	if (fd == -1 || bufferevent_openssl_get_ssl(bev) != NULL)
		return;
	/* A socket bufferevent keeps the end of its input frozen. */
	evbuffer_unfreeze(in, 0);
	while ((have = evbuffer_get_length(in)) < limit) {
		want = limit - have;
		if (want > WIRE_CHUNK)
			want = WIRE_CHUNK;
		if (evbuffer_reserve_space(in, (ev_ssize_t)want, &vec, 1) < 1)
			break;
		if (vec.iov_len > want)
			vec.iov_len = want;
		n = read(fd, vec.iov_base, vec.iov_len);
		if (n <= 0) {
			evbuffer_commit_space(in, &vec, 0);
			break;
		}
		vec.iov_len = (size_t)n;
		evbuffer_commit_space(in, &vec, 1);
		if ((size_t)n < want)
			break;		/* drained */
	}
	evbuffer_freeze(in, 0);
}

/*
 * Direct writes on a plain socket bufferevent. libevent writes a
 * bufferevent's output once epoll says the socket is writable: for each
 * message an epoll_ctl to watch, an epoll_wait and an epoll_ctl to stop
 * watching (3 of the ~21 system calls the controller made for an exec,
 * and a turn of the loop before anything leaves). Here the write event
 * stays disabled while the socket takes everything: what a turn of the
 * loop queues is written at the end of that turn in one writev, and
 * libevent's write event is enabled only for what the socket did not
 * take. The owner's write callback is called as libevent would (output
 * at or below its low watermark), and must call util_flush_drained.
 */
struct util_flush {
	struct bufferevent	*bev;
	struct event		*ev;
	int			 active;
};

/* Write what is queued; the rest goes by libevent's write event. */
static void
util_flush_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct util_flush	*f = arg;
	struct evbuffer		*out = bufferevent_get_output(f->bev);
	bufferevent_data_cb	 wcb;
	void			*cbarg;
	size_t			 low;

	f->active = 0;
	if (bufferevent_get_enabled(f->bev) & EV_WRITE)
		return;
	/* A socket bufferevent keeps the start of its output frozen. */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, bufferevent_getfd(f->bev)) <= 0)
			break;
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) > 0) {
		bufferevent_enable(f->bev, EV_WRITE);
		return;
	}
	bufferevent_getcb(f->bev, NULL, &wcb, NULL, &cbarg);
	bufferevent_getwatermark(f->bev, EV_WRITE, &low, NULL);
	if (wcb != NULL && evbuffer_get_length(out) <= low)
		wcb(f->bev, cbarg);
}

/* Bytes were queued: write them at the end of this turn of the loop. */
static void
util_flush_out_cb(__unused struct evbuffer *b,
    const struct evbuffer_cb_info *info, void *arg)
{
	struct util_flush	*f = arg;

	if (info->n_added == 0 || f->active ||
	    (bufferevent_get_enabled(f->bev) & EV_WRITE))
		return;
	f->active = 1;
	event_active(f->ev, EV_TIMEOUT, 0);
}

/*
 * Write bev's output directly (see above); NULL, and nothing changes, if
 * it is not a plain socket. Free with util_flush_free before bev.
 */
struct util_flush *
util_flush_new(struct bufferevent *bev)
{
	struct util_flush	*f;
	struct evbuffer		*out = bufferevent_get_output(bev);

	if (bufferevent_getfd(bev) == -1 ||
	    bufferevent_openssl_get_ssl(bev) != NULL)
		return (NULL);
	f = xcalloc(1, sizeof *f);
	f->bev = bev;
	f->ev = event_new(ev_base, -1, 0, util_flush_cb, f);
	evbuffer_add_cb(out, util_flush_out_cb, f);
	/* What is queued already (an upgrade's answer) goes as before. */
	if (evbuffer_get_length(out) == 0)
		bufferevent_disable(bev, EV_WRITE);
	return (f);
}

/* From the owner's write callback: all written, write directly again. */
void
util_flush_drained(struct util_flush *f)
{
	if (f != NULL &&
	    evbuffer_get_length(bufferevent_get_output(f->bev)) == 0)
		bufferevent_disable(f->bev, EV_WRITE);
}

/*
 * Stop writing directly: libevent writes what is left. Before the
 * bufferevent is freed, or when the owner hands it to other callbacks.
 */
void
util_flush_free(struct util_flush *f)
{
	if (f == NULL)
		return;
	evbuffer_remove_cb(bufferevent_get_output(f->bev), util_flush_out_cb,
	    f);
	event_free(f->ev);
	if (evbuffer_get_length(bufferevent_get_output(f->bev)) > 0)
		bufferevent_enable(f->bev, EV_WRITE);
	free(f);
}
