/* SPDX-License-Identifier: MIT */
/*
 * `imapkit parse`: IMAP server output in, JSON Lines out.
 *
 *     imapkit parse [--strict] [--no-body-data] [--max-body BYTES] [FILE|-]
 *
 * The input (a file, or standard input) is read in 64 KiB chunks and fed to
 * an imk_reader with default options; every event goes through the JSON
 * collector (json.c), which prints one object per response or malformed
 * response. Memory stays bounded by the reader's limits plus, per FETCH, the
 * streamed body sections kept for printing (each at most --max-body bytes;
 * larger ones are printed as their size with "truncated": true).
 *
 * The exit status says what happened (cli.h): 0 all responses parsed,
 * 1 some were malformed (each printed as an {"error": ...} object),
 * 2 usage error, 4 input/output error or out of memory.
 */
#define _POSIX_C_SOURCE 200809L /* open, read */

#include "cli.h"
#include "json.h"

#include "imapkit/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SEE_HELP "imapkit parse --help"
#define READ_CHUNK (64 * 1024)

static const char parse_usage[] =
    "Usage: imapkit parse [OPTIONS] [FILE|-]\n"
    "\n"
    "Read IMAP server output (the bytes a server sends: responses, literals,\n"
    "CRLF line ends) from FILE, or standard input when FILE is '-' or absent,\n"
    "and print each response as one JSON object per line (JSON Lines).\n"
    "A malformed response is printed as {\"error\": ...} and parsing goes on.\n"
    "\n"
    "Options:\n"
    "  --strict           accept no deviation from the IMAP grammar (turns off\n"
    "                     every quirk; see QUIRKS in imapkit(1))\n"
    "  --no-body-data     print only the sizes of body sections, not their bytes\n"
    "  --max-body BYTES   print body sections up to BYTES long (default 16M);\n"
    "                     longer ones are printed as their size with\n"
    "                     \"truncated\": true. Suffixes K, M, G (powers of 1024).\n"
    "  -h, --help         show this help and exit\n"
    "\n"
    "Exit status: 0 all responses parsed, 1 some were malformed, 2 usage error,\n"
    "4 input/output error. The output schema is described in imapkit(1) and\n"
    "docs/json-schema.md.\n";

/* Parse BYTES: digits with an optional K/M/G suffix; 0 on success. */
static int parse_size(const char *text, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = text;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    unsigned shift = 0;
    if (*p == 'k' || *p == 'K')
        shift = 10;
    else if (*p == 'm' || *p == 'M')
        shift = 20;
    else if (*p == 'g' || *p == 'G')
        shift = 30;
    if (shift != 0)
        p++;
    if (*p != '\0')
        return -1;
    if (shift != 0 && v > (UINT64_MAX >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

typedef struct parse_args {
    int strict;
    cli_json_options json;
    const char *path; /* NULL or "-" for standard input */
} parse_args;

/* 0, 1 (help printed: exit 0), or CLI_EXIT_USAGE after a message. */
static int parse_arguments(int argc, char **argv, parse_args *a)
{
    int only_operands = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_operands && arg[0] == '-' && arg[1] != '\0') {
            if (strcmp(arg, "--") == 0) {
                only_operands = 1;
            } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
                return 1;
            } else if (strcmp(arg, "--strict") == 0) {
                a->strict = 1;
            } else if (strcmp(arg, "--no-body-data") == 0) {
                a->json.no_body_data = 1;
            } else if (strcmp(arg, "--max-body") == 0 || strncmp(arg, "--max-body=", 11) == 0) {
                const char *value;
                if (arg[10] == '=') {
                    value = arg + 11;
                } else if (i + 1 < argc) {
                    value = argv[++i];
                } else {
                    return cli_usage_error(SEE_HELP, "option '--max-body' needs a value (BYTES)");
                }
                if (parse_size(value, &a->json.max_body) != 0 || a->json.max_body == 0)
                    return cli_usage_error(SEE_HELP,
                                           "invalid --max-body value '%s': expected a positive "
                                           "number of bytes, optionally with K, M or G",
                                           value);
            } else {
                return cli_usage_error(SEE_HELP, "unknown option '%s'", arg);
            }
            continue;
        }
        if (a->path != NULL)
            return cli_usage_error(SEE_HELP, "too many arguments: '%s' after '%s' (one FILE only)",
                                   arg, a->path);
        a->path = arg;
    }
    return 0;
}

