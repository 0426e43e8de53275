#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The message commands of the `imapkit` tool end to end, against a private
# Dovecot over a preauthenticated tunnel (tests/integration/servers.sh):
# append (files, standard input, a Maildir, an mbox), search, fetch, cat,
# flag, copy, move, expunge, in human and --json modes, every JSON line
# validated against its schema in docs/schema/ (python3's jsonschema), and
# the error paths: a missing mailbox (exit 1 with the server's text), bad
# arguments (exit 2), a UID that does not exist (exit 1).
#
# Three servers:
#   - "full": the tunnel as servers.sh configures it (UIDPLUS, MOVE,
#     MULTIAPPEND, ESEARCH, CONDSTORE, BINARY, ...);
#   - "nomove": told to advertise IMAP4rev1 LITERAL+ UIDPLUS only, so that
#     move takes the COPY + STORE + UID EXPUNGE way;
#   - "plain": IMAP4rev1 LITERAL+ only: expunge of a set must refuse
#     (no UIDPLUS), search gets plain SEARCH answers.
#
# What the server stores is compared with what was appended: Dovecot keeps
# a message's bytes and gives them back with CRLF line ends, so `cat`
# must return each file with its LF line ends made CRLF (an mbox message
# also ">From"-unquoted and without its separating blank line), byte for
# byte.
#
# Usage: tests/cli/test_cli_messages.sh PATH/TO/imapkit
# Exit: 0 passed, 1 failed, 77 skipped (no Dovecot here, unless
# IMK_IT_REQUIRED=1).
# $Work, $Label and the like are IMAP keywords, not shell expansions:
# shellcheck disable=SC2016
set -u

# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"
cli_init messages "$@"
cli_require_jsonschema

# ---- servers ------------------------------------------------------------------

full=$(cli_tunnel "$work/full") || exit $?
nomove=$(cli_tunnel "$work/nomove" "IMAP4rev1 LITERAL+ UIDPLUS") || exit $?
plain=$(cli_tunnel "$work/plain" "IMAP4rev1 LITERAL+") || exit $?

# ---- helpers ------------------------------------------------------------------

# full/nomove/plain NAME STATUS ARGS...: run (lib.sh) against one of the
# servers (standard input from $work/NAME.in when it exists).
full() { run "$1" "$2" --tunnel "$full" "${@:3}"; }
nomove() { run "$1" "$2" --tunnel "$nomove" "${@:3}"; }
plain() { run "$1" "$2" --tunnel "$plain" "${@:3}"; }

stdout_is() { # NAME TEXT: stdout is exactly TEXT plus a newline
    ok
    if [ "$(cat "$work/$1.out")" != "$2" ] || [ "$(tail -c 1 "$work/$1.out" | od -An -c | tr -d ' ')" != '\n' ]; then
        fail "$1: stdout is not '$2'"
        cli_show stdout "$work/$1.out"
    fi
}
same_bytes() { # NAME FILE: stdout is byte for byte FILE
    ok
    cmp -s "$work/$1.out" "$2" || {
        fail "$1: stdout differs from $2"
        cmp "$work/$1.out" "$2" >&2
        od -c "$work/$1.out" | head -10 | sed 's/^/    got:      /' >&2
        od -c "$2" | head -10 | sed 's/^/    expected: /' >&2
    }
}

# json NAME SCHEMA EXPR: NAME's result lines follow docs/schema/SCHEMA and
# the Python expression EXPR holds on them (`by` maps a uid, when the
# objects have one, to its object); see json_check in lib.sh.
json() { json_check --by uid "$1" "$work/$1.out" "$2" "$3"; }

crlf() { # FILE -> FILE.crlf: LF line ends made CRLF
    sed 's/$/\r/' "$1" >"$1.crlf"
}

# ---- help and usage errors (no server needed) ----------------------------------

for cmd in search fetch cat append flag copy move expunge; do
    run "help-$cmd" 0 "$cmd" --help
    stdout_has "help-$cmd" "^Usage: imapkit .*$cmd"
    stdout_has "help-$cmd" "^Examples:"
    stdout_has "help-$cmd" "^Global options"
    run "help-h-$cmd" 0 "$cmd" -h
    stdout_has "help-h-$cmd" "^Usage: imapkit "
