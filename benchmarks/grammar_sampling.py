"""Constrained decoding speed: Candor's sample-then-check grammar sampling against llama-cpp-python's
filter-the-whole-vocabulary sampling, same prompts, same grammars, interleaved in one run.

    CANDOR_HOME=.candor .venv/bin/python benchmarks/grammar_sampling.py [--repeats 3] [--max-tokens 96]

At temperature 0 both must produce the same text (checked); the figures are output tokens per
second and the ratio. Also printed: how often the grammar refused the model's first choice (the
only tokens that pay for a pass over the whole vocabulary).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from candor import formats
from candor.chat import Message
from candor.chat.model_format import chat_format
from candor.engine.base import GenerateRequest, SamplingParams, collect
from candor.engine.hub import EngineHub
from candor.registry import load_registry

CASES = [
    ("json", {}, "Describe a cat as a JSON object with name, age and colour."),
    ("json", {"schema": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 40}, "population": {"type": "integer", "minimum": 0}},
        "required": ["city", "population"], "additionalProperties": False}}, "Give the largest city of France as JSON."),
    ("xml", {"tags": ["book", "title", "author"], "root": "book"}, "Describe a book in XML."),
    ("yaml", {}, "List three fruits and their colours in YAML."),
    ("markdown", {}, "Write a short Markdown note about tea."),
]


def library_path(llm, tokens, grammar: str, max_tokens: int) -> list[int]:
    """llama-cpp-python's own generate() with a LlamaGrammar: the grammar filters every candidate."""
    import llama_cpp

    out = []
    for token in llm.generate(tokens, temp=0.0, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0,
                              grammar=llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token) or len(out) >= max_tokens:
            break
        out.append(token)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    hub = EngineHub(load_registry())
    model = await hub.get("candor-instant")
    engine = model.engine
    import llama_cpp

    # llama-cpp-python's own path, on a context of its own with the same settings
    library = llama_cpp.Llama(model_path=str(engine.config.model_path), n_ctx=engine.context_window,
                              flash_attn=engine.config.flash_attn, swa_full=True, verbose=False)
    print(f"candor-instant, {platform.machine()}, max_tokens {args.max_tokens}, temperature 0, "
          f"{args.repeats} repeats (medians)\n")
    print(f"{'format':<12} {'tokens':>6} {'library tok/s':>14} {'candor tok/s':>13} {'ratio':>6} {'refused':>8} same")
    ratios = []
    for fmt, options, prompt in CASES:
        schema = options.get("schema")
        grammar = formats.grammar_for(fmt, schema, **{k: v for k, v in options.items() if k != "schema"})
        rendered = chat_format(model).render([Message("user", prompt)])
        tokens = engine.tokenize(rendered.text)
        lib_rates, our_rates = [], []
        for _ in range(args.repeats):
            library.reset()
            start = time.perf_counter()
            lib_tokens = library_path(library, tokens, grammar, args.max_tokens)
            lib_rates.append(len(lib_tokens) / (time.perf_counter() - start))
            await engine.clear_cache()
            start = time.perf_counter()
            text, finish = await collect(engine.generate(GenerateRequest(
                prompt=rendered.text, max_tokens=args.max_tokens, sampling=SamplingParams(temperature=0.0),
                grammar=grammar)))
            our_rates.append(finish.usage.output_tokens / (time.perf_counter() - start))
        lib_text = engine.detokenize(lib_tokens)
        same = lib_text == text or lib_text.startswith(text)
        ratio = statistics.median(our_rates) / statistics.median(lib_rates)
        ratios.append(ratio)
        print(f"{fmt:<12} {finish.usage.output_tokens:>6} {statistics.median(lib_rates):>14.1f} "
              f"{statistics.median(our_rates):>13.1f} {ratio:>5.2f}x {engine.last_full_grammar_passes:>8} "
              f"{'yes' if same else 'NO'}")
    print(f"\nmedian speed-up {statistics.median(ratios):.2f}x")
    library.close()
    await hub.close()


if __name__ == "__main__":
    asyncio.run(main())
