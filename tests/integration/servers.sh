#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# servers.sh - private IMAP servers for the integration tests (DESIGN.md
# section 9). Everything a server needs (configuration, sockets, state, logs,
# mail) lives inside the directory given on the command line; nothing touches
# the system's Dovecot or Courier, /etc, /var or ports 143/993, and every
# listener is on loopback (127.0.0.1, and ::1 when the loopback has it).
#
#   servers.sh dovecot-daemon DIR [--tls-variants]
#       Start a Dovecot 2.3 daemon in DIR: IMAP (STARTTLS offered) and IMAPS
#       listeners on free high ports of 127.0.0.1 (and ::1), users alice /
#       wonderland and bob / builder in a passwd-file with {PLAIN} passwords
#       (so PLAIN, LOGIN, SCRAM-SHA-1 and SCRAM-SHA-256 all work), maildir
#       under DIR/mail/<user>, COMPRESS=DEFLATE, METADATA, QUOTA and
#       SPECIAL-USE configured. With --tls-variants, also one small instance
#       per bad certificate (wrong host, expired, unknown CA, self-signed)
#       with an IMAPS listener each, and one without TLS at all (no STARTTLS
#       offered). Writes DIR/ports.env (shell assignments, one a line):
#         IMAP_PORT IMAPS_PORT IPV6 (1: ::1 listens too) ALT_HOST (127.0.0.2
#         when it listens too, else empty) PKI_DIR
#         WRONGHOST_PORT EXPIRED_PORT UNKNOWNCA_PORT SELFSIGNED_PORT NOTLS_PORT
#       and returns once every listener accepts connections.
#   servers.sh dovecot-stop DIR
#       Stop every instance started in DIR and wait until its ports are closed.
#   servers.sh dovecot-tunnel DIR
#       Prepare a maildir and config in DIR and print the command that runs
#       /usr/lib/dovecot/imap preauthenticated on stdin/stdout for it.
#   servers.sh courier-tunnel DIR
#       The same for Courier-IMAP's imapd (unpacked by `make deps-courier`
#       into .deps/courier, or IMK_COURIER_IMAPD).
#   servers.sh cyrus-tunnel DIR
#       The same for Cyrus IMAP 3.6's imapd (unpacked by `make deps-cyrus`
#       into .deps/cyrus, or IMK_CYRUS_ROOT): its own imapd.conf, mailbox
#       database and spool in DIR. Cyrus has no PREAUTH mode: the session
#       starts not authenticated, and LOGIN with any user name and any
#       password succeeds (imapd -N); the INBOX is created at the first login.
#
# Exit status: 0 done; 77 the server software is not installed here (the
# caller skips); 1 anything else (the reason on stderr, the server's log
# quoted).
#
# Root and non-root. Dovecot's mail processes and both tunnels never run as
# root: as root, mail belongs to an unprivileged user (IMK_IT_USER, default
# `nobody`) and the tunnels are wrapped in `setpriv --reuid --regid
# --clear-groups`; the daemon's internal and login users are the package's
# `dovecot` / `dovenull` when they exist (else that same user). As a normal
# user everything runs as that user: no chroot, no user switch.
#
# Certificates come from tests/pki/make-pki.sh (CA, good, wrong-host,
# expired, unknown-ca, self-signed), made into IMK_PKI_DIR, else
# $IMK_BUILD_DIR/pki (shared by the tests of one build), else DIR/pki.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

DOVECOT=${IMK_DOVECOT:-/usr/sbin/dovecot}
DOVECOT_IMAP=${IMK_DOVECOT_IMAP:-/usr/lib/dovecot/imap}
COURIER_IMAPD=${IMK_COURIER_IMAPD:-$repo/.deps/courier/usr/bin/imapd}
MAKE_PKI=${IMK_MAKE_PKI:-$repo/tests/pki/make-pki.sh}

die() {
    echo "servers.sh: $*" >&2
    exit 1
}
missing() {
    echo "servers.sh: $*" >&2
    exit 77
}

