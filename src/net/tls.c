/* SPDX-License-Identifier: MIT */
/*
 * net/tls.c - TLS over the connected stream with OpenSSL (implicit TLS
 * right after connect, or STARTTLS after the server's OK: the client layer
 * decides when; RFC 9051 section 6.2.1, RFC 8314).
 *
 * Security defaults (DESIGN.md section 8): TLS 1.2 or newer; the chain is
 * verified against the system's CA paths (or ca_file / ca_dir); the name is
 * checked with SSL_set1_host (wildcards only as a whole left-most label),
 * or X509_VERIFY_PARAM_set1_ip_asc for an address literal; SNI is sent for
 * names only (RFC 6066 section 3: literal addresses are not allowed in
 * server_name). insecure_skip_verify turns all checking off, and nothing
 * else does.
 *
 * OpenSSL reads and writes through our own BIO, which calls the socket
 * primitives of net.c: send(MSG_NOSIGNAL) (OpenSSL's socket BIO uses
 * write(), which raises SIGPIPE on a dead peer), the wire counters, and the
 * errno of a failure kept for the message. WANT_READ / WANT_WRITE become
 * IMK__NET_AGAIN with the matching want bit: a read may need to WRITE
 * (TLS 1.3 key update), a write may need to READ (TLS 1.2 renegotiation).
 *
 * A failed verification is explained from what the verify callback saw
 * first (the error, the certificate, its names and dates):
 *   TLS with HOST port P: certificate for "wrong.example" does not match
 *     host "127.0.0.1"
 *   ...: certificate expired on 2020-01-02 00:00:00 UTC
 *   ...: certificate issuer "CN=Other CA" is not trusted (unknown CA); give
 *     its CA with ca_file
 *   ...: self-signed certificate "CN=localhost" is not trusted; give it with
 *     ca_file to trust it
 * and other failures with OpenSSL's reason ("tlsv1 alert protocol version"),
 * made plainer where we can tell what it means.
 *
 * OpenSSL allocates through its own (process-wide) allocator: the stack's
 * imk_allocator does not reach it.
 *
 * End of stream: a peer that closes without close_notify is a plain end of
 * stream (SSL_OP_IGNORE_UNEXPECTED_EOF): IMAP's own framing (tagged
 * completions, literal lengths) detects a truncated response.
 */
#define _POSIX_C_SOURCE 200809L

#include "net/net_int.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- the BIO: OpenSSL's view of our socket ---- */

static int bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
    imk__net *n = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    long r = imk__net_sock_send(n, data, len);
    if (r > 0) {
        *written = (size_t)r;
        return 1;
    }
    if (r == IMK__NET_AGAIN)
        BIO_set_retry_write(b);
    return 0;
}

