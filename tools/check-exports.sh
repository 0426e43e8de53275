#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails if libimapkit.so exports a symbol outside the public namespace.
#
#   tools/check-exports.sh path/to/libimapkit.so
#
# Every defined dynamic symbol must start with `imk_` and must not start with
# `imk__` (the internal prefix, which hidden visibility should keep out of the
# dynamic table). Linker-provided symbols (_init, _fini, _edata, _end,
# __bss_start) are ignored. Run as the CTest test `exported_symbols`.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 LIBRARY.so" >&2
    exit 2
fi
lib=$1
if [ ! -f "$lib" ]; then
    echo "check-exports: $lib: no such file" >&2
    exit 2
fi

# nm -D --defined-only prints "ADDRESS TYPE NAME"; absolute symbols (type A,
# e.g. version nodes) have an address too. Symbol versions (name@VER) are cut.
symbols=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $2, $3 }')

bad=0
public=0
while read -r type name; do
    [ -n "${name:-}" ] || continue
    name=${name%%@*}
    case "$type" in
    [TtDdBbRrVvWwGgSsi]) ;;  # text, data, bss, rodata, weak, small data, ifunc
    *) continue ;;           # A (absolute), U, N and the like
    esac
    case "$name" in
    _init | _fini | _edata | _end | __bss_start | _DYNAMIC | _GLOBAL_OFFSET_TABLE_) continue ;;
    imk__*)
        echo "check-exports: internal symbol exported: $name ($type)" >&2
        bad=$((bad + 1))
        ;;
    imk_*) public=$((public + 1)) ;;
    *)
        echo "check-exports: symbol outside the imk_ namespace: $name ($type)" >&2
        bad=$((bad + 1))
        ;;
    esac
done <<<"$symbols"

if [ "$bad" -ne 0 ]; then
    echo "check-exports: FAILED: $bad bad symbol(s) in $lib (mark public functions IMK_API," \
        "keep everything else static or imk__ with hidden visibility)" >&2
    exit 1
fi
echo "check-exports: OK ($public public symbols in $(basename "$lib"))"
