#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The mailbox commands of the `imapkit` tool end to end, against a private
# Dovecot over a preauthenticated tunnel (tests/integration/servers.sh):
# list, status, select, create, delete, rename, subscribe, quota, in human
# and --json modes, with every JSON line validated against its schema in
# docs/schema/ (python3's jsonschema), and the error paths: a missing mailbox
# (exit 1 with the server's text), bad arguments (exit 2).
#
# Two servers:
#   - "full": the tunnel as servers.sh configures it (LIST-STATUS,
#     LIST-EXTENDED, SPECIAL-USE with Sent/Drafts/Trash, CONDSTORE,
#     STATUS=SIZE, QUOTA with a 1 GiB "User quota" root);
#   - "plain": the same Dovecot told to advertise only IMAP4rev1 LITERAL+ and
#     without the quota plugins, so that list falls back to one STATUS per
#     mailbox and LSUB, and quota meets a server without QUOTA.
# The INBOX is seeded with three messages written into the Maildir before
# the first session (two in new/, one in cur/ marked seen), since the append
# command is not needed for that.
#
# Usage: tests/cli/test_cli_mailbox.sh PATH/TO/imapkit
# Exit: 0 passed, 1 failed, 77 skipped (no Dovecot here, unless
# IMK_IT_REQUIRED=1).
set -u

# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"
cli_init mailbox "$@"
cli_require_jsonschema

# ---- servers ------------------------------------------------------------------

full_dir=$work/full
plain_dir=$work/plain
full=$(cli_tunnel "$full_dir") || exit $?
# The plain server: no extensions advertised (Dovecot's imap_capability
# replaces the list) and no quota plugins.
plain=$(cli_tunnel "$plain_dir" "IMAP4rev1 LITERAL+") || exit $?
sed -i -e 's/ imap_quota//; s/ zlib quota$//' "$plain_dir/dovecot-tunnel.conf"

