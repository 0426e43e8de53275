#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The core of the `imapkit` tool end to end: dispatch and help, server URLs,
# the account file, credentials (--password-command, IMAPKIT_PASSWORD,
# ~/.netrc), TLS and its warnings, connection failures, the trace, the event
# printer, and the `capabilities` command - against a private Dovecot (a
# preauthenticated tunnel and a daemon with users on loopback ports) and a
# scripted fake server run as a tunnel (for notices, alerts and BYE, which
# Dovecot does not send on demand).
#
# Usage: tests/cli/test_cli_core.sh PATH/TO/imapkit
# Exit: 0 passed, 1 failed, 77 skipped (Dovecot missing and IMK_IT_REQUIRED unset).
#
# Exit statuses under test (src/cli/ctx.h): 0 ok, 1 NO/BAD, 2 usage,
# 3 connect/TLS/auth, 4 protocol or internal.
set -u

# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"
cli_init core "$@"
daemon_started=0
# shellcheck disable=SC2317 # called by cli_cleanup (lib.sh) at exit
cli_cleanup_hook() {
    [ "$daemon_started" = 1 ] && "$servers" dovecot-stop "$work/daemon" >/dev/null 2>&1
}

# run (lib.sh) starts imapkit with the caller's environment, but with
# IMAPKIT_PASSWORD unset unless given in $env_pw, and HOME=$home.
home=$work/home
mkdir -p "$home"
cli_exec() {
    env -u IMAPKIT_PASSWORD -u NETRC -u XDG_CONFIG_HOME HOME="$home" ${env_pw:+IMAPKIT_PASSWORD="$env_pw"} \
        "$imapkit" "$@"
}
env_pw=

# nowhere NAME STRING: STRING is in none of NAME's outputs nor in FILE...
nowhere() {
    local name=$1 secret=$2
    shift 2
    checks=$((checks + 1))
    if grep -q -F -- "$secret" "$work/$name.out" "$work/$name.err" "$@" 2>/dev/null; then
        fail "$name: the secret '$secret' appears in the output"
    fi
}

# validate NAME SCHEMA: every stdout line is a JSON object valid against
# docs/schema/SCHEMA, or, when it has an "event" key, against
# event.schema.json.
validate() {
    json_check --events check "$1: stdout does not follow docs/schema/$2" "$work/$1.out" "$2"
}

# ---- help, version, dispatch --------------------------------------------------

run help 0 --help && {
    out_has help "Usage: imapkit"
    for c in capabilities list status select search fetch cat append flag copy move expunge \
        create delete rename subscribe quota watch shell parse; do
        checks=$((checks + 1))
        grep -q -E "^  $c( |$)" "$work/help.out" || fail "help: command $c not listed"
    done
    for o in --server --tunnel --account --config --password-command --oauth2-token-command \
        --auth --tls --ca-file --insecure --json --trace --timeout-ms --quiet --version; do
        out_has help "$o"
    done
    out_has help "Exit status"
}
run help_after_options 0 --json --help && out_has help_after_options "Usage: imapkit"
run version 0 --version && {
    checks=$((checks + 1))
    grep -q -E '^imapkit [0-9]+\.[0-9]+\.[0-9]+$' "$work/version.out" ||
        fail "version: $(cat "$work/version.out")"
}
run version_short 0 -V
run no_command 2 && err_has no_command "no command given" && err_has no_command "imapkit --help"
run only_options 2 --json -q && err_has only_options "no command given"
run unknown_command 2 frobnicate && err_has unknown_command "unknown command 'frobnicate'"
run unknown_option 2 --frobnicate && err_has unknown_option "unknown option '--frobnicate'"
run unknown_option_cmd 2 capabilities --frobnicate && err_has unknown_option_cmd "--frobnicate"
run extra_argument 2 capabilities INBOX && err_has extra_argument "takes no arguments"
run option_missing_value 2 capabilities --server && err_has option_missing_value "--server needs a value"
run timeout_bad 2 --timeout-ms 12x capabilities && err_has timeout_bad "--timeout-ms '12x'"
run tls_bad 2 --tls maybe capabilities && err_has tls_bad "expected implicit, starttls or none"
run no_server 2 capabilities && err_has no_server "no server given" && err_has no_server "-s imaps://"
run cap_help 0 capabilities --help && out_has cap_help "Usage: imapkit" && stderr_empty cap_help
# every command answers --help on stdout with status 0, without connecting
for c in capabilities list status select search fetch cat append flag copy move expunge \
    create delete rename subscribe quota watch shell parse; do
    run "help_$c" 0 "$c" --help && out_has "help_$c" "$c"