done

# Usage errors exit 2 before any connection: the tunnel would fail.
bad_tunnel="/bin/false"
usage() { # NAME REGEX ARGS...
    local name=$1 regex=$2
    shift 2
    run "$name" 2 --tunnel "$bad_tunnel" "$@"
    stderr_has "$name" "$regex"
    stdout_empty "$name"
}
usage usage-search-none 'MAILBOX to search is missing' search
usage usage-search-key "unknown search key 'BOGUS'" search INBOX BOGUS
usage usage-search-arg 'SUBJECT needs a string' search INBOX SUBJECT
usage usage-search-date "'32-Jan-2026' is not a date" search INBOX SINCE 32-Jan-2026
usage usage-search-num "'12x' is not a number" search INBOX LARGER 12x
usage usage-search-paren "'\\(' is not closed" search INBOX '(' SEEN
usage usage-search-close "unexpected '\\)'" search INBOX SEEN ')'
usage usage-search-or 'missing at the end' search INBOX OR SEEN
usage usage-search-set "'0:5' is not a UID set" search INBOX UID 0:5
usage usage-search-keyword "'a\"b' is not a keyword" search INBOX KEYWORD 'a"b'
usage usage-search-opt "unknown option '--bogus'" search --bogus INBOX
usage usage-fetch-none 'MAILBOX is missing' fetch
usage usage-fetch-set "'1-5' is not a UID set" fetch INBOX 1-5
usage usage-fetch-set0 "'0' is not a UID set" fetch INBOX 0
usage usage-fetch-item "unknown item 'colour'" fetch INBOX 1 colour
usage usage-cat-uid "'1:2' is not a UID" cat INBOX 1:2
usage usage-cat-section "'BOGUS' is not a section" cat INBOX 1 BOGUS
usage usage-cat-decode 'with --decode, SECTION is a part number' cat --decode INBOX 1 HEADER
usage usage-cat-many 'too many arguments' cat INBOX 1 1 2
usage usage-flag-sign "'seen' must be \\+FLAG" flag INBOX 1 seen
usage usage-flag-recent "'.Recent' is not a flag that can be stored" flag INBOX 1 '+\Recent'
usage usage-flag-none 'no \+FLAG or -FLAG given' flag INBOX 1
usage usage-flag-set "'x' is not a UID set" flag INBOX x +seen
usage usage-copy-dest 'destination mailbox DEST is missing' copy INBOX 1
usage usage-move-set "'1,' is not a UID set" move INBOX 1, Archive
usage usage-expunge-set "'\\*:' is not a UID set" expunge INBOX '*:'
usage usage-append-none 'MAILBOX to append to is missing' append
usage usage-append-flags "'\\\\Recent' is not a flag" append --flags '\Recent' INBOX /dev/null
usage usage-append-date "'yesterday' is not a date" append --date yesterday INBOX /dev/null
mkdir "$work/notmaildir"
usage usage-append-dir 'is a directory but not a Maildir' append INBOX "$work/notmaildir"
: >"$work/empty.eml"
usage usage-append-empty 'is empty' append INBOX "$work/empty.eml"
run usage-append-missing 4 --tunnel "$bad_tunnel" append INBOX "$work/no-such-file"
stderr_has usage-append-missing "cannot read .*no-such-file: No such file"

# ---- the messages ---------------------------------------------------------------

