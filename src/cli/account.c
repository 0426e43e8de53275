/* SPDX-License-Identifier: MIT */
/*
 * Where to connect and as whom: server URLs, the account file, and the
 * three sources of a password (a command, $IMAPKIT_PASSWORD, ~/.netrc).
 *
 * Invariants:
 *   - a password never comes from the command line and is never printed:
 *     the strings holding one are wiped before they are freed
 *     (cli_secret_free), messages name where a password came from, never
 *     the password;
 *   - every syntax error of the account file names FILE:LINE and what is
 *     expected there; the whole file is checked, not just the chosen
 *     account, so a typo is reported the first time, not when that account
 *     is used;
 *   - a ~/.netrc that others can read or write is refused, as ftp(1) and
 *     curl do: a password in a world-readable file is no secret, and one in
 *     a file others can write could point us at their server.
 *
 * The account file format is documented in docs/cli-config.md.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"
#include "core.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Strings                                                             */
/* ------------------------------------------------------------------ */

char *cli_strndup(const char *s, size_t n)
{
    void *p = NULL;
    if (n == (size_t)-1 || cli_array_resize(&p, n + 1, 1) < 0)
        return NULL;
    memcpy(p, s, n);
    ((char *)p)[n] = '\0';
    return p;
}

char *cli_strdup(const char *s)
{
    return cli_strndup(s, strlen(s));
}

void cli_strfree(char *s)
{
    void *p = s;
    if (p != NULL)
        cli_array_resize(&p, 0, 1);
}

void cli_secret_free(char *s)
{
    if (s == NULL)
        return;
    volatile char *v = s;
    while (*v != '\0')
        *v++ = '\0';
    cli_strfree(s);
}

static void buf_wipe_free(cli_buf *b)
{
    volatile char *v = b->data;
    for (size_t i = 0; v != NULL && i < b->cap; i++)
        v[i] = '\0';
    cli_buf_free(b);
}

/* ------------------------------------------------------------------ */
/* URLs                                                                */
/* ------------------------------------------------------------------ */

const char cli_url_forms[] =
    "accepted forms:\n"
    "  imaps://USER@HOST[:PORT]   implicit TLS (port 993)\n"
    "  imap://USER@HOST[:PORT]    STARTTLS (port 143; cleartext only with --tls none)\n"
    "USER may be percent-encoded (alice%40example.org); an IPv6 HOST goes in\n"
    "brackets (imaps://alice@[::1]:993).";

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 3986 section 2.1 percent-decoding of the user part. */
static int decode_user(const char *s, size_t n, char **out, char *err, size_t errcap)
{
    char *d = cli_strndup(s, n);
    if (d == NULL)
        return -2;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                snprintf(err, errcap,
                         "bad percent-encoding in the user name (%%XX, two hex digits)");
                cli_strfree(d);
                return -1;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) {
            snprintf(err, errcap, "control character in the user name");
            cli_strfree(d);
            return -1;
        }
        d[j++] = (char)c;
    }
    d[j] = '\0';
    if (j == 0) {
        snprintf(err, errcap, "empty user name before '@'");
        cli_strfree(d);
        return -1;
    }
    *out = d;
    return 0;
}

static int host_char(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_';
}

