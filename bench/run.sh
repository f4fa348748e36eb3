#!/usr/bin/env bash
# make bench: runs every bench/*.sh part (kb, triage, server ...) in order;
# each prints its figures with the exact command that produced them.
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build} DATA=${DATA:-../shared/data}
export CAREDESK_BIN=${CAREDESK_BIN:-$PWD/$BUILD/caredesk}
rc=0
for part in bench/[0-9]*.sh; do
    [ -f "$part" ] || continue
    echo "== $part"
    bash "$part" || rc=1
done
exit $rc
