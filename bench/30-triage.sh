#!/usr/bin/env bash
# Triage engine: accuracy, out-of-scope recall, calibration (ECE), training time and
# per-message decision latency on BANKING77 and CLINC150, and decision latency with a
# 10,000-article KB. Each figure comes from the caredesk command printed above it; the
# last line of each run is its JSON result. Targets: BANKING77 accuracy >= 0.89;
# CLINC150 in_scope_accuracy >= 0.91 with oos_recall >= 0.50; ece <= 0.05; decide p99
# < 200 us; training 15,000 examples < 10 s.
set -u
bin=${CAREDESK_BIN:-build/caredesk}
run() {
    echo "\$ $*"
    "$@" 2>&1 | grep -v '^in-scope messages handed off' | tail -2
}
b77=$DATA/banking77
clinc=$DATA/clinc150
if [ ! -f "$b77/train.jsonl" ] || [ ! -f "$clinc/train.jsonl" ]; then
    echo "30-triage: evaluation data not found under $DATA (set DATA=...)" >&2
    exit 1
fi

echo "-- BANKING77 (77 intents, no validation set: default thresholds)"
run "$bin" eval intents --train "$b77/train.jsonl" --test "$b77/test.jsonl"

echo "-- CLINC150 (150 intents + out of scope; temperature and thresholds fitted on val)"
run "$bin" eval intents --train "$clinc/train.jsonl" --test "$clinc/test.jsonl" \
    --val "$clinc/val.jsonl"

echo "-- Training 15,100 CLINC150 examples as the server does (model + held-out calibration)"
run "$bin" eval intents --train "$clinc/train.jsonl" --test "$clinc/val.jsonl"

# A 10,000-article KB: the StackFAQ articles, repeated under new ids.
kbfile=$BUILD/bench/kb10k.jsonl
mkdir -p "$(dirname "$kbfile")"
if [ ! -s "$kbfile" ]; then
    n=$(wc -l <"$DATA/stackfaq/articles.jsonl")
    for ((r = 0; r * n < 10000; r++)); do
        sed "s/^{\"id\": \"\\([^\"]*\\)\"/{\"id\": \"\\1-r$r\"/" "$DATA/stackfaq/articles.jsonl"
    done | head -10000 >"$kbfile"
fi
echo "-- Decision latency with 150 intents and a $(wc -l <"$kbfile")-article KB (decide_us_*)"
run "$bin" eval intents --train "$clinc/train.jsonl" --test "$clinc/test.jsonl" \
    --val "$clinc/val.jsonl" --kb "$kbfile"

echo "-- KB fallback: StackFAQ questions no intent covers, the store's intents, the StackFAQ KB"
run "$BUILD/bench/triage_kb" intents "$DATA/stackfaq/articles.jsonl" \
    "$DATA/stackfaq/queries-test.jsonl"
