#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/fetch/run.sh - the whole-job fetch benchmark, from nothing to the
# table: imapkit next to libetpan, Python's imaplib and mbsync, each fetching
# the same mailbox from the same private Dovecot in the same run
# (DESIGN.md section 10; README.md in this directory says what is measured
# and why).
#
#   bench/fetch/run.sh [--runs N] [--messages N] [--total-mb MB] [--seed S]
#                      [--huge-mb MB] [--clients "imapkit libetpan imaplib mbsync"]
#                      [--quick]
#
# Steps:
#   1. build libimapkit.a (in build-bench/, with the flags of `make bench`),
#      the drivers, the generator and the measuring tool (gcc -O2) into the
#      cache directory (build-bench/fetch/, or $IMK_FETCH_CACHE);
#   2. generate the Maildir once into the cache: INBOX with 20,000 messages,
#      441 MB (seed 1), and a folder "Huge" holding one 200 MB message;
#   3. start a private Dovecot on a free loopback port: plain TCP, LOGIN in
#      cleartext allowed, its own config, sockets and index in a temporary
#      directory (nothing of the system's Dovecot is used or touched);
#   4. warm it: one untimed pass of every job with one peer client, so that
#      Dovecot's index and cache and the OS page cache are hot for all alike;
#   5. run the jobs N times (5 by default), the order of the clients rotating
#      from run to run, each client as its own process measured by rusage.c
#      (wait4): user + sys CPU of the client alone (never the server's), wall
#      time, peak RSS:
#        metadata  UID FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE) of INBOX
#        bodies    UID FETCH 1:* (BODY.PEEK[]) of INBOX
#        huge      UID FETCH 1:* (BODY.PEEK[]) of Huge (peak RSS is the point)
#   6. stop Dovecot, check that every client received the same messages and
#      bytes (imapkit against libetpan: the same UIDs, sizes, flags,
#      addresses and body checksum), print the medians and the goal checks
#      (report.py).
#
# --quick: 2,000 messages, 44 MB, a 20 MB huge message, one run (a smoke
# test of the harness, a few seconds once built). --huge-mb 0 leaves the
# huge job out.
#
# Exit status: 0 when every job ran and every consistency check passed (the
# goals are reported, not enforced: a benchmark is not a test); 1 otherwise.

# Commands and flag lists are kept in strings and split on purpose.
# shellcheck disable=SC2086,SC2046,SC2116
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

RUNS=5
MESSAGES=20000
TOTAL_MB=441
SEED=1
HUGE_MB=200
CLIENTS="imapkit libetpan imaplib mbsync"
BUILD=${IMK_FETCH_BUILD:-$repo/build-bench}
CACHE=${IMK_FETCH_CACHE:-$BUILD/fetch}
JOBS=${JOBS:-2}

while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --messages) MESSAGES=$2; shift 2 ;;
        --total-mb) TOTAL_MB=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --huge-mb) HUGE_MB=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --quick) MESSAGES=2000; TOTAL_MB=44; HUGE_MB=20; RUNS=1; shift ;;
        -h | --help) sed -n '/^#   bench/,/^# goals are/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf 'fetch: %s\n' "$*" >&2; }
die() {
    printf 'fetch: %s\n' "$*" >&2
    exit 1
}

PYTHON=/usr/bin/python3 # Debian's, as a user would run it (not a pyenv shim)
[ -x "$PYTHON" ] || PYTHON=$(command -v python3 || true)
[ -n "$PYTHON" ] || die "python3 is needed (the imaplib client and the report)"
DOVECOT=${IMK_DOVECOT:-/usr/sbin/dovecot}
[ -x "$DOVECOT" ] || die "$DOVECOT not found (Debian package dovecot-imapd)"

mkdir -p "$CACHE/bin"
CACHE=$(cd "$CACHE" && pwd -P)
BIN=$CACHE/bin

# ---- 1. build ----------------------------------------------------------------

