#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `imapkit shell` against a private Dovecot (tests/integration/servers.sh
# dovecot-tunnel), through both of its input paths:
#
#   - standard input is a pipe: a feeder writes one command at a time and
#     waits for its tagged answer in the output before the next, while a
#     second connection changes the mailbox in between; checked: the tags
#     and statuses, data as JSON lines, [view] and [unsolicited] marking,
#     IDLE ended by the next line, a non-ASCII quoted argument (sent as a
#     literal), CR LF inside quotes (one literal argument, never a second
#     command), the shell's own errors, LOGOUT at the end of input; the
#     same in --json mode (every line JSON, events per
#     docs/schema/event.schema.json);
#   - a terminal (tmux): line editing, history recall with Up, .help,
#     `idle` ended with Enter, Ctrl-D, the history file. Skipped with a
#     message when tmux cannot start.
#
# Usage: tests/cli/test_cli_shell.sh PATH/TO/imapkit    (exit 77: no Dovecot)
set -u

# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"
cli_init shell "$@"
WAIT=${IMK_SHELL_WAIT:-20}
tmux_sock=$work/tmux.sock
# shellcheck disable=SC2317 # called by cli_cleanup (lib.sh) at exit
cli_cleanup_hook() {
    if [ -S "$tmux_sock" ]; then
        tmux -S "$tmux_sock" kill-server 2>/dev/null
    fi
}
tunnel=$(cli_tunnel "$work/dv") || exit $?

printf 'From: a@example.org\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <s1@example.org>\r\n\r\nHello\r\n' >"$work/msg.eml"
chmod 644 "$work/msg.eml"

# A second connection doing what the lines say.
# (Also called from the feeders' subshells: failures are noted in a file.)
other() {
    printf '%s\n' "$@" | "$imapkit" --tunnel "$tunnel" shell >>"$work/other.out" 2>&1 ||
        echo "the second connection failed: $*" >>"$work/other.fail"
}

expect_line() { # FILE REGEX WHAT
    ok
    grep -Eq -- "$2" "$1" || fail "$3 (no line matching /$2/ in $(basename "$1"))"
}

other 'create Archive' "append INBOX <$work/msg.eml"

# ---- arguments -----------------------------------------------------------------

ok
"$imapkit" shell --help >"$work/help.out" 2>&1 || fail "shell --help: exit status $?"
grep -q -- "--no-history" "$work/help.out" || fail "shell --help does not describe --no-history"
for args in "extra" "--bogus"; do
    ok
    "$imapkit" --tunnel "$tunnel" shell $args </dev/null >"$work/usage.out" 2>"$work/usage.err"
    st=$?
    [ $st -eq 2 ] || fail "shell $args: exit status $st, expected 2"
done

# ---- piped commands, human form -------------------------------------------------

out=$work/pipe.out
err=$work/pipe.err
trace=$work/pipe.trace
# feed: each step writes a line and waits for the answer it names
feed() {
    step() { # LINE REGEX
        printf '%s\n' "$1"
        wait_for "$out" "$2" || echo "feeder: timed out waiting for /$2/ after: $1" >>"$work/feeder.err"
    }
    step 'select INBOX' '^A1 OK \[READ-WRITE\]'
    step 'uid search charset utf-8 subject "Grüße"' '^A2 '
    other "append INBOX <$work/msg.eml" 'select INBOX' 'uid store 1 +flags (\Flagged)'
    step 'noop' '^A3 '
    step 'idle' '^\+ idling'
    other "append INBOX <$work/msg.eml"
    wait_for "$out" '^\[view\] 3 messages' || echo "feeder: no [view] line during IDLE" >>"$work/feeder.err"
    step '' '^\+ done'
    step 'uid search subject "x\r\nA998 DELETE Archive"' '^A5 '
    step 'select "INBOX\r\nA999 DELETE Archive"' '^A6 '
    step 'list "" Archive' '^A7 '
    step 'select INBOX' '^A8 '
    step 'uid fetch 1 (flags body.peek[header.fields (subject)])' '^A9 '
    step 'append INBOX (\Seen) "Subject: typed\r\n\r\nbody\r\n"' '^A10 '
    step "append Archive <$work/msg.eml" '^A11 '
    # the shell's own errors: nothing is sent, the session goes on
    printf '%s\n' 'fetch 1 {5}' 'frobnicate 1' 'login user secret' '.bogus' 'select (' \
        'uid fetch 1 (flags' 'select "unterminated' 'search subject "a\q"'
    step 'status Archive (messages)' '^A12 '
    step '.view' '^\[view\] permanent'
    # end of input: LOGOUT
}
feed | "$imapkit" --tunnel "$tunnel" --trace="$trace" shell >"$out" 2>"$err"
st=$?
ok
[ $st -eq 0 ] || fail "shell (piped): exit status $st: $(cat "$err")"
ok
[ ! -s "$work/feeder.err" ] || fail "$(cat "$work/feeder.err")"