int cli_url_parse(const char *url, cli_url *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof(*out));
    const char *p;
    if (strncasecmp(url, "imaps://", 8) == 0) {
        out->implicit_tls = 1;
        p = url + 8;
    } else if (strncasecmp(url, "imap://", 7) == 0) {
        p = url + 7;
    } else {
        snprintf(err, errcap, "%s",
                 strstr(url, "://") != NULL ? "the scheme must be imap:// or imaps://"
                                            : "not a URL (it must start with imaps:// or imap://)");
        return -1;
    }
    /* The authority ends at the end, or at a lone trailing "/". */
    size_t len = strlen(p);
    if (len > 0 && p[len - 1] == '/')
        len--;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '/' || p[i] == '?' || p[i] == '#') {
            snprintf(err, errcap,
                     "a mailbox, path or query ('%s') is not accepted: name the "
                     "mailbox as the command's argument",
                     p + i);
            return -1;
        }
        if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f) {
            snprintf(err, errcap, "space or control character in the URL");
            return -1;
        }
    }
    const char *end = p + len;
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q; /* the last '@': a raw '@' in the user name is tolerated */
    const char *h = p;
    if (at != NULL) {
        for (const char *q = p; q < at; q++) {
            if (*q == ':') {
                snprintf(err, errcap,
                         "a password in the URL is not accepted (it would show in the process "
                         "list and the shell history): use --password-command, "
                         "IMAPKIT_PASSWORD or ~/.netrc");
                return -1;
            }
            if (*q == ';') {
                snprintf(err, errcap, "';AUTH=' in the URL is not accepted: use --auth MECHANISM");
                return -1;
            }
        }
        int rc = decode_user(p, (size_t)(at - p), &out->user, err, errcap);
        if (rc < 0)
            return rc;
        h = at + 1;
    }
    const char *hend;
    const char *portp = NULL;
    if (h < end && *h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb == NULL) {
            snprintf(err, errcap, "'[' without ']' around an IPv6 address");
            goto fail;
        }
        for (const char *q = h + 1; q < rb; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.') {
                snprintf(err, errcap, "bad IPv6 address between '[' and ']'");
                goto fail;
            }
        if (rb == h + 1 || memchr(h + 1, ':', (size_t)(rb - h - 1)) == NULL) {
            snprintf(err, errcap, "bad IPv6 address between '[' and ']'");
            goto fail;
        }
        out->host = cli_strndup(h + 1, (size_t)(rb - h - 1));
        hend = rb + 1;
        if (hend < end && *hend != ':') {
            snprintf(err, errcap, "unexpected text after ']'");
            goto fail;
        }
    } else {
        hend = h;
        while (hend < end && *hend != ':')
            hend++;
        if (hend == h) {
            snprintf(err, errcap, "no host name");
            goto fail;
        }
        for (const char *q = h; q < hend; q++)
            if (!host_char((unsigned char)*q)) {
                snprintf(err, errcap, "bad character '%c' in the host name", *q);
                goto fail;
            }
        out->host = cli_strndup(h, (size_t)(hend - h));
    }
    if (out->host == NULL)
        goto oom;
    if (hend < end) { /* ":port" */
        portp = hend + 1;
        size_t n = (size_t)(end - portp);
        unsigned long v = 0;
        int ok = n > 0 && n <= 5;
        for (size_t i = 0; ok && i < n; i++) {
            if (!isdigit((unsigned char)portp[i]))
                ok = 0;
            else
                v = v * 10 + (unsigned long)(portp[i] - '0');
        }
        if (!ok || v == 0 || v > 65535) {
            snprintf(err, errcap, "bad port '%.*s' (a number from 1 to 65535)", (int)n, portp);
            goto fail;
        }
        out->port = cli_strndup(portp, n);
        if (out->port == NULL)
            goto oom;
    }
    return 0;
oom:
    cli_url_free(out);
    return -2;
fail:
    cli_url_free(out);
    return -1;
}

/* The URL as it may be shown: a password in it ("user:secret@") replaced. */
void cli_url_redact(const char *url, char *buf, size_t cap)
{
    const char *auth = strstr(url, "://");
    auth = auth != NULL ? auth + 3 : url;
    const char *at = strrchr(auth, '@');
    const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon == NULL)
        snprintf(buf, cap, "%s", url);
    else
        snprintf(buf, cap, "%.*s:<redacted>%s", (int)(colon - url), url, at);
}

void cli_url_free(cli_url *u)
{
    cli_strfree(u->user);
    cli_strfree(u->host);
    cli_strfree(u->port);
    memset(u, 0, sizeof(*u));
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

#define MAX_FILE_BYTES ((size_t)1 << 20)

/* The whole file into b (NUL-terminated). 0, or errno; EFBIG when too big. */
static int read_file(int fd, cli_buf *b)
{
    for (;;) {
        if (b->len >= MAX_FILE_BYTES)
            return EFBIG;
        if (cli_buf_reserve(b, 4096) < 0)
            return ENOMEM;
        ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            break;
        b->len += (size_t)n;
    }
    if (cli_buf_reserve(b, 1) < 0)
        return ENOMEM;
    b->data[b->len] = '\0';
    return 0;
}

int cli_config_path(const cli_ctx *ctx, char *buf, size_t cap)
{
    if (ctx->config != NULL) {
        snprintf(buf, cap, "%s", ctx->config);
        return 0;
    }
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg != NULL && xdg[0] == '/') { /* relative values are ignored (XDG spec) */
        snprintf(buf, cap, "%s/imapkit/config", xdg);
        return 0;
    }
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0')
        return -1;
    snprintf(buf, cap, "%s/.config/imapkit/config", home);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The account file                                                    */
/* ------------------------------------------------------------------ */

typedef struct config_parse {
    const char *path;
    int line;
    const char *want; /* the account asked for, or NULL = default */
    char *default_name;
    int in_section; /* 1 inside an [account ...] section */
    int in_wanted;  /* that section is the wanted one */
    int found;
    char *names; /* every account name, ", "-separated, for messages */
    size_t names_len;
    cli_buf seen;     /* keys set in the current section, "\n"-separated */
    cli_account acct; /* the wanted account's settings */
} config_parse;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
cfg_error(config_parse *cp, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "imapkit: %s:%d: ", cp->path, cp->line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(the account file's format is in docs/cli-config.md and imapkit(1))\n");
    return CLI_EXIT_USAGE;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static int parse_bool(const char *v)
{
    if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0 ||
        strcmp(v, "1") == 0)
        return 1;
    if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "off") == 0 ||
        strcmp(v, "0") == 0)
        return 0;
    return -1;
}