done

# ---- the password is never an argument ---------------------------------------

run password_option 2 --password hunter2 -s imaps://alice@127.0.0.1 capabilities &&
    err_has password_option "--password is not accepted" &&
    err_has password_option "--password-command" && err_has password_option "IMAPKIT_PASSWORD" &&
    err_has password_option ".netrc" && nowhere password_option hunter2
run password_option_eq 2 capabilities --password=hunter2 && nowhere password_option_eq hunter2
run password_in_url 2 -s imaps://alice:hunter2@127.0.0.1 capabilities &&
    err_has password_in_url "a password in the URL is not accepted" && nowhere password_in_url hunter2

# ---- server URLs ------------------------------------------------------------------

bad_url() { # NAME URL EXPECTED-REASON
    run "url_$1" 2 -s "$2" capabilities && err_has "url_$1" "$3" &&
        err_has "url_$1" "imaps://USER@HOST[:PORT]" && err_has "url_$1" "imap://USER@HOST[:PORT]"
}
bad_url scheme http://alice@example.org "the scheme must be imap:// or imaps://"
bad_url not_url example.org "not a URL"
bad_url no_host imaps://alice@ "no host name"
bad_url path imaps://alice@example.org/INBOX "a mailbox, path or query"
bad_url query "imaps://alice@example.org?x=1" "a mailbox, path or query"
bad_url port0 imaps://alice@example.org:0 "bad port '0'"
bad_url port_big imaps://alice@example.org:65536 "bad port '65536'"
bad_url port_alpha imaps://alice@example.org:imap "bad port 'imap'"
bad_url percent imaps://ali%4@example.org "bad percent-encoding"
bad_url percent2 imaps://ali%zz@example.org "bad percent-encoding"
bad_url v6_open "imaps://alice@[::1" "'[' without ']'"
bad_url v6_bad "imaps://alice@[example]" "bad IPv6 address"
bad_url v6_trailing "imaps://alice@[::1]x" "unexpected text after ']'"
bad_url auth_param "imaps://alice;AUTH=PLAIN@example.org" "--auth"
bad_url host_char "imaps://alice@exa mple.org" "space or control character"
bad_url empty_user "imaps://@example.org" "empty user name"
run tls_contradiction 2 -s imaps://alice@127.0.0.1 --tls none capabilities &&
    err_has tls_contradiction "contradicts imaps://"
run tls_contradiction2 2 -s imap://alice@127.0.0.1 --tls implicit capabilities &&
    err_has tls_contradiction2 "contradicts imap://"
run server_and_tunnel 2 -s imaps://alice@127.0.0.1 --tunnel cat capabilities &&
    err_has server_and_tunnel "either --server or --tunnel"
run tunnel_tls 2 --tunnel cat --tls none capabilities && err_has tunnel_tls "do not apply to --tunnel"

# ---- the account file: errors -----------------------------------------------------

