# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# What every tests/cli/test_cli_*.sh script shares, sourced at its top
# (this file is not named test_cli_* so that CMake does not run it as a test):
#
#   cli_init NAME "$@"     the tool's path ($1, made absolute), $src, $servers,
#                          $schemas, a fresh $work (under /tmp, mode 755: the
#                          Dovecot tunnel runs as an unprivileged user when we
#                          are root and must traverse it) removed at exit
#                          (kept with IMK_TEST_KEEP=1), the counters;
#   skip_or_fail WHY       exit 77 (skipped), or 1 when IMK_IT_REQUIRED=1;
#   cli_require_jsonschema skip_or_fail without python3's jsonschema module;
#   cli_tunnel DIR [CAPS]  print a preauthenticated tunnel command for a
#                          private Dovecot in DIR (tests/integration/servers.sh),
#                          optionally advertising only CAPS; skips without
#                          Dovecot. Use as x=$(cli_tunnel "$work/d") || exit $?;
#   ok, fail MSG           count a check, count a failure (message on stderr);
#   run NAME STATUS ARGS   imapkit ARGS, one check: exit status STATUS, output in
#                          $work/NAME.{out,err}, standard input $work/NAME.in if
#                          it exists, else $stdin_file (default /dev/null);
#                          a script may redefine cli_exec to change how the
#                          tool is started (environment);
#   stdout_has/_lacks, stderr_has/_lacks NAME REGEX (grep -E),
#   stdout_has_each NAME REGEX... (one stdout_has per REGEX), out_has,
#   err_has, err_lacks NAME TEXT (grep -F), stdout_empty, stderr_empty NAME:
#                          one check each (like fail, they return 0 even when
#                          the check fails, so that the checks chained after
#                          them with && still run and count);
#   json_check [opts] LABEL FILE SCHEMA [EXPR]
#                          one check: every line of FILE is a JSON object valid
#                          against docs/schema/SCHEMA ("-": none), and the
#                          Python expression EXPR holds (see below);
#   wait_for FILE REGEX    wait until a line of FILE matches (at most $WAIT
#                          seconds, default 20); false if none did;
#   cli_finish NAME        the summary line "NAME: C checks, F failed", then
#                          exit 0, or 1 when a check failed.
#
# Background processes put in the array bg_pids are killed at exit; a script
# that defines cli_cleanup_hook has it called first.