mkdir "$work/msgs"
m=$work/msgs
# 1: LF line ends, RFC 2047 subject (B, UTF-8) and name (Q).
printf 'From: =?UTF-8?Q?Andr=C3=A9_M=C3=BCller?= <andre@example.org>\nTo: Bob <bob@example.com>, carol@example.com\nCc: =?ISO-8859-1?Q?Fran=E7ois?= <francois@example.fr>\nSubject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\nDate: Mon, 5 Jan 2026 10:00:00 +0100\nMessage-ID: <m1@example.org>\n\nHello world, the first message.\n' >"$m/m1.eml"
# 2: multipart/mixed with a base64 PNG, CRLF line ends already.
png_b64='iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
printf '%s' "$png_b64" | base64 -d >"$m/pixel.png"
printf 'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.com>\r\nSubject: hello world with an attachment\r\nDate: Tue, 6 Jan 2026 11:00:00 +0000\r\nMessage-ID: <m2@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the picture.\r\n--b1\r\nContent-Type: image/png; name="pixel.png"\r\nContent-Disposition: attachment; filename="pixel.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n' "$png_b64" >"$m/m2.eml"
# 3: binary-ish: raw 8-bit latin-1 text, a Latin-1 encoded-word, a tab
# (Dovecot's ENVELOPE turns the " \t" into one space).
printf 'From: bob@example.com\nSubject: =?ISO-8859-1?Q?caf=E9?= \tcr\xe8me\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nd\xe9j\xe0 vu \xff\xfe\x01\x02\n' >"$m/m3.eml"
# 4: a NUL byte (sent as literal8, BINARY): accepted.
printf 'From: bob@example.com\nSubject: with a nul\n\nbefore\0after\n' >"$m/m4.eml"

# A Maildir: one new message, two in cur/ with flags.
md=$work/Maildir.src
mkdir -p "$md/new" "$md/cur" "$md/tmp"
printf 'From: dora@example.org\nSubject: maildir new\n\nnew one\n' >"$md/new/1767261600.M1P1.host"
printf 'From: dora@example.org\nSubject: maildir seen\n\nseen one\n' >"$md/cur/1767261601.M2P1.host:2,S"
printf 'From: dora@example.org\nSubject: maildir flagged replied\n\nflagged one\n' >"$md/cur/1767261602.M3P1.host:2,FR"
touch -d '2026-01-01 10:00:00 UTC' "$md/new/1767261600.M1P1.host"

# An mbox (mboxrd): three messages, quoted From lines, dates in the From lines.
printf 'From alice@example.org Thu Jan  1 10:00:00 2026\nFrom: alice@example.org\nSubject: mbox one\n\nbody one\n>From the start of a line\n>>From twice quoted\n\nFrom bob@example.org Fri Jan  2 11:30:00 2026\nFrom: bob@example.org\nSubject: mbox two\n\nbody two\n\nFrom carol@example.org Sat Jan  3 12:45:30 2026\nFrom: carol@example.org\nSubject: =?UTF-8?Q?mbox_dr=C3=A9i?=\n\nbody three\n\n' >"$work/box.mbox"
printf 'From: alice@example.org\nSubject: mbox one\n\nbody one\nFrom the start of a line\n>From twice quoted\n' >"$m/mbox1.eml"
printf 'From: carol@example.org\nSubject: =?UTF-8?Q?mbox_dr=C3=A9i?=\n\nbody three\n' >"$m/mbox3.eml"
for f in m1 m3 mbox1 mbox3; do crlf "$m/$f.eml"; done

# ---- append ---------------------------------------------------------------------

full append-files 0 append INBOX "$m/m1.eml" "$m/m2.eml" "$m/m3.eml" "$m/m4.eml"
stdout_has append-files '^ +UID +SIZE +SOURCE$'
stdout_has append-files "^ +1 .*m1\\.eml$"
stdout_has append-files "^ +4 .*m4\\.eml$"
# UIDs 5..7 Maildir (new, then cur sorted), 8..10 mbox, 11 stdin.
full append-maildir 0 --json append INBOX "$md"
json append-maildir append.schema.json "[o['uid'] for o in objs] == [5, 6, 7] and objs[0]['flags'] == [] and objs[1]['flags'] == ['\\\\Seen'] and sorted(objs[2]['flags']) == ['\\\\Answered', '\\\\Flagged'] and objs[0]['message'] is None"
full append-mbox 0 --json append INBOX "$work/box.mbox"
json append-mbox append.schema.json "[o['uid'] for o in objs] == [8, 9, 10] and [o['message'] for o in objs] == [1, 2, 3] and objs[0]['size'] == $(wc -c <"$m/mbox1.eml.crlf")"
printf 'From: stdin@example.org\nSubject: from standard input\n\nvia a pipe\n' >"$work/append-stdin.in"
# The zone is given; Dovecot keeps a Maildir message's date as its file's
# time, so the date comes back in UTC.
full append-stdin 0 append --flags 'seen,$Work' --date 2026-02-03T04:05:06+01:00 INBOX -
stdout_has append-stdin '^ +11 .*\(standard input\)$'