cfg=$work/config
bad_config() { # NAME LINE EXPECTED-TEXT (config text on stdin)
    cat >"$cfg"
    run "cfg_$1" 2 --config "$cfg" -a work capabilities && err_has "cfg_$1" "$cfg:$2: " &&
        err_has "cfg_$1" "$3"
}
bad_config unknown_key 3 "unknown key 'sever'" <<'EOF'
# comment
[account work]
sever = imaps://me@example.org
EOF
bad_config no_equals 2 "expected 'key = value'" <<'EOF'
[account work]
server imaps://me@example.org
EOF
bad_config section 1 "unknown section '[acount work]'" <<'EOF'
[acount work]
EOF
bad_config unclosed 1 "must end with ']'" <<'EOF'
[account work
EOF
bad_config password_key 3 "password-command" <<'EOF'
[account work]
server = imaps://me@example.org
password = hunter2
EOF
bad_config duplicate_key 3 "'server' is set twice" <<'EOF'
[account work]
server = imaps://me@example.org
server = imaps://you@example.org
EOF
bad_config duplicate_account 4 "account 'work' is defined twice" <<'EOF'
[account work]
server = imaps://me@example.org
; another comment style
[account work]
EOF
bad_config key_outside 1 "outside an account" <<'EOF'
server = imaps://me@example.org
EOF
bad_config bad_url 2 "bad server URL" <<'EOF'
[account other]
server = imaps://me:hunter2@example.org
[account work]
EOF
nowhere cfg_bad_url hunter2
bad_config bad_tls 3 "tls = 'sometimes'" <<'EOF'
[account work]
server = imaps://me@example.org
tls = sometimes
EOF
bad_config bad_bool 2 "expected yes or no" <<'EOF'
[account work]
insecure = perhaps
EOF
bad_config empty_value 2 "'auth' has no value" <<'EOF'
[account work]
auth =
EOF
printf '[account home]\nserver = imaps://me@example.org\n[account lab]\ntunnel = cat\n' >"$cfg"
run cfg_unknown_account 2 --config "$cfg" -a work capabilities &&
    err_has cfg_unknown_account "no account 'work'" && err_has cfg_unknown_account "home, lab"
run cfg_missing_file 2 --config "$work/nonexistent" -a work capabilities &&
    err_has cfg_missing_file "$work/nonexistent" && err_has cfg_missing_file "does not exist"
printf '[account both]\nserver = imaps://me@example.org\ntunnel = cat\n' >"$cfg"
run cfg_both 2 --config "$cfg" -a both capabilities && err_has cfg_both "both 'server' and 'tunnel'"

# ---- connection failures without a server ------------------------------------

free_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
env_pw=secret run refused 3 -s "imaps://alice@127.0.0.1:$free_port" capabilities &&
    err_has refused "cannot connect to 127.0.0.1" && err_has refused "check the host name and port" &&
    stdout_empty refused
run no_password 3 -s "imaps://alice@127.0.0.1:$free_port" capabilities &&
    err_has no_password "no password for alice@127.0.0.1" && err_has no_password "--password-command" &&
    err_has no_password "IMAPKIT_PASSWORD" && err_has no_password ".netrc"
run pwcmd_fails 3 -s "imaps://alice@127.0.0.1:$free_port" --password-command 'echo "vault is locked" >&2; exit 7' capabilities &&
    err_has pwcmd_fails "failed with exit status 7" && err_has pwcmd_fails "vault is locked"
run pwcmd_empty 3 -s "imaps://alice@127.0.0.1:$free_port" --password-command 'true' capabilities &&
    err_has pwcmd_empty "printed nothing"

# ---- a scripted server over --tunnel: events --------------------------------------

cat >"$work/fake.py" <<'PY'
# A scripted IMAP server on stdin/stdout: PREAUTH, then answers CAPABILITY
# with the notices of the scenario, LOGOUT with BYE + OK.
import sys
scenario = sys.argv[1]
w = sys.stdout.buffer
def send(s):
    w.write(s.encode() + b"\r\n"); w.flush()
if scenario == "nopreauth":
    send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready, log in")
else:
    send("* PREAUTH [CAPABILITY IMAP4rev1 IDLE] fake ready")
for raw in sys.stdin.buffer:
    line = raw.decode().rstrip("\r\n")
    tag, _, cmd = line.partition(" ")
    verb = cmd.split(" ")[0].upper()
    if verb == "CAPABILITY":
        if scenario == "events":
            send("* OK [ALERT] System shutdown in 10 minutes")
            send("* OK Still here")
            send("* NO [OVERQUOTA] Mailbox is nearly full")
            send("* OK [UIDNEXT 4] Predicted next UID")
            send("* OK Searched 40% of the mailbox")
        if scenario == "bye":
            send("* BYE Server shutting down now")
            sys.exit(0)
        if scenario == "no":
            send(tag + " NO [UNAVAILABLE] Try later")
            continue
        send("* CAPABILITY IMAP4rev1 IDLE X-FAKE")
        send(tag + " OK done")
    elif verb == "LOGOUT":
        send("* BYE bye")
        send(tag + " OK logged out")
        sys.exit(0)
    else:
        send(tag + " BAD unknown")
PY
fake() { echo "python3 '$work/fake.py' $1"; }

run events_human 0 --tunnel "$(fake events)" capabilities && {
    out_has events_human X-FAKE
    err_has events_human "imapkit: ALERT from "
    err_has events_human "System shutdown in 10 minutes"
    err_has events_human "imapkit: server notice: Still here"
    err_has events_human "imapkit: server warning [OVERQUOTA]: Mailbox is nearly full"
    err_lacks events_human "UIDNEXT"
    err_lacks events_human "Predicted"
}
run events_quiet 0 -q --tunnel "$(fake events)" capabilities && {
    err_has events_quiet "System shutdown in 10 minutes" # an ALERT is shown even with -q
    err_lacks events_quiet "Still here"
    err_lacks events_quiet "nearly full"
}
run events_json 0 --json --tunnel "$(fake events)" capabilities && {
    validate events_json capabilities.schema.json
    stderr_empty events_json
    checks=$((checks + 1))
    python3 - "$work/events_json.out" <<'PY' || fail "events_json: unexpected event objects"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
events = [o for o in objs if 'event' in o]
assert [e['event'] for e in events] == ['alert', 'notice', 'notice', 'notice'], events
assert events[0]['text'] == 'System shutdown in 10 minutes', events[0]
assert events[2]['status'] == 'NO' and events[2]['code'] == 'OVERQUOTA', events[2]
assert all(list(o)[0] == 'event' for o in events)
results = [o for o in objs if 'event' not in o]
assert len(results) == 1 and 'X-FAKE' in results[0]['capabilities'], results
PY
}
run events_bye 4 --tunnel "$(fake bye)" capabilities &&
    err_has events_bye "is closing the connection: Server shutting down now" &&
    err_has events_bye "CAPABILITY failed"
run events_bye_json 4 --json --tunnel "$(fake bye)" capabilities &&
    validate events_bye_json capabilities.schema.json && out_has events_bye_json '"event":"bye"'
run server_no 1 --tunnel "$(fake no)" capabilities &&
    err_has server_no "CAPABILITY: " && err_has server_no "said NO [UNAVAILABLE] Try later"
run tunnel_dead 3 --tunnel 'exit 3' capabilities && err_has tunnel_dead "cannot connect to"
run tunnel_nopreauth 3 --tunnel "$(fake nopreauth)" capabilities &&
    err_has tunnel_nopreauth "did not preauthenticate"

# ---- scripted TCP servers: no STARTTLS offered, a silent server -----------------

cat >"$work/tcp.py" <<'PY'
# One-connection TCP servers on 127.0.0.1: prints its port, then serves.
#   nostarttls: greets without STARTTLS, answers CAPABILITY and LOGOUT;
#   silent: accepts and says nothing.
import socket, sys
mode = sys.argv[1]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
srv.settimeout(20)
try:
    c, _ = srv.accept()
except OSError:
    sys.exit(0)
c.settimeout(20)
if mode == "nostarttls":
    c.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] no TLS here\r\n")