expect_line "$out" '^A1 OK \[READ-WRITE\] ' "SELECT: its tagged OK with the code"
expect_line "$out" '^\[view\] 1 message \(was 0\)$' "SELECT: the view's EXISTS marked [view]"
expect_line "$out" '^\* \{"name":"SEARCH","numbers":\[1\]\}$' "SEARCH with a non-ASCII argument: message 1 found"
expect_line "$trace" '^C: A2 UID SEARCH charset utf-8 subject \{7\+\}' "the non-ASCII quoted argument was not sent as a literal"
expect_line "$out" '^\[view\] 2 messages \(was 1\)$' "NOOP: another connection's APPEND not shown as [view]"
expect_line "$out" '^\[unsolicited\] \* 1 FETCH \(.*FLAGS \(.*\\Flagged' "NOOP: another connection's STORE not shown as [unsolicited]"
# (the shell has not fetched UIDs: the view knows message 1 by its number)
expect_line "$out" '^\[view\] message 1 flags: .*\\Flagged' "NOOP: the view's flag change not marked [view]"
expect_line "$out" '^A3 OK ' "NOOP's tagged OK"
ok
python3 - "$out" <<'PY' || fail "IDLE: the [view] line must come between '+ idling' and '+ done'"
import sys
lines = open(sys.argv[1], encoding='utf-8').read().splitlines()
i = next(n for n, l in enumerate(lines) if l.startswith('+ idling'))
j = next(n for n, l in enumerate(lines) if l.startswith('+ done'))
assert any(l.startswith('[view] 3 messages') for l in lines[i:j]), lines[i:j + 1]
PY
# CR LF inside quotes: one literal argument; the second "command" never runs
expect_line "$trace" '^C: A5 UID SEARCH subject \{22\+\}\\r\\n$' "SEARCH with CR LF inside quotes: not sent as one literal"
# a mailbox name goes in modified UTF-7 (RFC 3501 section 5.1.3): CR LF is "&AA0ACg-"
expect_line "$trace" '^C: A6 SELECT "INBOX&AA0ACg-A999 DELETE Archive"\\r\\n$' "SELECT with CR LF inside quotes: the name not encoded in modified UTF-7"
expect_line "$out" '^A6 NO ' "SELECT of a name with CR LF: the server's NO"
expect_line "$out" '^\* \{"name":"SEARCH","numbers":\[\]\}$' "SEARCH for text with CR LF: an empty result"
expect_line "$out" '^\* \{"name":"LIST",.*"mailbox":"Archive"\}$' "Archive is gone: the injected DELETE ran"
ok
# (Dovecot 2.3 quotes the name in its NO text, CR LF included, so a line
# "A999 DELETE Archive (...)" does come back: not an answer to a command.)
if grep -Eq '^S: A99[89] (OK|NO|BAD) ' "$trace"; then
    fail "the server answered a command tagged A998/A999: the CR LF broke out of its argument"
