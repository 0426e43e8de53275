#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `make demo` (and the ctest `demo`): a tour of the `imapkit` tool on a real
# server the demo starts itself (issue 5, "The demonstration").
#
#     tools/demo.sh [BUILD_DIR]        (default: build)
#
#   1. A sample mailbox is generated: bench/fetch/gen_maildir.c, compiled on
#      the fly into the temporary directory, writes a Maildir of 300
#      realistic messages (threads, multipart/alternative, attachments,
#      RFC 2047 non-ASCII subjects and names), the same bytes on every
#      machine (fixed seed), plus a smaller "Archive" folder.
#   2. A private Dovecot serves it preauthenticated over a tunnel (its
#      `imap` binary on stdin/stdout, tests/integration/servers.sh
#      dovecot-tunnel): no daemon, no port, no configuration outside the
#      temporary directory; as root the tunnel runs as an unprivileged user.
#   3. The tour: capabilities, list, status, search (human and JSON), fetch,
#      cat, then `watch` in the background while other connections
#      (tools/demo-changes.sh) flag, append and expunge, so the unsolicited
#      updates are seen arriving; watch must report the new message and the
#      expunge, and the state afterwards is shown.
#   4. The library underneath: examples/demo.c, two connections through the
#      C API, and its view compared with the server's truth.
#
# Invariants: every step is shown before it runs and runs under a time
# limit; the script exits non-zero as soon as a step fails (1), 77 when
# Dovecot is not installed (the test suite counts that as a skip); on any
# exit the background processes it started are stopped and the temporary
# directory is removed, so nothing is left running or on disk. The whole
# tour takes well under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
CC=${CC:-cc}

# Messages and seed of the sample mailbox: seed 4 puts non-ASCII subjects at
# UIDs 5, 7 and 8 and an attachment at UID 9, all within the first ten.
SAMPLE_MESSAGES=300
SAMPLE_MB=4
SAMPLE_SEED=4
# watch runs at most WATCH_SECONDS; the demo stops it as soon as it has
# reported the last change (the expunge), or WATCH_WAIT seconds after the
# changes were made (then the checks below fail). --count cannot end it
# exactly: the server may add events of its own (a keepalive "OK Still here").
WATCH_SECONDS=60
WATCH_WAIT=15
STEP_LIMIT=30   # seconds any one command may take

die() {
    echo "demo: $*" >&2
    exit 1
}

[ -d "$build" ] || die "no build directory $build: build first (make build)"
build=$(cd "$build" && pwd)
imapkit=$build/imapkit
[ -x "$imapkit" ] || die "$imapkit not found: build first (make build, or cmake --build $build)"
command -v "$CC" >/dev/null 2>&1 || die "no C compiler '$CC' to build the sample generator (set CC)"
command -v python3 >/dev/null 2>&1 || die "python3 is needed (make deps installs it)"

dir=$(mktemp -d "${TMPDIR:-/tmp}/imapkit-demo.XXXXXX")
bg_pids=()
cleanup() {
    local p
    for p in ${bg_pids[@]+"${bg_pids[@]}"}; do
        kill "$p" 2>/dev/null || true
    done
    for p in ${bg_pids[@]+"${bg_pids[@]}"}; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- presentation ------------------------------------------------------------

part=0
section() {
    part=$((part + 1))
    if [ -t 1 ]; then
        printf '\n\033[1m== %d. %s\033[0m\n' "$part" "$1"
    else
        printf '\n== %d. %s\n' "$part" "$1"
    fi
}

# The arguments as a shell would need them typed.
shown() {
    local a out=""
    for a in "$@"; do
        case $a in
            "" | *[!A-Za-z0-9_./:,@%+=-]*) a="'${a//\'/\'\\\'\'}'" ;;
        esac
        out="$out $a"
    done
    printf '%s' "${out# }"
}

status_text() {
    if [ "$1" -eq 124 ]; then echo "no answer within $STEP_LIMIT s"; else echo "exit status $1"; fi
}

# Run `imapkit ARGS` on the tunnel, showing it first ($ prefix); a failure
# ends the demo with the command and its status.
imk() {
    printf '$ imapkit %s\n' "$(shown "$@")"
    local rc=0
    timeout "$STEP_LIMIT" "$imapkit" --tunnel "$tunnel" "$@" || rc=$?
    [ $rc -eq 0 ] || die "step failed: imapkit $(shown "$@") ($(status_text $rc))"
}