# ---- search -----------------------------------------------------------------------

full search-all 0 search INBOX
stdout_is search-all "1 2 3 4 5 6 7 8 9 10 11"
full search-unseen 0 search INBOX UNSEEN
stdout_is search-unseen "1 2 3 4 5 7 8 9 10"
full search-subject-utf8 0 search INBOX SUBJECT 'Grüße'
stdout_is search-subject-utf8 "1"
full search-trace 0 --trace="$work/search.trace" search INBOX SUBJECT 'Grüße'
checks=$((checks + 1))
grep -q '^C: A[0-9]* UID SEARCH .*CHARSET UTF-8 SUBJECT {' "$work/search.trace" ||
    fail "search-trace: no CHARSET UTF-8 and literal for the non-ASCII string"
# Quotes, braces and CRLF-looking text are data, never syntax.
full search-quotes 0 search INBOX SUBJECT 'a "quoted" {5} \ ) (' OR SEEN UNSEEN
stdout_empty search-quotes
full search-spaces 0 search INBOX SUBJECT 'hello world'
stdout_is search-spaces "2"
full search-from-name 0 search INBOX FROM 'André Müller'
stdout_is search-from-name "1"
full search-or 0 search INBOX OR FROM dora@example.org KEYWORD '$Work'
stdout_is search-or "5 6 7 11"
full search-not-group 0 search INBOX NOT '(' SEEN FROM dora ')' SUBJECT maildir
stdout_is search-not-group "5 7"
full search-glued 0 search INBOX '(FLAGGED' 'UID 1:7)'
stdout_is search-glued "7"
full search-date 0 search INBOX SINCE 2026-01-01 BEFORE 2-Jan-2026
stdout_is search-date "5 8"
full search-larger 0 search INBOX LARGER 400
stdout_is search-larger "2"
full search-header 0 search INBOX HEADER Message-ID '<m2@example.org>'
stdout_is search-header "2"
full search-set 0 search --set INBOX FROM dora
stdout_is search-set "5:7"
full search-none 0 search INBOX SUBJECT 'no such subject anywhere'
stdout_empty search-none
full search-json 0 --json search INBOX BODY 'body'
json search-json search.schema.json "objs[0]['uids'] == [8, 9, 10] and objs[0]['count'] == 3 and objs[0]['mailbox'] == 'INBOX'"
full search-json-none 0 --json search INBOX SUBJECT nothing-matches-this
json search-json-none search.schema.json "objs[0]['uids'] == [] and objs[0]['count'] == 0"
plain search-plain 0 --json search INBOX ALL
json search-plain search.schema.json "objs[0]['count'] == 0"
full search-missing 1 search NoSuchBox ALL
stderr_has search-missing 'NoSuchBox.*(NO|said).*(doesn.t exist|not exist|NONEXISTENT)'
stdout_empty search-missing

# ---- fetch ------------------------------------------------------------------------

full fetch-human 0 fetch INBOX 1:*
stdout_has fetch-human '^UID +FLAGS +DATE +FROM +SUBJECT +SIZE$'
stdout_has fetch-human '^ +1 .*André Müller +Grüße aus Köln +[0-9]+ B$'
stdout_has fetch-human '^ +3 .*café crème'
stdout_has fetch-human '^ +6 +\\Seen.*maildir seen'
stdout_has fetch-human '^ +8 .* 2026-01-01 [0-9]{2}:00 .*mbox one'
stdout_has fetch-human 'mbox dréi'
stdout_lacks fetch-human '=\?'
# Every row has its columns at the same places: SUBJECT starts at one column.
checks=$((checks + 1))
python3 - "$work/fetch-human.out" <<'PY' || fail "fetch-human: columns not aligned"
import sys, unicodedata
lines = open(sys.argv[1], encoding='utf-8').read().splitlines()
def width(s):
    return sum(2 if unicodedata.east_asian_width(c) in 'WF' else 0 if unicodedata.combining(c) else 1 for c in s)
