#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `imapkit watch` against a private Dovecot (tests/integration/servers.sh
# dovecot-tunnel): a watcher runs in the background while a second
# connection (`imapkit shell` fed on standard input) appends, flags and
# expunges; the watcher must report each change, in order, as JSON that
# follows docs/schema/watch.schema.json (and as human lines). Also: NOTIFY
# and polling for several mailboxes, --count and --timeout, reconnection
# after the server is killed, giving up (exit 3) when it stays down, and the
# usage errors.
#
# Dovecot notices another connection's changes within about a second; the
# script waits for each expected line (up to $WAIT seconds) before making the
# next change, so that changes are not merged into one.
#
# Usage: tests/cli/test_cli_watch.sh PATH/TO/imapkit    (exit 77: no Dovecot)
set -u

# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"
cli_init watch "$@"
WAIT=${IMK_WATCH_WAIT:-20}
tunnel=$(cli_tunnel "$work/dv") || exit $?

# A message with RFC 2047 encoded From and Subject.
printf 'From: =?UTF-8?B?SsO2cmc=?= <jorg@example.org>\r\nTo: me@example.org\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from the test\r\nMessage-ID: <w1@example.org>\r\n\r\nHello\r\n' >"$work/msg.eml"
chmod 644 "$work/msg.eml"

# imk_shell LINES...: a second connection doing what the lines say.
imk_shell() {
    printf '%s\n' "$@" | "$imapkit" --tunnel "$tunnel" shell >>"$work/shell.out" 2>&1 ||
        fail "the second connection (imapkit shell) failed: $*"
}

# wait_exit PID: its exit status, or 124 after $WAIT seconds (then killed).
wait_exit() {
    local i
    for ((i = 0; i < WAIT * 10; i++)); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1"
            return $?
        fi
        sleep 0.1
    done
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 124
}

# Every line of FILE is a JSON object valid against the watch schema.
check_schema() {
    json_check --events schema "$1: output does not follow docs/schema/watch.schema.json" \
        "$1" watch.schema.json
}

# expect_events FILE PY-EXPR: python3 check on the list `ev` of objects.
expect_events() {
    json_check --events schema "$1: $2" "$1" - "$2"
}

# start_watch NAME READY-REGEX ARGS...: imapkit ARGS in the background,
# output in $work/NAME.{out,err}; sets $watch_pid; waits for its ready line.
start_watch() {
    local name=$1 ready=$2
    shift 2
    "$imapkit" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    watch_pid=$!
    bg_pids+=("$watch_pid")
    wait_for "$work/$name.out" "$ready" ||
        fail "$name (imapkit $*): no ready line: $(cat "$work/$name.out" "$work/$name.err")"
}

# watch_ends NAME STATUS: one check: the watcher started last ends with
# STATUS within $WAIT seconds (124: it did not end).
watch_ends() {
    local st
    ok
    wait_exit "$watch_pid"
    st=$?
    [ $st -eq "$2" ] || fail "watch $1: exit status $st, expected $2 (124: did not end): $(cat "$work/$1.err")"
}

# append_to MAILBOX: the second connection appends the test message.
append_to() {
    imk_shell "append $1 <$work/msg.eml"
}

# ---- usage errors: exit 2 before connecting ----------------------------------

for args in "--count 0" "--count x" "--timeout abc" "--timeout -1" "--retries 5000" "--bogus" \
    "--interval"; do
    ok
    # shellcheck disable=SC2086
    "$imapkit" --tunnel "$tunnel" watch $args >"$work/usage.out" 2>"$work/usage.err"
    st=$?
    [ $st -eq 2 ] || fail "watch $args: exit status $st, expected 2"
    grep -q "imapkit watch --help" "$work/usage.err" || fail "watch $args: no hint at --help"
done
ok
"$imapkit" watch --help >"$work/help.out" 2>&1 || fail "watch --help: exit status $?"
grep -q -- "--timeout SECONDS" "$work/help.out" || fail "watch --help does not describe --timeout"

# ---- a mailbox that does not exist: exit 1 with the server's text -----------

ok
"$imapkit" --tunnel "$tunnel" watch NoSuchBox --timeout 5 >"$work/nobox.out" 2>"$work/nobox.err"
st=$?
[ $st -eq 1 ] || fail "watch NoSuchBox: exit status $st, expected 1"
{ grep -q "NoSuchBox" "$work/nobox.err" && grep -qi "exist" "$work/nobox.err"; } ||
    fail "watch NoSuchBox: the message does not name the mailbox and the server's reason: $(cat "$work/nobox.err")"

# ---- one mailbox, JSON: new, flags, expunge in order; --count ends it --------