# The same, output captured into a file (for the steps that need a value).
imk_to() {
    local out=$1
    shift
    local rc=0
    timeout "$STEP_LIMIT" "$imapkit" --tunnel "$tunnel" "$@" >"$out" || rc=$?
    [ $rc -eq 0 ] || die "step failed: imapkit $(shown "$@") ($(status_text $rc))"
}

# The UIDs of a `search --json` result, space-separated.
json_uids() {
    python3 -c 'import json,sys
for line in sys.stdin:
    o = json.loads(line)
    if "uids" in o:
        print(" ".join(str(u) for u in o["uids"]))' <"$1"
}

# ---- 1. the sample mailbox ---------------------------------------------------

section "A sample mailbox (bench/fetch/gen_maildir.c, seed $SAMPLE_SEED)"
"$CC" -O2 -o "$dir/gen_maildir" bench/fetch/gen_maildir.c ||
    die "cannot compile bench/fetch/gen_maildir.c with $CC"
# The Maildir goes where servers.sh's tunnel configuration puts the mail
# (mail_location = maildir:DIR/Maildir); it is written before servers.sh runs
# so that, as root, servers.sh hands it to the unprivileged tunnel user.
"$dir/gen_maildir" --messages "$SAMPLE_MESSAGES" --total-mb "$SAMPLE_MB" --seed "$SAMPLE_SEED" \
    "$dir/Maildir" | sed "s|$dir/||"
# Maildir++: a folder is DIR/.NAME with its own cur/new/tmp.
"$dir/gen_maildir" --messages 40 --total-mb 1 --seed 7 "$dir/Maildir/.Archive" | sed "s|$dir/||"

# ---- 2. the server -----------------------------------------------------------

section "A private Dovecot, preauthenticated over a tunnel"
rc=0
tunnel=$(tests/integration/servers.sh dovecot-tunnel "$dir") || rc=$?
if [ $rc -ne 0 ]; then
    echo "demo: could not prepare a private Dovecot (is dovecot-imapd installed? run: make deps)" >&2
    exit $rc # 77: not installed here (the test suite counts that as a skip)
