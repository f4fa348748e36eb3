#!/usr/bin/env bash
# Knowledge base: indexing speed and query latency on a synthetic 10,000-article help centre
# (bench/kb_gen.c), then ranking quality on StackFAQ without and with learned questions.
# Targets (issue 2): p99 < 1 ms at 10,000 articles, >= 5,000 articles/s indexed;
# StackFAQ hit@1 >= 0.80, hit@5 >= 0.95; with learning hit@1 >= 0.92.
# Each figure is printed under the exact command that produced it.
set -u
BIN=${CAREDESK_BIN:-$BUILD/caredesk}
out=$BUILD/kb-bench
mkdir -p "$out"
rc=0
run() {
    echo "\$ $*"
    "$@" || rc=1
}
run "$BUILD/bench/kb_gen" 10000 "$out/articles.jsonl" "$out/queries.jsonl" 1000 42
run "$BIN" eval kb --articles "$out/articles.jsonl" --queries "$out/queries.jsonl"
if [ -f "$DATA/stackfaq/articles.jsonl" ]; then
    s=$DATA/stackfaq
    run "$BIN" eval kb --articles "$s/articles.jsonl" --queries "$s/queries.jsonl"
    run "$BIN" eval kb --articles "$s/articles.jsonl" --learn "$s/queries-learn.jsonl" \
        --queries "$s/queries-test.jsonl"
else
    echo "StackFAQ not found under $DATA/stackfaq: quality figures skipped"
fi
exit $rc
