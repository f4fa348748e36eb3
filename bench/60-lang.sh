#!/usr/bin/env bash
# Language detection on short customer messages: caredesk's detector (langid.c) against
# libexttextcat, both restricted to the languages of the shipped intents and KB, on the
# shipped intent examples (cross-validated) and the tests/cases rows. Accuracy by length
# in words. Target: >= 0.95 on 1-2 words and >= 0.99 overall.
set -u
cmd="$BUILD/bench/lang_eval --intents intents --kb kb --cases tests/cases --folds 5"
echo "\$ $cmd"
$cmd