usage() {
    sed -n '/^#   servers.sh dovecot-daemon/,/^# quoted)/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---- users -------------------------------------------------------------------

is_root() { [ "$(id -u)" -eq 0 ]; }

# The unprivileged owner of mail and tunnels when we are root.
mail_user() { echo "${IMK_IT_USER:-nobody}"; }

# "uid gid" of the user that runs mail processes and tunnels.
run_ids() {
    if is_root; then
        local u
        u=$(mail_user)
        id -u "$u" >/dev/null 2>&1 || die "user '$u' does not exist (set IMK_IT_USER to an unprivileged user)"
        echo "$(id -u "$u") $(id -g "$u")"
    else
        echo "$(id -u) $(id -g)"
    fi
}

# Give DIR (recursively) to the run user when root; otherwise it is ours.
give_away() {
    if is_root; then
        local ids
        read -r -a ids <<<"$(run_ids)"
        chown -R "${ids[0]}:${ids[1]}" "$@"
    fi
}

# The prefix that drops privileges for a tunnel command (empty when not root).
drop_prefix() {
    if is_root; then
        local ids
        read -r -a ids <<<"$(run_ids)"
        command -v setpriv >/dev/null 2>&1 || die "setpriv (util-linux) is needed to run a tunnel as root"
        printf 'setpriv --reuid=%s --regid=%s --clear-groups ' "${ids[0]}" "${ids[1]}"
    fi
}

# Single-quote a string for /bin/sh.
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# An absolute, canonical path for DIR (created when missing).
absdir() {
    mkdir -p "$1"
    (cd "$1" && pwd -P)
}

# Every directory from / down to DIR must be traversable by the run user.
check_traversable() {
    is_root || return 0
    local d=$1
    while [ "$d" != / ] && [ -n "$d" ]; do
        local mode
        mode=$(stat -c %a "$d")
        # The "others" execute bit (owner root, so others apply to the run user).
        if [ $((8#$mode & 1)) -eq 0 ] && [ "$(stat -c %u "$d")" -ne "$(run_ids | cut -d' ' -f1)" ]; then
            die "$d (mode $mode) is not traversable by $(mail_user); use a directory under /tmp or chmod o+x it"
        fi
        d=$(dirname "$d")
    done
}

# ---- ports -------------------------------------------------------------------

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# A port of 127.0.0.1 (and ::1 when asked) nobody listens on, not among "$@".
# The choice is racy by nature; a daemon that then fails to bind is retried.
pick_port() {
    local want6=$1
    shift
    local p tries=0
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        tries=$((tries + 1))
        [ $tries -lt 200 ] || die "no free port found"
        case " $* " in *" $p "*) continue ;; esac
        port_open 127.0.0.1 "$p" && continue
        if [ "$want6" = 1 ] && port_open ::1 "$p"; then continue; fi
        echo "$p"
        return 0
    done
}

# 1 when the loopback interface has ::1 and a socket can be bound to it.
have_ipv6() {
    [ "${IMK_IT_NO_IPV6:-0}" = 1 ] && {
        echo 0
        return
    }
    if [ -r /proc/net/if_inet6 ] && grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6; then
        echo 1
    else
        echo 0
    fi
}

# Wait until every port is `want` (open or closed); 1 when timeout_s passed
# first.
wait_ports_until() { # want timeout_s host port...
    local want=$1 deadline=$((SECONDS + $2)) host=$3
    shift 3
    local p now
    for p in "$@"; do
        while :; do
            if port_open "$host" "$p"; then now=open; else now=closed; fi
            [ "$now" != "$want" ] || break
            [ $SECONDS -lt $deadline ] || return 1
            sleep 0.05
        done
    done
}

wait_ports() { wait_ports_until open "$@"; }          # timeout_s host port...
wait_ports_closed() { wait_ports_until closed "$@"; } # timeout_s host port...

# ---- certificates ------------------------------------------------------------

pki_complete() {
    local f
    for f in ca.pem good.pem good.key wrong-host.pem wrong-host.key expired.pem expired.key \
        unknown-ca.pem unknown-ca.key self-signed.pem self-signed.key; do
        [ -s "$1/$f" ] || return 1
    done
}

# Print the PKI directory to use: IMK_PKI_DIR, else $IMK_BUILD_DIR/pki (the
# one the tests share, tests/pki/README), else DIR/pki. make-pki.sh is
# idempotent and serialises concurrent runs, so it is always called.
ensure_pki() {
    local dir=$1 pki
    if [ -n "${IMK_PKI_DIR:-}" ]; then
        pki=$IMK_PKI_DIR
    elif [ -n "${IMK_BUILD_DIR:-}" ]; then
        pki=$IMK_BUILD_DIR/pki
    else
        pki=$dir/pki
    fi
    if [ -f "$MAKE_PKI" ]; then
        command -v openssl >/dev/null 2>&1 || missing "openssl is not installed"
        sh "$MAKE_PKI" "$pki" >"$dir/make-pki.log" 2>&1 ||
            die "$MAKE_PKI $pki failed: $(tail -n 20 "$dir/make-pki.log")"
    elif ! pki_complete "$pki"; then
        missing "$MAKE_PKI is missing (it makes the test certificates)"
    fi
    pki_complete "$pki" || die "$pki lacks some of the certificates make-pki.sh makes"
    (cd "$pki" && pwd -P)
}

# ---- Dovecot daemon ----------------------------------------------------------

# The part of the configuration the daemon and the tunnel share: the zlib
# and quota plugins (root "User quota", 1 GiB), and the INBOX namespace with
# "/" as separator and the SPECIAL-USE mailboxes Sent, Drafts and Trash.
dovecot_mail_conf() {
    cat <<'CONF'
mail_plugins = $mail_plugins zlib quota
protocol imap {
  mail_plugins = $mail_plugins imap_zlib imap_quota
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=1G
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
}
CONF
}

# Write the configuration of one instance into $1/dovecot.conf.
#   $1 instance directory   $2 mode: main | notls | tls-only
#   $3 listen addresses     $4 IMAP port (or "")   $5 IMAPS port (or "")
#   $6 certificate base name (good, wrong-host, ...)   $7 PKI dir   $8 top DIR
write_dovecot_conf() {
    local idir=$1 mode=$2 listen=$3 imap_port=$4 imaps_port=$5 cert=$6 pki=$7 top=$8
    local ids internal login
    read -r -a ids <<<"$(run_ids)"
    if is_root; then
        internal=$(id -un dovecot 2>/dev/null || mail_user)
        login=$(id -un dovenull 2>/dev/null || mail_user)
    else
        internal=$(id -un)
        login=$(id -un)
    fi
    local internal_group
    internal_group=$(id -gn "$internal")
    mkdir -p "$idir/run" "$idir/state"
    {
        cat <<CONF
# Written by tests/integration/servers.sh: a private instance, loopback only.
instance_name = imapkit-it-$(basename "$idir")-$$
base_dir = $idir/run
state_dir = $idir/state
log_path = $idir/dovecot.log
info_log_path = $idir/dovecot.log
debug_log_path = $idir/dovecot.log
protocols = imap
listen = $listen
shutdown_clients = yes
default_internal_user = $internal
default_internal_group = $internal_group
default_login_user = $login
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:$top/mail/%u/Maildir
mail_attribute_dict = file:$top/attr/%u
imap_metadata = yes
auth_mechanisms = plain login scram-sha-1 scram-sha-256
# Refused logins are answered at once (the default waits 2 s): tests fail
# passwords on purpose.
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $top/users
}
userdb {
  driver = static
  args = uid=${ids[0]} gid=${ids[1]} home=$top/mail/%u
}
CONF
        dovecot_mail_conf
        if [ "$mode" = notls ]; then
            printf 'ssl = no\ndisable_plaintext_auth = no\n'
        else
            printf 'ssl = yes\nssl_min_protocol = TLSv1.2\n'
            printf 'ssl_cert = <%s/%s.pem\nssl_key = <%s/%s.key\n' "$pki" "$cert" "$pki" "$cert"
        fi
        echo 'service imap-login {'
        if [ -n "$imap_port" ]; then
            printf '  inet_listener imap {\n    port = %s\n  }\n' "$imap_port"
        else
            printf '  inet_listener imap {\n    port = 0\n  }\n'
        fi
        if [ -n "$imaps_port" ]; then
            printf '  inet_listener imaps {\n    port = %s\n    ssl = yes\n  }\n' "$imaps_port"
        else
            printf '  inet_listener imaps {\n    port = 0\n  }\n'
        fi
        is_root || echo '  chroot ='
        echo '}'
        # Without this socket the auth process cannot reach anvil's penalty
        # table and skips the penalty (2 s, 4 s, ... 15 s more per failed
        # login from the same address), which auth_failure_delay = 0 does
        # not cover: the tests fail logins on purpose.
        printf 'service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n'
        # The services below listen on nothing but unix sockets in base_dir.
        if ! is_root; then
            printf 'service anvil {\n  chroot =\n}\nservice ipc {\n  chroot =\n}\n'
            printf 'service old-stats {\n  chroot =\n}\n'
        fi
    } >"$idir/dovecot.conf"
}

# Start one instance; 0 when its ports answer, 1 when it failed (log quoted
# on stderr), 2 when it failed because a port was taken (the caller retries).
start_instance() { # idir host ports...
    local idir=$1 host=$2
    shift 2
    : >"$idir/dovecot.log"
    if ! "$DOVECOT" -c "$idir/dovecot.conf" >"$idir/start.out" 2>&1; then
        if grep -q -i 'address already in use' "$idir/start.out" "$idir/dovecot.log" 2>/dev/null; then
            return 2
        fi
        echo "servers.sh: dovecot -c $idir/dovecot.conf failed:" >&2
        sed 's/^/    /' "$idir/start.out" "$idir/dovecot.log" >&2
        return 1
    fi
    if ! wait_ports 15 "$host" "$@"; then
        if grep -q -i 'address already in use' "$idir/dovecot.log" 2>/dev/null; then
            stop_instance "$idir"
            return 2
        fi
        echo "servers.sh: dovecot in $idir does not answer on $host port(s) $*:" >&2
        sed 's/^/    /' "$idir/start.out" "$idir/dovecot.log" >&2
        stop_instance "$idir"
        return 1
    fi
    return 0
}

master_pid() {
    local f=$1/run/master.pid
    [ -s "$f" ] && cat "$f"
}

# 0 while `pid` runs (a zombie waiting for its parent to reap it counts as
# gone: it holds no port and no file).
alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1 ;; esac
    return 0
}

# Signal an instance: its master and the processes it started share one
# process group (the master calls setsid), so all of them get the signal at
# once and none lingers waiting for the master to tell it. The pid file is
# only trusted when that process really is this instance's master.
signal_instance() { # idir signal
    local idir=$1 sig=$2 pid args
    pid=$(master_pid "$idir" || true)
    [ -n "$pid" ] || return 1
    args=$(ps -o args= -p "$pid" 2>/dev/null || true)
    case $args in
        *"$idir/dovecot.conf"*) ;;
        *) return 1 ;;
    esac
    kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
    echo "$pid"
}