fi
expect_line "$out" '^\* 1 BODY\[HEADER.FIELDS \(SUBJECT\)\] \{[0-9]+\}$' "FETCH: the body section's head line"
expect_line "$out" '^Subject: =\?UTF-8\?Q\?Gr=C3=BC=C3=9Fe\?=$' "FETCH: the body section's bytes"
expect_line "$out" '^\* \{"name":"FETCH","seq":1,"items":\{"uid":1,"flags":\[[^]]*Flagged' "FETCH: the record as JSON"
expect_line "$trace" '^C: A10 APPEND INBOX \(\\Seen\) \{24\+\}\\r\\n$' "APPEND of a quoted message: not sent as a literal"
expect_line "$out" '^A10 OK \[APPENDUID [0-9]+ 4\] ' "APPEND of a quoted message"
expect_line "$out" '^A11 OK \[APPENDUID [0-9]+ 1\] ' "APPEND <FILE"
expect_line "$out" '^\* \{"name":"STATUS","mailbox":"Archive","items":\{"messages":1\}\}$' "STATUS data"
expect_line "$out" '^\[view\] mailbox      INBOX \(read-write\)$' ".view: the mailbox"
expect_line "$out" '^\[view\] messages     4 ' ".view: the message count"
expect_line "$out" '^\[bye\] ' "LOGOUT at the end of input: the BYE"
expect_line "$trace" '^C: A13 LOGOUT' "LOGOUT at the end of input"
expect_line "$err" 'literals \(\{N\}\) are not typed here' "{N} typed by the user: no explanation"
expect_line "$err" "unknown command 'frobnicate'" "an unknown command: no message"
expect_line "$err" 'LOGIN is done by imapkit when it connects' "LOGIN: not refused"
expect_line "$err" "unknown shell command '.bogus'" "an unknown dot-command: no message"
expect_line "$err" "1 list left open" "an unclosed list: no message"
expect_line "$err" 'unterminated quoted string' "an unterminated string: no message"
expect_line "$err" "unknown escape '\\\\q'" "a bad escape: no message"
ok
n_cmds=$(grep -Ec '^C: A[0-9]{1,2} ' "$trace")
[ "$n_cmds" -eq 13 ] || fail "the shell sent $n_cmds commands, expected 13 (the bad lines must send nothing)"
# tags in order, each answered once
ok
python3 - "$out" <<'PY' || fail "tagged lines are not A1, A2, ... in order"
import re, sys
tags = [int(m.group(1)) for l in open(sys.argv[1], encoding='utf-8')
        if (m := re.match(r'^A(\d+) (OK|NO|BAD) ', l))]
# A4 is the IDLE (its end is shown as "+ done"), A13 the LOGOUT
assert tags == [1, 2, 3] + list(range(5, 13)), tags
PY

# ---- piped commands, --json -------------------------------------------------------

jout=$work/json.out
feed_json() {
    printf '%s\n' 'select INBOX'
    wait_for "$jout" '"type":"tagged","tag":"A1"'
    other 'select INBOX' 'uid store 2 +flags (\Seen)'
    printf '%s\n' 'noop' 'uid fetch 1:2 (uid flags)' 'list "" INBOX' '.view' '.caps'
}
feed_json | "$imapkit" --tunnel "$tunnel" --json shell >"$jout" 2>"$work/json.err"
st=$?
ok
[ $st -eq 0 ] || fail "shell --json: exit status $st: $(cat "$work/json.err")"
ok
python3 - "$jout" "$src/docs/schema/event.schema.json" <<'PY' || fail "shell --json: output lines are not as documented"
import json, sys
import jsonschema
ev_schema = json.load(open(sys.argv[2]))
v = jsonschema.Draft202012Validator(ev_schema)
objs = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')]
kinds = {'tagged': 0, 'untagged': 0, 'event': 0, 'other': 0}
for o in objs:
    if 'event' in o:
        errs = list(v.iter_errors(o))
        assert not errs, (o, errs[0].message)
        kinds['event'] += 1
    elif o.get('type') in ('tagged', 'untagged'):
        kinds[o['type']] += 1
    else:
        kinds['other'] += 1
tagged = [o for o in objs if o.get('type') == 'tagged']
assert [o['tag'] for o in tagged] == ['A1', 'A2', 'A3', 'A4'], tagged
assert all(o['status'] == 'OK' for o in tagged), tagged
fetches = [o for o in objs if o.get('name') == 'FETCH']
assert [f['items']['uid'] for f in fetches] == [1, 2], fetches
assert any(o.get('event') == 'flags' and o.get('seq') == 2 and '\\Seen' in o['flags'] for o in objs), objs
assert any(o.get('event') == 'unsolicited' for o in objs), objs
assert any(o.get('name') == 'LIST' and o.get('mailbox') == 'INBOX' for o in objs), objs
assert any('exists' in o and 'uidvalidity' in o for o in objs), '.view object missing'
assert any('capabilities' in o and 'IDLE' in o['capabilities'] for o in objs), '.caps object missing'
PY

# ---- a terminal: tmux ----------------------------------------------------------

if ! command -v tmux >/dev/null 2>&1; then
    echo "SKIP (part): tmux is not installed: the terminal path is not tested"