head = lines[0]
pos = width(head[:head.index('SUBJECT')])
for l in lines[1:]:
    # the SUBJECT cell starts after the FROM cell's padding: the character
    # before it is a space and the one at it is not
    prefix = ''
    w = 0
    for c in l:
        if w >= pos:
            break
        prefix += c
        w += width(c)
    if w != pos or not prefix.endswith('  ') or l[len(prefix)] == ' ':
        sys.exit('misaligned: %r' % l)
PY
full fetch-json 0 --json fetch INBOX 1:*
json fetch-json fetch.schema.json "len(objs) == 11 and by[1]['envelope']['subject'] == 'Grüße aus Köln' and by[1]['envelope']['from'][0]['name'] == 'André Müller' and by[1]['envelope']['from'][0]['address'] == 'andre@example.org' and by[1]['envelope']['cc'][0]['name'] == 'François' and [a['address'] for a in by[1]['envelope']['to']] == ['bob@example.com', 'carol@example.com'] and by[1]['envelope']['message_id'] == '<m1@example.org>' and by[1]['size'] == $(wc -c <"$m/m1.eml.crlf") and by[2]['size'] == $(wc -c <"$m/m2.eml") and by[3]['envelope']['subject'] == 'café crème' and '\\\\Seen' in by[6]['flags'] and by[8]['internaldate'] == '2026-01-01T10:00:00+00:00' and by[10]['internaldate'] == '2026-01-03T12:45:30+00:00' and by[5]['internaldate'] == '2026-01-01T10:00:00+00:00' and by[11]['internaldate'] == '2026-02-03T03:05:06+00:00' and sorted(f for f in by[11]['flags'] if f != '\\\\Recent') == ['\$Work', '\\\\Seen'] and all(isinstance(o['modseq'], int) for o in objs) and 'bodystructure' not in by[1]"
full fetch-items 0 --json fetch INBOX 2 bodystructure header
json fetch-items fetch.schema.json "len(objs) == 1 and objs[0]['bodystructure']['type'].upper() == 'MULTIPART' and objs[0]['bodystructure']['parts'][1]['subtype'].upper() == 'PNG' and objs[0]['header'].startswith('From: Alice <alice@example.org>\\r\\n') and objs[0]['header'].endswith('\\r\\n\\r\\n')"
full fetch-structure 0 fetch INBOX 2 uid subject bodystructure
stdout_has fetch-structure '^UID +SUBJECT$'
stdout_has fetch-structure '^    multipart/mixed$'
stdout_has fetch-structure '^      1  text/plain  [0-9]+ B$'
stdout_has fetch-structure '^      2  image/png  [0-9]+ B  attachment  "pixel.png"$'
full fetch-envelope 0 fetch INBOX 1 envelope header
stdout_has fetch-envelope '^    From: André Müller <andre@example.org>$'
stdout_has fetch-envelope '^    To: Bob <bob@example.com>, carol@example.com$'
stdout_has fetch-envelope '^    Subject: Grüße aus Köln$'
stdout_has fetch-envelope '^    Message-ID: <m1@example.org>$'
stdout_lacks fetch-envelope 'Reply-To|Sender'
stdout_has fetch-envelope '^    Subject: =\?UTF-8\?B\?R3LDvMOfZSBhdXMgS8O2bG4=\?=$'
full fetch-cols 0 fetch INBOX 1,3 uid size to cc modseq
stdout_has fetch-cols '^UID +SIZE +TO +CC +MODSEQ$'
stdout_has fetch-cols '^ +1 +[0-9]+ B +Bob, carol@example.com +François +[0-9]+$'
stdout_has fetch-cols '^ +3 +[0-9]+ B +- +- +[0-9]+$'
full fetch-nothing 0 fetch INBOX 1000:2000
stdout_empty fetch-nothing
full fetch-missing 1 fetch NoSuchBox 1:*
stderr_has fetch-missing 'NoSuchBox'
plain fetch-modseq 1 fetch INBOX 1:* modseq
stderr_has fetch-modseq 'does not offer CONDSTORE'

# ---- cat --------------------------------------------------------------------------