fi
shown_tunnel=${tunnel//\'/}
echo "Every imapkit command below runs with --tunnel \"\$TUNNEL\", where TUNNEL is"
echo "    ${shown_tunnel//$dir/\$DEMO}"
echo "(\$DEMO: a temporary directory, removed at the end). The tool starts Dovecot's"
echo "imap binary on it and speaks IMAP on its standard input and output."

# ---- 3. the tour -------------------------------------------------------------

section "What the server offers"
printf '$ imapkit capabilities | paste -s -d " " | fold -s -w 78\n'
imk_to "$dir/caps.txt" capabilities
paste -s -d ' ' "$dir/caps.txt" | fold -s -w 78

section "Mailboxes, with counts and special-use roles"
imk list

section "One mailbox's status"
imk status INBOX

section "Searching (IMAP search keys; UIDs come out)"
imk search INBOX SUBJECT smörgåsbord
imk search INBOX FROM example.org SINCE 1-Jan-2021 BEFORE 3-Jan-2021
# In JSON, for a script: the messages with attachments; the first is shown
# below.
printf '$ imapkit --json search INBOX HEADER Content-Type multipart/mixed\n'
imk_to "$dir/mixed.json" --json search INBOX HEADER Content-Type multipart/mixed
cat "$dir/mixed.json"
uids=$(json_uids "$dir/mixed.json")
uid=${uids%% *}
[ -n "$uid" ] || die "no message with an attachment found (the sample has some)"

section "The first ten messages (decoded non-ASCII subjects: 5, 7, 8)"
imk fetch INBOX 1:10

section "A message with an attachment: raw (first lines), then its structure"
printf '$ imapkit cat INBOX %s | head -n 24\n' "$uid"
imk_to "$dir/msg.eml" cat INBOX "$uid"
head -n 24 "$dir/msg.eml"
printf '... (%s bytes in all)\n' "$(wc -c <"$dir/msg.eml" | tr -d ' ')"
imk fetch INBOX "$uid" BODYSTRUCTURE

section "Watching INBOX while a second connection changes it"
# A message for the second connection to append, CRLF line ends.
printf '%s\r\n' \
    'Date: Sun, 29 Nov 2026 12:00:00 +0100' \
    'From: =?UTF-8?Q?Zo=C3=AB_Demo?= <zoe@demo.example>' \
    'To: you@demo.example' \
    'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_from_the_imapkit_demo?=' \
    'Message-ID: <demo-1@demo.example>' \
    'MIME-Version: 1.0' \
    'Content-Type: text/plain; charset=utf-8' \
    'Content-Transfer-Encoding: 8bit' \
    '' \
    'Appended while the other connection was watching.' >"$dir/new.eml"

printf '$ imapkit watch INBOX --timeout %s &     (its output is marked "watch |")\n' \
    "$WATCH_SECONDS"
: >"$dir/watch.out"
"$imapkit" --tunnel "$tunnel" watch INBOX --timeout "$WATCH_SECONDS" >"$dir/watch.out" 2>&1 &
watch_pid=$!
bg_pids+=("$watch_pid")
tail -n +1 -s 0.1 -f --pid="$watch_pid" "$dir/watch.out" | sed -u 's/^/    watch | /' &
tail_pid=$!
bg_pids+=("$tail_pid")

# watch's first line says it is watching (the mailbox is open and IDLE
# started, or about to): wait for it, at most 10 s.
for _ in $(seq 100); do
    [ -s "$dir/watch.out" ] && break
    kill -0 "$watch_pid" 2>/dev/null || break
    sleep 0.1
done
sleep 0.5
kill -0 "$watch_pid" 2>/dev/null || {
    rc=0
    wait "$watch_pid" || rc=$?
    die "imapkit watch ended early (exit status $rc): $(cat "$dir/watch.out")"
}

# The second connection: tools/demo-changes.sh runs each change as its own
# imapkit command (its output is marked "second |"), in the temporary
# directory where the message to append is.
repo=$PWD
(cd "$dir" && IMAPKIT="$imapkit" TUNNEL="$tunnel" STEP_LIMIT="$STEP_LIMIT" \
    "$repo/tools/demo-changes.sh" new.eml) 2>&1 | sed -u 's/^/   second | /' ||
    die "the second connection's changes failed (see above)"

# Wait for watch to report the expunge, then stop it as Ctrl-C would
# (SIGTERM here: a background job of a script ignores SIGINT).
for _ in $(seq $((WATCH_WAIT * 10))); do
    grep -q ' expunge ' "$dir/watch.out" && break
    kill -0 "$watch_pid" 2>/dev/null || break
    sleep 0.1
done
sleep 0.3
rc=0
if kill -0 "$watch_pid" 2>/dev/null; then
    echo '$ kill %1      (stops watch, like Ctrl-C)'
    kill -TERM "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 143 ] || die "imapkit watch INBOX ended with status $rc when stopped"
else
    wait "$watch_pid" || rc=$?
    die "imapkit watch INBOX ended before it was stopped (exit status $rc)"
fi
wait "$tail_pid" 2>/dev/null || true
bg_pids=()
# What watch must have seen: the flags, the new message (its subject
# decoded) and the expunge.
grep -q ' flags .*uid 3 .*Flagged' "$dir/watch.out" ||
    die "imapkit watch did not report the flag change of UID 3"
grep -q 'new .*Grüße from the imapkit demo' "$dir/watch.out" ||
    die "imapkit watch did not report the appended message"
grep -q ' expunge .*uid 2' "$dir/watch.out" ||
    die "imapkit watch did not report the expunged message"

section "After the changes"
imk search INBOX FLAGGED
imk status INBOX

# ---- 4. the library underneath ------------------------------------------------

section "The same through the C API (examples/demo.c)"
if [ -x "$build/examples/example_demo" ]; then
    rc=0
    timeout "$STEP_LIMIT" "$build/examples/example_demo" "$tunnel" || rc=$?
    [ $rc -eq 0 ] || die "examples/demo.c failed (exit status $rc)"
else
    echo "($build/examples/example_demo is not built; skipped)"
fi

printf '\ndemo: done; the temporary directory is removed and nothing is left running.\n'
