/*
 * server-auth.c: who may register as which worker (sandd-control(7),
 * Worker identity).
 *
 * Grants come from the token file: "ID TOKEN" or "ID sha256:HEX", with
 * ID a worker id or "*", optionally followed by the labels that worker
 * may claim ("role=web zone=*", globs). An id that has a grant of its
 * own is never taken by a "*" grant. With --tls-client-ca a worker's
 * certificate must name its id (subject CN or a DNS name), unless
 * --tls-any-id.
 *
 * Every worker gets a secret bound to its id at registration: an HMAC
 * of the id under a key this controller keeps in its state folder, so
 * the secret still verifies after a restart. While an id is connected
 * or inside its resume window, only a connection that proves it is that
 * worker (its secret, a grant for that very id, or a certificate naming
 * it) may take the id; anyone else gets 409 and the worker is left
 * alone.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sandd.h"

#define AUTH_KEY_LEN	32
#define AUTH_KEY_FILE	"controller.key"

/* One grant of the token file. */
struct grant {
	char		 id[WORKER_ID_MAX + 1];	/* or "*" */
	unsigned char	 digest[32];		/* SHA-256 of the token */
	json_t		*labels;		/* KEY: GLOB, NULL for any */
};
static struct grant	*grants;
static size_t		 ngrants;

static unsigned char	 auth_key[AUTH_KEY_LEN];
/*
 * HMAC-SHA-256 under auth_key, set up once: OpenSSL 3's one-shot HMAC()
 * fetches the algorithms anew on every call, ~20,000 instructions of
 * the ~260,000 the controller spent on an exec (each makes a handle).
 */
static EVP_MAC_CTX	*auth_mac;

static void
auth_sha256(const void *p, size_t len, unsigned char md[32])
{
	unsigned int	mdlen;

	if (EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		fatalx("SHA-256 failed");
}

static int
auth_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	return (-1);
}

/* 64 hex digits into 32 bytes; -1 if they are not. */
static int
auth_unhex(const char *hex, unsigned char out[32])
{
	int	i, hi, lo;

	if (strlen(hex) != 64)
		return (-1);
	for (i = 0; i < 32; i++) {
		hi = auth_hexval(hex[2 * i]);
		lo = auth_hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return (-1);
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return (0);
}

/*
 * Cut a comment off line: "#" starts one at the start of the line or
 * after white space (a "#" inside a token is part of it).
 */
static void
auth_strip_comment(char *line)
{
	char	*p;

	for (p = line; *p != '\0'; p++) {
		if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
	}
}

static void
auth_grants_free(struct grant *g, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		json_decref(g[i].labels);
	if (g != NULL)
		compat_explicit_bzero(g, n * sizeof *g);
	free(g);
}

/* Parse one grant line (comment cut) into g; -1 with *why. */
static int
auth_parse_grant(char *line, struct grant *g, int *plain, const char **why)
{
	char	*id, *tok, *lab, *save, *eq;

	memset(g, 0, sizeof *g);
	if ((id = strtok_r(line, " \t\r\n", &save)) == NULL)
		return (1);	/* blank */
	tok = strtok_r(NULL, " \t\r\n", &save);
	if (tok == NULL || (strcmp(id, "*") != 0 && !util_valid_id(id))) {
		*why = "want 'ID TOKEN' or 'ID sha256:HEX' [LABEL=GLOB]...";
		return (-1);
	}
	snprintf(g->id, sizeof g->id, "%s", id);
	if (strncmp(tok, "sha256:", 7) == 0) {
		if (auth_unhex(tok + 7, g->digest) != 0) {
			*why = "sha256: needs 64 hex digits";
			return (-1);
		}
	} else {
		auth_sha256(tok, strlen(tok), g->digest);
		*plain = 1;
	}
	while ((lab = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
		if ((eq = strchr(lab, '=')) == NULL || eq == lab) {
			json_decref(g->labels);
			g->labels = NULL;
			*why = "a label grant is KEY=GLOB";
			return (-1);
		}
		*eq = '\0';
		if (g->labels == NULL)
			g->labels = json_object();
		json_object_set_new(g->labels, lab, json_string(eq + 1));
	}
	return (0);
}

/*
 * (Re)load the token file. On error the old grants stay and -1 is
 * returned with *cause.
 */
int
auth_load_grants(const char *path, char **cause)
{
	FILE		*f;
	char		*line = NULL;
	const char	*why = NULL;
	size_t		 cap = 0, n = 0, lineno = 0;
	struct grant	*g = NULL, one;
	struct stat	 sb;
	ssize_t		 len;
	int		 plain = 0, r;

	if ((f = fopen(path, "r")) == NULL) {
		xasprintf(cause, "open %s: %s", path, strerror(errno));
		return (-1);
	}
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		auth_strip_comment(line);
		r = auth_parse_grant(line, &one, &plain, &why);
		compat_explicit_bzero(line, (size_t)len);
		if (r == 1)
			continue;
		if (r == -1) {
			xasprintf(cause, "%s:%zu: %s", path, lineno, why);
			auth_grants_free(g, n);
			n = 0;
			g = NULL;
			break;
		}
		g = xrealloc(g, (n + 1) * sizeof *g);
		g[n++] = one;
	}
	if (line != NULL)
		compat_explicit_bzero(line, cap);
	free(line);
	if (why != NULL) {
		fclose(f);
		return (-1);
	}
	if (plain && fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077))
		log_warnx("%s holds tokens and other users may read it (mode "
		    "%03o): chmod 600, or keep only sha256: digests", path,
		    (unsigned)(sb.st_mode & 0777));
	fclose(f);
	auth_grants_free(grants, ngrants);
	grants = g;
	ngrants = n;
	log_info("%s: %zu grants from %s", __func__, n, path);
	return (0);
}