stop_instances() { # idir...
    local idir pid pids=()
    for idir in "$@"; do
        pid=$(signal_instance "$idir" TERM) && pids+=("$idir:$pid")
    done
    local deadline=$((SECONDS + 10)) entry
    for entry in ${pids[@]+"${pids[@]}"}; do
        idir=${entry%:*}
        pid=${entry##*:}
        while alive "$pid"; do
            if [ $SECONDS -ge $deadline ]; then
                echo "servers.sh: dovecot $pid ($idir) ignores SIGTERM; killing it" >&2
                signal_instance "$idir" KILL >/dev/null || true
                break
            fi
            sleep 0.05
        done
        rm -f "$idir/run/master.pid"
    done
}

stop_instance() { stop_instances "$1"; }

# Start instance `name` (a subdirectory of top, or "." for the main one),
# retrying with new ports when one was taken meanwhile. Sets REPLY_PORTS.
launch() { # top name mode cert pki listen want6 n_ports(1|2)
    local top=$1 name=$2 mode=$3 cert=$4 pki=$5 listen=$6 want6=$7 nports=$8
    local idir=$top
    [ "$name" = . ] || idir=$top/$name
    mkdir -p "$idir"
    local attempt rc p1 p2
    for attempt in 1 2 3 4 5; do
        # shellcheck disable=SC2086 # USED_PORTS is a list of words
        p1=$(pick_port "$want6" $USED_PORTS)
        if [ "$nports" = 2 ]; then
            # shellcheck disable=SC2086
            p2=$(pick_port "$want6" $USED_PORTS "$p1")
        else
            p2=""
        fi
        case $mode in
            main) write_dovecot_conf "$idir" main "$listen" "$p1" "$p2" "$cert" "$pki" "$top" ;;
            notls) write_dovecot_conf "$idir" notls "$listen" "$p1" "" "$cert" "$pki" "$top" ;;
            tls-only) write_dovecot_conf "$idir" tls-only "$listen" "" "$p1" "$cert" "$pki" "$top" ;;
        esac
        rc=0
        # shellcheck disable=SC2086
        start_instance "$idir" 127.0.0.1 $p1 $p2 || rc=$?
        if [ $rc -eq 0 ]; then
            USED_PORTS="$USED_PORTS $p1 $p2"
            REPLY_PORTS="$p1 $p2"
            echo "$idir" >>"$top/instances"
            return 0
        fi
        [ $rc -eq 2 ] || return 1
        echo "servers.sh: a port was taken meanwhile; retrying ($attempt)" >&2
    done
    die "could not bind free ports for $idir"
}

