"""The embedded engine: a GGUF model run in-process by llama-cpp-python.

llama.cpp is blocking, so each generation runs on this engine's single worker thread and hands
events to the event loop. The worker checks a cancel flag after every token, so a consumer that
stops reading (a disconnected client, Ctrl-C) stops generation within a token or two. The KV cache
is kept between generations; llama-cpp-python reuses the longest common token prefix, so a
follow-up turn in the same conversation only prefills its new tokens.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import random
import sys
import tempfile
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from candor.engine.base import Engine, Event, Finish, GenerateRequest, Health, TextDelta, Usage
from candor.engine.queue import GenerationQueue
from candor.engine.stops import StopMatcher
from candor.errors import ContextWindowExceededError, EngineError, InvalidRequestError, WeightsError


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _special_tokens(llm) -> dict[str, str]:
    """BOS/EOS text for the template, and whether tokenizing adds BOS itself (then the renderer
    drops a BOS the template writes; SmolLM2's BOS is "<|im_start|>" and is never added)."""
    model = llm._model
    adds_bos = llm.metadata.get("tokenizer.ggml.add_bos_token", "true") != "false"
    return {
        "bos_token": model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else "",
        "eos_token": model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else "",
        "add_bos_token": "true" if adds_bos else "false",
    }


def _trained_context(llm) -> int:
    arch = llm.metadata.get("general.architecture", "")
    try:
        return int(llm.metadata.get(f"{arch}.context_length", 0))
    except ValueError:
        return 0


def read_chat_format(path: Path) -> tuple[str | None, dict[str, str]]:
    """A GGUF's chat template and special tokens, read without loading its weights."""
    import llama_cpp

    with _quiet_stderr():
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        return llm.metadata.get("tokenizer.chat_template"), _special_tokens(llm)
    finally:
        llm.close()


@dataclass(frozen=True)
class LlamaConfig:
    """How to load one GGUF. `context_window` is the n_ctx allocated for the KV cache."""

    model_path: Path
    context_window: int = 8192
    adapter_path: Path | None = None
    adapter_scale: float = 1.0
    threads: int | None = None  # default: the cores this process may use
    flash_attn: bool = True  # faster prefill on CPU for long prompts (measured, see README)
    batch_size: int = 512
    parse_special: bool = False  # parse special tokens in prompts, if the GGUF has a chat template
    max_waiting: int = 16


class LlamaEngine(Engine):
    def __init__(self, name: str, config: LlamaConfig):
        import llama_cpp  # the only module that imports llama_cpp

        self.name = name
        self.config = config
        if not config.model_path.is_file():
            raise WeightsError(f"weights for {name} not found at {config.model_path}")
        if config.adapter_path is not None and not config.adapter_path.is_file():
            raise WeightsError(f"LoRA adapter for {name} not found at {config.adapter_path}")
        self._llama_cpp = llama_cpp
        try:
            with _quiet_stderr() as captured:
                self._llm = llama_cpp.Llama(
                    model_path=str(config.model_path),
                    n_ctx=config.context_window,
                    n_batch=config.batch_size,
                    n_threads=config.threads or available_cores(),
                    flash_attn=config.flash_attn,
                    # Full-size sliding-window cache, so a prefix can be kept and a suffix trimmed.
                    swa_full=True,
                    lora_path=str(config.adapter_path) if config.adapter_path else None,
                    lora_scale=config.adapter_scale,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            log = captured.read().strip().splitlines()[-5:]
            raise WeightsError(f"could not load {config.model_path}: {exc}"
                               + (f" (llama.cpp: {' | '.join(log)})" if log else "")) from exc
        trained = _trained_context(self._llm)
        if trained and config.context_window > trained:
            self._llm.close()
            raise WeightsError(f"{name}: context_window = {config.context_window} in the registry is larger than the "
                               f"{trained} tokens {config.model_path.name} was trained for (its GGUF metadata)")
        self._vocab = self._llm._model.vocab
        # Template-rendered prompts carry special tokens as text; Human/Assistant prompts must not,
        # so user text such as "<eos>" stays plain text.
        self._parse_special = config.parse_special and bool(self.chat_template())
        self._queue = GenerationQueue(name, config.max_waiting)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{name}")
        self._lock = threading.Lock()  # belt and braces: llama objects are not thread-safe
        self.last_reused_tokens = 0  # prompt tokens the last generation found in the KV cache
        self.last_full_grammar_passes = 0  # tokens of the last constrained generation the grammar refused

    # -- interface -------------------------------------------------------------------------
    @property
    def context_window(self) -> int:
        return self._llm.n_ctx()

    @property
    def queue(self) -> GenerationQueue:
        return self._queue

    def chat_template(self) -> str | None:
        """The Jinja chat template stored in the GGUF, if any."""
        return self._llm.metadata.get("tokenizer.chat_template")

    def special_tokens(self) -> dict[str, str]:
        """BOS/EOS text, for rendering chat templates."""
        return _special_tokens(self._llm)

    def trained_context(self) -> int:
        """The context length the GGUF says the model was trained for (0 if it does not say)."""
        return _trained_context(self._llm)

    def tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=self._parse_special)

    async def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    async def health(self) -> Health:
        return Health(ok=True, model=self.name, detail=str(self.config.model_path),
                      queue_depth=self._queue.depth, busy=self._queue.busy)

    async def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._llm.close()

    async def generate(self, request: GenerateRequest) -> AsyncGenerator[Event, None]:
        request.validate()
        tokens = self.tokenize(request.prompt)
        if len(tokens) + request.max_tokens > self.context_window:
            raise ContextWindowExceededError(prompt_tokens=len(tokens), max_tokens=request.max_tokens,
                                             context_window=self.context_window, model=self.name)
        grammar = self._checked_grammar(request.grammar) if request.grammar else None
        async with self._queue.slot():
            loop = asyncio.get_running_loop()
            events: asyncio.Queue[Event | BaseException] = asyncio.Queue()
            cancel = threading.Event()

            def put(item: Event | BaseException) -> None:
                loop.call_soon_threadsafe(events.put_nowait, item)

            work = loop.run_in_executor(self._executor, self._run, tokens, request, grammar, cancel, put)
            try:
                while True:
                    item = await events.get()
                    if isinstance(item, BaseException):
                        raise item
                    yield item
                    if isinstance(item, Finish):
                        break
            finally:
                cancel.set()
                # Keep the slot until the worker has really stopped, so the next request starts
                # on a free model; a cancelled consumer still releases it moments later.
                with contextlib.suppress(BaseException):  # its outcome already reached the consumer
                    await asyncio.shield(work)

    async def next_token_logprobs(self, prompt: str, candidates: Sequence[str]) -> dict[str, float]:
        if not candidates:
            raise InvalidRequestError("at least one candidate is required", field="candidates")
        context = self.tokenize(prompt)
        if len(context) + 1 > self.context_window:
            raise ContextWindowExceededError(prompt_tokens=len(context), max_tokens=1,
                                             context_window=self.context_window, model=self.name)
        # The candidate's first token is read where its tokens part from the prompt's, so a
        # tokenizer that merges across the boundary (": A" vs ":" + " A") is handled.
        firsts: dict[str, tuple[tuple[int, ...], int]] = {}
        for cand in candidates:
            full = self.tokenize(prompt + cand)
            k = _common_prefix(context, full)
            if k >= len(full):
                raise InvalidRequestError(f"candidate {cand!r} adds no token to the prompt", field="candidates")
            firsts[cand] = (tuple(full[:k]), full[k])
        async with self._queue.slot():
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._score, firsts)

    def _score(self, firsts: dict[str, tuple[tuple[int, ...], int]]) -> dict[str, float]:
        import numpy as np

        out: dict[str, float] = {}
        by_context: dict[tuple[int, ...], list[str]] = {}
        for cand, (ctx, _) in firsts.items():
            by_context.setdefault(ctx, []).append(cand)
        with self._lock:
            for ctx, cands in by_context.items():
                logits = self._eval_logits(list(ctx))
                top = logits.max()
                log_z = top + np.log(np.exp(logits - top).sum())
                for cand in cands:
                    out[cand] = float(logits[firsts[cand][1]] - log_z)
        return out

    def _eval_logits(self, tokens: list[int]):
        """Evaluate `tokens` (reusing the cached prefix) and return the last position's logits."""
        import numpy as np

        self._eval_prompt(tokens)
        pointer = self._llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self._llm.n_vocab(),)).astype(np.float64)

    def _eval_prompt(self, tokens: list[int]) -> None:
        """Evaluate `tokens`, keeping the KV cache of the prefix they share with the last ones
        (at least one token is evaluated, so the logits are fresh)."""
        llm = self._llm
        reuse = min(_common_prefix(llm._input_ids[: llm.n_tokens], tokens), len(tokens) - 1)
        if reuse > 0 and llm._ctx.kv_cache_seq_rm(-1, reuse, -1):
            llm.n_tokens = reuse
        else:
            llm.reset()
            reuse = 0
        llm.eval(tokens[reuse:])

    # -- worker thread ---------------------------------------------------------------------
    def _constrained(self, tokens: list[int], knobs: dict, grammar: str):
        """Like Llama.generate (the cached prefix reused), sampling through a ConstrainedSampler."""
        from candor.engine.grammar_sampling import ConstrainedSampler

        llm = self._llm
        self._eval_prompt(tokens)
        chain = llm._init_sampler(**knobs)
        sampler = ConstrainedSampler(self._llama_cpp, self._vocab, llm.n_vocab(), chain, grammar)
        try:
            while True:
                token = sampler.sample(llm._ctx.ctx)
                yield token
                llm.eval([token])
        finally:
            self.last_full_grammar_passes = sampler.full_passes
            sampler.close()
            chain.close()

    def _checked_grammar(self, grammar: str) -> str:
        """Parse the grammar once here: llama.cpp crashes the process when generation starts
        with a grammar it cannot parse, so a bad one must be refused before that."""
        lib = self._llama_cpp
        try:
            sampler = lib.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root")
        except (ValueError, RuntimeError, UnicodeError) as exc:
            raise InvalidRequestError(f"invalid grammar: {exc}", field="grammar") from exc
        if not sampler:
            raise InvalidRequestError("invalid grammar: llama.cpp could not parse it (undefined rule, "
                                      "bad syntax or no root rule)", field="grammar")
        lib.llama_sampler_free(sampler)
        return grammar

    def _run(self, tokens: list[int], request: GenerateRequest, grammar, cancel: threading.Event,
             put: Callable[[Event | BaseException], None]) -> None:
        try:
            with self._lock:
                put(self._generate_tokens(tokens, request, grammar, cancel, put))
        except BaseException as exc:  # noqa: BLE001 - surfaced to the consumer, never swallowed
            put(exc if isinstance(exc, Exception) else EngineError(repr(exc)))

    def _generate_tokens(self, tokens, request: GenerateRequest, grammar, cancel, put) -> Finish:
        sampling = request.sampling
        self._llm.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(31))
        if sampling.seed is not None and sampling.temperature > 0:
            # llama.cpp's logits differ in the last bits with how a prompt was batched, which is
            # enough to change a sampled token; a seeded request re-evaluates its whole prompt so
            # the same seed gives the same text whatever ran before.
            self._llm.reset()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        matcher = StopMatcher(request.stop_sequences, request.end_sequences)
        self.last_reused_tokens = _common_prefix(self._llm._input_ids[: self._llm.n_tokens], tokens)
        output_tokens = 0
        stop_reason = "max_tokens"
        knobs: dict[str, Any] = {"temp": sampling.temperature, "top_p": 1.0 if sampling.top_p is None else sampling.top_p,
                 "top_k": 0 if sampling.top_k is None else sampling.top_k, "min_p": 0.0, "repeat_penalty": 1.0}
        stream = self._constrained(tokens, knobs, grammar) if grammar else self._llm.generate(tokens, **knobs)
        for token in stream:
            output_tokens += 1
            if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
                stop_reason = "end_turn"
                break
            text = matcher.feed(decoder.decode(self._llm.detokenize([token])))
            if text:
                put(TextDelta(text))
            if matcher.hit is not None or cancel.is_set():
                stop_reason = "end_turn"
                break
            if output_tokens >= request.max_tokens:
                break
        tail = matcher.feed(decoder.decode(b"", final=True)) + matcher.flush()
        if tail:
            put(TextDelta(tail))
        usage = Usage(input_tokens=len(tokens), output_tokens=output_tokens)
        hit = matcher.hit
        if hit is not None and not hit.is_end_of_turn:
            return Finish("stop_sequence", usage, stop_sequence=hit.sequence)
        return Finish(stop_reason, usage)  # type: ignore[arg-type]


class _Captured:
    def __init__(self):
        self.text = ""

    def read(self) -> str:
        return self.text


@contextlib.contextmanager
def _quiet_stderr():
    """llama.cpp prints load notices straight to file descriptor 2; keep them for error messages
    instead of the user's terminal."""
    captured = _Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")


def _common_prefix(cached, tokens: list[int]) -> int:
    n = 0
    for a, b in zip(cached, tokens):
        if a != b:
            break
        n += 1
    return n