/* Does any grant name id itself (not "*")? */
static int
auth_has_own_grant(const char *id)
{
	size_t	i;

	for (i = 0; i < ngrants; i++)
		if (strcmp(grants[i].id, id) == 0)
			return (1);
	return (0);
}

/*
 * Which grant lets a token with SHA-256 md register as id: -1 for none.
 * A "*" grant does not apply to an id that has a grant of its own.
 * Constant time in the token.
 */
static int
auth_find_grant(const char *id, const unsigned char md[32])
{
	size_t	i;
	int	own = auth_has_own_grant(id), found = -1;

	for (i = 0; i < ngrants; i++) {
		if (strcmp(grants[i].id, id) != 0 &&
		    (own || strcmp(grants[i].id, "*") != 0))
			continue;
		if (CRYPTO_memcmp(md, grants[i].digest, 32) == 0 && found < 0)
			found = (int)i;
	}
	return (found);
}

/* Is the ASN.1 string exactly id: same bytes, same case, no wildcard? */
static int
auth_name_is(const ASN1_STRING *name, const char *id)
{
	size_t	len = strlen(id);

	return (name != NULL && (size_t)ASN1_STRING_length(name) == len &&
	    memcmp(ASN1_STRING_get0_data(name), id, len) == 0);
}

/*
 * Does the certificate name id? Its DNS names if it has any, else the
 * common names of its subject (as X509_check_host takes them). Unlike
 * X509_check_host, the match is exact: a wildcard such as *.fleet, or a
 * name that differs only in case, is another worker's id, and a worker
 * with such a certificate could otherwise take over a live id.
 */
static int
auth_cert_names_id(X509 *cert, const char *id)
{
	GENERAL_NAMES		*sans;
	const GENERAL_NAME	*gn;
	X509_NAME		*subject;
	X509_NAME_ENTRY		*e;
	int			 i, ndns = 0, ok = 0;

	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_DNS)
			continue;
		ndns++;
		ok = ok || auth_name_is(gn->d.dNSName, id);
	}
	GENERAL_NAMES_free(sans);
	if (ndns > 0)
		return (ok);
	subject = X509_get_subject_name(cert);
	i = -1;
	while ((i = X509_NAME_get_index_by_NID(subject, NID_commonName,
	    i)) >= 0) {
		e = X509_NAME_get_entry(subject, i);
		ok = ok || auth_name_is(X509_NAME_ENTRY_get_data(e), id);
	}
	return (ok);
}

/* Does bev's peer certificate name id (a DNS name, else its CN)? */
static int
auth_cert_names(struct bufferevent *bev, const char *id)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(bev);
	X509	*cert;
	int	 ok;

	if (ssl == NULL || (cert = SSL_get1_peer_certificate(ssl)) == NULL)
		return (0);
	ok = auth_cert_names_id(cert, id);
	X509_free(cert);
	return (ok);
}

/* HMAC-SHA-256 of msg (len bytes) under auth_key into md. */
static void
auth_hmac(const char *msg, size_t len, unsigned char md[32])
{
	OSSL_PARAM	 params[2];
	EVP_MAC		*mac;
	EVP_MAC_CTX	*ctx;
	size_t		 mdlen = 0;

	if (auth_mac == NULL) {
		if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
		    (auth_mac = EVP_MAC_CTX_new(mac)) == NULL)
			fatalx("HMAC-SHA-256 failed");
		EVP_MAC_free(mac);
		params[0] = OSSL_PARAM_construct_utf8_string("digest",
		    (char *)"SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (EVP_MAC_init(auth_mac, auth_key, sizeof auth_key,
		    params) != 1)
			fatalx("HMAC-SHA-256 failed");
	}
	if ((ctx = EVP_MAC_CTX_dup(auth_mac)) == NULL ||
	    EVP_MAC_update(ctx, (const unsigned char *)msg, len) != 1 ||
	    EVP_MAC_final(ctx, md, &mdlen, 32) != 1 || mdlen != 32)
		fatalx("HMAC-SHA-256 failed");
	EVP_MAC_CTX_free(ctx);
}