full cat-1 0 cat INBOX 1
same_bytes cat-1 "$m/m1.eml.crlf"
full cat-2 0 cat INBOX 2
same_bytes cat-2 "$m/m2.eml"
full cat-3 0 cat INBOX 3
same_bytes cat-3 "$m/m3.eml.crlf"
full cat-mbox1 0 cat INBOX 8
same_bytes cat-mbox1 "$m/mbox1.eml.crlf"
full cat-mbox3 0 cat INBOX 10
same_bytes cat-mbox3 "$m/mbox3.eml.crlf"
full cat-part 0 cat --decode INBOX 2 2
same_bytes cat-part "$m/pixel.png"
full cat-body 0 cat INBOX 1 1
printf 'Hello world, the first message.\r\n' >"$work/m1.body"
same_bytes cat-body "$work/m1.body"
full cat-header 0 cat INBOX 1 HEADER
sed -n '1,/^\r$/p' "$m/m1.eml.crlf" >"$work/m1.header"
same_bytes cat-header "$work/m1.header"
full cat-fields 0 cat INBOX 1 'HEADER.FIELDS (SUBJECT)'
printf 'Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n\r\n' >"$work/m1.subject"
same_bytes cat-fields "$work/m1.subject"
full cat-json 0 --json cat INBOX 1
same_bytes cat-json "$m/m1.eml.crlf"
full cat-missing 1 cat INBOX 999
stderr_has cat-missing 'no message with UID 999 in INBOX'
stdout_empty cat-missing
full cat-nobox 1 cat NoSuchBox 1
stderr_has cat-nobox 'NoSuchBox'

# ---- flag -------------------------------------------------------------------------

full flag-add 0 flag INBOX 1:2 +seen +'$Label' +\\Flagged
stdout_empty flag-add
full flag-both 0 --json flag INBOX 1:3 -flagged +answered
json flag-both store.schema.json "len(objs) == 3 and sorted(f for f in by[1]['flags'] if f != '\\\\Recent') == ['\$Label', '\\\\Answered', '\\\\Seen']"
json flag-both store.schema.json "'\\\\Flagged' not in by[2]['flags'] and '\\\\Answered' in by[3]['flags'] and '\\\\Seen' not in by[3]['flags'] and all('modseq' in o for o in objs)"
full flag-check 0 search INBOX KEYWORD '$Label'
stdout_is flag-check "1 2"
full flag-missing 1 flag NoSuchBox 1 +seen
stderr_has flag-missing 'NoSuchBox'

# ---- copy and move ----------------------------------------------------------------

full create-archive 0 create Archive
full copy 0 copy INBOX 1:2 Archive
stdout_has copy '^UID +NEW UID$'
stdout_has copy '^ +1 +1$'
stdout_has copy '^ +2 +2$'
full copy-json 0 --json copy INBOX 3,5 Archive
json copy-json copy.schema.json "objs[0]['operation'] == 'copy' and objs[0]['destination'] == 'Archive' and [(p['uid'], p['dest_uid']) for p in objs[0]['map']] == [(3, 3), (5, 4)] and isinstance(objs[0]['uidvalidity'], int)"
full copy-nodest 1 copy INBOX 1 NoSuchBox
stderr_has copy-nodest 'TRYCREATE'
stderr_has copy-nodest "create it with 'imapkit create NoSuchBox'"
full copy-check 0 --json fetch Archive 1:*
json copy-check fetch.schema.json "[o['envelope']['subject'] for o in objs] == ['Grüße aus Köln', 'hello world with an attachment', 'café crème', 'maildir new']"
full move 0 --json move INBOX 9 Archive
json move copy.schema.json "objs[0]['operation'] == 'move' and [(p['uid'], p['dest_uid']) for p in objs[0]['map']] == [(9, 5)]"
full move-gone 0 search INBOX UID 9
stdout_empty move-gone
full move-there 0 fetch Archive 5 subject
stdout_has move-there 'mbox two'

# The fallback (no MOVE): COPY, STORE \Deleted, UID EXPUNGE of that message.
nomove nm-append 0 append INBOX "$m/m1.eml" "$m/m3.eml"
nomove nm-create 0 create Other
nomove nm-flag 0 flag INBOX 2 +deleted
nomove nm-move 0 move INBOX 1 Other
stdout_has nm-move '^ +1 +1$'
nomove nm-left 0 search INBOX ALL
stdout_is nm-left "2"
nomove nm-moved 0 cat Other 1
same_bytes nm-moved "$m/m1.eml.crlf"