# FETCH_CC / FETCH_CFLAGS override the compiler and flags of everything
# built here (e.g. -fsanitize=address,undefined with IMK_FETCH_BUILD naming
# a build directory configured with -DIMK_SANITIZE=ON: a correctness check
# of the drivers, whose figures then mean nothing).
CC=${FETCH_CC:-gcc}
CFLAGS_BENCH=${FETCH_CFLAGS:-"-std=c11 -O2 -DNDEBUG"}
build_log=$CACHE/build.log
: >"$build_log"
SKIPPED=""

for tool in gen_maildir rusage; do
    $CC $CFLAGS_BENCH -o "$BIN/$tool" "$here/$tool.c" >>"$build_log" 2>&1 ||
        die "$tool does not compile: $(cat "$build_log")"
done

have_client() { case " $CLIENTS " in *" $1 "*) return 0 ;; esac; return 1; }
drop_client() {
    CLIENTS=$(printf '%s\n' $CLIENTS | grep -vx "$1" | tr '\n' ' ' || true)
    SKIPPED="$SKIPPED$1 ($2); "
}

if have_client imapkit; then
    log "building libimapkit.a in $BUILD (Release, -O2 -DNDEBUG, as make bench)"
    if cmake -S "$repo" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DIMK_BENCH=ON >>"$build_log" 2>&1 &&
        cmake --build "$BUILD" -j"$JOBS" --target imapkit_static >>"$build_log" 2>&1 &&
        $CC $CFLAGS_BENCH -I"$repo/include" -o "$BIN/fetch_imapkit" "$here/fetch_imapkit.c" \
            "$BUILD/libimapkit.a" -lssl -lcrypto -lz $(pkg-config --libs libgsasl) \
            >>"$build_log" 2>&1; then
        :
    else
        log "imapkit driver not built (see $build_log)"
        drop_client imapkit "does not build"
    fi
fi
if have_client libetpan; then
    # Debian's libetpan.pc leaks its own link flags (-specs=...): keep the libraries.
    etpan_libs=$(pkg-config --libs libetpan 2>/dev/null | tr ' ' '\n' | grep -v '^-specs=' | tr '\n' ' ' || true)
    if [ -z "$etpan_libs" ] || ! $CC $CFLAGS_BENCH $(pkg-config --cflags libetpan) \
        -o "$BIN/fetch_libetpan" "$here/fetch_libetpan.c" $etpan_libs >>"$build_log" 2>&1; then
        drop_client libetpan "libetpan-dev missing or the driver does not build"
    fi
fi
if have_client mbsync && ! command -v mbsync >/dev/null 2>&1; then
    drop_client mbsync "mbsync not installed (Debian package isync)"
fi
[ -n "$(echo $CLIENTS)" ] || die "no client to run: $SKIPPED"

# ---- 2. the mailbox ------------------------------------------------------------

MAILDIR=$CACHE/maildir-n$MESSAGES-mb$TOTAL_MB-s$SEED-h$HUGE_MB
if [ ! -f "$MAILDIR.complete" ]; then
    log "generating $MESSAGES messages (~$TOTAL_MB MB, seed $SEED) and a $HUGE_MB MB one into $MAILDIR"
    rm -rf "$MAILDIR" "$MAILDIR.tmp"
    "$BIN/gen_maildir" --messages "$MESSAGES" --total-mb "$TOTAL_MB" --seed "$SEED" \
        --huge-mb "$HUGE_MB" "$MAILDIR.tmp" >"$CACHE/gen.out"
    cat "$CACHE/gen.out" >&2
    mv "$MAILDIR.tmp" "$MAILDIR"
    cp "$CACHE/gen.out" "$MAILDIR.complete"
fi
# What the generator wrote: bytes in the files (LF) and as sent (CRLF).
file_bytes=$(sed -n '1s/.*: \([0-9]*\) bytes in files.*/\1/p' "$MAILDIR.complete")
wire_bytes=$(sed -n '1s/.*, \([0-9]*\) bytes with CRLF.*/\1/p' "$MAILDIR.complete")
huge_file_bytes=$(sed -n 's/.*: \([0-9]*\) bytes in the file.*(huge)$/\1/p' "$MAILDIR.complete")
huge_wire_bytes=$(sed -n 's/.*, \([0-9]*\) bytes with CRLF (huge)$/\1/p' "$MAILDIR.complete")
JOB_LIST="metadata bodies"
[ "$HUGE_MB" = 0 ] || JOB_LIST="$JOB_LIST huge"

