/* SPDX-License-Identifier: MIT */
/*
 * imapkit/common.h - types shared by every part of imapkit: the allocator
 * hook, byte strings, and the error codes.
 *
 * Conventions (see STYLE.md):
 *   - functions return 0 or a positive count on success and a negative
 *     IMK_E* code on failure;
 *   - errors at or below IMK_EFATAL_BELOW mean the object that returned them
 *     is unusable and must be freed;
 *   - the human-readable detail of an error lives on the object that failed,
 *     never in a global.
 */
#ifndef IMAPKIT_COMMON_H
#define IMAPKIT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(IMK_BUILDING_LIBRARY) && defined(__GNUC__)
#define IMK_API __attribute__((visibility("default")))
#else
#define IMK_API
#endif

/*
 * Allocator hooks. Every object takes one at creation; NULL means the C
 * library's malloc/realloc/free. `realloc` must behave like C realloc
 * (ptr NULL = allocate); `free` of NULL must be harmless. `user` is passed
 * back unchanged. An allocator may fail (return NULL) at any time: imapkit
 * then returns IMK_ENOMEM and leaks nothing.
 */
typedef struct imk_allocator {
    void *(*malloc)(size_t size, void *user);
    void *(*realloc)(void *ptr, size_t size, void *user);
    void (*free)(void *ptr, void *user);
    void *user;
} imk_allocator;

/*
 * A byte string that is not owned by the holder. Always use `len`: `data`
 * usually points straight into a parsed response and is NOT NUL-terminated,
 * and it may contain NUL bytes itself (literals, binary literals). For an
 * nstring, NIL is `data == NULL`, `len == 0`.
 */
typedef struct imk_str {
    const char *data;
    size_t len;
} imk_str;

/*
 * The error table: X(name, value, message). Values above IMK_EFATAL_BELOW
 * are recoverable for the object that returned them; values at or below it
 * leave the object unusable.
 */
#define IMK_ERROR_TABLE(X)                                                                         \
    X(IMK_EINVAL, -1, "invalid argument")                                                          \
    X(IMK_EAGAIN, -2, "no room in the input buffer: call next() to consume events first")          \
    X(IMK_ELIMIT, -3, "a configured limit was exceeded")                                           \
    X(IMK_EPARSE, -4, "malformed data")                                                            \
    X(IMK_ERANGE, -5, "number out of range")                                                       \
    X(IMK_EUTF8, -6, "invalid UTF-8")                                                              \
    X(IMK_EUTF7, -7, "invalid modified UTF-7")                                                     \
    X(IMK_ESTATE, -8, "call not allowed in the current state")                                     \
    X(IMK_ENOTSUP, -9, "not supported by the server's capabilities")                               \
    X(IMK_ECLOSED, -10,                                                                            \
      "the connection closed (or the server said BYE) before the command completed")               \
    X(IMK_EAUTH, -11, "authentication failed")                                                     \
    X(IMK_ESECURITY, -12,                                                                          \
      "refused: it would weaken security (cleartext password, STARTTLS not offered, ...)")         \
    X(IMK_EBUSY, -13, "the connection is busy: a blocking call cannot run inside a callback")      \
    X(IMK_EFATAL_BELOW, -100, "(boundary of the fatal error range)")                               \
    X(IMK_ENOMEM, -101, "out of memory")                                                           \
    X(IMK_EPROTO, -102, "protocol framing lost: the stream cannot be resynchronised")              \
    X(IMK_ETIMEDOUT, -103, "timed out: the server did not answer before the deadline")             \
    X(IMK_ENET, -104, "the network connection failed (connect, read, write or tunnel)")            \
    X(IMK_ETLS, -105, "TLS failed (handshake or certificate verification)")

typedef enum imk_error {
#define IMK_X_ENUM(name, value, message) name = value,
    IMK_ERROR_TABLE(IMK_X_ENUM)
#undef IMK_X_ENUM
        IMK_OK = 0
} imk_error;

/* The symbolic name of an error code ("IMK_ELIMIT"), or "IMK_OK" for 0, or
 * "IMK_E?" for an unknown code. Never NULL; the string is static. */
IMK_API const char *imk_error_name(int code);

/* A one-line English description of an error code. Never NULL; static. */
IMK_API const char *imk_error_message(int code);

/* Nonzero when `code` leaves the object that returned it unusable. */
IMK_API int imk_error_is_fatal(int code);

/* The library version as "MAJOR.MINOR.PATCH"; static. */
IMK_API const char *imk_version(void);

#ifdef __cplusplus
}
#endif

#endif
