#!/usr/bin/env bash
# Triage engine: accuracy, out-of-scope recall, calibration (ECE), training time and
# per-message decision latency. Every run but the last CLINC150 one is made as a real
# deployment is: trained on the examples alone, no validation set, no out-of-scope
# rows unless the training file has them. Each figure comes from the caredesk command
# printed above it; the summary line under it picks the fields that matter, the full
# JSON result is the line above that.
# Targets: clinc-banking-oos / clinc-credit-oos accuracy >= 0.86 with ECE <= 0.08;
# clinc150-small accuracy >= 0.86 and in-scope >= 0.89; CLINC150 (no val) in-scope
# >= 0.92 with oos recall >= 0.70; BANKING77 >= 0.91; the store's intents and KB hand
# off >= 0.95 of StackFAQ's out-of-scope questions and answer <= 0.02; the KB alone
# answers <= 0.05 of them with hit@1 >= 0.80; decide p99 < 200 us with 150 intents
# and a 10,000-article KB; training 15,000 examples < 10 s. The seven one-domain sets
# built from CLINC150 (bench/clinc_domains.py) have no target: a change to the model
# or to P(in scope) must not lose there (mean accuracy 0.883, mean ECE 0.047 now).
set -u
bin=${CAREDESK_BIN:-build/caredesk}
summary() {
    python3 -c '
import json, sys
d = json.loads(sys.stdin.read().strip().splitlines()[-1])
keys = ["accuracy", "in_scope_accuracy", "oos_recall", "ece", "clarify_rate", "answered",
        "handoff_rate", "train_cpu_ms", "decide_cpu_us_p99", "hit@1", "answer_rate",
        "answered_precision", "oos_answer_rate", "t_coverage"]
print("   ", ", ".join("%s %s" % (k, d[k]) for k in keys if k in d))'
}
run() {
    echo "\$ $*"
    local out
    out=$("$@" 2>&1 | grep -v '^in-scope messages handed off' | tail -2)
    echo "$out" | tail -1
    echo "$out" | summary
}
b77=$DATA/banking77
clinc=$DATA/clinc150
if [ ! -f "$b77/train.jsonl" ] || [ ! -f "$clinc/train.jsonl" ]; then
    echo "30-triage: evaluation data not found under $DATA (set DATA=...)" >&2
    exit 1
fi

for set in clinc-banking-oos clinc-credit-oos; do
    echo "-- $set (10 intents of 50 examples; test 58% out of scope, half of it in-domain)"
    run "$bin" eval intents --train "$DATA/$set/train.jsonl" --test "$DATA/$set/test.jsonl"
done

# Seven more one-domain bots built from CLINC150 as the two above are
# (bench/clinc_domains.py): a change must hold on bots it was not tuned on.
domains=$BUILD/bench/clinc-domains
mkdir -p "$domains"
if [ ! -s "$domains/work.test.jsonl" ]; then
    python3 bench/clinc_domains.py "$DATA" "$domains" || exit 1
fi
echo "-- seven more one-domain sets from CLINC150 (bench/clinc_domains.py; half out of scope)"
for d in kitchen home auto travel utility work smalltalk; do
    run "$bin" eval intents --train "$domains/$d.train.jsonl" --test "$domains/$d.test.jsonl"
done | tee "$domains/last.txt"
grep '^{' "$domains/last.txt" | python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin]
print("    seven domains: mean accuracy %.4f, mean ece %.4f" % (
    sum(d["accuracy"] for d in rows) / len(rows), sum(d["ece"] for d in rows) / len(rows)))'

echo "-- clinc150-small (150 intents of 50 examples, no out-of-scope rows in train)"
run "$bin" eval intents --train "$DATA/clinc150-small/train.jsonl" \
    --test "$DATA/clinc150-small/test.jsonl"

echo "-- CLINC150, full train with its out-of-scope rows, no validation set"
run "$bin" eval intents --train "$clinc/train.jsonl" --test "$clinc/test.jsonl"

echo "-- BANKING77 (77 intents, no out-of-scope rows anywhere)"
run "$bin" eval intents --train "$b77/train.jsonl" --test "$b77/test.jsonl"

echo "-- The store's intents and KB on StackFAQ questions no article answers"
run "$bin" eval intents --train intents --kb kb --test "$DATA/stackfaq/queries-oos.jsonl"

echo "-- The KB alone, at the server's answer rule, with StackFAQ's out-of-scope questions"
run "$bin" eval kb --articles "$DATA/stackfaq/articles.jsonl" \
    --queries "$DATA/stackfaq/queries.jsonl" --oos "$DATA/stackfaq/queries-oos.jsonl"

echo "-- CLINC150 with its validation set (temperature and thresholds fitted on val)"
run "$bin" eval intents --train "$clinc/train.jsonl" --test "$clinc/test.jsonl" \
    --val "$clinc/val.jsonl"

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
run "$bin" eval intents --train "$clinc/train.jsonl" --test "$clinc/test.jsonl" --kb "$kbfile"

echo "-- KB fallback: StackFAQ questions no intent covers, the store's intents, the StackFAQ KB"
echo "\$ $BUILD/bench/triage_kb intents $DATA/stackfaq/articles.jsonl $DATA/stackfaq/queries-test.jsonl"
"$BUILD/bench/triage_kb" intents "$DATA/stackfaq/articles.jsonl" \
    "$DATA/stackfaq/queries-test.jsonl" 2>&1 | tail -2