# Seed the full server's INBOX: CRLF line ends, so that the size Dovecot
# reports (RFC822.SIZE, STATUS SIZE) is the files' size.
message() { # n subject
    printf 'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: %s\r\nDate: Mon, 2 Mar 2026 10:0%s:00 +0000\r\nMessage-ID: <seed-%s@example.org>\r\n\r\nMessage number %s.\r\n' \
        "$2" "$1" "$1" "$1"
}
mkdir -p "$full_dir/Maildir/new" "$full_dir/Maildir/cur" "$full_dir/Maildir/tmp"
message 1 "first" >"$full_dir/Maildir/new/1772445601.M1P1.imapkit-test"
message 2 "second" >"$full_dir/Maildir/new/1772445602.M2P1.imapkit-test"
message 3 "third" >"$full_dir/Maildir/cur/1772445603.M3P1.imapkit-test:2,S"
seed_size=$(cat "$full_dir"/Maildir/new/* "$full_dir"/Maildir/cur/* | wc -c)
chown -R "$(stat -c %u:%g "$full_dir/Maildir")" "$full_dir/Maildir"

# ---- helpers ------------------------------------------------------------------

# full/plain NAME STATUS ARGS...: run (lib.sh) against one of the servers.
full() { run "$1" "$2" --tunnel "$full" "${@:3}"; }
plain() { run "$1" "$2" --tunnel "$plain" "${@:3}"; }

# json NAME SCHEMA EXPR: NAME's result lines follow docs/schema/SCHEMA and
# the Python expression EXPR holds on them (`by` maps "name" or "mailbox" to
# the object); see json_check in lib.sh.
json() { json_check "$1" "$work/$1.out" "$2" "$3"; }

# ---- help and usage errors (no server needed) ----------------------------------

for cmd in list status select create delete rename subscribe quota; do
    run "help-$cmd" 0 "$cmd" --help
    stdout_has "help-$cmd" "^Usage: imapkit .*$cmd"
    stdout_has "help-$cmd" "^Examples?:"
    run "help-h-$cmd" 0 "$cmd" -h
    stdout_has "help-h-$cmd" "^Usage: imapkit "
done
stdout_has help-select "--readonly"
stdout_has help-subscribe "--unsubscribe"

run usage-status-none 2 status
stderr_has usage-status-none "status: missing MAILBOX argument"
stderr_has usage-status-none "imapkit status --help"
stdout_empty usage-status-none
run usage-select-none 2 select --readonly
stderr_has usage-select-none "missing MAILBOX"
run usage-create-none 2 create
run usage-delete-none 2 delete
run usage-rename-one 2 rename Old
stderr_has usage-rename-one "missing NEW argument"
run usage-rename-three 2 rename A B C
stderr_has usage-rename-three "unexpected argument 'C'"
run usage-subscribe-none 2 subscribe --unsubscribe
run usage-list-two 2 list A B
run usage-quota-two 2 quota A B
run usage-status-two 2 status A B
run usage-select-option 2 select --bogus INBOX
stderr_has usage-select-option "unknown option '--bogus'"
run usage-create-option 2 create --readonly Foo
stderr_has usage-create-option "unknown option '--readonly'"
run usage-utf8 2 create "$(printf 'Bad\377name')"
stderr_has usage-utf8 "not valid UTF-8"
run usage-utf8-pattern 2 list "$(printf '\355\240\200*')"
# Usage errors are found before connecting: a tunnel that cannot run does
# not matter.
run usage-before-connect 2 --tunnel /nonexistent/imapd status

# ---- status and select of the seeded INBOX -------------------------------------

full status-human 0 status INBOX
stdout_has_each status-human "^mailbox: +INBOX$" "^messages: +3$" "^unseen: +2$" \
    "^uidnext: +4$" "^uidvalidity: +[1-9][0-9]*$" "^recent: +[0-9]+$" \
    "^highestmodseq: +[1-9][0-9]*$" "^size: +.* \\($seed_size bytes\\)$"

full status-json 0 --json status INBOX
json status-json status.schema.json \
    "len(objs) == 1 and objs[0]['mailbox'] == 'INBOX' and objs[0]['messages'] == 3 and \
     objs[0]['unseen'] == 2 and objs[0]['uidnext'] == 4 and objs[0]['uidvalidity'] > 0 and \
     objs[0]['size'] == $seed_size and objs[0]['highestmodseq'] > 0 and 'recent' in objs[0]"
uidvalidity=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["uidvalidity"])' \
    "$work/status-json.out" 2>/dev/null || echo none)

full select-human 0 select INBOX
# The first read-write SELECT of new mail takes its \Recent (RFC 3501 2.3.2):
# 3 here, 0 for the next session.
stdout_has_each select-human "^mailbox: +INBOX$" "^exists: +3$" "^recent: +3$" "^uidnext: +4$" \
    "^uidvalidity: +$uidvalidity$" "^highestmodseq: +[1-9][0-9]*$" "^flags: +.*\\\\Seen" \
    "^permanentflags: +.*\\\\\\*" "^read-only: +no$"

full select-json 0 --json select INBOX
json select-json select.schema.json \
    "len(objs) == 1 and objs[0]['exists'] == 3 and objs[0]['uidnext'] == 4 and \
     objs[0]['uidvalidity'] == $uidvalidity and objs[0]['read_only'] is False and \
     '\\\\Seen' in objs[0]['flags'] and '\\\\*' in objs[0]['permanentflags'] and \
     objs[0]['highestmodseq'] > 0 and objs[0]['recent'] == 0"

full examine-json 0 --json select --readonly INBOX
json examine-json select.schema.json "objs[0]['read_only'] is True and objs[0]['exists'] == 3"
full examine-human 0 select --readonly -- INBOX
stdout_has examine-human "^read-only: +yes$"

# ---- list: special-use roles, counts, subscriptions ----------------------------

full list-human 0 list
stdout_has list-human "^NAME +ROLE +MESSAGES +UNSEEN$"
stdout_has list-human "^INBOX +3 +2$"
stdout_has list-human "^Sent +Sent +0 +0$"
stdout_has list-human "^Drafts +Drafts +0 +0$"
stdout_has list-human "^Trash +Trash +0 +0$"
checks=$((checks + 1))
[ "$(sed -n 2p "$work/list-human.out" | awk '{print $1}')" = INBOX ] || fail "list-human: INBOX is not first"

full list-json 0 --json list
json list-json list.schema.json \
    "sorted(by) == ['Drafts', 'INBOX', 'Sent', 'Trash'] and objs[0]['name'] == 'INBOX' and \
     by['INBOX']['messages'] == 3 and by['INBOX']['unseen'] == 2 and \
     by['INBOX']['special_use'] is None and by['Sent']['special_use'] == '\\\\Sent' and \
     by['Drafts']['special_use'] == '\\\\Drafts' and by['Trash']['special_use'] == '\\\\Trash' and \
     all(o['delimiter'] == '/' for o in objs) and \
     by['Sent']['subscribed'] is True and by['INBOX']['subscribed'] is False and \
     '\\\\Sent' in by['Sent']['flags']"

full list-pattern 0 --json list 'S*'
json list-pattern list.schema.json "sorted(by) == ['Sent']"

# ---- create / list / rename / subscribe / delete round trip --------------------

full create-human 0 create 'Entwürfe'
stdout_has create-human "^Created Entwürfe$"
checks=$((checks + 1))
[ -d "$full_dir/Maildir/.Entw&APw-rfe" ] || fail "create: no Maildir folder .Entw&APw-rfe (modified UTF-7) for Entwürfe"
full create-json 0 --json create Projects/2026
json create-json mailbox-change.schema.json \
    "objs == [{'action': 'create', 'mailbox': 'Projects/2026'}]"

full list-after-create 0 --json list
json list-after-create list.schema.json \
    "'Entwürfe' in by and by['Entwürfe']['messages'] == 0 and \
     by['Entwürfe']['subscribed'] is False and 'Projects/2026' in by and \
     [o['name'] for o in objs].index('Projects/2026') > [o['name'] for o in objs].index('Entwürfe')"
full list-after-create-human 0 list
stdout_has list-after-create-human "^Entwürfe +0 +0$"
stdout_has list-after-create-human "^Projects/2026 +0 +0$"

full create-again 1 create 'Entwürfe'
stderr_has create-again "CREATE \"Entwürfe\""
stderr_has create-again "[Aa]lready exists"
stdout_empty create-again

full rename-human 0 rename 'Entwürfe' 'Archiv/Entwürfe'
stdout_has rename-human "^Renamed Entwürfe to Archiv/Entwürfe$"
full subscribe-json 0 --json subscribe 'Archiv/Entwürfe'
json subscribe-json mailbox-change.schema.json \
    "objs == [{'action': 'subscribe', 'mailbox': 'Archiv/Entwürfe'}]"
full list-after-rename 0 --json list
json list-after-rename list.schema.json \
    "'Entwürfe' not in by and by['Archiv/Entwürfe']['subscribed'] is True and \
     by['Archiv/Entwürfe']['delimiter'] == '/'"

full unsubscribe-human 0 subscribe --unsubscribe 'Archiv/Entwürfe'
stdout_has unsubscribe-human "^Unsubscribed Archiv/Entwürfe$"
full rename-json 0 --json rename Projects/2026 Projects/2027
json rename-json mailbox-change.schema.json \
    "objs == [{'action': 'rename', 'mailbox': 'Projects/2026', 'new_name': 'Projects/2027'}]"
full list-after-unsubscribe 0 --json list 'Archiv/*'
json list-after-unsubscribe list.schema.json \
    "sorted(by) == ['Archiv/Entwürfe'] and by['Archiv/Entwürfe']['subscribed'] is False"

full delete-human 0 delete 'Archiv/Entwürfe'
stdout_has delete-human "^Deleted Archiv/Entwürfe$"
full delete-json 0 --json delete Projects/2027
json delete-json mailbox-change.schema.json "objs == [{'action': 'delete', 'mailbox': 'Projects/2027'}]"
full list-after-delete 0 --json list
json list-after-delete list.schema.json \
    "not any(n.startswith('Archiv/') or n.startswith('Projects/') or n == 'Entwürfe' for n in by)"

# ---- a missing mailbox: exit 1 with the server's text --------------------------

full status-missing 1 status NoSuchBox
stderr_has status-missing "STATUS \"NoSuchBox\""
stderr_has status-missing "Mailbox doesn't exist: NoSuchBox"
stderr_has status-missing "imapkit list"
stdout_empty status-missing
full select-missing 1 --json select NoSuchBox
stderr_has select-missing "SELECT \"NoSuchBox\""
stderr_has select-missing "Mailbox doesn't exist: NoSuchBox"
stdout_empty select-missing
full examine-missing 1 select --readonly NoSuchBox
stderr_has examine-missing "EXAMINE \"NoSuchBox\""
full delete-missing 1 delete NoSuchBox
stderr_has delete-missing "Mailbox doesn't exist: NoSuchBox"
full rename-missing 1 rename NoSuchBox Other
stderr_has rename-missing "RENAME \"NoSuchBox\" \"Other\""
stderr_has rename-missing "doesn't exist"
full delete-inbox 1 delete INBOX
stderr_has delete-inbox "DELETE \"INBOX\""
stderr_has delete-inbox "INBOX itself can never be deleted"
full create-empty 1 create ''
stderr_has create-empty "CREATE \"\".*NO \\[CANNOT\\]"

# A name that starts with "-" goes after "--".
full dash-create 0 create -- -dash
stdout_has dash-create "^Created -dash$"
full dash-list 0 --json list -- '-*'
json dash-list list.schema.json "sorted(by) == ['-dash']"
full dash-delete 0 delete -- -dash
full dash-option 2 delete -dash
stderr_has dash-option "unknown option '-dash'.*'--'"

# ---- quota ---------------------------------------------------------------------

full quota-human 0 quota
stdout_has quota-human "^INBOX: quota root \"User quota\"$"
stdout_has quota-human "^  STORAGE +[0-9.]+ [KMG]?i?B of 1\\.0 GiB \\(0%\\)$"
full quota-json 0 --json quota INBOX
json quota-json quota.schema.json \
    "len(objs) == 1 and objs[0]['mailbox'] == 'INBOX' and \
     [r['root'] for r in objs[0]['roots']] == ['User quota'] and \
     [(x['name'], x['limit']) for x in objs[0]['roots'][0]['resources']] == [('STORAGE', 1048576)] and \
     0 <= objs[0]['roots'][0]['resources'][0]['usage'] < 1048576"
full quota-sent 0 --json quota Sent
json quota-sent quota.schema.json "objs[0]['mailbox'] == 'Sent' and len(objs[0]['roots']) == 1"

# ---- standard output cannot be written: exit 4 -----------------------------------

if [ -w /dev/full ]; then
    for mode in "" --json; do
        checks=$((checks + 1))
        # shellcheck disable=SC2086 # $mode is empty or one word
        "$imapkit" --tunnel "$full" $mode list >/dev/full 2>"$work/full.err"
        st=$?
        [ $st -eq 4 ] || fail "list ${mode:-human} to /dev/full: exit $st, expected 4"
        grep -q "cannot write to standard output" "$work/full.err" ||
            fail "list ${mode:-human} to /dev/full: no message"
    done
fi

# ---- the plain server: fallbacks -----------------------------------------------

plain plain-create 0 create Lists
plain plain-subscribe 0 subscribe Lists
plain plain-list-json 0 --json list
json plain-list-json list.schema.json \
    "sorted(by) == ['Drafts', 'INBOX', 'Lists', 'Sent', 'Trash'] and \
     all(o['messages'] == 0 and o['unseen'] == 0 for o in objs) and \
     by['Lists']['subscribed'] is True and by['Sent']['subscribed'] is True and \
     by['INBOX']['subscribed'] is False"
plain plain-list-human 0 list
stdout_has plain-list-human "^Lists +0 +0$"
plain plain-status 0 --json status Lists
json plain-status status.schema.json \
    "objs[0]['messages'] == 0 and 'highestmodseq' not in objs[0] and 'size' not in objs[0]"
plain plain-select 0 --json select Lists
json plain-select select.schema.json "objs[0]['exists'] == 0 and objs[0]['read_only'] is False"
plain plain-quota 1 quota
stderr_has plain-quota "does not support quotas"
stdout_empty plain-quota
plain plain-quota-json 1 --json quota
stdout_empty plain-quota-json

cli_finish test_cli_mailbox
