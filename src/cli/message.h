/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the message commands (cmd_message.c: search, fetch,
 * cat, flag, copy, move, expunge; cmd_append.c: append). Defined in
 * cmd_message.c.
 */
#ifndef IMK_CLI_MESSAGE_H
#define IMK_CLI_MESSAGE_H

#include "ctx.h"
#include "xalloc.h"

#include <stddef.h>
#include <stdint.h>

/* 1 when argv[1..] holds -h or --help before any "--". */
int cli_msg_help_asked(int argc, char **argv);
/* Print a command's help (its usage text, then the global options) on
 * standard output: 0 or CLI_EXIT_IO. */
int cli_msg_help(const char *usage);

/* 1 when `s` is a sequence set (RFC 9051 section 9, sequence-set): numbers
 * 1..4294967295 without leading zeros, "*", ranges a:b, joined by ",". */
int cli_msg_set_valid(const char *s);

/* The UIDs of a set from a response (APPENDUID, COPYUID), range by range
 * in the server's order, each range from low to high; at most `cap`
 * written. Returns the total count (saturating at SIZE_MAX). A range with
 * "*" (0) counts as the one number it names. */
size_t cli_msg_seqset_expand(imk_seqset s, uint32_t *out, size_t cap);

/* Append sorted, distinct UIDs as a compact set: "1:3,7,9:10". 0 or -1. */
int cli_msg_uids_to_set(const uint32_t *uids, size_t n, cli_buf *out);

/* A flag as it is sent: a system flag given with or without its backslash
 * in any case ("seen", "\\Seen" -> "\\Seen"; static) or a keyword atom
 * (returned as given); NULL when it is neither or cannot be stored
 * (\\Recent, other backslash flags, atom-specials). */
const char *cli_msg_flag_name(const char *s);

/* Write to standard output; on failure print "cannot write to standard
 * output" once and return CLI_EXIT_IO, else 0. */
int cli_msg_write(const void *data, size_t len);

#endif