# ---- expunge ----------------------------------------------------------------------

full del-mark 0 flag INBOX 3,4,5 +deleted
full expunge-set 0 expunge INBOX 4:5
stdout_is expunge-set "4 5"
full expunge-kept 0 search INBOX DELETED
stdout_is expunge-kept "3"
full expunge-all 0 --json expunge INBOX
json expunge-all expunge.schema.json "objs[0]['uids'] == [3] and objs[0]['count'] == 1"
full expunge-none 0 expunge INBOX
stdout_empty expunge-none
full expunge-left 0 search INBOX ALL
stdout_is expunge-left "1 2 6 7 8 10 11"
full expunge-missing 1 expunge NoSuchBox
stderr_has expunge-missing 'NoSuchBox'
# Without MULTIAPPEND, ESEARCH and CONDSTORE: one APPEND per message, plain
# SEARCH answers, no modseq in the JSON.
plain plain-append 0 --json append INBOX "$m/m1.eml" "$m/m2.eml" "$work/box.mbox"
json plain-append append.schema.json "len(objs) == 5 and [o['size'] for o in objs][:2] == [$(wc -c <"$m/m1.eml.crlf"), $(wc -c <"$m/m2.eml")]"
plain plain-search 0 search INBOX SUBJECT 'Grüße'
stdout_is plain-search "1"
plain plain-search-or 0 --json search INBOX OR SUBJECT 'mbox one' SUBJECT 'dréi'
json plain-search-or search.schema.json "objs[0]['uids'] == [3, 5]"
plain plain-fetch 0 --json fetch INBOX 1:*
json plain-fetch fetch.schema.json "len(objs) == 5 and not any('modseq' in o for o in objs) and objs[4]['envelope']['subject'] == 'mbox dréi'"
plain plain-cat 0 cat INBOX 3
same_bytes plain-cat "$m/mbox1.eml.crlf"
plain expunge-uidplus 1 expunge INBOX 1:*
stderr_has expunge-uidplus 'does not offer UIDPLUS'

# ---- many messages: MULTIAPPEND in batches, fetch streaming --------------------------

mkdir -p "$work/many/cur" "$work/many/new"
for i in $(seq 1 120); do
    printf 'From: bulk@example.org\nSubject: bulk %03d\n\nmessage %d\n' "$i" "$i" >"$work/many/new/$((1767261600 + i)).M${i}P1.host"
done
full create-bulk 0 create Bulk
full append-many 0 --json append Bulk "$work/many"
json append-many append.schema.json "[o['uid'] for o in objs] == list(range(1, 121))"
full fetch-many 0 fetch Bulk 1:*
checks=$((checks + 1))
[ "$(grep -c 'bulk [0-9]' "$work/fetch-many.out")" = 120 ] || fail "fetch-many: not 120 rows"
stdout_has fetch-many '^ *120 .*bulk 120 '

# ---- a nested structure: parts numbered for cat ---------------------------------

printf 'From: Alice <alice@example.org>\r\nSubject: =?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary="b2"\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\nplain inner\r\n--b2\r\nContent-Type: text/html\r\n\r\n<p>html inner</p>\r\n--b2--\r\n--b1--\r\n' >"$m/nested.eml"
full create-nested 0 create Nested
full append-nested 0 append Nested "$m/nested.eml"
full fetch-nested 0 fetch Nested 1 subject bodystructure
stdout_has fetch-nested '^SUBJECT$'
stdout_has fetch-nested '^日本語の件名$'
stdout_has fetch-nested '^      2  message/rfc822  [0-9]+ B$'
stdout_has fetch-nested '^        multipart/alternative$'
stdout_has fetch-nested '^          2\.2  text/html  [0-9]+ B$'
full cat-nested 0 cat Nested 1 2.2
printf '<p>html inner</p>' >"$work/inner.html"
same_bytes cat-nested "$work/inner.html"
full cat-nopart 1 cat Nested 1 7
stderr_has cat-nopart 'has no part 7'
full fetch-blocks 0 fetch Nested 1 envelope
stdout_has fetch-blocks '^UID$'
stdout_has fetch-blocks '^  1$'
stdout_has fetch-blocks '^    Subject: 日本語の件名$'

cli_finish test_cli_messages
