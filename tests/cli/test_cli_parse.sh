#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Tests of the `imapkit` tool as a user runs it: options, exit statuses,
# messages, and that every line it prints on standard output is one valid
# JSON object (checked with python3's json module; jq is not required).
#
# Usage: tests/cli/test_cli_parse.sh PATH/TO/imapkit
# Run from the source directory (CTest does), or set IMK_SOURCE_DIR.
#
# Exit statuses under test (docs/imapkit.1):
#   0 all responses parsed, 1 some malformed, 2 usage error, 4 I/O error.
set -u

# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"
cli_init parse "$@"

# run (lib.sh) takes standard input from $stdin_file (default /dev/null).

# Every stdout line of NAME is a JSON object (no schema; empty output is
# fine).
expect_json_lines() {
    json_check --events schema --empty-ok "$1: stdout is not JSON Lines" "$work/$1.out" -
}

expect_lines() {
    local name=$1 want=$2
    checks=$((checks + 1))
    local got
    got=$(wc -l <"$work/$name.out")
    [ "$got" -eq "$want" ] || fail "$name: $got output lines, expected $want"
}

# ---- global options --------------------------------------------------------

run help 0 --help && out_has help "Usage: imapkit" &&
    out_has help "parse"
run help_short 0 -h
run version 0 --version && {
    checks=$((checks + 1))
    grep -q -E '^imapkit [0-9]+\.[0-9]+\.[0-9]+$' "$work/version.out" ||
        fail "version: unexpected output: $(cat "$work/version.out")"
}
run no_command 2 && err_has no_command "imapkit: " &&
    err_has no_command "--help"
run unknown_command 2 frobnicate && err_has unknown_command "frobnicate"
run unknown_global_option 2 --frobnicate &&
    err_has unknown_global_option "--frobnicate"

# ---- parse: usage ----------------------------------------------------------

run parse_help 0 parse --help && out_has parse_help "Usage: imapkit parse" &&
    out_has parse_help "--strict"
run parse_bad_option 2 parse --frobnicate &&
    err_has parse_bad_option "unknown option '--frobnicate'" &&
    err_has parse_bad_option "imapkit parse --help"
run parse_two_files 2 parse a.txt b.txt && err_has parse_two_files "too many"
run parse_max_body_missing 2 parse --max-body
run parse_max_body_bad 2 parse --max-body 12X && err_has parse_max_body_bad "12X"
run parse_max_body_zero 2 parse --max-body=0

# ---- parse: I/O errors -------------------------------------------------------

run parse_missing_file 4 parse "$work/no-such-file.txt" &&
    err_has parse_missing_file "$work/no-such-file.txt" &&
    err_has parse_missing_file "No such file or directory"
run parse_directory 4 parse "$work"
checks=$((checks + 1))
if [ -e /dev/full ]; then
    printf '* 1 EXISTS\r\n' >"$work/one.txt"
    "$imapkit" parse "$work/one.txt" >/dev/full 2>"$work/full.err"
    status=$?
    [ "$status" -eq 4 ] || fail "write to /dev/full: exit status $status, expected 4"
fi

# ---- parse: well-formed input --------------------------------------------------

sample="$src/samples/dovecot-session.txt"
run parse_sample 0 parse "$sample" && expect_json_lines parse_sample &&
    stderr_empty parse_sample
checks=$((checks + 1))
[ -s "$work/parse_sample.out" ] || fail "parse_sample: no output"

stdin_file=$sample
run parse_stdin 0 parse && expect_json_lines parse_stdin
run parse_stdin_dash 0 parse - && expect_json_lines parse_stdin_dash
stdin_file=/dev/null
checks=$((checks + 1))
cmp -s "$work/parse_sample.out" "$work/parse_stdin.out" ||
    fail "parse from stdin differs from parse FILE"

run parse_empty 0 parse /dev/null && expect_lines parse_empty 0

# Body data: kept, sizes only, truncated.
printf '* 1 FETCH (UID 7 BODY[] {11}\r\nhello world)\r\nA1 OK done\r\n' >"$work/body.txt"
run body 0 parse "$work/body.txt" && expect_json_lines body &&
    out_has body '"data":"hello world"' && expect_lines body 2
run body_nodata 0 parse --no-body-data "$work/body.txt" &&
    out_has body_nodata '"size":11' && {
    checks=$((checks + 1))
    ! grep -q '"data"' "$work/body_nodata.out" || fail "body_nodata: data printed"
}
run body_truncated 0 parse --max-body 5 "$work/body.txt" &&
    out_has body_truncated '"truncated":true' && {
    checks=$((checks + 1))
    ! grep -q 'hello' "$work/body_truncated.out" || fail "body_truncated: data printed"
}
run body_max_k 0 parse --max-body=1K "$work/body.txt" &&
    out_has body_max_k '"data":"hello world"'

# Bytes that are not UTF-8 come out as base64.
printf '* 1 FETCH (BODY[] {3}\r\n\xff\xfe\x00)\r\n' >"$work/binary.txt"
run binary 0 parse "$work/binary.txt" && expect_json_lines binary &&
    out_has binary '{"base64":"//4A"}'

# ---- parse: malformed input ------------------------------------------------------

printf '* 1 FETCH (UID)\r\nA1 OK still parsing\r\n' >"$work/bad.txt"
run malformed 1 parse "$work/bad.txt" && expect_json_lines malformed &&
    expect_lines malformed 2 && out_has malformed '"error":' &&
    out_has malformed '"offset":' &&
    out_has malformed '"tag":"A1"' &&
    err_has malformed "1 malformed response"

# --strict turns quirks into errors.
printf '* STATUS Inbox (MESSAGES 1) \r\n' >"$work/quirk.txt"
run quirk_default 0 parse "$work/quirk.txt" &&
    out_has quirk_default '"quirks":["trailing-space"]'
run quirk_strict 1 parse --strict "$work/quirk.txt" &&
    out_has quirk_strict '"error":'

# A response cut off by the end of the input is reported.
printf '* 1 FETCH (BODY[] {100}\r\nshort' >"$work/cut.txt"
run cut 1 parse "$work/cut.txt" && expect_json_lines cut

# A THREAD chain of 12,000 messages (the server controls its length): the JSON
# nests by branch, not by chain member, so ordinary JSON readers with recursion
# limits (Python's is 1,000) read it.
python3 -c 'import sys; sys.stdout.write("* THREAD (" + " ".join(str(i) for i in range(1, 12001)) + ")(1 (2)(3))\r\n")' \
    >"$work/thread.txt"
run thread_chain 0 parse "$work/thread.txt" && expect_json_lines thread_chain && {
    checks=$((checks + 1))
    python3 -c '
import json, sys
t = json.loads(open(sys.argv[1]).read())["threads"]
assert len(t) == 2 and len(t[0]) == 12000 and t[0][-1] == 12000, "chain"
assert t[1] == [1, [2], [3]], t[1]
' "$work/thread_chain.out" || fail "thread_chain: wrong shape"
}

cli_finish test_cli_parse
