#!/usr/bin/env bash
# Tokenizer throughput (MB/s, tokens/s, articles/s) on the StackFAQ KB and per-query
# tokenizing latency on its paraphrased questions.
set -u
cmd="$BUILD/bench/text_bench --lang en --seconds 1 $DATA/stackfaq/articles.jsonl $DATA/stackfaq/queries.jsonl"
echo "\$ $cmd"
$cmd