static const char *const KEYS[] = {
    "server",   "tunnel", "user",    "password-command", "oauth2-token-command",
    "auth",     "tls",    "ca-file", "insecure",         "timeout-ms",
    "compress", NULL};

static int set_str(char **slot, const char *v)
{
    cli_strfree(*slot);
    *slot = cli_strdup(v);
    return *slot == NULL ? -1 : 0;
}

/* The account file's keys whose value is kept as a string, and where. */
static const struct str_key {
    const char *key;
    size_t offset; /* of the char * member in cli_account */
} str_keys[] = {
    {"server", offsetof(cli_account, server)},
    {"tunnel", offsetof(cli_account, tunnel)},
    {"user", offsetof(cli_account, user)},
    {"password-command", offsetof(cli_account, password_command)},
    {"oauth2-token-command", offsetof(cli_account, oauth2_token_command)},
    {"auth", offsetof(cli_account, auth)},
    {"tls", offsetof(cli_account, tls)},
    {"ca-file", offsetof(cli_account, ca_file)},
};

static char **str_slot(cli_account *a, const struct str_key *k)
{
    return (char **)(void *)((char *)a + k->offset);
}

static int cfg_key(config_parse *cp, const char *key, const char *value)
{
    if (strcmp(key, "password") == 0 || strcmp(key, "pass") == 0)
        return cfg_error(cp,
                         "'%s' is not accepted: imapkit keeps no passwords in its account file; "
                         "use 'password-command = pass show ...' (any command printing the "
                         "password), IMAPKIT_PASSWORD or ~/.netrc",
                         key);
    size_t k = 0;
    while (KEYS[k] != NULL && strcmp(KEYS[k], key) != 0)
        k++;
    if (KEYS[k] == NULL)
        return cfg_error(cp,
                         "unknown key '%s'; known keys: server, tunnel, user, password-command, "
                         "oauth2-token-command, auth, tls, ca-file, insecure, timeout-ms, compress",
                         key);
    if (value[0] == '\0')
        return cfg_error(cp, "'%s' has no value (write '%s = VALUE')", key, key);
    /* duplicate keys in one section are a mistake worth naming */
    size_t kl = strlen(key);
    for (size_t i = 0; i < cp->seen.len;) {
        const char *e = memchr(cp->seen.data + i, '\n', cp->seen.len - i);
        size_t n = (size_t)(e - (cp->seen.data + i));
        if (n == kl && memcmp(cp->seen.data + i, key, kl) == 0)
            return cfg_error(cp, "'%s' is set twice in this account", key);
        i += n + 1;
    }
    if (cli_buf_append(&cp->seen, key, kl) < 0 || cli_buf_append(&cp->seen, "\n", 1) < 0)
        return CLI_EXIT_IO;

    /* check every value, whichever account it belongs to */
    int b = -1;
    long num = 0;
    if (strcmp(key, "server") == 0) {
        cli_url u;
        char err[256];
        int rc = cli_url_parse(value, &u, err, sizeof(err));
        if (rc == -2)
            return CLI_EXIT_IO;
        if (rc < 0) {
            char shown[1024];
            cli_url_redact(value, shown, sizeof(shown));
            fprintf(stderr, "imapkit: %s:%d: bad server URL '%s': %s\n%s\n", cp->path, cp->line,
                    shown, err, cli_url_forms);
            return CLI_EXIT_USAGE;
        }
        cli_url_free(&u);
    } else if (strcmp(key, "tls") == 0) {
        if (strcmp(value, "none") != 0 && strcmp(value, "starttls") != 0 &&
            strcmp(value, "implicit") != 0)
            return cfg_error(cp, "tls = '%s': expected implicit, starttls or none", value);
    } else if (strcmp(key, "insecure") == 0 || strcmp(key, "compress") == 0) {
        b = parse_bool(value);
        if (b < 0)
            return cfg_error(cp, "%s = '%s': expected yes or no", key, value);
    } else if (strcmp(key, "timeout-ms") == 0) {
        char *endp;
        errno = 0;
        num = strtol(value, &endp, 10);
        if (errno != 0 || *endp != '\0' || num < 1 || num > 86400000)
            return cfg_error(cp, "timeout-ms = '%s': expected milliseconds from 1 to 86400000",
                             value);
    }
    if (!cp->in_wanted)
        return 0;
    cli_account *a = &cp->acct;
    for (size_t i = 0; i < sizeof(str_keys) / sizeof(str_keys[0]); i++)
        if (strcmp(key, str_keys[i].key) == 0)
            return set_str(str_slot(a, &str_keys[i]), value) < 0 ? CLI_EXIT_IO : 0;
    if (strcmp(key, "insecure") == 0)
        a->insecure = b;
    else if (strcmp(key, "compress") == 0)
        a->compress = b;
    else if (strcmp(key, "timeout-ms") == 0)
        a->timeout_ms = (int)num;
    return 0;
}