/* The secret of worker id, as hex into out. */
static void
auth_secret_hex(const char *id, char out[65])
{
	unsigned char	 md[32];
	char		*msg;

	xasprintf(&msg, "sandd worker secret %s", id);
	auth_hmac(msg, strlen(msg), md);
	free(msg);
	util_sha256_hex(md, out);
	compat_explicit_bzero(md, sizeof md);
}

/* The secret issued to worker id; caller frees (and wipes). */
char *
auth_secret(const char *id)
{
	char	hex[65];
	char	*s;

	auth_secret_hex(id, hex);
	s = xstrdup(hex);
	compat_explicit_bzero(hex, sizeof hex);
	return (s);
}

/* Is secret the one of id? Constant time. */
static int
auth_secret_ok(const char *id, const char *secret)
{
	char	want[65];
	int	ok;

	if (secret == NULL || strlen(secret) != 64)
		return (0);
	auth_secret_hex(id, want);
	ok = CRYPTO_memcmp(want, secret, 64) == 0;
	compat_explicit_bzero(want, sizeof want);
	return (ok);
}

/* The default state folder of the controller. */
static char *
auth_default_dir(void)
{
	const char	*env;
	char		*dir;

	if (geteuid() == 0)
		return (xstrdup("/var/lib/sandd-serve"));
	if ((env = getenv("XDG_STATE_HOME")) != NULL && *env == '/')
		xasprintf(&dir, "%s/sandd-serve", env);
	else if ((env = getenv("HOME")) != NULL && *env == '/')
		xasprintf(&dir, "%s/.local/state/sandd-serve", env);
	else
		return (NULL);
	return (dir);
}

/* Read the key of path, or make it (0600) if there is none; -1 if not. */
static int
auth_key_file(const char *path, char **cause)
{
	ssize_t	n;
	int	fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd != -1) {
		n = read(fd, auth_key, sizeof auth_key);
		close(fd);
		if (n == (ssize_t)sizeof auth_key)
			return (0);
		xasprintf(cause, "%s: not a key of %d bytes", path,
		    AUTH_KEY_LEN);
		return (-1);
	}
	if (errno != ENOENT) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return (-1);
	}
	if (RAND_bytes(auth_key, sizeof auth_key) != 1)
		fatalx("RAND_bytes failed");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1 || write(fd, auth_key, sizeof auth_key) !=
	    (ssize_t)sizeof auth_key || fsync(fd) != 0) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		if (fd != -1) {
			close(fd);
			unlink(path);
		}
		return (-1);
	}
	close(fd);
	log_info("%s: made a new key", path);
	return (0);
}

/*
 * Load (or make) the key behind worker secrets in dir (the default when
 * NULL). Without a usable folder the key lives in memory only: secrets
 * then do not verify after a restart, which is logged.
 */
void
auth_init(const char *dir)
{
	char	*d, *path, *cause = NULL;

	d = dir != NULL ? xstrdup(dir) : auth_default_dir();
	if (d != NULL && mkdir(d, 0700) == -1 && errno != EEXIST)
		xasprintf(&cause, "%s: %s", d, strerror(errno));
	else if (d != NULL) {
		xasprintf(&path, "%s/%s", d, AUTH_KEY_FILE);
		if (auth_key_file(path, &cause) == 0) {
			free(path);
			free(d);
			return;
		}
		free(path);
	}
	if (RAND_bytes(auth_key, sizeof auth_key) != 1)
		fatalx("RAND_bytes failed");
	log_warnx("no state folder for the worker key (%s): worker secrets "
	    "will not verify after a restart", cause != NULL ? cause :
	    "set --state-dir");
	free(cause);
	free(d);
}

/*
 * Decide whether the upgrade u from bev may register as u->id. Fills wa
 * with how the worker proved itself; 0 to admit, else -1 with the answer
 * in *a (401 no grant, 403 a certificate for another id, 409 the id is
 * taken and nothing proves this is that worker).
 */
int
auth_admit(struct bufferevent *bev, const struct http_upgrade *u,
    struct worker_auth *wa, struct http_answer *a)
{
	unsigned char	md[32];
	int		g = -1;

