#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Regenerates samples/dovecot-session.txt: the byte-exact output of a real
# Dovecot 2.3 IMAP server (Debian 12's dovecot-imapd) during one scripted
# session. Nothing in the build or the tests runs this script; it documents
# how the sample was made so that it can be made again.
#
# How: /usr/lib/dovecot/imap runs one preauthenticated session on stdin/stdout
# (no daemon, no passdb) with a throw-away maildir and a tiny config. It
# refuses to run as root, so it runs in a user namespace as uid 1000 (files it
# creates are owned by the caller outside). Commands are written to it through
# a FIFO one at a time; after each, the script waits for that command's tagged
# completion in the output, so the transcript does not depend on timing. During
# IDLE a new message is dropped into the maildir from outside, which Dovecot
# reports as EXISTS/RECENT before DONE ends the IDLE.
#
# Usage: samples/make-dovecot-sample.sh [OUTPUT]     (default: next to this script)
# Needs: dovecot-imapd (install it with /usr/sbin/policy-rc.d exiting 101 so the
# system service does not start), util-linux (unshare), coreutils.
#
# The output differs between runs only where the server is free to differ:
# UIDVALIDITY (creation time), timings in the completion texts, and the ID
# response. Everything the client sends is in this script; only the server's
# bytes are saved.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/dovecot-session.txt}
imap=/usr/lib/dovecot/imap
[ -x "$imap" ] || { echo "make-dovecot-sample: $imap not found (apt-get install dovecot-imapd)" >&2; exit 1; }

work=$(mktemp -d /tmp/imapkit-sample.XXXXXX)
server_pid=""
cleanup() {
    exec 3>&- 2>/dev/null || true
    if [ -n "$server_pid" ]; then wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
mkdir -p "$work/Maildir" "$work/msg"

cat >"$work/dovecot.conf" <<CONF
log_path = $work/dovecot.log
mail_location = maildir:$work/Maildir
mail_plugins = quota
protocol imap {
  mail_plugins = quota imap_quota
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=10M:messages=1000
}
imap_metadata = yes
mail_attribute_dict = file:$work/dovecot-attributes
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    auto = create
    special_use = \\Drafts
  }
  mailbox Sent {
    auto = create
    special_use = \\Sent
  }
  mailbox Trash {
    auto = create
    special_use = \\Trash
  }
}
CONF

# ---- the messages (LF here, converted to CRLF) --------------------------------

crlf() { sed 's/$/\r/' >"$1"; }

crlf "$work/msg/1" <<'MSG'
Return-Path: <alice@example.org>
Date: Mon, 03 Jul 2023 09:12:44 +0200
From: Alice Example <alice@example.org>
To: Bob Builder <bob@example.com>
Subject: Project kickoff
Message-ID: <kickoff-1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Hi Bob,

the kickoff meeting is on Thursday at 10:00 in room 4.
Please bring the draft plan.

Alice
MSG

crlf "$work/msg/2" <<'MSG'
Date: Mon, 03 Jul 2023 11:40:02 +0200
From: Bob Builder <bob@example.com>
To: Alice Example <alice@example.org>
Cc: Carol Chen <carol@example.net>, dave@example.net
Subject: Re: Project kickoff
Message-ID: <reply-2@example.com>
In-Reply-To: <kickoff-1@example.org>
References: <kickoff-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="==mixed-2"

This is a multi-part message in MIME format.

--==mixed-2
Content-Type: multipart/alternative; boundary="==alt-2"

--==alt-2
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Thursday works. The draft plan is attached.

Bob

--==alt-2
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 7bit

<html><body><p>Thursday works. The draft plan is attached.</p><p>Bob</p></body></html>

--==alt-2--

--==mixed-2
Content-Type: application/pdf; name="draft-plan.pdf"
Content-Disposition: attachment; filename="draft-plan.pdf"
Content-Transfer-Encoding: base64
Content-Description: Draft plan

JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nL1BhZ2VzIDIgMCBSPj4K
ZW5kb2JqCjIgMCBvYmoKPDwvVHlwZS9QYWdlcy9LaWRzWzMgMCBSXS9Db3VudCAxPj4KZW5kb2Jq
CjMgMCBvYmoKPDwvVHlwZS9QYWdlL1BhcmVudCAyIDAgUi9NZWRpYUJveFswIDAgNjEyIDc5Ml0+
PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVFT0YK

