# SPDX-License-Identifier: MIT
# examples/libuv.cmake - what the event-loop examples need beyond the library,
# and their test against a real server.
#
# Included by CMakeLists.txt after the example_<name> targets exist:
#   - example_uv_fetch links libuv (the adapter, include/imapkit/adapter_libuv.h,
#     is header-only: the library itself never links libuv);
#   - the CTest `examples_dovecot` (label "real") runs example_poll_multi (three
#     connections, one poll() loop) and example_uv_fetch (libuv adapter) against
#     Dovecot's preauthenticated imap binary over a tunnel, on a Maildir of 25
#     messages written here, and checks what they print: every connection
#     fetched 25 messages, the body bytes add up.
#
# The test is this same file run as a script (cmake -P), so it needs no shell
# script of its own. CMake 3.25 cannot choose a script's exit status, so a
# server that cannot be started here (servers.sh exit 77) prints
# "examples_dovecot: SKIPPED" and the test is marked skipped through
# SKIP_REGULAR_EXPRESSION; with IMK_IT_REQUIRED=1 in the environment (CI) that
# is a failure instead, as for the other real-server tests.

if(CMAKE_SCRIPT_MODE_FILE)
    # ---- test mode: cmake -DPOLL_MULTI=... -DUV_FETCH=... -DSOURCE_DIR=...
    #      -DWORK_DIR=... -P examples/libuv.cmake
    set(n_messages 25)
    file(REMOVE_RECURSE "${WORK_DIR}")
    file(MAKE_DIRECTORY "${WORK_DIR}/Maildir/cur" "${WORK_DIR}/Maildir/new"
        "${WORK_DIR}/Maildir/tmp")
    foreach(i RANGE 1 ${n_messages})
        string(REPEAT "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" ${i} filler)
        file(WRITE "${WORK_DIR}/Maildir/cur/${i}.examples:2,S"
            "From: Example Sender <sender@example.org>\n"
            "To: me@example.org\n"
            "Subject: event-loop example message ${i}\n"
            "Date: Mon, 1 Jan 2024 10:00:00 +0000\n"
            "Message-ID: <${i}.examples@example.org>\n"
            "\n"
            "${filler}")
    endforeach()

    execute_process(
        COMMAND bash "${SOURCE_DIR}/tests/integration/servers.sh" dovecot-tunnel "${WORK_DIR}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE tunnel ERROR_VARIABLE err
        OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(rc EQUAL 77)
        if("$ENV{IMK_IT_REQUIRED}" STREQUAL "1")
            message(FATAL_ERROR "examples_dovecot: no Dovecot here (IMK_IT_REQUIRED=1): ${err}")
        endif()
        message("examples_dovecot: SKIPPED: ${err}")
        return()
    elseif(NOT rc EQUAL 0 OR tunnel STREQUAL "")
        message(FATAL_ERROR "examples_dovecot: servers.sh dovecot-tunnel failed (${rc}): ${err}")
    endif()

    # Three connections driven by one poll() loop.
    execute_process(
        COMMAND "${POLL_MULTI}" --tunnel "${tunnel}" --tunnel "${tunnel}" --tunnel "${tunnel}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
    message("---- example_poll_multi (exit ${rc})\n${out}${err}")
    string(REGEX MATCHALL "fetched ${n_messages} messages, [0-9]+ bytes" fetched "${out}")
    list(LENGTH fetched n_fetched)
    if(NOT rc EQUAL 0 OR NOT n_fetched EQUAL 3
            OR NOT out MATCHES "poll_multi: 3 of 3 connections did every step")
        message(FATAL_ERROR "examples_dovecot: example_poll_multi: expected 3 connections "
            "to fetch ${n_messages} messages each and exit 0")
    endif()
    # The three saw the same mailbox: the same byte total each time.
    list(REMOVE_DUPLICATES fetched)
    list(LENGTH fetched n_distinct)
    if(NOT n_distinct EQUAL 1)
        message(FATAL_ERROR "examples_dovecot: the connections disagree: ${fetched}")
    endif()

    # One connection on a libuv loop through the adapter.
    execute_process(
        COMMAND "${UV_FETCH}" --tunnel "${tunnel}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
    message("---- example_uv_fetch (exit ${rc})\n${out}${err}")
    if(NOT rc EQUAL 0 OR NOT out MATCHES "uv_fetch: fetched ${n_messages} messages, [0-9]+ body bytes")
        message(FATAL_ERROR "examples_dovecot: example_uv_fetch: expected ${n_messages} "
            "messages and exit 0")
    endif()
    # The bodies (CRLF) are what poll_multi's RFC822.SIZE total announced.
    string(REGEX MATCH "fetched ${n_messages} messages, ([0-9]+) body bytes" m "${out}")
    set(body_bytes "${CMAKE_MATCH_1}")
    if(NOT fetched MATCHES ", ${body_bytes} bytes")
        message(FATAL_ERROR "examples_dovecot: uv_fetch got ${body_bytes} body bytes, "
            "poll_multi's RFC822.SIZE total says: ${fetched}")
    endif()
    file(REMOVE_RECURSE "${WORK_DIR}")
    message("examples_dovecot: passed")
    return()
endif()

# ---- build mode (included by CMakeLists.txt) ----------------------------------------

if(TARGET example_uv_fetch)
    pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
    target_link_libraries(example_uv_fetch PRIVATE PkgConfig::LIBUV)
endif()

if(TARGET example_poll_multi AND TARGET example_uv_fetch)
    imk_add_test(examples_dovecot "${CMAKE_COMMAND}"
        "-DPOLL_MULTI=$<TARGET_FILE:example_poll_multi>"
        "-DUV_FETCH=$<TARGET_FILE:example_uv_fetch>"
        "-DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}"
        "-DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/examples/dovecot-test"
        -P "${CMAKE_CURRENT_LIST_FILE}")
    set_tests_properties(examples_dovecot PROPERTIES
        LABELS real
        TIMEOUT 180
        SKIP_REGULAR_EXPRESSION "examples_dovecot: SKIPPED")
endif()