	memset(wa, 0, sizeof *wa);
	memset(a, 0, sizeof *a);
	if (serve_opts.tls_client_ca != NULL) {
		wa->cert = auth_cert_names(bev, u->id);
		if (!wa->cert && !serve_opts.tls_any_id) {
			a->status = 403;
			a->reason = "Forbidden";
			a->body = "the client certificate does not name this "
			    "worker id\n";
			return (-1);
		}
	}
	if (serve_opts.token_file != NULL) {
		if (u->token != NULL) {
			auth_sha256(u->token, strlen(u->token), md);
			g = auth_find_grant(u->id, md);
		}
		if (g < 0) {
			a->status = 401;
			a->reason = "Unauthorized";
			a->extra = "WWW-Authenticate: Bearer\r\n";
			a->body = "bad or missing token\n";
			return (-1);
		}
		memcpy(wa->digest, md, sizeof wa->digest);
		wa->token = 1;
		wa->own_grant = strcmp(grants[g].id, u->id) == 0;
		compat_explicit_bzero(md, sizeof md);
	}
	wa->secret = auth_secret_ok(u->id, u->secret);
	if (server_worker_claimed(u->id) && !wa->secret && !wa->own_grant &&
	    !wa->cert) {
		a->status = 409;
		a->reason = "Conflict";
		a->body = "this worker id is in use; only that worker may take "
		    "it (its secret, or a credential for this id)\n";
		return (-1);
	}
	return (0);
}

/*
 * May a worker admitted with wa claim labels? Label grants of its token's
 * grant must cover every label (values matched as globs). -1 with *why.
 */
int
auth_labels_ok(const char *id, const struct worker_auth *wa, json_t *labels,
    char **why)
{
	const char	*k;
	json_t		*v, *want, *glob;
	int		 g;

	if (!wa->token || (g = auth_find_grant(id, wa->digest)) < 0 ||
	    (want = grants[g].labels) == NULL)
		return (0);
	json_object_foreach(labels, k, v) {
		glob = json_object_get(want, k);
		if (!json_is_string(v) || glob == NULL ||
		    fnmatch(json_string_value(glob), json_string_value(v),
		    0) != 0) {
			xasprintf(why, "label %s is not granted to this worker",
			    k);
			return (-1);
		}
	}
	return (0);
}

/* Does the grant that admitted a worker with wa still hold? */
int
auth_still_granted(const char *id, const struct worker_auth *wa)
{
	if (serve_opts.token_file == NULL || !wa->token)
		return (1);
	return (auth_find_grant(id, wa->digest) >= 0);
}

/* The tag of handle body (prefix and random part) on worker id. */
static void
auth_handle_tag(const char *id, const char *body, size_t len, char out[17])
{
	unsigned char	 md[32];
	char		 msg[128 + WORKER_ID_MAX], hex[65];
	int		 n;

	n = snprintf(msg, sizeof msg, "sandd handle %s %.*s", id, (int)len,
	    body);
	if (n < 0 || (size_t)n >= sizeof msg)
		fatalx("%s: handle too long", __func__);
	auth_hmac(msg, (size_t)n, md);
	util_sha256_hex(md, hex);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

/*
 * A new handle or session id for worker id: prefix, 16 random hex
 * digits and a 16-digit tag under this controller's key, so that a
 * worker announcing channels after a restart cannot pass off invented
 * ones (or another worker's) as ours.
 */
void
auth_handle(const char *id, const char *prefix, char *out, size_t size)
{
	char	rnd[17], tag[17], body[64];

	util_random_hex(rnd, sizeof rnd);
	snprintf(body, sizeof body, "%s%s", prefix, rnd);
	auth_handle_tag(id, body, strlen(body), tag);
	snprintf(out, size, "%s%s", body, tag);
}

/* Did this controller make handle for worker id? */
int
auth_handle_ok(const char *id, const char *handle)
{
	size_t	n = strlen(handle);
	char	tag[17];

	if (n < 17)
		return (0);
	auth_handle_tag(id, handle, n - 16, tag);
	return (CRYPTO_memcmp(tag, handle + n - 16, 16) == 0);
}

/*
 * This controller's id: the first 16 hex digits of the SHA-256 of its
 * key. Stable across restarts (the key is), different between
 * controllers; workers store it with the items it makes (their owner).
 */
const char *
auth_controller_id(void)
{
	static char	id[17];
	unsigned char	md[32];
	char		hex[65];

	if (*id == '\0') {
		auth_sha256(auth_key, sizeof auth_key, md);
		util_sha256_hex(md, hex);
		memcpy(id, hex, 16);
		id[16] = '\0';
	}
	return (id);
}

void
auth_free(void)
{
	auth_grants_free(grants, ngrants);
	grants = NULL;
	ngrants = 0;
	compat_explicit_bzero(auth_key, sizeof auth_key);
	EVP_MAC_CTX_free(auth_mac);
	auth_mac = NULL;
}
