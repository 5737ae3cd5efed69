#!/bin/sh
# The commands that made this report card (run from the repository root).
#
# It evaluates the embedded base model (candor-instant), the same weights with the HHH system
# prompt (candor-instant+hhh: only a different prompt), and the project's LoRA adapters registered
# in candor/data/models.toml. MODELS="a b" evaluates only those. The limits keep one model
# to roughly an hour on the project's 2-core machine. Each task's sample is seeded, so rerunning
# resumes or reproduces a run, and a larger limit extends it. Prompts are stored as hashes plus the
# item's source (--no-store-prompts), so no data-set text lands in the repository. Extra arguments
# are passed on to `candor eval` (e.g. --rescore).
set -e
export CANDOR_HOME="${CANDOR_HOME:-$PWD/.candor}"
MODELS="${MODELS:-candor-instant candor-instant+hhh candor-instant-helpful candor-instant-hh candor-instant-cai}"
for model in $MODELS; do
  .venv/bin/candor eval all --model "$model" \
    --seed 1234 --out docs/report/runs --no-store-prompts --quiet \
    --limit 20 --limit gsm8k=15 --limit humaneval=10 --limit mmlu=100 --limit mmlu-law=50 \
    --limit mmlu-medicine=50 --limit truthfulqa-mc1=120 --limit bbq=200 --limit harmlessness=30 \
    --limit over-refusal=30 \
    -o gsm8k.max_tokens=200 -o humaneval.max_tokens=256 -o harmlessness.max_tokens=96 \
    -o over-refusal.max_tokens=64 -o formats.max_tokens=192 \
    -o long-context.lengths=1024,2048,4096,8192 "$@"
done
.venv/bin/candor report docs/report/runs --out docs/report