elif ! tmux -S "$tmux_sock" -f /dev/null new-session -d -s probe -x 120 -y 20 'sleep 60' 2>"$work/tmux.err"; then
    echo "SKIP (part): tmux cannot start here ($(cat "$work/tmux.err")): the terminal path is not tested"
else
    tmux -S "$tmux_sock" kill-session -t probe 2>/dev/null
    state=$work/state
    mkdir -p "$state"
    pane() { tmux -S "$tmux_sock" capture-pane -p -t shell -S -200 2>/dev/null; }
    wait_pane() { # REGEX
        local i
        for ((i = 0; i < WAIT * 10; i++)); do
            pane | grep -Eq -- "$1" && return 0
            sleep 0.1
        done
        return 1
    }
    keys() { tmux -S "$tmux_sock" send-keys -t shell "$@"; }
    expect_pane() { # REGEX WHAT
        ok
        wait_pane "$1" || fail "terminal: $2 (no /$1/ on the screen:
$(pane)
)"
    }
    printf '%s\n' "$tunnel" >"$work/tunnel.cmd"
    # run.sh STATE_DIR [SHELL OPTIONS]: the shell on the pane's terminal
    # shellcheck disable=SC2016 # $1 and $@ are run.sh's own
    printf '%s\n' '#!/bin/sh' 'state=$1; shift' \
        "XDG_STATE_HOME=\$state '$imapkit' --tunnel \"\$(cat '$work/tunnel.cmd')\" shell \"\$@\"" \
        'echo "SHELL-EXIT=$?"' 'sleep 60' >"$work/run.sh"
    chmod 755 "$work/run.sh"
    tmux -S "$tmux_sock" -f /dev/null new-session -d -s shell -x 160 -y 50 "$work/run.sh $state"
    expect_pane '^imapkit> ?$' "the prompt"
    keys 'select INBOX' Enter
    expect_pane '^A1 OK \[READ-WRITE\]' "SELECT"
    expect_pane '^imapkit INBOX> ?$' "the prompt names the selected mailbox"
    # line editing: type "oop", go to the start of the line (C-a), insert "n"
    keys 'oop' C-a 'n' Enter
    expect_pane '^A2 OK NOOP' "line editing (C-a then insert) did not give NOOP"
    # history: Up recalls "noop"
    keys Up Enter
    expect_pane '^A3 OK NOOP' "Up did not recall the last command"
    keys 'xx' BSpace BSpace '.help' Enter
    expect_pane '^Shell commands:' ".help"
    keys 'idle' Enter
    expect_pane '^\+ idling \(press Enter to stop\)' "idle"
    other "append INBOX <$work/msg.eml"
    expect_pane '^\[view\] 5 messages \(was 4\)' "a new message during IDLE"
    keys Enter
    expect_pane '^\+ done: IDLE ended' "Enter did not end IDLE"
    keys C-d
    expect_pane '^SHELL-EXIT=0' "Ctrl-D did not end the shell with status 0"
    expect_pane '^\[bye\] ' "Ctrl-D did not log out"
    ok
    hist=$state/imapkit/history
    if [ ! -f "$hist" ]; then
        fail "terminal: no history file at $hist"
    else
        grep -q 'select\\040INBOX' "$hist" || fail "terminal: 'select INBOX' is not in the history file"
        [ "$(stat -c %a "$hist")" = 600 ] || fail "terminal: the history file is not private (mode $(stat -c %a "$hist"))"
    fi
    tmux -S "$tmux_sock" kill-session -t shell 2>/dev/null

    # --no-history: nothing written
    state2=$work/state2
    mkdir -p "$state2"
    tmux -S "$tmux_sock" -f /dev/null new-session -d -s shell -x 160 -y 50 "$work/run.sh $state2 --no-history"
    expect_pane '^imapkit> ?$' "the prompt (--no-history)"
    keys 'noop' Enter
    expect_pane '^A1 OK NOOP' "NOOP (--no-history)"
    keys '.quit' Enter
    expect_pane '^SHELL-EXIT=0' ".quit did not end the shell with status 0"
    ok
    [ ! -e "$state2/imapkit/history" ] || fail "terminal: --no-history wrote $state2/imapkit/history"
    tmux -S "$tmux_sock" kill-server 2>/dev/null
fi

ok
[ ! -s "$work/other.fail" ] || fail "$(cat "$work/other.fail")"

cli_finish test_cli_shell