static int add_name(config_parse *cp, const char *name)
{
    /* a name seen before is a duplicate section */
    size_t nl = strlen(name);
    for (size_t i = 0; cp->names != NULL && i < cp->names_len;) {
        const char *e = strstr(cp->names + i, ", ");
        size_t n = e != NULL ? (size_t)(e - (cp->names + i)) : cp->names_len - i;
        if (n == nl && memcmp(cp->names + i, name, nl) == 0)
            return cfg_error(cp, "account '%s' is defined twice", name);
        i += n + 2;
    }
    size_t need = cp->names_len + nl + 3;
    void *p = cp->names;
    if (cli_array_resize(&p, need, 1) < 0)
        return CLI_EXIT_IO;
    cp->names = p;
    if (cp->names_len > 0) {
        memcpy(cp->names + cp->names_len, ", ", 2);
        cp->names_len += 2;
    }
    memcpy(cp->names + cp->names_len, name, nl);
    cp->names_len += nl;
    cp->names[cp->names_len] = '\0';
    return 0;
}

static int cfg_line(config_parse *cp, char *raw)
{
    char *s = trim(raw);
    if (s[0] == '\0' || s[0] == '#' || s[0] == ';')
        return 0;
    if (s[0] == '[') {
        size_t n = strlen(s);
        if (s[n - 1] != ']')
            return cfg_error(cp, "a section header must end with ']': '%s'", s);
        s[n - 1] = '\0';
        char *inner = trim(s + 1);
        if (strncmp(inner, "account", 7) != 0 || (inner[7] != ' ' && inner[7] != '\t'))
            return cfg_error(cp, "unknown section '[%s]': expected '[account NAME]'", inner);
        char *name = trim(inner + 8);
        if (name[0] == '\0')
            return cfg_error(cp, "'[account]' needs a name: '[account NAME]'");
        for (const char *q = name; *q != '\0'; q++)
            if (*q == ' ' || *q == '\t' || *q == '[' || *q == ']')
                return cfg_error(cp, "bad account name '%s': no spaces or brackets", name);
        int rc = add_name(cp, name);
        if (rc != 0)
            return rc;
        cp->in_section = 1;
        cli_buf_clear(&cp->seen);
        /* no -a and no `default = NAME`: an account called "default" */
        const char *want = cp->want != NULL           ? cp->want
                           : cp->default_name != NULL ? cp->default_name
                                                      : "default";
        cp->in_wanted = strcmp(want, name) == 0;
        if (cp->in_wanted) {
            cp->found = 1;
            if (set_str(&cp->acct.name, name) < 0)
                return CLI_EXIT_IO;
        }
        return 0;
    }
    char *eq = strchr(s, '=');
    if (eq == NULL)
        return cfg_error(cp,
                         "expected 'key = value', '[account NAME]' or a '#' comment, got "
                         "'%s'",
                         s);
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (key[0] == '\0')
        return cfg_error(cp, "no key before '='");
    if (!cp->in_section) {
        if (strcmp(key, "default") == 0) {
            if (cp->default_name != NULL)
                return cfg_error(cp, "'default' is set twice");
            if (value[0] == '\0')
                return cfg_error(cp, "'default' has no value (write 'default = ACCOUNT')");
            cp->default_name = cli_strdup(value);
            return cp->default_name == NULL ? CLI_EXIT_IO : 0;
        }
        return cfg_error(cp,
                         "'%s' outside an account: only 'default = NAME' may come before the "
                         "first '[account NAME]'",
                         key);
    }
    return cfg_key(cp, key, value);
}