static int bio_read(BIO *b, char *buf, size_t cap, size_t *got)
{
    imk__net *n = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    long r = imk__net_sock_recv(n, buf, cap);
    if (r > 0) {
        *got = (size_t)r;
        return 1;
    }
    if (r == IMK__NET_AGAIN)
        BIO_set_retry_read(b);
    return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Nothing is buffered here: a flush has nothing to do. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* ---- messages ---- */

static const char *tls_peer(const imk__net *n, char *buf, size_t size)
{
    if (n->tunnel != NULL)
        snprintf(buf, size, "TLS over tunnel \"%s\"", n->tunnel);
    else
        snprintf(buf, size, "TLS with %s port %s", n->host != NULL ? n->host : "?",
                 n->port != NULL ? n->port : "?");
    return buf;
}

static const char *verify_name(const imk__net *n)
{
    return n->server_name != NULL ? n->server_name : n->host;
}

static int is_ip_literal(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static void name_string(X509_NAME *name, char *buf, size_t size)
{
    buf[0] = '\0';
    BIO *m = BIO_new(BIO_s_mem());
    if (m == NULL || name == NULL) {
        BIO_free(m);
        return;
    }
    X509_NAME_print_ex(m, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char *data;
    long len = BIO_get_mem_data(m, &data);
    if (len > 0)
        snprintf(buf, size, "%.*s", (int)len, data);
    BIO_free(m);
}

static void time_string(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;
    buf[0] = '\0';
    if (t != NULL && ASN1_TIME_to_tm(t, &tm) == 1)
        strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* "\"a\", \"b\"": the DNS and IP names of the certificate, or its CN. */
static void cert_names(X509 *cert, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t used = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int count = sans != NULL ? sk_GENERAL_NAME_num(sans) : 0;
    for (int i = 0; i < count && used < size; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        char one[INET6_ADDRSTRLEN + 2];
        if (g->type == GEN_DNS) {
            const ASN1_IA5STRING *s = g->d.dNSName;
            snprintf(one, sizeof(one), "%.*s", ASN1_STRING_length(s),
                     (const char *)ASN1_STRING_get0_data(s));
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *s = g->d.iPAddress;
            int len = ASN1_STRING_length(s);
            const unsigned char *p = ASN1_STRING_get0_data(s);
            if (len == 4)
                inet_ntop(AF_INET, p, one, sizeof(one));
            else if (len == 16)
                inet_ntop(AF_INET6, p, one, sizeof(one));
            else
                continue;
        } else {
            continue;
        }
        int w = snprintf(buf + used, size - used, "%s\"%s\"", used > 0 ? ", " : "", one);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    GENERAL_NAMES_free(sans);
    if (used == 0) {
        char cn[200];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                                      (int)sizeof(cn)) > 0)
            snprintf(buf, size, "\"%s\"", cn);
        else
            snprintf(buf, size, "(no name)");
    }
}

/* Remember the first problem with the chain, for the message. The
 * verification result itself is OpenSSL's (we return `ok` unchanged). */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    if (ok)
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    imk__net *n = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    if (n == NULL || n->v_err != 0)
        return ok;
    n->v_err = X509_STORE_CTX_get_error(ctx);
    n->v_depth = X509_STORE_CTX_get_error_depth(ctx);
    X509 *cert = X509_STORE_CTX_get_current_cert(ctx);
    if (cert != NULL) {
        name_string(X509_get_subject_name(cert), n->v_subject, sizeof(n->v_subject));
        name_string(X509_get_issuer_name(cert), n->v_issuer, sizeof(n->v_issuer));
        time_string(X509_get0_notAfter(cert), n->v_not_after, sizeof(n->v_not_after));
        time_string(X509_get0_notBefore(cert), n->v_not_before, sizeof(n->v_not_before));
        cert_names(cert, n->v_names, sizeof(n->v_names));
    }
    return ok;
}

static int verify_failure(imk__net *n, const char *who)
{
    const char *which = n->v_depth == 0 ? "certificate" : "CA certificate";
    switch (n->v_err) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return imk__net_fail(n, IMK_ETLS, "%s: certificate for %s does not match host \"%s\"", who,
                             n->v_names, verify_name(n));
    case X509_V_ERR_CERT_HAS_EXPIRED:
        if (n->v_depth == 0)
            return imk__net_fail(n, IMK_ETLS, "%s: certificate expired on %s", who, n->v_not_after);
        return imk__net_fail(n, IMK_ETLS, "%s: CA certificate \"%s\" expired on %s", who,
                             n->v_subject, n->v_not_after);
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return imk__net_fail(n, IMK_ETLS,
                             "%s: %s \"%s\" is not valid before %s (is the clock right?)", who,
                             which, n->v_subject, n->v_not_before);
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        return imk__net_fail(n, IMK_ETLS,
                             "%s: self-signed certificate \"%s\" is not trusted; give it with "
                             "ca_file to trust it",
                             who, n->v_subject);
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        /* The server sent its root too, and that root is not ours. */
        return imk__net_fail(n, IMK_ETLS,
                             "%s: certificate issuer \"%s\" is not trusted (unknown CA); give "
                             "its CA with ca_file",
                             who, n->v_subject);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return imk__net_fail(n, IMK_ETLS,
                             "%s: certificate issuer \"%s\" is not trusted (unknown CA); give "
                             "its CA with ca_file",
                             who, n->v_issuer);
    default:
        return imk__net_fail(n, IMK_ETLS, "%s: certificate verification failed: %s (%s \"%s\")",
                             who, X509_verify_cert_error_string(n->v_err), which, n->v_subject);
    }
}

/* An SSL_get_error() result that is not WANT_*: say what went wrong. */
static int tls_failure(imk__net *n, int e, const char *step)
{
    char who[400], how[IMK__NET_ERRLEN / 2];
    tls_peer(n, who, sizeof(who));
    how[0] = '\0';
    if (n->tls == IMK__NET_TLS_HANDSHAKE && n->v_err != 0) {
        n->tls = IMK__NET_TLS_DEAD;
        return verify_failure(n, who);
    }
    n->tls = IMK__NET_TLS_DEAD;
    if (n->tunnel != NULL) {
        char desc[IMK__NET_ERRLEN / 2 - 8];
        imk__net_tunnel_describe(n, desc, sizeof(desc));
        if (desc[0] != '\0')
            snprintf(how, sizeof(how), "; %s", desc);
    }
    if (e == SSL_ERROR_SSL) {
        unsigned long code = ERR_peek_error();
        int reason = ERR_GET_REASON(code);
        const char *text = ERR_reason_error_string(code);
        char buf[256];
        if (text == NULL) {
            ERR_error_string_n(code, buf, sizeof(buf));
            text = buf;
        }
        if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
            reason == SSL_R_WRONG_SSL_VERSION)
            return imk__net_fail(n, IMK_ETLS,
                                 "%s: %s failed: the server does not speak TLS 1.2 or newer "
                                 "(%s)%s",
                                 who, step, text, how);
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
        if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            return imk__net_fail(n, IMK_ETLS, "%s: the peer closed the connection during the %s%s",
                                 who, step, how);
#endif
        if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
            reason == SSL_R_RECORD_LENGTH_MISMATCH)
            return imk__net_fail(n, IMK_ETLS,
                                 "%s: %s failed: the peer does not speak TLS here (%s); is it a "
                                 "port for STARTTLS or plain IMAP?%s",
                                 who, step, text, how);
#ifdef SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED
        if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
            return imk__net_fail(n, IMK_ETLS,
                                 "%s: %s failed: %s (the server wants a client certificate: "
                                 "client_cert, client_key)%s",
                                 who, step, text, how);
#endif
        return imk__net_fail(n, IMK_ETLS, "%s: %s failed: %s%s", who, step, text, how);
    }
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
        char peer[300];
        if (n->sys_errno != 0 && strcmp(step, "handshake") != 0)
            /* The socket failed under TLS: "write to HOST port P: Broken pipe" */
            return imk__net_fail(n, IMK_ENET, "%s %s %s: %s (TLS)%s", step,
                                 strcmp(step, "write") == 0 ? "to" : "from",
                                 imk__net_peer(n, peer, sizeof(peer)), strerror(n->sys_errno), how);
        if (n->sys_errno != 0)
            return imk__net_fail(n, IMK_ENET, "%s: %s: %s%s", who, step, strerror(n->sys_errno),
                                 how);
        return imk__net_fail(n, IMK_ETLS, "%s: the peer closed the connection during the %s%s", who,
                             step, how);
    }
    return imk__net_fail(n, IMK_ETLS, "%s: %s failed (OpenSSL error %d)%s", who, step, e, how);
}

