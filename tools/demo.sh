#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo`: the library against a real server the demo starts itself.
# A private Dovecot runs preauthenticated over a tunnel (stdin/stdout) on a
# throwaway Maildir in a temporary directory: nothing is installed,
# configured or left behind, and no port is opened. examples/demo.c then
# shows two connections working on one mailbox (see its header comment).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
dir=$(mktemp -d "${TMPDIR:-/tmp}/imapkit-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
rc=0
tunnel=$(tests/integration/servers.sh dovecot-tunnel "$dir") || rc=$?
if [ $rc -ne 0 ]; then
    echo "demo: could not prepare a private Dovecot (is dovecot-imapd installed? run: make deps)" >&2
    exit $rc # 77: not installed here (the test suite counts that as a skip)
fi
echo "demo: private Dovecot over a tunnel: $tunnel"
echo
"$build/examples/example_demo" "$tunnel"