static int print_line(const json_t *obj, void *user)
{
    return cli_json_write_line(user, obj);
}

int cli_cmd_parse(int argc, char **argv)
{
    parse_args a;
    memset(&a, 0, sizeof(a));
    int rc = parse_arguments(argc, argv, &a);
    if (rc == 1) {
        if (fputs(parse_usage, stdout) == EOF || fflush(stdout) != 0) {
            cli_error("cannot write to standard output");
            return CLI_EXIT_IO;
        }
        return CLI_EXIT_OK;
    }
    if (rc != 0)
        return rc;

    int use_stdin = a.path == NULL || strcmp(a.path, "-") == 0;
    const char *name = use_stdin ? "standard input" : a.path;
    int fd = STDIN_FILENO;
    if (!use_stdin) {
        fd = open(a.path, O_RDONLY);
        if (fd < 0) {
            cli_error("cannot open '%s': %s", a.path, strerror(errno));
            return CLI_EXIT_IO;
        }
    }

    imk_reader_options ro;
    memset(&ro, 0, sizeof(ro));
    ro.version = IMK_READER_OPTIONS_VERSION;
    if (a.strict)
        ro.quirks = IMK_READER_STRICT;
    imk_reader *reader = NULL;
    rc = imk_reader_new(&ro, NULL, &reader);
    if (rc != 0) {
        cli_error("cannot create the reader: %s", imk_error_message(rc));
        if (!use_stdin)
            close(fd);
        return CLI_EXIT_IO;
    }

    cli_json_collector collector;
    cli_json_collector_init(&collector, &a.json, print_line, stdout);

    /* read() rather than stdio, so that output follows input as it arrives
     * (a live session piped in), one chunk at a time. */
    static char chunk[READ_CHUNK];
    int status = CLI_EXIT_OK;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (use_stdin)
                cli_error("cannot read standard input: %s", strerror(errno));
            else
                cli_error("cannot read '%s': %s", a.path, strerror(errno));
            status = CLI_EXIT_IO;
            break;
        }
        if (n > 0)
            rc = cli_json_feed(&collector, reader, chunk, (size_t)n);
        else
            rc = cli_json_finish(&collector, reader);
        if (rc == 0 && fflush(stdout) != 0)
            rc = CLI_JSON_ESINK;
        if (rc == CLI_JSON_ESINK) {
            cli_error("cannot write to standard output: %s", strerror(errno));
            status = CLI_EXIT_IO;
            break;
        }
        if (rc == CLI_JSON_ENOMEM || rc == IMK_ENOMEM) {
            cli_error("out of memory");
            status = CLI_EXIT_IO;
            break;
        }
        if (rc < 0) {
            /* Fatal for the reader (framing lost): already printed as an
             * {"error", "fatal": true} object; say it for humans too. */
            const char *detail = imk_reader_error(reader);
            cli_error("%s: %s; stopped", name, detail[0] != '\0' ? detail : imk_error_message(rc));
            status = CLI_EXIT_MALFORMED;
            break;
        }
        if (n == 0)
            break;
    }

    if (status == CLI_EXIT_OK && collector.errors != 0) {
        status = CLI_EXIT_MALFORMED;
        cli_error("%s: %" PRIu64 " malformed response%s", name, collector.errors,
                  collector.errors == 1 ? "" : "s");
    }
    cli_json_collector_free(&collector);
    imk_reader_free(reader);
    if (!use_stdin)
        close(fd);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write to standard output");
        return CLI_EXIT_IO;
    }
    return status;
}
