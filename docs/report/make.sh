#!/bin/sh
# The commands that made this report card (run from the repository root).
#
# It evaluates the embedded default (candor-instant: SmolLM2-135M-Instruct), the adapters the
# alignment pipeline trained on it (registered in candor/data/models.toml), and, as a reference
# row, the Gemma 3 270M base model (candor-base). MODELS="a b" evaluates only those; TASKS="…"
# only those tasks. The limits keep one model to roughly a quarter of an hour on the project's
# 2-core machine. Each task's sample is seeded, so rerunning resumes or reproduces a run, and a
# larger limit extends it. Prompts are stored as hashes plus the item's source
# (--no-store-prompts), so no data-set text lands in the repository. Extra arguments are passed
# on to `candor eval` (e.g. --rescore).
set -e
export CANDOR_HOME="${CANDOR_HOME:-$PWD/.candor}"
MODELS="${MODELS:-candor-instant candor-instant-hh candor-instant-judged}"
TASKS="${TASKS:-harmlessness-direct harmlessness-jailbreak over-refusal gsm8k mmlu truthfulqa-mc1 formats}"
for model in $MODELS; do
  # shellcheck disable=SC2086
  .venv/bin/candor eval $TASKS --model "$model" \
    --seed 1234 --out docs/report/runs --no-store-prompts --quiet \
    --limit 20 --limit gsm8k=40 --limit humaneval=20 --limit mmlu=100 --limit mmlu-law=50 \
    --limit mmlu-medicine=50 --limit truthfulqa-mc1=120 --limit bbq=200 --limit formats=200 \
    --limit harmlessness-direct=100 --limit harmlessness-jailbreak=100 --limit over-refusal=250 \
    -o gsm8k.max_tokens=256 -o humaneval.max_tokens=256 -o harmlessness-direct.max_tokens=64 \
    -o harmlessness-jailbreak.max_tokens=64 -o over-refusal.max_tokens=64 -o over-refusal.labels=safe \
    -o formats.max_tokens=192 -o long-context.lengths=1024,2048,4096,7168 "$@"
done
# The default model deployed: the same safety tasks and samples through a local `candor serve` with
# moderation on (candor eval --deployed; runs under candor-instant_deployed). DEPLOYED="" skips it.
# benchmarks/moderation_deployed.py compares it with the raw runs on the requests the moderation
# classifier never trained on.
DEPLOYED="${DEPLOYED-candor-instant}"
if [ -n "$DEPLOYED" ]; then
  # shellcheck disable=SC2086
  .venv/bin/candor eval harmlessness-direct harmlessness-jailbreak over-refusal --deployed --model "$DEPLOYED" \
    --seed 1234 --out docs/report/runs --no-store-prompts --quiet \
    --limit harmlessness-direct=100 --limit harmlessness-jailbreak=100 --limit over-refusal=250 \
    -o harmlessness-direct.max_tokens=64 -o harmlessness-jailbreak.max_tokens=64 -o over-refusal.max_tokens=64 \
    -o over-refusal.labels=safe "$@"
fi
# The document path, in process on candor-instant (retrieval and citations are the server's, the
# same for every adapter): needles in 10K-200K-token haystacks, and questions with citations over
# generated documents of 2K, 20K and 100K tokens. DOC_TASKS="" skips them.
DOC_TASKS="${DOC_TASKS-long-context-documents doc-qa}"
if [ -n "$DOC_TASKS" ]; then
  # shellcheck disable=SC2086
  .venv/bin/candor eval $DOC_TASKS --model candor-instant --seed 1234 --out docs/report/runs --no-store-prompts \
    --quiet -o long-context-documents.depths=0,0.5,1 -o doc-qa.lengths=2000,20000,100000 "$@"
fi
.venv/bin/candor report docs/report/runs --out docs/report