/* ---- setup and handshake ---- */

/* The most telling reason in OpenSSL's error queue: a system error (a
 * missing file) by its errno text, else the last error's reason. */
static const char *queue_reason(char *buf, size_t size)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_LIB(e) == ERR_LIB_SYS) {
            snprintf(buf, size, "%s", strerror(ERR_GET_REASON(e)));
            ERR_clear_error();
            return buf;
        }
        last = e;
    }
    const char *text = last != 0 ? ERR_reason_error_string(last) : NULL;
    if (text != NULL)
        return text;
    if (last == 0)
        return "unknown error";
    ERR_error_string_n(last, buf, size);
    return buf;
}

static int openssl_error(imk__net *n, int code, const char *what, const char *path)
{
    char who[400], buf[256];
    const char *text = queue_reason(buf, sizeof(buf));
    if (path != NULL)
        return imk__net_fail(n, code, "%s: %s \"%s\": %s", tls_peer(n, who, sizeof(who)), what,
                             path, text);
    return imk__net_fail(n, code, "%s: %s: %s", tls_peer(n, who, sizeof(who)), what, text);
}

static int setup_ctx(imk__net *n)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return openssl_error(n, IMK_ENOMEM, "SSL_CTX_new", NULL);
    n->ssl_ctx = ctx;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        return openssl_error(n, IMK_ETLS, "cannot require TLS 1.2", NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    if (!n->insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
        if (n->ca_file != NULL || n->ca_dir != NULL) {
            if (SSL_CTX_load_verify_locations(ctx, n->ca_file, n->ca_dir) != 1)
                return openssl_error(n, IMK_ETLS, "cannot load CA certificates from",
                                     n->ca_file != NULL ? n->ca_file : n->ca_dir);
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            return openssl_error(n, IMK_ETLS, "cannot load the system's CA certificates", NULL);
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (n->client_cert != NULL || n->client_key != NULL) {
        const char *cert = n->client_cert != NULL ? n->client_cert : n->client_key;
        const char *key = n->client_key != NULL ? n->client_key : n->client_cert;
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
            return openssl_error(n, IMK_ETLS, "cannot load client certificate", cert);
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
            return openssl_error(n, IMK_ETLS, "cannot load client key", key);
        if (SSL_CTX_check_private_key(ctx) != 1)
            return openssl_error(n, IMK_ETLS, "client key does not match its certificate", key);
    }
    return 0;
}

static int setup_ssl(imk__net *n)
{
    SSL *ssl = SSL_new(n->ssl_ctx);
    if (ssl == NULL)
        return openssl_error(n, IMK_ENOMEM, "SSL_new", NULL);
    n->ssl = ssl;
    SSL_set_app_data(ssl, n);

    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "imapkit socket");
    if (m == NULL)
        return openssl_error(n, IMK_ENOMEM, "BIO_meth_new", NULL);
    n->bio_method = m;
    BIO_meth_set_write_ex(m, bio_write);
    BIO_meth_set_read_ex(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    BIO *b = BIO_new(m);
    if (b == NULL)
        return openssl_error(n, IMK_ENOMEM, "BIO_new", NULL);
    BIO_set_data(b, n);
    SSL_set_bio(ssl, b, b); /* ssl owns b from here */

    const char *name = verify_name(n);
    int literal = name != NULL && is_ip_literal(name);
    /* RFC 6066 section 3: "Literal IPv4 and IPv6 addresses are not
     * permitted in HostName." */
    if (name != NULL && !literal && SSL_set_tlsext_host_name(ssl, name) != 1)
        return openssl_error(n, IMK_ETLS, "cannot set the server name (SNI)", name);
    if (!n->insecure_skip_verify) {
        if (literal) {
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
                return openssl_error(n, IMK_ETLS, "cannot verify against address", name);
        } else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set1_host(ssl, name) != 1)
                return openssl_error(n, IMK_ETLS, "cannot verify against host name", name);
        }
    }
    SSL_set_connect_state(ssl);
    return 0;
}

