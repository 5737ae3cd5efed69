"""The embedded engine: a GGUF model run in-process by llama-cpp-python.

Concurrent requests are decoded together by `candor.engine.batching.Batcher` (continuous
batching over sequence slots) on one worker thread, which hands events to the event loop. The
worker checks each request's cancel flag every step, so a consumer that stops reading (a
disconnected client, Ctrl-C) stops its generation within a token or two while the others go on.
Each slot keeps its KV cache between requests and a request goes to the free slot holding the
longest common prefix, so a follow-up turn in a conversation only prefills its new tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from candor.engine.base import Engine, Event, Finish, GenerateRequest, Health, RepetitionGuard
from candor.engine.batching import common_prefix
from candor.engine.queue import GenerationQueue
from candor.errors import ContextWindowExceededError, EngineError, InvalidRequestError, WeightsError

DEFAULT_SLOTS = 16  # sequences decoded together; chosen from benchmarks/concurrency.py (README)
KV_BUDGET = 4 << 30  # bytes of KV cache the default slot count may take (fewer slots for big models)


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
    """How to load one GGUF. `context_window` is what one request may use (prompt plus answer):
    each of the `slots` sequence slots gets a KV cache of that many positions."""

    model_path: Path
    context_window: int = 8192
    adapter_path: Path | None = None
    adapter_scale: float = 1.0
    threads: int | None = None  # default: the cores this process may use
    flash_attn: bool = True  # faster prefill on CPU for long prompts (measured, see README)
    batch_size: int = 512
    parse_special: bool = False  # parse special tokens in prompts, if the GGUF has a chat template
    max_waiting: int = 16
    slots: int | None = None  # sequences decoded together (default: `default_slots`)
    slot_context: int | None = None  # KV cache per slot (default: context_window); caps one request
    repetition: RepetitionGuard = field(default_factory=RepetitionGuard)  # loop guard for unconstrained answers (default: none)


class LlamaEngine(Engine):
    """Loads the weights (and LoRA adapter), tokenizes, and hands generations to a `Batcher`,
    whose worker thread decodes all running requests together. The fair queue admits up to
    `slots` requests at once and refuses new ones with 529 once `max_waiting` wait."""

    def __init__(self, name: str, config: LlamaConfig):
        import llama_cpp  # only the engine modules touch llama_cpp

        from candor.engine.batching import Batcher

        self.name = name
        self.config = config
        if not config.model_path.is_file():
            raise WeightsError(f"weights for {name} not found at {config.model_path}")
        if config.adapter_path is not None and not config.adapter_path.is_file():
            raise WeightsError(f"LoRA adapter for {name} not found at {config.adapter_path}")
        if config.slots is not None and config.slots < 1:
            raise InvalidRequestError(f"must be >= 1, got {config.slots}", field="slots")
        self._llama_cpp = lib = llama_cpp
        self._model = self._adapter = None
        try:
            with _quiet_stderr() as captured:
                # The tokenizer and metadata (no weights); the model itself is loaded below.
                self._llm = llama_cpp.Llama(model_path=str(config.model_path), vocab_only=True, verbose=False)
                self._model = lib.llama_model_load_from_file(str(config.model_path).encode(),
                                                             lib.llama_model_default_params())
                if not self._model:
                    raise ValueError("llama.cpp could not load the model")
                if config.adapter_path is not None:
                    self._adapter = lib.llama_adapter_lora_init(self._model, str(config.adapter_path).encode())
                    if not self._adapter:
                        raise ValueError(f"llama.cpp could not load the LoRA adapter {config.adapter_path}")
        except (ValueError, RuntimeError) as exc:
            self._free_model()
            log = captured.read().strip().splitlines()[-5:]
            raise WeightsError(f"could not load {config.model_path}: {exc}"
                               + (f" (llama.cpp: {' | '.join(log)})" if log else "")) from exc
        trained = _trained_context(self._llm)
        if trained and config.context_window > trained:
            self._free_model()
            raise WeightsError(f"{name}: context_window = {config.context_window} in the registry is larger than the "
                               f"{trained} tokens {config.model_path.name} was trained for (its GGUF metadata)")
        self._vocab = lib.llama_model_get_vocab(self._model)
        # Template-rendered prompts carry special tokens as text; Human/Assistant prompts must not,
        # so user text such as "<eos>" stays plain text.
        self._parse_special = config.parse_special and bool(self.chat_template())
        slot_context = min(config.slot_context or config.context_window, config.context_window)
        slots = config.slots or default_slots(lib, self._model, slot_context)
        try:
            with _quiet_stderr():
                self._batcher = Batcher(lib, self._model, self._vocab, slots=slots, slot_context=slot_context,
                                        threads=config.threads or available_cores(), flash_attn=config.flash_attn,
                                        batch_size=config.batch_size, adapter=self._adapter,
                                        adapter_scale=config.adapter_scale, repetition=config.repetition, name=name)
        except EngineError as exc:
            self._free_model()
            raise WeightsError(str(exc)) from exc
        self._queue = GenerationQueue(name, config.max_waiting, capacity=slots)

    def _free_model(self) -> None:
        lib = self._llama_cpp
        if self._adapter:
            lib.llama_adapter_lora_free(self._adapter)
            self._adapter = None
        if self._model:
            lib.llama_model_free(self._model)
            self._model = None
        if getattr(self, "_llm", None) is not None:
            self._llm.close()

    # -- interface -------------------------------------------------------------------------
    @property
    def context_window(self) -> int:
        return min(self.config.context_window, self._batcher.slot_context)

    @property
    def slots(self) -> int:
        return self._batcher.slots

    @property
    def queue(self) -> GenerationQueue:
        return self._queue

    @property
    def last_reused_tokens(self) -> int:
        """Prompt tokens the last started request found in its slot's KV cache."""
        return self._batcher.last_reused_tokens

    @property
    def last_full_grammar_passes(self) -> int:
        """Tokens of the last constrained generation the grammar refused (the slow path)."""
        return self._batcher.last_full_grammar_passes

    @property
    def last_slot(self) -> int:
        """The slot the last started request went to (for tests and diagnostics)."""
        return self._batcher.last_slot

    @property
    def slot_copies(self) -> int:
        """KV streams copied from slot to slot (see batching.Batcher._place and _compact)."""
        return self._batcher.slot_copies

    @property
    def slot_moves(self) -> int:
        """Running sequences moved to close a gap between slots (see batching.Batcher._compact)."""
        return self._batcher.slot_moves

    @property
    def slot_spills(self) -> int:
        """Cached conversations copied aside before their slot was taken (batching.Batcher._keep)."""
        return self._batcher.slot_spills

    @property
    def solo_steps(self) -> int:
        return self._batcher.solo_steps

    @property
    def decode_stats(self):
        """Totals of the batched forward passes (calls, tokens, seconds), for /metrics."""
        return self._batcher.stats

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

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._llm.detokenize(list(tokens)).decode("utf-8", errors="replace")

    async def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    async def health(self) -> Health:
        return Health(ok=True, model=self.name, detail=str(self.config.model_path),
                      queue_depth=self._queue.depth, busy=self._queue.busy)

    async def clear_cache(self) -> None:
        """Forget the cached prompt prefixes of idle slots (benchmarks measure a cold start)."""
        await asyncio.wrap_future(self._batcher.call(self._batcher.clear_cache))

    async def close(self) -> None:
        self._batcher.close()
        self._free_model()

    async def generate(self, request: GenerateRequest, *,
                       trace: list[tuple[int, float]] | None = None) -> AsyncGenerator[Event, None]:
        """`trace`, when given, receives (token, gap between the two best logits) per step: how
        tests and benchmarks tell a batching divergence after a near-tie from a real fault."""
        request.validate()
        tokens = self.tokenize(request.prompt)
        if len(tokens) + request.max_tokens > self.context_window:
            raise ContextWindowExceededError(prompt_tokens=len(tokens), max_tokens=request.max_tokens,
                                             context_window=self.context_window, model=self.name)
        grammar = self._checked_grammar(request.grammar) if request.grammar else None
        async with self._queue.slot():
            events: asyncio.Queue[Any] = asyncio.Queue()
            job, ended = self._job(tokens, request.max_tokens, events)
            job.sampling, job.grammar = request.sampling, grammar
            job.stop_sequences, job.end_sequences = request.stop_sequences, request.end_sequences
            job.trace = trace
            self._batcher.submit(job)
            try:
                while True:
                    item = await events.get()
                    if isinstance(item, BaseException):
                        raise item
                    yield item
                    if isinstance(item, Finish):
                        break
            finally:
                job.cancel.set()
                # Keep the queue slot until the worker has let go of the sequence slot, so the
                # next request starts on a free one; a cancelled consumer releases it moments later.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(ended)

    def _job(self, tokens: list[int], max_tokens: int, events: asyncio.Queue):
        from candor.engine.batching import Job

        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def mark_ended() -> None:
            if not ended.done():
                ended.set_result(None)

        job = Job(tokens=tokens, max_tokens=max_tokens, deliver=events.put_nowait, loop=loop, ended=mark_ended)
        return job, ended

    async def next_token_logprobs(self, prompt: str, candidates: Sequence[str]) -> dict[str, float]:
        if not candidates:
            raise InvalidRequestError("at least one candidate is required", field="candidates")
        context = self.tokenize(prompt)
        if len(context) + 1 > self.context_window:
            raise ContextWindowExceededError(prompt_tokens=len(context), max_tokens=1,
                                             context_window=self.context_window, model=self.name)
        # The candidate's first token is read where its tokens part from the prompt's, so a
        # tokenizer that merges across the boundary (": A" vs ":" + " A") is handled.
        by_context: dict[tuple[int, ...], list[tuple[str, int]]] = {}
        for cand in candidates:
            full = self.tokenize(prompt + cand)
            k = common_prefix(context, full)
            if k >= len(full):
                raise InvalidRequestError(f"candidate {cand!r} adds no token to the prompt", field="candidates")
            by_context.setdefault(tuple(full[:k]), []).append((cand, full[k]))
        out: dict[str, float] = {}
        async with self._queue.slot():
            for ctx, cands in by_context.items():
                events: asyncio.Queue[Any] = asyncio.Queue()
                job, ended = self._job(list(ctx), 0, events)
                self._batcher.submit(job)
                try:
                    scores = await events.get()
                    if isinstance(scores, BaseException):
                        raise scores
                finally:
                    job.cancel.set()
                    with contextlib.suppress(BaseException):
                        await asyncio.shield(ended)
                for cand, token in cands:
                    out[cand] = float(scores[token])
        return out

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


def default_slots(lib, model, slot_context: int) -> int:
    """DEFAULT_SLOTS, or fewer when that many KV caches of `slot_context` tokens would take more
    than KV_BUDGET (16-bit keys and values for every layer's KV heads)."""
    head_dim = lib.llama_model_n_embd(model) // max(1, lib.llama_model_n_head(model))
    per_token = 2 * 2 * lib.llama_model_n_layer(model) * lib.llama_model_n_head_kv(model) * head_dim
    return max(1, min(DEFAULT_SLOTS, KV_BUDGET // max(1, per_token * slot_context)))


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
