/* SPDX-License-Identifier: MIT */
/*
 * The encoder's internal entry points, for the session layer. The public
 * builder is in imapkit/command.h; this adds what needs internal types.
 */
#ifndef IMK_PROTO_ENCODER_H
#define IMK_PROTO_ENCODER_H

#include "imapkit/command.h"
#include "util/seqset.h"

/*
 * Append a sequence set in its compact text form ("1:3,5", or "$" when the
 * set is the saved search result). `set` is borrowed. Returns 0, IMK_EINVAL
 * (empty set or NULL), IMK_ESTATE, IMK_ELIMIT, IMK_ENOMEM, or the error of an
 * earlier failure, like every appender of imapkit/command.h.
 */
int imk__command_seqset(imk_command *cmd, const imk__seqset *set);

#endif