int imk__net_tls_start(imk__net *n)
{
    char who[400];
    if (n->failed)
        return n->failed;
    if (n->phase != IMK__NET_CONNECTED || n->tls != IMK__NET_TLS_NONE || n->zout != NULL ||
        imk__net_unsent(n) > 0) {
        snprintf(n->err, sizeof(n->err),
                 "%s: cannot start TLS now (not connected, TLS already on, compression on, or "
                 "bytes still queued)",
                 tls_peer(n, who, sizeof(who)));
        return IMK_EINVAL;
    }
    if (verify_name(n) == NULL && !n->insecure_skip_verify) {
        snprintf(n->err, sizeof(n->err),
                 "%s: no server_name to verify the certificate against (set server_name, or "
                 "insecure_skip_verify)",
                 tls_peer(n, who, sizeof(who)));
        return IMK_EINVAL;
    }
    ERR_clear_error();
    int rc = setup_ctx(n);
    if (rc == 0)
        rc = setup_ssl(n);
    if (rc < 0) {
        imk__net_tls_free(n);
        n->tls = IMK__NET_TLS_DEAD;
        return rc;
    }
    n->tls = IMK__NET_TLS_HANDSHAKE;
    n->want_handshake = IMK__NET_WANT_WRITE;
    n->v_err = 0;
    n->sys_errno = 0;
    return 0;
}