try:
    while c.recv(4096):
        pass
except OSError:
    pass
PY
tcp_server() { # MODE: starts the server, sets tcp_port and tcp_pid
    python3 "$work/tcp.py" "$1" >"$work/tcp.port" &
    tcp_pid=$!
    for _ in $(seq 50); do
        tcp_port=$(head -1 "$work/tcp.port")
        [ -n "$tcp_port" ] && return 0
        sleep 0.1
    done
    fail "tcp.py $1 did not start"
    tcp_port=1
}
tcp_server nostarttls
env_pw=secret run no_starttls 3 -s "imap://alice@127.0.0.1:$tcp_port" capabilities &&
    err_has no_starttls "does not offer STARTTLS" && err_has no_starttls "--tls none" &&
    nowhere no_starttls secret
kill "$tcp_pid" 2>/dev/null; wait "$tcp_pid" 2>/dev/null
tcp_server silent
env_pw=secret run timeout 3 --timeout-ms 300 -s "imaps://alice@127.0.0.1:$tcp_port" capabilities &&
    err_has timeout "cannot connect to 127.0.0.1" && err_has timeout "--timeout-ms"
kill "$tcp_pid" 2>/dev/null; wait "$tcp_pid" 2>/dev/null
env_pw=secret run refused_json 3 --json -s "imaps://alice@127.0.0.1:$free_port" capabilities &&
    stdout_empty refused_json