dovecot_daemon() {
    local top variants=0
    [ $# -ge 1 ] || usage
    top=$(absdir "$1")
    [ "${2:-}" = --tls-variants ] && variants=1
    [ -x "$DOVECOT" ] || missing "$DOVECOT not found (install dovecot-imapd, see make deps)"
    [ -e "$top/instances" ] && die "$top already holds servers; stop them first"
    chmod 755 "$top"
    check_traversable "$top"

    local pki
    pki=$(ensure_pki "$top")

    # Users: {PLAIN} passwords let Dovecot compute every mechanism's secret.
    printf '%s\n' 'alice:{PLAIN}wonderland::::::' 'bob:{PLAIN}builder::::::' >"$top/users"
    chmod 644 "$top/users"
    mkdir -p "$top/mail/alice" "$top/mail/bob" "$top/attr"
    give_away "$top/mail" "$top/attr"

    # Dovecot counts a connection whose remote and local addresses are equal
    # as secured (cleartext passwords allowed, no LOGINDISABLED): that is
    # every connection to 127.0.0.1 or ::1. A client of 127.0.0.2 comes from
    # 127.0.0.1, so there the server behaves as towards a remote client
    # (LOGINDISABLED before STARTTLS). 127.0.0.2 and ::1 are used when this
    # system's loopback accepts them.
    local want6 try listen ok=0 ipv6=0 alt=""
    want6=$(have_ipv6)
    USED_PORTS=""
    : >"$top/instances"
    for try in "6 alt" "alt" "6" ""; do
        case " $try " in *" 6 "*) [ "$want6" = 1 ] || continue ;; esac
        listen=127.0.0.1
        case " $try " in *" 6 "*) listen="$listen, ::1" ;; esac
        case " $try " in *" alt "*) listen="$listen, 127.0.0.2" ;; esac
        if launch "$top" . main good "$pki" "$listen" "$want6" 2 2>"$top/launch.err"; then
            ok=1
            case " $try " in *" 6 "*) ipv6=1 ;; esac
            case " $try " in *" alt "*) alt=127.0.0.2 ;; esac
            break
        fi
        echo "servers.sh: listen = $listen failed; trying fewer addresses" >>"$top/launch.log"
        cat "$top/launch.err" >>"$top/launch.log"
    done
    if [ $ok = 0 ]; then
        cat "$top/launch.log" >&2
        dovecot_stop "$top"
        exit 1
    fi
    local ports
    read -r -a ports <<<"$REPLY_PORTS"
    if [ -n "$alt" ] && ! wait_ports 5 "$alt" "${ports[0]}"; then
        alt=""
    fi
    {
        echo "IMAP_PORT=${ports[0]}"
        echo "IMAPS_PORT=${ports[1]}"
        echo "IPV6=$ipv6"
        echo "ALT_HOST=$alt"
        echo "PKI_DIR=$pki"
    } >"$top/ports.env.tmp"

    if [ $variants = 1 ]; then
        local v var cert
        for v in wrong-host:WRONGHOST expired:EXPIRED unknown-ca:UNKNOWNCA self-signed:SELFSIGNED; do
            cert=${v%%:*}
            var=${v#*:}
            launch "$top" "$cert" tls-only "$cert" "$pki" 127.0.0.1 0 1 || {
                dovecot_stop "$top"
                exit 1
            }
            echo "${var}_PORT=${REPLY_PORTS%% *}" >>"$top/ports.env.tmp"
        done
        launch "$top" notls notls good "$pki" 127.0.0.1 0 1 || {
            dovecot_stop "$top"
            exit 1
        }
        echo "NOTLS_PORT=${REPLY_PORTS%% *}" >>"$top/ports.env.tmp"
    fi
    mv "$top/ports.env.tmp" "$top/ports.env"
}