int imk__net_tls_step(imk__net *n)
{
    if (n->failed)
        return n->failed;
    if (n->tls == IMK__NET_TLS_UP)
        return 1;
    if (n->tls != IMK__NET_TLS_HANDSHAKE) {
        snprintf(n->err, sizeof(n->err), "TLS handshake step without imk__net_tls_start");
        return IMK_EINVAL;
    }
    ERR_clear_error();
    n->sys_errno = 0;
    int r = SSL_do_handshake(n->ssl);
    if (r == 1) {
        n->tls = IMK__NET_TLS_UP;
        const SSL_CIPHER *c = SSL_get_current_cipher(n->ssl);
        snprintf(n->tls_desc, sizeof(n->tls_desc), "%s %s", SSL_get_version(n->ssl),
                 c != NULL ? SSL_CIPHER_get_name(c) : "?");
        return 1;
    }
    int e = SSL_get_error(n->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        n->want_handshake = IMK__NET_WANT_READ;
        return IMK__NET_AGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        n->want_handshake = IMK__NET_WANT_WRITE;
        return IMK__NET_AGAIN;
    }
    return tls_failure(n, e, "handshake");
}

int imk__net_is_tls(const imk__net *n)
{
    return n->tls == IMK__NET_TLS_UP;
}

const char *imk__net_tls_description(const imk__net *n)
{
    return n->tls == IMK__NET_TLS_UP ? n->tls_desc : "";
}

/* ---- data ---- */

long imk__net_tls_read(imk__net *n, void *buf, size_t cap)
{
    ERR_clear_error();
    n->sys_errno = 0;
    size_t got = 0;
    if (SSL_read_ex(n->ssl, buf, cap, &got) == 1)
        return (long)got;
    int e = SSL_get_error(n->ssl, 0);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        n->want_read = IMK__NET_WANT_READ;
        return IMK__NET_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        n->want_read = IMK__NET_WANT_WRITE;
        return IMK__NET_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0; /* close_notify (or, with IGNORE_UNEXPECTED_EOF, a bare EOF) */
    case SSL_ERROR_SYSCALL:
        if (n->sock_eof && n->sys_errno == 0)
            return 0; /* OpenSSL 1.1.1: EOF without close_notify */
        break;
    default:
        break;
    }
    return tls_failure(n, e, "read");
}

long imk__net_tls_write(imk__net *n, const void *data, size_t len)
{
    /* A retry after WANT_WRITE must offer the same bytes and at least as
     * many: our queue only grows at its end, and the chunk limit is fixed. */
    if (len > 65536)
        len = 65536;
    ERR_clear_error();
    n->sys_errno = 0;
    size_t done = 0;
    if (SSL_write_ex(n->ssl, data, len, &done) == 1)
        return (long)done;
    int e = SSL_get_error(n->ssl, 0);
    if (e == SSL_ERROR_WANT_WRITE) {
        n->want_write = IMK__NET_WANT_WRITE;
        return IMK__NET_AGAIN;
    }
    if (e == SSL_ERROR_WANT_READ) {
        n->want_write = IMK__NET_WANT_READ;
        return IMK__NET_AGAIN;
    }
    return tls_failure(n, e, "write");
}

void imk__net_tls_free(imk__net *n)
{
    if (n->ssl != NULL) {
        /* Best effort close_notify: one non-blocking try, no waiting for
         * the peer's. Not after a fatal error (OpenSSL forbids it). */
        if (n->tls == IMK__NET_TLS_UP && !n->failed && n->fd >= 0) {
            ERR_clear_error();
            SSL_shutdown(n->ssl);
        }
        SSL_free(n->ssl); /* frees the BIO too */
        n->ssl = NULL;
    }
    if (n->ssl_ctx != NULL)
        SSL_CTX_free(n->ssl_ctx);
    n->ssl_ctx = NULL;
    if (n->bio_method != NULL)
        BIO_meth_free(n->bio_method);
    n->bio_method = NULL;
    ERR_clear_error();
}