# ---- 3. Dovecot ------------------------------------------------------------------

RUN=$(mktemp -d "$CACHE/run.XXXXXX")
chmod 755 "$RUN"

# Stop the Dovecot this script started (the master's pid, read when it
# started) and wait until it has gone.
DOVECOT_PID=""
stop_dovecot() {
    [ -n "$DOVECOT_PID" ] || return 0
    kill "$DOVECOT_PID" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$DOVECOT_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$DOVECOT_PID" 2>/dev/null; then kill -9 "$DOVECOT_PID" 2>/dev/null || true; fi
    DOVECOT_PID=""
}
cleanup() {
    stop_dovecot
    [ -n "${KEEP_RUN:-}" ] || rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -eq 0 ]; then
    # Mail processes never run as root: the mailbox belongs to an
    # unprivileged user (nobody, unless IMK_IT_USER names another), as in
    # tests/integration/servers.sh.
    mail_user=${IMK_IT_USER:-nobody}
    mail_uid=$(id -u "$mail_user")
    mail_gid=$(id -g "$mail_user")
    internal_user=$(id -un dovecot 2>/dev/null || echo "$mail_user")
    login_user=$(id -un dovenull 2>/dev/null || echo "$mail_user")
    [ "$(stat -c %u "$MAILDIR")" = "$mail_uid" ] || chown -R "$mail_uid:$mail_gid" "$MAILDIR"
    chroot_line=""
else
    mail_uid=$(id -u)
    mail_gid=$(id -g)
    internal_user=$(id -un)
    login_user=$(id -un)
    chroot_line="chroot ="
fi
mkdir -p "$RUN/base" "$RUN/state" "$RUN/index" "$RUN/control" "$RUN/home"
chown "$mail_uid:$mail_gid" "$RUN/index" "$RUN/control" "$RUN/home" 2>/dev/null || true
printf 'bench:{PLAIN}bench::::::\n' >"$RUN/users"
chmod 644 "$RUN/users"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The index and control files go to $RUN, so the cached Maildir stays as
# generated and every harness run starts Dovecot from the same state.
start_dovecot() {
    local port=$1
    cat >"$RUN/dovecot.conf" <<CONF
# Written by bench/fetch/run.sh: a private Dovecot on loopback, plain TCP.
instance_name = imapkit-bench-fetch-$$
base_dir = $RUN/base
state_dir = $RUN/state
log_path = $RUN/dovecot.log
info_log_path = $RUN/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
shutdown_clients = yes
default_internal_user = $internal_user
default_login_user = $login_user
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:$MAILDIR:INDEX=$RUN/index:CONTROL=$RUN/control
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $RUN/users
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$RUN/home
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
  $chroot_line
}
CONF
    if [ -n "$chroot_line" ]; then
        printf 'service anvil {\n  chroot =\n}\nservice ipc {\n  chroot =\n}\n' >>"$RUN/dovecot.conf"
    fi
    : >"$RUN/dovecot.log"
    "$DOVECOT" -c "$RUN/dovecot.conf" >"$RUN/start.out" 2>&1 || return 1
    for _ in $(seq 200); do
        [ -n "$DOVECOT_PID" ] || DOVECOT_PID=$(cat "$RUN/base/master.pid" 2>/dev/null || true)
        [ -n "$DOVECOT_PID" ] && port_open "$port" && return 0
        sleep 0.05
    done
    return 1
}

PORT=""
for _ in 1 2 3 4 5; do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_open "$p" && continue
    if start_dovecot "$p"; then
        PORT=$p
        break
    fi
    stop_dovecot