int cli_account_load(const char *path, const char *name, cli_account *out)
{
    memset(out, 0, sizeof(*out));
    out->insecure = out->timeout_ms = out->compress = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && name == NULL)
            return 1;
        if (errno == ENOENT) {
            fprintf(stderr,
                    "imapkit: account '%s': the account file %s does not exist; create it (see "
                    "docs/cli-config.md) or give --config FILE\n",
                    name, path);
            return CLI_EXIT_USAGE;
        }
        cli_error("cannot open the account file %s: %s", path, strerror(errno));
        return CLI_EXIT_IO;
    }
    cli_buf b = {0};
    int err = read_file(fd, &b);
    close(fd);
    if (err != 0) {
        cli_error("cannot read the account file %s: %s", path,
                  err == EFBIG ? "larger than 1 MiB" : strerror(err));
        cli_buf_free(&b);
        return CLI_EXIT_IO;
    }
    config_parse cp;
    memset(&cp, 0, sizeof(cp));
    cp.path = path;
    cp.want = name;
    cp.acct = *out;
    int rc = 0;

    /* `default` can only come before the first section, so it is known
     * before the section it names is met. */
    char *line = b.data;
    while (rc == 0 && line != NULL && line < b.data + b.len) {
        cp.line++;
        char *nl = memchr(line, '\n', (size_t)(b.data + b.len - line));
        if (nl != NULL)
            *nl = '\0';
        if (strlen(line) != (size_t)((nl != NULL ? nl : b.data + b.len) - line))
            rc = cfg_error(&cp, "NUL byte in the line");
        else
            rc = cfg_line(&cp, line);
        line = nl != NULL ? nl + 1 : NULL;
    }
    const char *want = name != NULL ? name : cp.default_name;
    if (rc == 0 && want == NULL && cp.found)
        want = "default"; /* the account called so */
    if (rc == 0 && want != NULL && !cp.found) {
        fprintf(stderr, "imapkit: %s: no account '%s'%s; the accounts there: %s\n", path, want,
                name == NULL ? " (named by 'default')" : "",
                cp.names != NULL ? cp.names : "(none)");
        rc = CLI_EXIT_USAGE;
    }
    if (rc == 0 && want == NULL)
        rc = 1;
    if (rc == 0)
        *out = cp.acct;
    else
        cli_account_free(&cp.acct);
    cli_strfree(cp.default_name);
    cli_strfree(cp.names);
    cli_buf_free(&cp.seen);
    cli_buf_free(&b);
    return rc;
}

void cli_account_free(cli_account *a)
{
    cli_strfree(a->name);
    cli_strfree(a->server);
    cli_strfree(a->tunnel);
    cli_strfree(a->user);
    cli_strfree(a->password_command);
    cli_strfree(a->oauth2_token_command);
    cli_strfree(a->auth);
    cli_strfree(a->tls);
    cli_strfree(a->ca_file);
    memset(a, 0, sizeof(*a));
    a->insecure = a->timeout_ms = a->compress = -1;
}

/* ------------------------------------------------------------------ */
/* Credentials: a command                                              */
/* ------------------------------------------------------------------ */

#define MAX_SECRET_OUTPUT ((size_t)64 * 1024)

static void drain(int *fd, cli_buf *b, int *overflow)
{
    char tmp[4096];
    ssize_t n = read(*fd, tmp, sizeof(tmp));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close(*fd);
        *fd = -1;
        return;
    }
    if (b->len + (size_t)n > MAX_SECRET_OUTPUT || cli_buf_append(b, tmp, (size_t)n) < 0)
        *overflow = 1;
}

