#!/usr/bin/env bash
# The conversation core alone (chat.c + triage + store with group commit, no network):
# answered messages per second with 1,000 customers in a closed loop, per loop-turn
# latency, for both durability settings.
set -u
for d in normal full; do
    cmd="$BUILD/bench/chat_bench --connections 1000 --seconds 3 --durability $d"
    echo "\$ $cmd"
    $cmd
done