done
[ -n "$PORT" ] || die "Dovecot did not start: $(cat "$RUN/start.out" "$RUN/dovecot.log")"
log "Dovecot $($DOVECOT --version | cut -d' ' -f1) on 127.0.0.1:$PORT, mailbox $MAILDIR"

# ---- the clients -----------------------------------------------------------------

# mbsync: one channel per job, each into its own Maildir under $RUN.
# FSync off: the other clients write nothing, so mbsync does not wait for
# the disk either.
{
    cat <<CONF
# Written by bench/fetch/run.sh.
FSync no

IMAPAccount bench
Host 127.0.0.1
Port $PORT
User bench
Pass bench
SSLType None
AuthMechs LOGIN

IMAPStore far
Account bench
CONF
    # channel far-box near-dir [MaxSize]
    for ch in "bodies INBOX mbsync-bodies" "headers INBOX mbsync-metadata 1k" \
        "mirror INBOX mbsync-mirror" "huge Huge mbsync-huge"; do
        set -- $ch
        printf '\nMaildirStore near-%s\nPath %s/%s/\nInbox %s/%s/INBOX\n' "$1" "$RUN" "$3" "$RUN" "$3"
        [ -z "${4:-}" ] || printf 'MaxSize %s\n' "$4"
        printf '\nChannel %s\nFar :far:%s\nNear :near-%s:INBOX\n' "$1" "$2" "$1"
        printf 'Sync Pull\nCreate Near\nExpunge None\nSyncState *\n'
    done
} >"$RUN/mbsyncrc"
mkdir -p "$RUN/mbsync-mirror"

# The command of one job of one client (run from $RUN).
client_cmd() { # client job
    local what=$2 box=INBOX
    if [ "$2" = huge ]; then
        what=bodies
        box=Huge
    fi
    case $1 in
        imapkit) echo "$BIN/fetch_imapkit $what 127.0.0.1 $PORT bench bench $box" ;;
        libetpan) echo "$BIN/fetch_libetpan $what 127.0.0.1 $PORT bench bench $box" ;;
        imaplib) echo "$PYTHON $here/fetch_imaplib.py $what 127.0.0.1 $PORT bench bench $box" ;;
        mbsync)
            # bodies, huge: a full sync into an empty Maildir. metadata
            # (mbsync cannot ask for ENVELOPE): a first sync into an empty
            # Maildir with MaxSize 1k, so that every message becomes a
            # placeholder made of its header: UID FETCH 1:* (UID FLAGS
            # RFC822.SIZE), then BODY.PEEK[HEADER] of each message.
            case $2 in
                metadata) echo "mbsync -c $RUN/mbsyncrc -q headers" ;;
                *) echo "mbsync -c $RUN/mbsyncrc -q $2" ;;
            esac
            ;;
        mbsync-resync)
            # metadata only: a re-sync of an up-to-date mirror, which asks
            # for UID FLAGS of every message and nothing else.
            echo "mbsync -c $RUN/mbsyncrc -q mirror"
            ;;
    esac
}