int cli_secret_command(const char *what, const char *cmd, char **out)
{
    *out = NULL;
    int po[2], pe[2];
    if (pipe(po) < 0)
        goto sys;
    if (pipe(pe) < 0) {
        close(po[0]);
        close(po[1]);
        goto sys;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        goto sys;
    }
    if (pid == 0) {
        /* standard input stays: a command may ask for a passphrase */
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    cli_buf ob = {0}, eb = {0};
    int overflow = 0;
    int fo = po[0], fe = pe[0];
    while (fo >= 0 || fe >= 0) {
        struct pollfd pf[2];
        nfds_t n = 0;
        if (fo >= 0)
            pf[n++] = (struct pollfd){fo, POLLIN, 0};
        if (fe >= 0)
            pf[n++] = (struct pollfd){fe, POLLIN, 0};
        if (poll(pf, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (nfds_t i = 0; i < n; i++) {
            if (pf[i].revents == 0)
                continue;
            if (pf[i].fd == fo)
                drain(&fo, &ob, &overflow);
            else
                drain(&fe, &eb, &overflow);
        }
    }
    if (fo >= 0)
        close(fo);
    if (fe >= 0)
        close(fe);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int rc = 0;
    const char *errtext = eb.len > 0 ? "; it said:\n" : "";
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        fprintf(stderr, "imapkit: %s '%s' failed with exit status %d%s", what, cmd,
                WEXITSTATUS(status), errtext);
        rc = CLI_EXIT_CONNECT;
    } else if (WIFSIGNALED(status)) {
        fprintf(stderr, "imapkit: %s '%s' was killed by signal %d%s", what, cmd, WTERMSIG(status),
                errtext);
        rc = CLI_EXIT_CONNECT;
    } else if (overflow) {
        fprintf(stderr, "imapkit: %s '%s' printed more than 64 KiB\n", what, cmd);
        rc = CLI_EXIT_CONNECT;
    }
    if (rc != 0 && eb.len > 0) {
        fwrite(eb.data, 1, eb.len, stderr);
        if (eb.data[eb.len - 1] != '\n')
            fputc('\n', stderr);
    }
    if (rc == 0) {
        size_t n = 0;
        while (n < ob.len && ob.data[n] != '\n' && ob.data[n] != '\r')
            n++;
        if (n == 0 || memchr(ob.data, '\0', n) != NULL) {
            fprintf(stderr,
                    "imapkit: %s '%s' printed %s on its first line; it must print the %s "
                    "there\n",
                    what, cmd, n == 0 ? "nothing" : "a NUL byte",
                    strstr(what, "token") != NULL ? "token" : "password");
            rc = CLI_EXIT_CONNECT;
        } else {
            *out = cli_strndup(ob.data, n);
            if (*out == NULL) {
                cli_error("out of memory");
                rc = CLI_EXIT_PROTOCOL;
            }
        }
    }
    buf_wipe_free(&ob);
    cli_buf_free(&eb);
    return rc;
sys:
    cli_error("cannot run %s '%s': %s", what, cmd, strerror(errno));
    return CLI_EXIT_CONNECT;
}

/* ------------------------------------------------------------------ */
/* Credentials: ~/.netrc                                               */
/* ------------------------------------------------------------------ */

/* The next token of a netrc file: a word, or a "quoted string" with
 * backslash escapes (as GNU inetutils and curl read them). Returns the
 * token's length into tok (truncated at cap - 1), or -1 at the end. */
static long netrc_token(const char **pp, char *tok, size_t cap)
{
    const char *p = *pp;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')
        p++;
    if (*p == '\0') {
        *pp = p;
        return -1;
    }
    size_t n = 0;
    if (*p == '"') {
        p++;
        while (*p != '\0' && *p != '"') {
            if (*p == '\\' && p[1] != '\0')
                p++;
            if (n + 1 < cap)
                tok[n++] = *p;
            p++;
        }
        if (*p == '"')
            p++;
    } else {
        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            if (n + 1 < cap)
                tok[n++] = *p;
            p++;
        }
    }
    tok[n] = '\0';
    *pp = p;
    return (long)n;
}

int cli_netrc_lookup(const char *host, const char *user, char **password, char **login,
                     char *path_out, size_t path_cap)
{
    *password = NULL;
    *login = NULL;
    const char *env = getenv("NETRC");
    if (env != NULL && env[0] != '\0') {
        snprintf(path_out, path_cap, "%s", env);
    } else {
        const char *home = getenv("HOME");
        if (home == NULL || home[0] == '\0')
            return 1;
        snprintf(path_out, path_cap, "%s/.netrc", home);
    }
    int fd = open(path_out, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        cli_error("cannot open %s: %s", path_out, strerror(errno));
        return CLI_EXIT_CONNECT;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        cli_error("cannot read %s: %s", path_out, strerror(errno));
        close(fd);
        return CLI_EXIT_CONNECT;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || st.st_uid != getuid()) {
        close(fd);
        if (st.st_uid != getuid())
            cli_error("%s belongs to another user (uid %ld): not using it for passwords; it "
                      "must be yours and private (chmod 600 %s)",
                      path_out, (long)st.st_uid, path_out);
        else
            cli_error("%s is %s by others (mode %04o): not using it for passwords; make it "
                      "private with: chmod 600 %s",
                      path_out, (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ? "writable" : "readable",
                      (unsigned)(st.st_mode & 07777), path_out);
        return CLI_EXIT_CONNECT;
    }
    cli_buf b = {0};
    int err = read_file(fd, &b);
    close(fd);
    if (err != 0) {
        cli_error("cannot read %s: %s", path_out,
                  err == EFBIG ? "larger than 1 MiB" : strerror(err));
        buf_wipe_free(&b);
        return CLI_EXIT_CONNECT;
    }
    /* machine NAME | default, then login/password/account pairs; macdef
     * bodies run to the next empty line (netrc(5)). The first entry that
     * fits wins; `default` only when no machine entry fits. */
    char tok[1024];
    const char *p = b.data;
    int state = 0; /* 0: outside, 1: a matching machine, 2: a machine that does not match,
                      3: default */
    char *cand_pw = NULL, *cand_login = NULL;
    char *def_pw = NULL, *def_login = NULL;
    int found = 0;
    for (;;) {
        long n = netrc_token(&p, tok, sizeof(tok));
        int end_entry = n < 0 || strcmp(tok, "machine") == 0 || strcmp(tok, "default") == 0;
        if (end_entry && (state == 1 || state == 3)) {
            int fits = cand_pw != NULL &&
                       (user == NULL || cand_login == NULL || strcmp(cand_login, user) == 0);
            if (fits && state == 1) {
                *password = cand_pw;
                *login = cand_login;
                cand_pw = cand_login = NULL;
                found = 1;
                break;
            }
            if (fits && state == 3 && def_pw == NULL) {
                def_pw = cand_pw;
                def_login = cand_login;
                cand_pw = cand_login = NULL;
            }
        }
        if (end_entry) {
            cli_secret_free(cand_pw);
            cli_strfree(cand_login);
            cand_pw = cand_login = NULL;
        }
        if (n < 0)
            break;
        if (strcmp(tok, "machine") == 0) {
            if (netrc_token(&p, tok, sizeof(tok)) < 0)
                break;
            state = strcasecmp(tok, host) == 0 ? 1 : 2;
        } else if (strcmp(tok, "default") == 0) {
            state = 3;
        } else if (strcmp(tok, "login") == 0 || strcmp(tok, "password") == 0 ||
                   strcmp(tok, "account") == 0) {
            int is_login = tok[0] == 'l', is_pw = tok[0] == 'p';
            if (netrc_token(&p, tok, sizeof(tok)) < 0)
                break;
            if (state == 1 || state == 3) {
                if (is_login) {
                    cli_strfree(cand_login);
                    cand_login = cli_strdup(tok);
                } else if (is_pw) {
                    cli_secret_free(cand_pw);
                    cand_pw = cli_strdup(tok);
                }
            }
        } else if (strcmp(tok, "macdef") == 0) {
            const char *e = strstr(p, "\n\n");
            p = e != NULL ? e + 2 : p + strlen(p);
            state = 0;
        }
    }
    cli_secret_free(cand_pw);
    cli_strfree(cand_login);
    if (!found && def_pw != NULL) {
        *password = def_pw;
        *login = def_login;
        def_pw = def_login = NULL;
        found = 1;
    }
    cli_secret_free(def_pw);
    cli_strfree(def_login);
    volatile char *v = tok;
    for (size_t i = 0; i < sizeof(tok); i++)
        v[i] = '\0';
    buf_wipe_free(&b);
    return found ? 0 : 1;
}
