"""Engine overhead and prefix reuse, measured against llama-cpp-python's raw `Llama` in the same run.

    .venv/bin/python benchmarks/engine.py [--repeats 3] [--prefill-tokens 512] [--decode-tokens 128]

Prints prefill and decode tokens/s through Candor's engine and through a raw `Llama` with the same
settings (goal: ratio >= 0.95), then the time to first token of a follow-up turn in a ~1,000-token
conversation with the KV-cache prefix reused and with the cache cleared (goal: under 1 s reused).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time

from candor.chat import Message
from candor.chat.model_format import chat_format_of
from candor.engine.base import GenerateRequest, SamplingParams, TextDelta
from candor.engine.llama import LlamaConfig, LlamaEngine, available_cores
from candor.engine.weights import ensure_weights
from candor.registry import load_registry

GREEDY = SamplingParams(temperature=0.0)
FILLER = ("The river runs past the old mill, where the miller keeps a ledger of every sack of grain. "
          "Each season the entries grow longer, and the children learn their numbers from its pages. ")


def prompt_of(engine: LlamaEngine, n_tokens: int, tag: int) -> str:
    """A prompt of about n_tokens whose start differs per run, so no prefix is reused."""
    text = f"[run {tag}] "
    while len(engine.tokenize(text)) < n_tokens:
        text += FILLER
    return text


async def candor_run(engine: LlamaEngine, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    """(time to first token, decode seconds after it, output tokens) through the engine."""
    start = time.perf_counter()
    first = None
    finish = None
    async for event in engine.generate(GenerateRequest(prompt=prompt, max_tokens=max_tokens, sampling=GREEDY)):
        if isinstance(event, TextDelta):
            first = first or time.perf_counter()
        else:
            finish = event
    end = time.perf_counter()
    first = first or end
    return first - start, end - first, finish.usage.output_tokens


def raw_run(llm, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    """The same measurement straight on llama_cpp.Llama."""
    tokens = llm.tokenize(prompt.encode(), add_bos=True)
    start = time.perf_counter()
    first = None
    n = 0
    for _ in llm.generate(tokens, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
        n += 1
        first = first or time.perf_counter()
        if n >= max_tokens:
            break
    end = time.perf_counter()
    return first - start, end - first, n


def conversation(words: int) -> list[Message]:
    msgs, turn = [], 0
    while sum(len(m.content.split()) for m in msgs) < words:
        msgs.append(Message("user", f"Question {turn}: tell me about the mill. " + FILLER))
        msgs.append(Message("assistant", f"Answer {turn}: " + FILLER * 2))
        turn += 1
    return msgs


async def follow_up_ttft(engine: LlamaEngine, reuse: bool, fmt) -> tuple[float, int]:
    """The model's own chat format and system prompt, as the server renders the conversation."""
    history = conversation(700)  # about 1,000 tokens
    first = fmt.render(history + [Message("user", "Summarise the story so far.")])
    answer = []
    async for event in engine.generate(GenerateRequest(prompt=first.text, max_tokens=32, sampling=GREEDY,
                                                       end_sequences=first.end_sequences)):
        if isinstance(event, TextDelta):
            answer.append(event.text)
    follow = fmt.render(history + [Message("user", "Summarise the story so far."),
                               Message("assistant", "".join(answer).strip() or "It is about a mill."),
                               Message("user", "And what happens next?")])
    if not reuse:
        await engine.clear_cache()  # a cold cache: the whole conversation is prefilled again
    ttft, _, _ = await candor_run(engine, follow.text, 1)
    return ttft, len(engine.tokenize(follow.text))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prefill-tokens", type=int, default=512)
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--context", type=int, default=4096)
    args = parser.parse_args()

    import llama_cpp

    entry = load_registry().get("candor-instant")
    path = ensure_weights(entry)
    fmt = chat_format_of(entry)
    config = LlamaConfig(model_path=path, context_window=args.context, parse_special=bool(fmt.chat_template))
    engine = LlamaEngine("candor-instant", config)
    raw = llama_cpp.Llama(model_path=str(path), n_ctx=args.context, n_batch=config.batch_size,
                          n_threads=available_cores(), flash_attn=config.flash_attn, swa_full=True, verbose=False)

    print(f"model {path.name}; {available_cores()} threads; flash_attn={config.flash_attn}; "
          f"llama-cpp-python {llama_cpp.__version__}; {platform.processor() or platform.machine()}")
    rows = {"candor": {"prefill": [], "decode": []}, "raw": {"prefill": [], "decode": []}}
    for r in range(args.repeats):
        for name in ("candor", "raw"):  # interleaved, so drift hits both alike
            p = prompt_of(engine, args.prefill_tokens, tag=2 * r + (name == "raw") + 1000)
            n_prompt = len(engine.tokenize(p))
            if name == "candor":
                ttft, _, _ = await candor_run(engine, p, 1)
                _, dec, n = await candor_run(engine, prompt_of(engine, 16, tag=r), args.decode_tokens)
            else:
                ttft, _, _ = raw_run(raw, p, 1)
                _, dec, n = raw_run(raw, prompt_of(engine, 16, tag=r), args.decode_tokens)
            rows[name]["prefill"].append(n_prompt / ttft)
            rows[name]["decode"].append((n - 1) / dec if dec > 0 else 0.0)

    print(f"\n{'metric':<28}{'candor':>10}{'raw Llama':>12}{'ratio':>8}")
    for metric, label in (("prefill", f"prefill tok/s ({args.prefill_tokens} tok)"),
                          ("decode", f"decode tok/s ({args.decode_tokens} tok)")):
        c, w = statistics.median(rows["candor"][metric]), statistics.median(rows["raw"][metric])
        print(f"{label:<28}{c:>10.1f}{w:>12.1f}{c / w:>8.2f}")

    reused = [await follow_up_ttft(engine, True, fmt) for _ in range(args.repeats)]
    cold = [await follow_up_ttft(engine, False, fmt) for _ in range(args.repeats)]
    t_reuse, t_cold = statistics.median(t for t, _ in reused), statistics.median(t for t, _ in cold)
    print(f"\nfollow-up turn in a {reused[0][1]}-token conversation, time to first token:")
    print(f"  prefix reused   {t_reuse:6.3f} s")
    print(f"  cache cleared   {t_cold:6.3f} s   (reuse is {t_cold / t_reuse:.1f}x faster)")


if __name__ == "__main__":
    asyncio.run(main())
