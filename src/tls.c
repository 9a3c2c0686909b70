/*
 * tls.c: SSL_CTX set-up for both ends and OpenSSL error draining.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sandd.h"

/* The queued OpenSSL errors as one line; caller frees. */
char *
tls_error_string(void)
{
	char		 buf[256], *out = NULL, *tmp;
	unsigned long	 e;

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		if (out == NULL)
			out = xstrdup(buf);
		else {
			xasprintf(&tmp, "%s; %s", out, buf);
			free(out);
			out = tmp;
		}
	}
	return (out != NULL ? out : xstrdup("unknown TLS error"));
}

/*
 * Why TLS failed on bev, as one line; caller frees. libevent keeps the
 * OpenSSL errors of a bufferevent with the bufferevent (the thread's
 * queue is empty by then), and a refused certificate is told by the
 * verify result, which names the reason (expired, unknown CA, ...).
 * NULL when TLS has nothing to say (a plain socket error).
 */
char *
tls_bev_error(struct bufferevent *bev)
{
	char		 buf[256], *out = NULL, *tmp;
	unsigned long	 e;
	SSL		*ssl = bufferevent_openssl_get_ssl(bev);
	long		 v;

	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		if (out == NULL)
			out = xstrdup(buf);
		else {
			xasprintf(&tmp, "%s; %s", out, buf);
			free(out);
			out = tmp;
		}
	}
	if (ssl != NULL && (v = SSL_get_verify_result(ssl)) != X509_V_OK) {
		xasprintf(&tmp, "certificate verify failed: %s%s%s",
		    X509_verify_cert_error_string(v), out != NULL ? "; " : "",
		    out != NULL ? out : "");
		free(out);
		out = tmp;
	}
	return (out);
}

static struct ssl_ctx_st *
tls_fail(SSL_CTX *ctx, char **cause, const char *what, const char *file)
{
	char	*err = tls_error_string();

	xasprintf(cause, "%s %s: %s", what, file, err);
	free(err);
	SSL_CTX_free(ctx);
	return (NULL);
}

/*
 * A server context with cert and key; with client_ca, clients must show a
 * certificate signed by it.
 */
struct ssl_ctx_st *
tls_server_ctx(const char *cert, const char *key, const char *client_ca,
    char **cause)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		return (tls_fail(NULL, cause, "SSL_CTX_new", ""));
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/*
	 * An idle link holds no record buffers: with them, each connected
	 * worker cost the controller ~59 KiB (a 16 KiB read and a 16 KiB
	 * write buffer and their slack); a busy one gets them back at once.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		return (tls_fail(ctx, cause, "certificate", cert));
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return (tls_fail(ctx, cause, "key", key));
	if (SSL_CTX_check_private_key(ctx) != 1)
		return (tls_fail(ctx, cause, "key does not match", cert));
	if (client_ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1)
			return (tls_fail(ctx, cause, "client CA", client_ca));
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return (ctx);
}

/*
 * A client context that verifies the server against ca (or the system
 * store), presenting cert and key if given.
 */
struct ssl_ctx_st *
tls_client_ctx(const char *ca, const char *cert, const char *key,
    char **cause)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return (tls_fail(NULL, cause, "SSL_CTX_new", ""));
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
			return (tls_fail(ctx, cause, "CA", ca));
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		return (tls_fail(ctx, cause, "system CA store", ""));
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cert != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
			return (tls_fail(ctx, cause, "certificate", cert));
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM)
		    != 1)
			return (tls_fail(ctx, cause, "key", key));
	}
	return (ctx);
}

/* A client SSL that checks the server's name (or IP address). */
void *
tls_client_ssl(struct ssl_ctx_st *ctx, const char *host)
{
	SSL		*ssl;
	X509_VERIFY_PARAM *param;

	if ((ssl = SSL_new(ctx)) == NULL)
		return (NULL);
	param = SSL_get0_param(ssl);
	if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1) {
		SSL_set_tlsext_host_name(ssl, host);
		X509_VERIFY_PARAM_set1_host(param, host, 0);
	}
	return (ssl);
}

void *
tls_server_ssl(struct ssl_ctx_st *ctx)
{
	return (SSL_new(ctx));
}