imk_shell 'create Archive' 'append INBOX <'"$work/msg.eml"
start_watch main '"event":"ready"' --tunnel "$tunnel" --json watch INBOX --timeout 120 --count 4
append_to INBOX
wait_for "$work/main.out" '"event":"new"' || fail "watch: no new event after APPEND"
imk_shell 'select INBOX' 'uid store 2 +flags (\Flagged)'
wait_for "$work/main.out" '"event":"flags".*Flagged' || fail "watch: no flags event after STORE"
imk_shell 'select INBOX' 'uid store 2 +flags (\Deleted)'
wait_for "$work/main.out" '"event":"flags".*Deleted' || fail "watch: no flags event for \\Deleted"
imk_shell 'select INBOX' 'uid expunge 2'
watch_ends main 0
check_schema "$work/main.out"
expect_events "$work/main.out" "[e['event'] for e in ev] == ['ready', 'new', 'flags', 'flags', 'expunge']"
expect_events "$work/main.out" "ev[0]['mode'] == 'idle' and ev[0]['mailboxes'] == ['INBOX'] and ev[0]['messages'] == 1"
expect_events "$work/main.out" "ev[1]['uid'] == 2 and ev[1]['mailbox'] == 'INBOX' and ev[1]['subject'] == 'Grüße from the test' and ev[1]['from'] == 'Jörg <jorg@example.org>'"
expect_events "$work/main.out" "ev[2]['uid'] == 2 and '\\\\Flagged' in ev[2]['flags'] and '\\\\Deleted' not in ev[2]['flags']"
expect_events "$work/main.out" "ev[3]['uid'] == 2 and '\\\\Deleted' in ev[3]['flags']"
expect_events "$work/main.out" "ev[4]['uid'] == 2 and ev[4]['seq'] == 2"

# ---- human form; --timeout ends it with status 0 -----------------------------

start_watch human 'ready +watching INBOX' --tunnel "$tunnel" watch --timeout 6
imk_shell 'append INBOX (\Seen) <'"$work/msg.eml"
wait_for "$work/human.out" 'INBOX +new' || fail "watch (human): no new line"
watch_ends human 0
ok
grep -Eq '^[0-9]{2}:[0-9]{2}:[0-9]{2}  INBOX  new +uid 3  Jörg <jorg@example.org>  "Grüße from the test"  \\Seen' "$work/human.out" ||
    fail "watch (human): the new message's line is not as documented: $(cat "$work/human.out")"

# ---- several mailboxes: NOTIFY, then polling ---------------------------------

# two_mailboxes NAME MODE ARGS...: a watcher on INBOX and Archive sees an
# APPEND to Archive as one status event (its --count 1 ends it).
two_mailboxes() {
    local name=$1 mode=$2
    shift 2
    start_watch "$name" '"event":"ready"' --tunnel "$tunnel" --json watch INBOX Archive "$@" --timeout 60 --count 1
    append_to Archive
    watch_ends "$name" 0
    check_schema "$work/$name.out"
    expect_events "$work/$name.out" "[e['event'] for e in ev] == ['ready', 'status'] and ev[0]['mode'] == '$mode'"
}
two_mailboxes notify notify
expect_events "$work/notify.out" "ev[1]['mailbox'] == 'Archive' and ev[1]['messages'] == 1 and ev[1]['uidnext'] == 2"
two_mailboxes poll poll --no-notify --interval 0.5
expect_events "$work/poll.out" "ev[1]['mailbox'] == 'Archive' and ev[1]['messages'] == 2 and ev[1]['unseen'] == 2"

# ---- the server is killed: reconnect, and report what arrived ----------------

# The tunnel notes its process id (exec keeps it: the IMAP server's), so the
# test can kill the very server process the watcher talks to; while the file
# "down" exists it refuses to start.
pids=$work/tunnel.pids
wrapped="if [ -e '$work/down' ]; then echo 'server is down for the test' >&2; exit 1; fi; echo \$\$ >>'$pids'; $tunnel"

start_watch recon '"event":"ready"' --tunnel "$wrapped" --json watch --timeout 60 --count 1
kill "$(tail -n 1 "$pids")"
wait_for "$work/recon.out" '"event":"reconnected"' || fail "watch: no reconnected event after the server was killed: $(cat "$work/recon.err")"
append_to INBOX
watch_ends recon 0
check_schema "$work/recon.out"
expect_events "$work/recon.out" "[e['event'] for e in ev if e['event'] != 'notice'] == ['ready', 'disconnected', 'reconnected', 'new'] and ev[-1]['uid'] == 4"

# A message that arrives while the connection is down is reported after it.
start_watch gap '"event":"ready"' --tunnel "$wrapped" --json watch --timeout 60 --count 1 --retries 10
touch "$work/down"
kill "$(tail -n 1 "$pids")"
wait_for "$work/gap.out" '"event":"disconnected"' || fail "watch (gap): no disconnected event"
append_to INBOX
rm -f "$work/down"
watch_ends gap 0
check_schema "$work/gap.out"
expect_events "$work/gap.out" "[e['event'] for e in ev if e['event'] not in ('notice',)][-2:] == ['reconnected', 'new'] and ev[-1]['uid'] == 5"

# The server stays down: after --retries attempts, exit 3.
start_watch giveup 'ready' --tunnel "$wrapped" watch --timeout 60 --retries 2
touch "$work/down"
kill "$(tail -n 1 "$pids")"
watch_ends giveup 3
ok
grep -q "gave up after 2 reconnection attempts" "$work/giveup.err" ||
    fail "watch with the server down: no 'gave up' message: $(cat "$work/giveup.err")"
grep -q "server is down for the test" "$work/giveup.err" ||
    fail "watch with the server down: the tunnel's own message is not shown"
rm -f "$work/down"

cli_finish test_cli_watch