# ---- Dovecot ----------------------------------------------------------------------

# Without Dovecot, the checks so far decide: skipped (77) when they passed.
tunnel=$(cli_tunnel "$work/tunnel")
case $? in
0) ;;
77)
    echo "SKIP: Dovecot is not installed ($checks checks passed before)"
    [ "$failures" -eq 0 ] && exit 77
    cli_finish test_cli_core
    ;;
*)
    fail "no Dovecot tunnel (see above)"
    cli_finish test_cli_core
    ;;
esac

run cap_tunnel 0 --tunnel "$tunnel" capabilities && {
    out_has cap_tunnel IMAP4rev1
    checks=$((checks + 1))
    grep -q -x IDLE "$work/cap_tunnel.out" || fail "cap_tunnel: IDLE is not on a line of its own"
    checks=$((checks + 1))
    [ "$(grep -c ' ' "$work/cap_tunnel.out")" -eq 0 ] || fail "cap_tunnel: not one capability per line"
    stderr_empty cap_tunnel
}
run cap_tunnel_json 0 --tunnel "$tunnel" capabilities --json && {
    validate cap_tunnel_json capabilities.schema.json
    out_has cap_tunnel_json '"transport":"tunnel"'
    out_has cap_tunnel_json '"IDLE"'
    checks=$((checks + 1))
    [ "$(wc -l <"$work/cap_tunnel_json.out")" -eq 1 ] || fail "cap_tunnel_json: not one line"
}
run cap_trace_file 0 --tunnel "$tunnel" --trace="$work/tunnel.trace" capabilities && {
    checks=$((checks + 1))
    grep -q '^S: \* PREAUTH' "$work/tunnel.trace" || fail "cap_trace_file: no PREAUTH in the trace"
    checks=$((checks + 1))
    grep -q '^C: A1 CAPABILITY\\r\\n$' "$work/tunnel.trace" || fail "cap_trace_file: no C: CAPABILITY line"
    stderr_empty cap_trace_file
}

# accounts: a tunnel account by name, the default account, command-line override
mkdir -p "$home/.config/imapkit"
{
    echo "# the test's accounts"
    echo "default = local"
    echo
    echo "[account local]"
    echo "tunnel = $tunnel"
    echo "timeout-ms = 20000"
} >"$home/.config/imapkit/config"
run acct_named 0 -a local capabilities && out_has acct_named IMAP4rev1
run acct_default 0 capabilities --json && validate acct_default capabilities.schema.json
run acct_override 2 -a local -s imaps://alice@127.0.0.1:1 --tunnel cat capabilities &&
    err_has acct_override "either --server or --tunnel"
