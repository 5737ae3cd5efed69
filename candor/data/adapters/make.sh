#!/bin/sh
# The commands that trained candor-instant's adapters (run from the repository root, on the
# otherwise idle 2-core machine; times are in each card). Outputs go to runs/align/ (not
# committed); the GGUF adapters, cards and settings are then copied next to this file.
#
#   STEPS="hh judged" (the default) trains the shipped adapters; STEPS=cai runs the full
#   Constitutional AI recipe (SL-CAI then RL-CAI), which was not trained for candor-instant in the
#   session that made these: its critic measured at chance first (the agreement lines below; see
#   README.md), and the CPU time went to the judge-labelled variant.
set -e
export CANDOR_HOME="${CANDOR_HOME:-$PWD/.candor}"
C=.venv/bin/candor
R=runs/align
export CANDOR_MODELS_FILE="${CANDOR_MODELS_FILE:-$PWD/$R/models.toml}"  # where the exports register
STEPS="${STEPS:-hh judged}"
mkdir -p "$R"; touch "$CANDOR_MODELS_FILE"
step() { case " $STEPS " in *" $1 "*) return 0;; *) return 1;; esac; }

if step hh; then
  # Human feedback: SFT on the answers people preferred, half helpful-base, half harmless-base.
  $C train sft --base candor-instant --helpful 128 --harmless 128 --out "$R/hh" --overwrite
  $C train export --adapter "$R/hh" --name candor-instant-hh
fi

if step judged; then
  # Judge-labelled pairs: the policy's own answer and its own continuation of a declining opening,
  # labelled by the validated rule judge; refuse red-team prompts, help the rest.
  # Red-team prompts: 60 hh-rlhf harmless-base first turns plus 80 harmful requests written for
  # Candor; helpful ones: 90 hh-rlhf helpful-base first turns plus 30 safe-but-alarming requests.
  # (With hh-rlhf prompts alone, 120 + 120, the SFT adapter still wrote a "pipe bomb" recipe:
  # hh-rlhf red-team turns are conversational and mild, unlike the requests models are attacked with.)
  D=candor/data/alignment
  $C cai judged-pairs --policy candor-instant --red-team 60 --helpful 90 --red-team-file $D/red-team-requests.txt \
    --helpful-file $D/safe-edgy-requests.txt --out "$R/judged-pairs.jsonl"
  # Shipped: SFT on the judge-chosen answer of each pair (rejection sampling: the policy's own
  # brief refusal on red-team prompts, its own greedy answer on the rest). DPO on the same pairs
  # from the untouched policy did not move it (learning rate 1e-4, 30 steps: loss 0.692 -> 0.694;
  # 1e-3: reward accuracy 0.40 after 19 steps), and a DPO stage after this SFT was not run.
  $C train sft --base candor-instant --data "$R/judged-pairs.jsonl" --out "$R/judged" --overwrite
  $C train export --adapter "$R/judged" --name candor-instant-judged
fi

if step cai; then
  # The critic, measured first: agreement of the policy as feedback model with human harmlessness
  # labels (100 held-out hh-rlhf pairs), with the paper's aids one at a time.
  $C cai agreement --model candor-instant --pairs 100 --fewshot 2 --out "$R/agreement-fewshot.json"
  $C cai agreement --model candor-instant --pairs 100 --fewshot 2 --chat --out "$R/agreement-chat.json"
  $C cai agreement --model candor-instant --pairs 100 --fewshot 2 --ensemble 3 --out "$R/agreement-ensemble.json"
  # SL-CAI: critique and revision under the constitution (few-shot examples), plus helpful answers.
  # Tried in session 4 with candor-instant as its own critic and reviser: at the revise default
  # temperature 1.0, 32 prompts gave incoherent revisions (e.g. "Ref. Tuesday the Police will
  # expand the service to South Africa" for an alcohol question); at temperature 0 they are fluent
  # but copy the critique instead of rewriting the answer. Neither is worth training on: use a
  # stronger reviser (--model NAME of a bigger GGUF, or an Anthropic-compatible remote entry).
  $C cai revise --model candor-instant --limit 40 --rounds 2 --fewshot 3 --max-tokens 128 \
    --out "$R/revisions.jsonl"
  $C train sft --base candor-instant --data "$R/revisions.jsonl" --helpful 40 --out "$R/sl-cai" --overwrite
  $C train export --adapter "$R/sl-cai" --name candor-instant-sl-cai
  # RL-CAI: the SL-CAI model's samples labelled by the policy as feedback model (principle
  # ensemble), DPO with labels trusted only to 60% (the paper's clamped soft labels).
  $C cai feedback --policy candor-instant-sl-cai --feedback-model candor-instant --limit 48 --offset 40 \
    --ensemble 3 --temperature 1.0 --max-tokens 96 --out "$R/feedback.jsonl"
  $C train dpo --data "$R/feedback.jsonl" --init-adapter "$R/sl-cai" --label-smoothing 0.4 \
    --min-confidence 0.5 --out "$R/cai" --overwrite --learning-rate 1e-3 --max-length 256 --batch-size 4 \
    --epochs 2
  $C train export --adapter "$R/cai" --name candor-instant-cai
fi