# What mbsync received, counted in the Maildir it wrote.
maildir_tally() {
    local dir=$1 n b
    n=$(find "$dir/INBOX/cur" "$dir/INBOX/new" -type f | wc -l)
    b=$(find "$dir/INBOX/cur" "$dir/INBOX/new" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    echo "messages=$n uid_sum=0 size_sum=0 flags=0 addresses=0 body_bytes=$b checksum=0"
}

RESULTS=$RUN/results.tsv
: >"$RESULTS"
FAILED=""

# Run one job of one client under rusage; append a line to $RESULTS:
#   job client run user sys wall maxrss_kb <the client's tally, key=value>
measure() { # client job run
    local client=$1 job=$2 run=$3 out=$RUN/out.$1.$2.$3
    if [ "$client" = mbsync ]; then
        rm -rf "$RUN/mbsync-$job" && mkdir -p "$RUN/mbsync-$job"
    fi
    # The previous job's dirty pages (mbsync's Maildir) are written out
    # first, so that no client pays for another's writeback.
    sync
    local rc=0
    (cd "$RUN" && "$BIN/rusage" "$out.time" $(client_cmd "$client" "$job") \
        >"$out.stdout" 2>"$out.stderr") || rc=$?
    if [ $rc -ne 0 ]; then
        log "$client $job (run $run) failed with status $rc: $(tail -n 5 "$out.stderr" | tr '\n' ' ')"
        FAILED="$FAILED $client/$job"
        return 0
    fi
    local tally
    case $client in
        mbsync)
            tally=$(maildir_tally "$RUN/mbsync-$job")
            rm -rf "$RUN/mbsync-$job"
            ;;
        mbsync-resync) tally=$(maildir_tally "$RUN/mbsync-mirror") ;;
        *) tally=$(tail -n 1 "$out.stdout") ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\n' "$job" "$client" "$run" \
        "$(cut -d' ' -f1-4 "$out.time" | tr ' ' '\t')" "$(echo "$tally" | tr ' ' '\t')" >>"$RESULTS"
    log "run $run/$RUNS $job $client: $(awk -F'\t' -v j="$job" -v c="$client" -v r="$run" \
        '$1 == j && $2 == c && $3 == r { printf "user %.3f s, sys %.3f s, wall %.3f s, peak RSS %.1f MB", $4, $5, $6, $7 / 1024 }' "$RESULTS")"
}

# ---- 4. warm-up ------------------------------------------------------------------

# A peer warms the server (any client would do, but a peer cannot be
# suspected of favouring imapkit).
warm_client=$(echo $CLIENTS | cut -d' ' -f1)
for c in imaplib libetpan; do
    if have_client $c; then
        warm_client=$c
        break
    fi
done
log "warming Dovecot with $warm_client: metadata twice, then bodies and huge (untimed)"
t0=$SECONDS
for job in metadata $JOB_LIST; do
    # shellcheck disable=SC2091
    (cd "$RUN" && $(client_cmd "$warm_client" "$job") >"$RUN/warm.out" 2>&1) ||
        die "warm-up with $warm_client failed: $(tail -n 5 "$RUN/warm.out"; tail -n 5 "$RUN/dovecot.log")"
done
if have_client mbsync; then
    # The mirror the metadata re-sync works on (untimed).
    (cd "$RUN" && mbsync -c "$RUN/mbsyncrc" -q mirror >"$RUN/warm.out" 2>&1) ||
        die "mbsync could not make its mirror: $(tail -n 5 "$RUN/warm.out")"
fi
log "warm-up took $((SECONDS - t0)) s"

# ---- 5. the runs -----------------------------------------------------------------

for run in $(seq "$RUNS"); do
    for job in $JOB_LIST; do
        read -r -a order <<<"$CLIENTS"
        if [ "$job" = metadata ] && have_client mbsync; then order+=(mbsync-resync); fi
        for i in "${!order[@]}"; do
            # rotate the order by one client per run
            measure "${order[$(((i + run - 1) % ${#order[@]}))]}" "$job" "$run"
        done
    done
done

# ---- 6. report -------------------------------------------------------------------

stop_dovecot
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $(uname -sr)"
versions="Dovecot $($DOVECOT --version | cut -d' ' -f1); libetpan $(pkg-config --modversion libetpan 2>/dev/null || echo -); Python $($PYTHON -c 'import sys; print(sys.version.split()[0])'); $(mbsync --version 2>/dev/null | head -n1 || echo 'mbsync -'); gcc $(gcc -dumpfullversion)"
"$PYTHON" "$here/report.py" --results "$RESULTS" --messages "$MESSAGES" \
    --file-bytes "$file_bytes" --wire-bytes "$wire_bytes" \
    --huge-mb "$HUGE_MB" --huge-file-bytes "${huge_file_bytes:-0}" \
    --huge-wire-bytes "${huge_wire_bytes:-0}" --runs "$RUNS" \
    --machine "$machine" --versions "$versions" --skipped "$SKIPPED" --failed "$FAILED"
