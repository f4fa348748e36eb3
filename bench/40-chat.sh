#!/usr/bin/env bash
# The conversation core alone (chat.c + triage + KB + store with group commit, no
# network): answered messages per second (wall and per CPU-second: the machine is
# shared) with 1,000 customers in a closed loop, per loop-turn latency, for both
# durability settings, with the shipped intents and KB.
set -u
for d in normal full; do
    cmd="$BUILD/bench/chat_bench --connections 1000 --seconds 3 --durability $d"
    [ -d intents ] && cmd="$cmd --intents intents"
    [ -d kb ] && cmd="$cmd --kb kb"
    echo "\$ $cmd"
    $cmd
done