cli_init() {
    local name=$1
    shift
    imapkit=${1:?usage: test_cli_$name.sh PATH/TO/imapkit}
    case $imapkit in /*) ;; *) imapkit=$PWD/$imapkit ;; esac
    src=${IMK_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
    servers=$src/tests/integration/servers.sh
    schemas=$src/docs/schema
    work=$(mktemp -d "/tmp/imapkit-cli-$name.XXXXXX") || exit 1
    chmod 755 "$work"
    failures=0
    checks=0
    bg_pids=()
    stdin_file=/dev/null
    trap cli_cleanup EXIT
}

cli_cleanup() {
    local p
    if declare -F cli_cleanup_hook >/dev/null; then
        cli_cleanup_hook
    fi
    for p in ${bg_pids[@]+"${bg_pids[@]}"}; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    if [ -n "${IMK_TEST_KEEP:-}" ]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
}

skip_or_fail() {
    if [ "${IMK_IT_REQUIRED:-0}" = 1 ]; then
        echo "FAIL: $* (IMK_IT_REQUIRED=1)" >&2
        exit 1
    fi
    echo "SKIP: $*" >&2
    exit 77
}

cli_require_jsonschema() {
    python3 -c 'import jsonschema' 2>/dev/null || skip_or_fail "python3 jsonschema module missing"
}

cli_tunnel() { # DIR [CAPABILITIES]
    local dir=$1 rc=0 cmd
    cmd=$("$servers" dovecot-tunnel "$dir" 2>"$dir.servers.err") || rc=$?
    if [ $rc -eq 77 ]; then
        skip_or_fail "Dovecot is not installed: $(cat "$dir.servers.err")"
    elif [ $rc -ne 0 ]; then
        echo "FAIL: servers.sh dovecot-tunnel $dir: $(cat "$dir.servers.err")" >&2
        exit 1
    fi
    if [ $# -ge 2 ]; then
        printf 'imap_capability = %s\n' "$2" >>"$dir/dovecot-tunnel.conf"
    fi
    printf '%s' "$cmd"
}

ok() { checks=$((checks + 1)); }

fail() {
    failures=$((failures + 1))
    echo "FAIL: $*" >&2
}

# Prefix each of FILE's first 40 lines with "    WHAT: " on stderr.
cli_show() { # WHAT FILE
    sed "s/^/    $1: /" "$2" | head -40 >&2
}

cli_exec() { "$imapkit" "$@"; }

run() {
    local name=$1 expect=$2 input=$stdin_file status
    shift 2
    ok
    [ -e "$work/$name.in" ] && input=$work/$name.in
    cli_exec "$@" <"$input" >"$work/$name.out" 2>"$work/$name.err"
    status=$?
    if [ "$status" -ne "$expect" ]; then
        fail "$name: exit status $status, expected $expect (imapkit $*)"
        cli_show stdout "$work/$name.out"
        cli_show stderr "$work/$name.err"
        return 1
    fi
    return 0
}

# cli_grep NAME out|err has|lacks -E|-F PATTERN: one check.
cli_grep() {
    local name=$1 stream=$2 want=$3 mode=$4 pattern=$5 file
    file=$work/$name.$stream
    ok
    if grep -q "$mode" -- "$pattern" "$file"; then
        [ "$want" = has ] && return 0
        fail "$name: std$stream has: $pattern"
    else
        [ "$want" = lacks ] && return 0
        fail "$name: std$stream lacks: $pattern"
    fi
    cli_show "std$stream" "$file"
}
stdout_has() { cli_grep "$1" out has -E "$2"; }
stdout_lacks() { cli_grep "$1" out lacks -E "$2"; }
stdout_has_each() { # NAME REGEX...: one check per REGEX
    local name=$1 re
    shift
    for re in "$@"; do
        stdout_has "$name" "$re"
    done
}
stderr_has() { cli_grep "$1" err has -E "$2"; }
stderr_lacks() { cli_grep "$1" err lacks -E "$2"; }
out_has() { cli_grep "$1" out has -F "$2"; }
err_has() { cli_grep "$1" err has -F "$2"; }
err_lacks() { cli_grep "$1" err lacks -F "$2"; }

cli_empty() { # NAME out|err
    ok
    [ ! -s "$work/$1.$2" ] && return 0
    fail "$1: std$2 is not empty"
    cli_show "std$2" "$work/$1.$2"
}
stdout_empty() { cli_empty "$1" out; }
stderr_empty() { cli_empty "$1" err; }

# json_check [--events skip|check|schema] [--by name|uid] [--empty-ok]
#            LABEL FILE SCHEMA [EXPR]
#   FILE must be non-empty (unless --empty-ok) JSON Lines (each line an object, the last ended by
#   a newline). Lines with an "event" key are, by --events: skipped (the
#   default), validated against event.schema.json, or validated against
#   SCHEMA like the others. EXPR (default True) is evaluated with `objs`
#   (the objects validated against SCHEMA), `ev` (every object) and `by`
#   (objs by "name"/"mailbox", or with --by uid by their integer "uid").
json_check() {
    local events=skip by=name empty=0
    while :; do
        case $1 in
        --events) events=$2 && shift 2 ;;
        --by) by=$2 && shift 2 ;;
        --empty-ok) empty=1 && shift ;;
        *) break ;;
        esac
    done
    local label=$1 file=$2 schema=$3 expr=${4:-True}
    ok
    [ "$schema" = - ] || schema=$schemas/$schema
    python3 - "$file" "$schema" "$schemas/event.schema.json" "$events" "$by" "$expr" "$empty" <<'PY' && return 0
import json, sys
path, schema_path, event_path, events, by_key, expr, empty_ok = sys.argv[1:8]
def validator(p):
    if p == '-':
        return None
    import jsonschema
    s = json.load(open(p))
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)
v = validator(schema_path)
ev_v = validator(event_path) if events == 'check' else None
data = open(path, 'rb').read()
if not data and empty_ok != '1':
    sys.exit('no output')
if data and not data.endswith(b'\n'):
    sys.exit('output does not end with a newline: %r' % data[-200:])
objs, ev = [], []
for n, line in enumerate(data.split(b'\n')[:-1], 1):
    try:
        obj = json.loads(line.decode('utf-8'))
    except ValueError as e:
        sys.exit('line %d is not JSON (%s): %r' % (n, e, line[:200]))
    if not isinstance(obj, dict):
        sys.exit('line %d is not an object' % n)
    ev.append(obj)
    which, name = v, schema_path
    if 'event' in obj and events != 'schema':
        if events == 'skip':
            continue
        which, name = ev_v, event_path
    else:
        objs.append(obj)
    errors = sorted(which.iter_errors(obj), key=str) if which else []
    if errors:
        sys.exit('line %d does not follow %s: %s\n    %s' % (n, name, errors[0].message, line))
if by_key == 'uid':
    by = {o['uid']: o for o in objs if isinstance(o.get('uid'), int)}
else:
    by = {o.get('name', o.get('mailbox')): o for o in objs}
if not eval(expr, {'objs': objs, 'ev': ev, 'by': by}):
    sys.exit('false: %s\n    objects: %s' % (expr, json.dumps(ev, ensure_ascii=False)))
PY
    fail "$label: JSON check failed ($file, schema $schema)"
}

# wait_for FILE REGEX: until a line of FILE matches (or ${WAIT:-20} seconds).
wait_for() {
    local i
    for ((i = 0; i < ${WAIT:-20} * 10; i++)); do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

cli_finish() { # NAME
    echo "$1: $checks checks, $failures failed"
    [ "$failures" -eq 0 ] || exit 1
    exit 0
}