--==mixed-2--
MSG

crlf "$work/msg/3" <<'MSG'
Date: Tue, 04 Jul 2023 08:05:17 +0200
From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.de>
To: Alice Example <alice@example.org>
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4g4oCTIFByb2pla3Q=?=
Message-ID: <gruesse-3@example.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8; format=flowed
Content-Transfer-Encoding: quoted-printable

Hallo Alice,

viele Gr=C3=BC=C3=9Fe aus M=C3=BCnchen! Das Projekt l=C3=A4uft gut.

J=C3=B6rg
MSG

crlf "$work/msg/4" <<'MSG'
Date: Tue, 04 Jul 2023 14:30:00 +0000
From: Carol Chen <carol@example.net>
To: Bob Builder <bob@example.com>
Subject: Fwd: Project kickoff
Message-ID: <fwd-4@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd-boundary-4"

--fwd-boundary-4
Content-Type: text/plain; charset=us-ascii

Forwarding Alice's mail, see below.

--fwd-boundary-4
Content-Type: message/rfc822
Content-Disposition: inline

Date: Mon, 03 Jul 2023 09:12:44 +0200
From: Alice Example <alice@example.org>
To: Bob Builder <bob@example.com>
Subject: Project kickoff
Message-ID: <kickoff-1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hi Bob,

the kickoff meeting is on Thursday at 10:00 in room 4.

--fwd-boundary-4--
MSG

crlf "$work/msg/5" <<'MSG'
Date: Wed, 05 Jul 2023 07:00:00 -0400
From: "Build Robot" <ci@builds.example.com>
To: undisclosed-recipients:;
Subject: [ci] nightly build #1729 passed
Message-ID: <nightly-1729@builds.example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Nightly build #1729 passed: 412 tests, 0 failures.
MSG

# An 8-bit ISO-8859-1 body: its bytes are not UTF-8.
{
    printf 'Date: Wed, 05 Jul 2023 18:22:10 +0200\n'
    printf 'From: Elise Martin <elise@example.fr>\n'
    printf 'To: Alice Example <alice@example.org>\n'
    printf 'Subject: =?ISO-8859-1?Q?R=E9sum=E9_de_la_r=E9union?=\n'
    printf 'Message-ID: <resume-6@example.fr>\n'
    printf 'MIME-Version: 1.0\n'
    printf 'Content-Type: text/plain; charset=ISO-8859-1\n'
    printf 'Content-Transfer-Encoding: 8bit\n'
    printf '\n'
    printf 'Bonjour Alice,\n\nvoici le r\351sum\351 de la r\351union de jeudi.\n\n\311lise\n'
} | crlf "$work/msg/6"

crlf "$work/msg/7" <<'MSG'
Date: Thu, 06 Jul 2023 10:01:00 +0200
From: Alice Example <alice@example.org>
To: Bob Builder <bob@example.com>
Subject: Room changed
Message-ID: <room-7@example.org>
In-Reply-To: <reply-2@example.com>
References: <kickoff-1@example.org> <reply-2@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

The kickoff moves to room 7.
MSG

# ---- the session --------------------------------------------------------------

mkfifo "$work/in"
: >"$out"
unshare --user --map-user=1000 --map-group=1000 \
    env -i USER=sample HOME="$work" PATH=/usr/bin:/bin \
    "$imap" -c "$work/dovecot.conf" <"$work/in" >"$out" 2>>"$work/stderr" &
server_pid=$!
exec 3>"$work/in"

# Wait until the output contains a line starting with $1 (a tag or "+ ").
wait_for() {
    local i
    for i in $(seq 1 200); do
        if grep -q -a "^$1" "$out"; then return 0; fi
        sleep 0.05
    done
    echo "make-dovecot-sample: timed out waiting for '$1'; output so far:" >&2
    cat "$out" >&2
    exit 1
}
# Send one command line (CRLF added) and wait for its tagged completion.
cmd() {
    printf '%s\r\n' "$1" >&3
    wait_for "${1%% *} "
}
# APPEND with LITERAL+ (no round trip): tag, mailbox, flags, date, file.
append() {
    local size
    size=$(wc -c <"$5")
    printf '%s APPEND %s %s "%s" {%d+}\r\n' "$1" "$2" "$3" "$4" "$size" >&3
    cat "$5" >&3
    printf '\r\n' >&3
    wait_for "$1 "
}