xdg=$work/xdg
mkdir -p "$xdg/imapkit"
printf '[account default]\ntunnel = %s\n' "$tunnel" >"$xdg/imapkit/config"
checks=$((checks + 1))
env -u IMAPKIT_PASSWORD HOME="$home" XDG_CONFIG_HOME="$xdg" "$imapkit" capabilities \
    >"$work/xdg.out" 2>"$work/xdg.err" </dev/null || fail "xdg: the account 'default' in \$XDG_CONFIG_HOME was not used: $(cat "$work/xdg.err")"

# the daemon
if ! "$servers" dovecot-daemon "$work/daemon" >"$work/daemon.log" 2>&1; then
    fail "servers.sh dovecot-daemon: $(tail -5 "$work/daemon.log")"
    cli_finish test_cli_core
fi
daemon_started=1
# shellcheck disable=SC1091
. "$work/daemon/ports.env"
ca=$PKI_DIR/ca.pem
imaps=imaps://alice@127.0.0.1:$IMAPS_PORT
pw=wonderland

env_pw=$pw run tls_ok 0 -s "$imaps" --ca-file "$ca" capabilities --json && {
    validate tls_ok capabilities.schema.json
    out_has tls_ok '"transport":"TLS'
    stderr_empty tls_ok
    nowhere tls_ok "$pw"
}
env_pw=$pw run tls_percent_user 0 -s "imaps://%61lice@127.0.0.1:$IMAPS_PORT" --ca-file "$ca" capabilities
env_pw=$pw run tls_untrusted 3 -s "$imaps" capabilities &&
    err_has tls_untrusted "cannot connect to 127.0.0.1" && err_has tls_untrusted "--ca-file" &&
    err_has tls_untrusted "not trusted"
env_pw=wrong-password run wrong_password 3 -s "$imaps" --ca-file "$ca" capabilities && {
    err_has wrong_password "cannot log in to 127.0.0.1 as alice"
    err_has wrong_password "check the user name and the password"
    err_has wrong_password "IMAPKIT_PASSWORD"
    nowhere wrong_password wrong-password
    stdout_empty wrong_password
}
run pwcmd_ok 0 -s "$imaps" --ca-file "$ca" --password-command "printf '$pw\\nsecond line\\n'" capabilities &&
    out_has pwcmd_ok IMAP4rev1 && nowhere pwcmd_ok "$pw"
env_pw=wrong-password run pwcmd_first 0 -s "$imaps" --ca-file "$ca" --password-command "echo $pw" capabilities

# ~/.netrc: used when private, refused when readable by others
printf 'machine other.example login bob password nope\nmachine 127.0.0.1\n  login alice\n  password %s\n' "$pw" >"$home/.netrc"
chmod 600 "$home/.netrc"
run netrc_ok 0 -s "$imaps" --ca-file "$ca" capabilities && out_has netrc_ok IMAP4rev1
run netrc_user 0 -s "imaps://127.0.0.1:$IMAPS_PORT" --ca-file "$ca" capabilities # login from .netrc
run netrc_other_user 3 -s "imaps://bob@127.0.0.1:$IMAPS_PORT" --ca-file "$ca" capabilities &&
    err_has netrc_other_user "no password for bob@127.0.0.1"
chmod 644 "$home/.netrc"
run netrc_public 3 -s "$imaps" --ca-file "$ca" capabilities && {
    err_has netrc_public "readable by others"
    err_has netrc_public "chmod 600"
    nowhere netrc_public "$pw"
}
chmod 620 "$home/.netrc"
run netrc_writable 3 -s "$imaps" --ca-file "$ca" capabilities && err_has netrc_writable "writable by others"
rm -f "$home/.netrc"

# an account with the daemon; the command line overrides its password command
{
    echo "[account dove]"
    echo "server = imap://alice@localhost:$IMAP_PORT"
    echo "ca-file = $ca"
    echo "password-command = echo not-the-password"
    echo "auth = PLAIN"
} >"$cfg"
run acct_daemon_bad 3 --config "$cfg" -a dove capabilities &&
    err_has acct_daemon_bad "the account's password-command"
