#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The second connection of `make demo` (tools/demo.sh): while `imapkit
# watch INBOX` idles on one connection, these commands change INBOX on
# others, one imapkit run each, with pauses so that every change is seen
# arriving on its own:
#
#   flag UIDs 1:3 \Flagged, append FILE, flag UID 2 \Deleted and expunge it
#   (system flags without their backslash: the tool accepts +flagged).
#
#     IMAPKIT=build/imapkit TUNNEL='COMMAND' tools/demo-changes.sh FILE
#
# Each command is shown before it runs; the first that fails (or takes more
# than STEP_LIMIT seconds) ends the script with status 1.
set -euo pipefail
: "${IMAPKIT:?set IMAPKIT to the imapkit binary}"
: "${TUNNEL:?set TUNNEL to the tunnel command}"
STEP_LIMIT=${STEP_LIMIT:-30}
[ $# -eq 1 ] || {
    echo "usage: IMAPKIT=... TUNNEL=... $0 MESSAGE-FILE" >&2
    exit 2
}
msg=$1

change() {
    printf '$ imapkit %s\n' "$*"
    local rc=0
    timeout "$STEP_LIMIT" "$IMAPKIT" --tunnel "$TUNNEL" "$@" || rc=$?
    if [ $rc -ne 0 ]; then
        echo "demo: imapkit $* failed (exit status $rc)" >&2
        exit 1
    fi
    sleep 1
}

change flag INBOX 1:3 +flagged
change append INBOX "$msg"
change flag INBOX 2 +deleted
change expunge INBOX 2