wait_for '\* PREAUTH'
cmd 'a01 CAPABILITY'
cmd 'a02 ID ("name" "imapkit-sample" "version" "0.1")'
cmd 'a03 NAMESPACE'
cmd 'a04 CREATE "Entw&APw-rfe"'
cmd 'a05 CREATE "Projects/2023"'
append a06 INBOX '(\Seen)' ' 3-Jul-2023 09:12:50 +0200' "$work/msg/1"
append a07 INBOX '(\Seen \Answered)' ' 3-Jul-2023 11:40:09 +0200' "$work/msg/2"
append a08 INBOX '()' '04-Jul-2023 08:05:20 +0200' "$work/msg/3"
append a09 INBOX '($Forwarded)' '04-Jul-2023 14:30:03 +0000' "$work/msg/4"
append a10 INBOX '(\Flagged)' '05-Jul-2023 07:00:01 -0400' "$work/msg/5"
append a11 INBOX '()' '05-Jul-2023 18:22:13 +0200' "$work/msg/6"
cmd 'a12 LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))'
cmd 'a13 SUBSCRIBE INBOX'
cmd 'a14 LSUB "" "*"'
cmd 'a15 SELECT "No such folder"'
cmd 'a16 SELECT INBOX'
cmd 'a17 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)'
cmd 'a18 UID FETCH 1 BODY.PEEK[]'
cmd 'a19 UID FETCH 2 (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] BODY.PEEK[1.1] BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[2.MIME]<0.40>)'
cmd 'a20 UID FETCH 6 (BODY.PEEK[TEXT] RFC822.SIZE)'
cmd 'a21 FETCH 3:4 (BODY PREVIEW SAVEDATE)'
cmd 'a22 FETCH 1 (NOSUCHITEM)'
cmd 'a23 SEARCH UNSEEN'
cmd 'a24 UID SEARCH RETURN (MIN MAX COUNT ALL) ALL'
cmd 'a25 SORT (REVERSE DATE) UTF-8 ALL'
cmd 'a26 THREAD REFERENCES UTF-8 ALL'
cmd 'a27 STATUS "Entw&APw-rfe" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)'
cmd 'a28 UID COPY 2:3 "Entw&APw-rfe"'
cmd 'a29 STORE 3 +FLAGS (\Deleted)'
cmd 'a30 EXPUNGE'
cmd 'a31 GETQUOTAROOT INBOX'
cmd 'a32 SETMETADATA INBOX (/private/comment "Project mail")'
cmd 'a33 GETMETADATA INBOX /private/comment'
cmd 'a34 ENABLE QRESYNC'
cmd 'a35 UID STORE 5 +FLAGS (\Deleted)'
cmd 'a36 UID EXPUNGE 5'
cmd 'a37 UID MOVE 6 "Entw&APw-rfe"'
cmd 'a38 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)'

# IDLE: a message arrives from outside while the client idles.
printf 'a39 IDLE\r\n' >&3
wait_for '+ '
sleep 0.5
tmp="$work/Maildir/tmp/1688630460.M1P1.sample"
cp "$work/msg/7" "$tmp"
touch -d '2023-07-06 10:01:00 +0200' "$tmp"
mv "$tmp" "$work/Maildir/new/1688630460.M1P1.sample"
for i in $(seq 1 100); do
    grep -q -a 'EXISTS' <(sed -n '/^+ /,$p' "$out") && break
    sleep 0.05
done
sleep 0.2
printf 'DONE\r\n' >&3
wait_for 'a39 '
cmd 'a40 UID FETCH 7 (UID FLAGS MODSEQ ENVELOPE)'
cmd 'a41 EXAMINE "Entw&APw-rfe"'
cmd 'a42 LOGOUT'
exec 3>&-
wait "$server_pid"
server_pid=""
echo "make-dovecot-sample: wrote $(wc -c <"$out") bytes to $out"