dovecot_stop() {
    [ $# -ge 1 ] || usage
    local top idir ports=()
    top=$(cd "$1" 2>/dev/null && pwd -P) || return 0
    if [ -f "$top/ports.env" ]; then
        mapfile -t ports < <(sed -n 's/^[A-Z]*_PORT=\([0-9]*\)$/\1/p' "$top/ports.env")
    fi
    if [ -f "$top/instances" ]; then
        local list=()
        while read -r idir; do
            [ -n "$idir" ] && list+=("$idir")
        done <"$top/instances"
        stop_instances ${list[@]+"${list[@]}"}
        rm -f "$top/instances"
    fi
    if [ ${#ports[@]} -gt 0 ]; then
        wait_ports_closed 10 127.0.0.1 "${ports[@]}" || die "ports ${ports[*]} still open after stopping"
    fi
}

# ---- tunnels -----------------------------------------------------------------

dovecot_tunnel() {
    local top
    [ $# -ge 1 ] || usage
    top=$(absdir "$1")
    [ -x "$DOVECOT_IMAP" ] || missing "$DOVECOT_IMAP not found (install dovecot-imapd, see make deps)"
    chmod 755 "$top"
    check_traversable "$top"
    mkdir -p "$top/Maildir" "$top/attr" "$top/run" "$top/state"
    {
        cat <<CONF
# Written by tests/integration/servers.sh: one preauthenticated session.
base_dir = $top/run
state_dir = $top/state
log_path = $top/dovecot.log
info_log_path = $top/dovecot.log
mail_location = maildir:$top/Maildir
imap_metadata = yes
mail_attribute_dict = file:$top/attr/attributes
CONF
        dovecot_mail_conf
    } >"$top/dovecot-tunnel.conf"
    : >"$top/dovecot.log"
    give_away "$top"
    chmod 644 "$top/dovecot-tunnel.conf"
    # USER names the session's user; HOME holds nothing but is required.
    printf 'cd %s && exec %senv -i USER=imapkit HOME=%s PATH=/usr/bin:/bin %s -c %s\n' \
        "$(shq "$top")" "$(drop_prefix)" "$(shq "$top")" "$(shq "$DOVECOT_IMAP")" \
        "$(shq "$top/dovecot-tunnel.conf")"
}

# What Courier-IMAP 5.0 implements and is told to advertise. Checked by hand:
# MOVE, ID, ESEARCH, LIST-EXTENDED, UNSELECT, LITERAL+, CONDSTORE are NOT
# implemented (the commands answer "NO Error in IMAP command"), so they are
# not listed; ENABLE and UTF8=ACCEPT are always appended by imapd itself.
# IMAP_KEYWORDS=1 allows keywords ($Forwarded, ...) as Debian's config does;
# IMAP_IDLE_TIMEOUT=5: without FAM, IDLE looks for changes every 5 s.
COURIER_CAPABILITY="IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"

courier_tunnel() {
    local top
    [ $# -ge 1 ] || usage
    top=$(absdir "$1")
    [ -x "$COURIER_IMAPD" ] || missing "$COURIER_IMAPD not found (make deps-courier unpacks it)"
    if ldd "$COURIER_IMAPD" 2>/dev/null | grep -q 'not found'; then
        missing "$COURIER_IMAPD lacks libraries (install courier-base): $(ldd "$COURIER_IMAPD" | grep 'not found' | tr -s ' \t' ' ')"
    fi
    # Courier refuses a home with the sticky bit and a maildir not owned by
    # the session's uid AND gid; it checks the working directory, so the
    # command starts with cd.
    chmod 755 "$top"
    check_traversable "$top"
    mkdir -p "$top/Maildir/cur" "$top/Maildir/new" "$top/Maildir/tmp"
    # A Maildir++ quota of 1 GiB, so that GETQUOTAROOT has something to say
    # (without the file Courier answers `* QUOTA "ROOT"` with no list).
    printf '1073741824S\n' >"$top/Maildir/maildirsize"
    give_away "$top"
    printf 'cd %s && exec %senv -i AUTHENTICATED=imapkit MAILDIR=%s HOME=%s PATH=/usr/bin:/bin IMAP_CAPABILITY=%s IMAP_KEYWORDS=1 IMAP_IDLE_TIMEOUT=5 %s %s\n' \
        "$(shq "$top")" "$(drop_prefix)" "$(shq "$top/Maildir")" "$(shq "$top")" \
        "$(shq "$COURIER_CAPABILITY")" "$(shq "$COURIER_IMAPD")" "$(shq "$top/Maildir")"
}

# ---- Cyrus -------------------------------------------------------------------

# Cyrus IMAP 3.6 (Debian 12's cyrus-imapd + cyrus-common), unpacked: it
# conflicts with dovecot-imapd (both provide imap-server) and installing
# cyrus-common would set up /etc/imapd.conf, a `cyrus` user and a system
# service. Facts this relies on, checked by hand:
#   - every Cyrus service (imapd is one) runs under master/service.c, which
#     with -X ("debug_stdio") serves one session on stdin/stdout instead of
#     accepting on master's descriptors 3/4; it still wants CYRUS_SERVICE
#     and CYRUS_ID in the environment;
#   - imapd -C FILE reads that imapd.conf: configdirectory (mailboxes.db,
#     quota, locks, proc) and partition-default (the spool) point into DIR;
#     the databases (twoskip) are created on first use, no ctl_cyrusdb -c
#     is needed;
#   - there is no PREAUTH: -N makes LOGIN accept any password for any user
#     (SASL is not involved: AUTHENTICATE still fails, there is no sasldb),
#     and autocreate_quota makes the first LOGIN create the user's INBOX
#     (plus autocreate_inbox_folders);
#   - without idled, IDLE polls every imapidlepoll (1 s here);
#   - as root it exits 64 at once (so the tunnel drops privileges as root),
#     and logs only to syslog;
#   - the libraries libcyrus*.so.0 come with the unpacked cyrus-common
#     (LD_LIBRARY_PATH); of its other dependencies Debian 12 with this
#     project's packages lacks only libical3 and libxapian30.
CYRUS_ROOT=${IMK_CYRUS_ROOT:-$repo/.deps/cyrus}

cyrus_tunnel() {
    local top
    [ $# -ge 1 ] || usage
    top=$(absdir "$1")
    local imapd=$CYRUS_ROOT/usr/lib/cyrus/bin/imapd libdir=""
    [ -x "$imapd" ] || missing "$imapd not found (make deps-cyrus unpacks cyrus-imapd and cyrus-common)"
    local f
    for f in "$CYRUS_ROOT"/usr/lib/*/libcyrus_imap.so.0; do
        [ -e "$f" ] && libdir=$(dirname "$f")
    done
    [ -n "$libdir" ] || missing "libcyrus_imap.so.0 not found under $CYRUS_ROOT/usr/lib (unpack cyrus-common too)"
    if LD_LIBRARY_PATH=$libdir ldd "$imapd" 2>/dev/null | grep -q 'not found'; then
        missing "$imapd lacks libraries (install libical3 libxapian30): $(LD_LIBRARY_PATH=$libdir ldd "$imapd" | grep 'not found' | tr -s ' \t' ' ')"
    fi
    chmod 755 "$top"
    check_traversable "$top"
    mkdir -p "$top/conf/socket" "$top/conf/proc" "$top/conf/log" "$top/spool"
    # 1048576 KiB = 1 GiB of storage quota for every autocreated INBOX.
    cat >"$top/imapd.conf" <<CONF
# Written by tests/integration/servers.sh: sessions on stdin/stdout only.
configdirectory: $top/conf
defaultpartition: default
partition-default: $top/spool
idlesocket: $top/conf/socket/idle
notifysocket: $top/conf/socket/notify
lmtpsocket: $top/conf/socket/lmtp
unixhierarchysep: yes
altnamespace: yes
allowplaintext: yes
autocreate_quota: 1048576
autocreate_inbox_folders: Sent | Drafts | Trash
autocreate_post: 1
xlist-sent: Sent
xlist-drafts: Drafts
xlist-trash: Trash
imapidlepoll: 1
syslog_prefix: imapkit-cyrus
CONF
    give_away "$top"
    chmod 644 "$top/imapd.conf"
    printf 'cd %s && exec %senv -i CYRUS_SERVICE=imap CYRUS_ID=0 LD_LIBRARY_PATH=%s HOME=%s PATH=/usr/bin:/bin %s -C %s -X -N\n' \
        "$(shq "$top")" "$(drop_prefix)" "$(shq "$libdir")" "$(shq "$top")" "$(shq "$imapd")" \
        "$(shq "$top/imapd.conf")"
}

# ---- main --------------------------------------------------------------------

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
    dovecot-daemon) dovecot_daemon "$@" ;;
    dovecot-stop) dovecot_stop "$@" ;;
    dovecot-tunnel) dovecot_tunnel "$@" ;;
    courier-tunnel) courier_tunnel "$@" ;;
    cyrus-tunnel) cyrus_tunnel "$@" ;;
    *) usage ;;
esac
