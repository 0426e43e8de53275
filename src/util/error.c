/* SPDX-License-Identifier: MIT */
/*
 * Names and messages of the error codes, generated from IMK_ERROR_TABLE so
 * the enum, the names and the messages can never drift apart.
 */
#include "imapkit/common.h"

const char *imk_error_name(int code)
{
    switch (code) {
    case 0:
        return "IMK_OK";
#define IMK_X_NAME(name, value, message)                                                           \
    case value:                                                                                    \
        return #name;
        IMK_ERROR_TABLE(IMK_X_NAME)
#undef IMK_X_NAME
    default:
        return "IMK_E?";
    }
}

const char *imk_error_message(int code)
{
    switch (code) {
    case 0:
        return "success";
#define IMK_X_MESSAGE(name, value, message)                                                        \
    case value:                                                                                    \
        return message;
        IMK_ERROR_TABLE(IMK_X_MESSAGE)
#undef IMK_X_MESSAGE
    default:
        return "unknown error code";
    }
}

int imk_error_is_fatal(int code)
{
    return code <= IMK_EFATAL_BELOW;
}

const char *imk_version(void)
{
    return "0.1.0";
}