run acct_daemon 0 --config "$cfg" -a dove --password-command "echo $pw" capabilities --json &&
    validate acct_daemon capabilities.schema.json && out_has acct_daemon '"transport":"TLS'

# STARTTLS, --tls none, --insecure
env_pw=$pw run starttls 0 -s "imap://alice@localhost:$IMAP_PORT" --ca-file "$ca" --json capabilities &&
    out_has starttls '"transport":"TLS' && stderr_empty starttls
env_pw=$pw run tls_none 0 -s "imap://alice@127.0.0.1:$IMAP_PORT" --tls none --json capabilities && {
    err_has tls_none "imapkit: warning: --tls none:"
    err_has tls_none "not encrypted"
    out_has tls_none '"transport":"cleartext"'
}
env_pw=$pw run tls_none_quiet 0 -q -s "imap://alice@127.0.0.1:$IMAP_PORT" --tls none capabilities &&
    err_has tls_none_quiet "imapkit: warning: --tls none:"
env_pw=$pw run insecure 0 -s "$imaps" --insecure capabilities && {
    err_has insecure "imapkit: warning: --insecure:"
    err_has insecure "not verified"
}
if [ "${IPV6:-0}" = 1 ]; then
    env_pw=$pw run ipv6 0 -s "imaps://alice@[::1]:$IMAPS_PORT" --insecure -q capabilities &&
        err_has ipv6 "--insecure"
fi

# the trace: S:/C: lines, secrets redacted, for SASL and for the LOGIN command
for mech in SCRAM-SHA-256 PLAIN LOGIN LOGIN-COMMAND; do
    name=trace_$mech
    env_pw=$pw run "$name" 0 -s "$imaps" --ca-file "$ca" --auth "$mech" --trace capabilities && {
        nowhere "$name" "$pw"
        nowhere "$name" "$(printf '\0alice\0%s' "$pw" | base64 2>/dev/null)" # PLAIN's base64
        nowhere "$name" "$(printf '%s' "$pw" | base64)"
        err_has "$name" "<redacted>"
        err_has "$name" "# imapkit "
        checks=$((checks + 1))
        python3 - "$work/$name.err" <<'PY' || fail "$name: the trace is not in the S:/C: form"
import re, sys
lines = open(sys.argv[1], encoding='utf-8', errors='replace').read().split('\n')[:-1]
assert lines[0].startswith('# imapkit '), lines[0]
body = [l for l in lines if not l.startswith('#')]
assert body, 'no S:/C: lines'
for l in body:
    assert re.match(r'^[SC]: ', l), 'not S:/C: %r' % l
    assert all(0x20 <= ord(c) < 0x7f for c in l), 'raw non-ASCII in %r' % l
assert body[0].startswith('S: * OK '), body[0]
assert any(l.startswith('C: A') and 'CAPABILITY\\r\\n' in l for l in body)
assert body[-1].startswith('S: A') and 'OK' in body[-1], body[-1]
PY
    }
done
checks=$((checks + 1))
grep -q '^C: A1 LOGIN <redacted>' "$work/trace_LOGIN-COMMAND.err" ||
    grep -q '^C: A1 LOGIN .*<redacted>' "$work/trace_LOGIN-COMMAND.err" ||
    fail "trace_LOGIN-COMMAND: no redacted LOGIN line: $(grep '^C: A1' "$work/trace_LOGIN-COMMAND.err")"
env_pw=$pw run trace_to_file 0 -s "$imaps" --ca-file "$ca" --trace="$work/daemon.trace" capabilities && {
    nowhere trace_to_file "$pw" "$work/daemon.trace"
    checks=$((checks + 1))
    grep -q '^C: A1 AUTHENTICATE' "$work/daemon.trace" || fail "trace_to_file: no AUTHENTICATE"
    stderr_empty trace_to_file
}
env_pw=$pw run trace_bad_file 4 -s "$imaps" --ca-file "$ca" --trace="$work/no/such/dir/t" capabilities &&
    err_has trace_bad_file "--trace: cannot open"

cli_finish test_cli_core
