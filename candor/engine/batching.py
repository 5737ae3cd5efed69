"""Continuous batching: many sequences decoded per forward pass of one llama.cpp context.

Decoding one token is bound by reading the weights from memory; decoding a token for each of
eight sequences in the same `llama_decode` call reads them once. `Batcher` owns a context with
`slots` sequence slots (each with its own KV cache stream of `slot_context` positions) and one
worker thread that loops: admit waiting jobs into free slots, build one batch holding the next
token of every decoding sequence plus chunks of prompts still being prefilled, decode it, and
sample each sequence's next token in llama.cpp's C samplers at that sequence's row of the logits.
Python's work per step is O(active sequences); no logits are copied unless a job asks for them.

- Prompts are prefilled in chunks (`prefill_chunk` tokens per step while others are decoding), so
  a long prompt arriving does not freeze other streams.
- A slot keeps its KV cache when its job ends; a new job goes to the free slot holding the longest
  common prefix of its prompt (least recently used among equals), so a follow-up turn only
  prefills its new tokens, even under load.
- Running sequences are kept in adjacent slots and each batch is ordered by slot: llama.cpp
  computes each run of consecutive sequence ids as a separate pass over the weights, so eight
  sequences in scattered slots cost up to eight passes a step (see `Batcher._place`); a gap a
  sequence leaves when it ends early is closed by moving the sequences beyond it (`_compact`).
- A seeded sampled job runs "solo": its prompt is evaluated whole, in its own `llama_decode`
  calls, never batched with others. llama.cpp's logits move in the last bits with batch
  composition, enough to change a sampled token; solo jobs see the same computation whatever else
  runs, so the same seed gives the same text under load too.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import ctypes
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from candor.engine.base import DRY_BREAKERS, Finish, RepetitionGuard, SamplingParams, TextDelta, Usage
from candor.engine.stops import StopMatcher
from candor.errors import EngineError

PREFILL_CHUNK = 128  # prompt tokens per step while other sequences decode (see README, "Measured")
# A cached prefix (a free or a running slot's) that saves at least this many prompt tokens is
# copied into the slot a new request gets (see `Batcher._place`). Copying one 8,192-token slot of
# SmolLM2 took about 20 ms on the 2-core machine; a prompt token costs 3-5 ms to prefill there,
# batched or not (Q4_1 has no batched matrix kernel), so a shared system prompt pays at once (the
# README's concurrency section has the benchmark's before/after, 64 -> 8).
MOVE_MIN_TOKENS = 8
# Steps a gap between running slots is left for a new request to fill (a client that got its answer
# sends the next one within a step or two) before `Batcher._compact` moves a sequence to close it:
# two steps in two passes cost about what one move costs.
GAP_STEPS = 2


@dataclass
class DecodeStats:
    """Running totals of `llama_decode` calls: tokens per call and seconds per call follow.

    `slot_runs` counts, per call, the runs of consecutive slot numbers in it: with one KV stream
    per slot llama.cpp splits a batch into runs of consecutive sequence ids and computes each run
    as its own pass over the weights, so runs per call above 1 is time lost."""

    calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    slot_runs: int = 0

    def add(self, tokens: int, seconds: float, slot_runs: int = 1) -> None:
        self.calls += 1
        self.tokens += tokens
        self.seconds += seconds
        self.slot_runs += slot_runs


@dataclass(eq=False)
class Job:
    """One request handed to the worker: a generation, or (`max_tokens == 0`) a scoring pass
    that evaluates the prompt and delivers the last position's log-softmax over the vocabulary."""

    tokens: list[int]
    max_tokens: int
    deliver: Callable[[Any], None]  # called on `loop` with each Event / BaseException / scores
    loop: asyncio.AbstractEventLoop
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop_sequences: tuple[str, ...] = ()
    end_sequences: tuple[str, ...] = ()
    grammar: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    ended: Callable[[], None] | None = None  # called on `loop` once the job's slot is free again
    # When a list: each sampled token is appended with the gap between the two best logits at
    # that step (a diagnostic; it copies the logits row, so only when asked).
    trace: list[tuple[int, float]] | None = None

    @property
    def solo(self) -> bool:
        return self.sampling.seed is not None and self.sampling.temperature > 0 and self.max_tokens > 0


@dataclass(eq=False)
class _Sequence:
    """A job while it holds a slot."""

    job: Job
    slot: int
    kv: list[int]  # the tokens in this slot's KV cache, in order (shared with the slot record)
    chain: Any = None
    constrained: Any = None
    decoder: Any = None
    matcher: StopMatcher | None = None
    pending: int | None = None  # sampled, not yet evaluated
    output_tokens: int = 0
    index: int = -1  # row of this sequence's logits in the current batch

    @property
    def prefilling(self) -> bool:
        return len(self.kv) < len(self.job.tokens)


def dry_breakers():
    """DRY's sequence breakers as the C array llama.cpp's sampler takes."""
    return (ctypes.c_char_p * len(DRY_BREAKERS))(*(b.encode() for b in DRY_BREAKERS))


def add_repetition_guard(lib, chain, vocab, n_vocab: int, guard: RepetitionGuard, breakers) -> None:
    """`guard`'s samplers at the head of `chain` (llama.cpp's order: penalties, then DRY); `breakers`
    from `dry_breakers`."""
    if guard.repeat_penalty != 1.0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_penalties(
            n_vocab, guard.repeat_last_n, guard.repeat_penalty, 0.0, 0.0))
    if guard.dry_multiplier > 0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dry(
            vocab, guard.dry_multiplier, guard.dry_base, guard.dry_allowed_length, guard.dry_penalty_last_n,
            breakers, len(DRY_BREAKERS)))


class Batcher:
    """The worker thread and the llama.cpp context it alone touches."""

    def __init__(self, lib, model, vocab, *, slots: int, slot_context: int, threads: int, flash_attn: bool,
                 batch_size: int, adapter=None, adapter_scale: float = 1.0,
                 repetition: RepetitionGuard | None = None, name: str = "model"):
        self._lib = lib
        self.repetition = repetition or RepetitionGuard()
        self._dry_breakers = dry_breakers()
        self._vocab = vocab
        self.slots = slots
        self.name = name
        self.n_batch = max(batch_size, slots + PREFILL_CHUNK)
        params = lib.llama_context_default_params()
        params.n_ctx = slot_context * slots
        params.n_batch = self.n_batch
        params.n_ubatch = min(512, self.n_batch)
        params.n_seq_max = slots
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = (lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                  else lib.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        params.swa_full = True  # full-size sliding-window cache, so a prefix can be kept and a suffix trimmed
        params.kv_unified = False  # one KV stream per slot: measured faster for independent sequences
        params.no_perf = True
        self._ctx = lib.llama_init_from_model(model, params)
        if not self._ctx:
            raise EngineError(f"{name}: llama.cpp could not create a context of {slots} slots x {slot_context} tokens")
        if adapter is not None:
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(adapter_scale)
            if lib.llama_set_adapters_lora(self._ctx, adapters, 1, scales):
                lib.llama_free(self._ctx)
                raise EngineError(f"{name}: llama.cpp could not apply the LoRA adapter")
        self.slot_context = lib.llama_n_ctx_seq(self._ctx)
        self._memory = lib.llama_get_memory(self._ctx)
        self._batch = lib.llama_batch_init(self.n_batch, 0, 1)
        self._n_vocab = lib.llama_vocab_n_tokens(vocab)
        self._slot_kv: list[list[int]] = [[] for _ in range(slots)]
        self._slot_used = [0] * slots
        self._slot_free = [True] * slots
        self._active: list[_Sequence] = []
        self._incoming: list[Job] = []
        self._calls: list[tuple[Callable[[], Any], Any]] = []
        self._cv = threading.Condition()
        self._stopping = False
        self._steps = 0
        self._outbox: list[tuple[Job, Any]] = []
        self.last_reused_tokens = 0  # prompt tokens the last started job found in its slot's cache
        self.last_slot = -1  # the slot the last started job went to
        self.last_full_grammar_passes = 0  # tokens of the last constrained job the grammar refused
        self.solo_steps = 0  # llama_decode calls made for solo jobs (for tests and benchmarks)
        self.slot_copies = 0  # KV streams copied from slot to slot (see `_place` and `_compact`)
        self.slot_moves = 0  # running sequences moved to close a gap (see `_compact`)
        self.slot_spills = 0  # cached conversations copied aside before their slot was taken (`_keep`)
        self._gap_steps = 0  # steps in a row the running slots have formed more than one run
        self.stats = DecodeStats()  # read by /metrics: how full the batches are and how long they take
        self._thread = threading.Thread(target=self._loop, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    # -- called from the event loop ---------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._cv:
            if self._stopping:
                raise EngineError(f"{self.name} is shutting down")
            self._incoming.append(job)
            self._cv.notify()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the worker between steps and return its result (a concurrent future)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._cv:
            self._calls.append((fn, future))
            self._cv.notify()
        return future

    def clear_cache(self) -> None:
        """Forget every free slot's cached prefix and when it was last used (on the worker thread):
        a cold start places requests as a fresh engine does, in slot order, not by the recency of
        caches that are gone."""
        for slot in range(self.slots):
            if self._slot_free[slot]:
                self._lib.llama_memory_seq_rm(self._memory, slot, 0, -1)
                self._slot_kv[slot] = []
                self._slot_used[slot] = 0

    def close(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join()
        self._lib.llama_batch_free(self._batch)
        self._lib.llama_free(self._ctx)

    # -- worker thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not (self._incoming or self._calls or self._active or self._stopping):
                    self._cv.wait()
                if self._stopping:
                    for seq in list(self._active):
                        self._fail(seq, EngineError(f"{self.name} shut down"))
                    for job in self._incoming:
                        self._post(job, EngineError(f"{self.name} shut down"))
                        self._post_ended(job)
                    self._incoming = []
                    self._flush()
                    return
                calls, self._calls = self._calls, []
                waiting = self._incoming
            for fn, future in calls:
                try:
                    future.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    future.set_exception(exc)
            with self._cv:
                free = self._slot_free.count(True)
                starting, waiting[:free] = waiting[:free], []
            for job in starting:
                try:
                    self._start(job)
                except Exception as exc:  # noqa: BLE001 - e.g. a grammar llama.cpp refuses
                    self._post(job, exc)
                    self._post_ended(job)
            try:
                self._compact()
                self._step()
            except BaseException as exc:  # noqa: BLE001 - every active job hears of it, none hangs
                for seq in list(self._active):
                    self._fail(seq, exc if isinstance(exc, Exception) else EngineError(repr(exc)))
            self._flush()

    def _start(self, job: Job) -> None:
        seq = _Sequence(job, -1, [])
        if job.max_tokens > 0:
            seq.chain = self._sampler_chain(job)
            if job.grammar:
                from candor.engine.grammar_sampling import ConstrainedSampler

                try:
                    seq.constrained = ConstrainedSampler(self._lib, self._vocab, self._n_vocab, seq.chain, job.grammar)
                except BaseException:
                    self._lib.llama_sampler_free(seq.chain)
                    raise
            seq.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            seq.matcher = StopMatcher(job.stop_sequences, job.end_sequences)
        # at least the last prompt token is evaluated, so its logits are fresh
        limit = 0 if job.solo else len(job.tokens) - 1

        slot = self._place(job, limit)
        reuse = min(common_prefix(self._slot_kv[slot], job.tokens), limit)
        if not self._lib.llama_memory_seq_rm(self._memory, slot, reuse, -1):
            reuse = 0  # this cache cannot drop a suffix: start the slot afresh
            self._lib.llama_memory_seq_rm(self._memory, slot, 0, -1)
        del self._slot_kv[slot][reuse:]
        seq.slot, seq.kv = slot, self._slot_kv[slot]
        self._slot_free[slot] = False
        self.last_reused_tokens = reuse
        self.last_slot = slot
        self._active.append(seq)

    def _place(self, job: Job, limit: int) -> int:
        """Choose the free slot for `job`, copying a cached prefix into it when that pays.

        Cache first: a slot whose cache this prompt continues (a follow-up turn: it saves more
        prompt tokens than it throws cached ones away); then one already holding most of the
        prompt (the same system prompt and instructions, another request like it); then an empty
        slot; then the least recently used, so a new conversation does not evict a recent one for
        the sake of a few shared tokens.

        But contiguity before cache: llama.cpp computes each run of consecutive slot numbers in
        a batch as its own pass over the weights, so eight sequences spread over slots 0, 2, 4,
        ... cost eight passes a step where slots 0-7 cost one. A batched job therefore goes to a
        free slot that adds no run (beside the running ones, best in a gap between two runs); if
        the longest cached prefix of the prompt (in any slot, a running one too: requests that share
        a system prompt) holds at least MOVE_MIN_TOKENS more of it than that slot, that KV stream
        is copied into the slot first (a memory copy, far cheaper than prefilling)."""
        def cache_rank(slot: int) -> tuple[int, int, bool, int]:
            cached = self._slot_kv[slot]
            reuse = min(common_prefix(cached, job.tokens), limit)
            continues = max(reuse - (len(cached) - reuse), 0)
            return continues, reuse if 2 * reuse >= len(job.tokens) else 0, not self._worth(slot), -self._slot_used[slot]

        def shared(slot: int) -> int:
            return min(common_prefix(self._slot_kv[slot], job.tokens), limit)

        free = [s for s in range(self.slots) if self._slot_free[s]]
        best = max(free, key=cache_rank)
        batched = {seq.slot for seq in self._active if not seq.job.solo}
        if job.solo or not batched:
            return best

        def new_runs(slot: int) -> int:  # -1 joins two runs, 0 extends one, 1 starts one
            return 1 - ((slot - 1) in batched) - ((slot + 1) in batched)

        fewest = min(new_runs(s) for s in free)
        target = best if new_runs(best) == fewest else max((s for s in free if new_runs(s) == fewest),
                                                           key=cache_rank)
        # The longest cached prefix anywhere, a running slot's included (requests sharing a system
        # prompt: the running ones hold it too).
        donor = max((s for s in range(self.slots) if s != target), key=shared)
        copy = shared(donor) - shared(target) >= MOVE_MIN_TOKENS
        self._keep(target, shared(target), avoid=donor if copy else None)
        if copy:
            self._copy_slot(donor, target)
        return target

    def _keep(self, slot: int, kept: int, avoid: int | None = None) -> None:
        """Before free `slot` is overwritten beyond its first `kept` tokens for contiguity's sake
        (`_place`, `_compact`), copy what it caches (someone's conversation, awaiting a follow-up)
        to the free slot least worth keeping: one that is empty or holds what other slots hold too
        (`_worth`), else the least recently used, if that is older. Without this, a slot beside the
        running ones was evicted however recent its conversation, while the cache of a slot far
        from them stayed idle."""
        cached = self._slot_kv[slot]
        if len(cached) - kept < MOVE_MIN_TOKENS or not self._worth(slot):
            return  # little beyond what the new job keeps, or another slot holds nearly all of it too
        spare = [s for s in range(self.slots) if self._slot_free[s] and s not in (slot, avoid)]
        if not spare:
            return
        dest = min(spare, key=lambda s: (self._worth(s), self._slot_used[s]))
        if self._worth(dest) and self._slot_used[dest] >= self._slot_used[slot]:
            return  # everything else free is as recent: `slot` is the one to lose
        self._copy_slot(slot, dest)
        self._slot_used[dest] = self._slot_used[slot]
        self.slot_spills += 1

    def _compact(self) -> None:
        """Close the gaps that sequences ending early leave between running ones.

        Each run of consecutive slots in a batch costs a pass over the weights (see `_place`), so
        when the sequence in slot 1 of slots 0-3 ends, the other three cost two passes a step until
        a new request happens to fill slot 1. Moving the edge sequences of the smallest run beside
        another run (a copy of their KV stream, 10-20 ms once) saves that pass (about 8 ms) on every
        step that follows; a run is moved only while one of its sequences still has at least
        MOVE_MIN_TOKENS tokens to go (prompt left to prefill, plus tokens it may still generate),
        and only once a gap has stood for GAP_STEPS steps without a new request filling it."""
        def batched_runs() -> list[list[int]]:
            return _runs(sorted(seq.slot for seq in self._active if not seq.job.solo))

        runs = batched_runs()
        self._gap_steps = self._gap_steps + 1 if len(runs) > 1 else 0
        if self._gap_steps <= GAP_STEPS:
            return
        while len(runs) > 1:
            small = min(runs, key=len)
            by_slot = {seq.slot: seq for seq in self._active}
            if max(self._tokens_to_go(by_slot[s]) for s in small) < MOVE_MIN_TOKENS:
                return
            others = {s for run in runs if run is not small for s in run}
            targets = [s for s in range(self.slots) if self._slot_free[s] and (s - 1 in others or s + 1 in others)]
            if not targets:
                return  # the slots beside the other runs are a solo job's
            # the most runs joined first, then the least worth keeping (empty or duplicated), then the least recent
            target = max(targets, key=lambda s: ((s - 1 in others) + (s + 1 in others), not self._worth(s),
                                                 -self._slot_used[s]))
            self._move(by_slot[small[0]], target)
            runs = batched_runs()

    @staticmethod
    def _tokens_to_go(seq: _Sequence) -> int:
        """Prompt tokens still to prefill (the KV cache holds the prompt, then the answer so far) plus
        answer tokens it may still generate."""
        return max(len(seq.job.tokens) - len(seq.kv), 0) + seq.job.max_tokens - seq.output_tokens

    def _move(self, seq: _Sequence, target: int) -> None:
        """Carry a running sequence to a free slot: its KV stream copied there, its old slot freed
        (keeping a copy of the tokens so far as a cached prefix)."""
        source = seq.slot
        self._keep(target, 0, avoid=source)
        self._copy_slot(source, target)
        # the sequence's own list goes on growing in its new slot; the copy stays with the old one
        self._slot_kv[target], self._slot_kv[source] = seq.kv, self._slot_kv[target]
        self._slot_free[target], self._slot_free[source] = False, True
        self._slot_used[source] = self._steps
        seq.slot = target
        self.slot_moves += 1

    def _worth(self, slot: int) -> bool:
        """Whether a slot's cache is worth keeping: it holds at least MOVE_MIN_TOKENS tokens that no
        other slot's cache also holds at the same positions. The copy a follow-up leaves in its old
        slot is not (the new slot has it all but the last few tokens, which re-tokenising the
        answer's text changed), nor is an empty slot; a conversation awaiting its next turn is."""
        cached = self._slot_kv[slot]
        if len(cached) < MOVE_MIN_TOKENS:
            return False
        shared = max((common_prefix(cached, self._slot_kv[s]) for s in range(self.slots) if s != slot), default=0)
        return len(cached) - shared >= MOVE_MIN_TOKENS

    def _copy_slot(self, source: int, target: int) -> None:
        """Make `target`'s KV cache a copy of `source`'s (llama.cpp copies the whole stream
        buffer at the next decode)."""
        self._lib.llama_memory_seq_rm(self._memory, target, 0, -1)
        self._lib.llama_memory_seq_cp(self._memory, source, target, -1, -1)
        self._slot_kv[target] = list(self._slot_kv[source])
        self.slot_copies += 1

    def _sampler_chain(self, job: Job):
        lib, sampling = self._lib, job.sampling
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        # A grammar's refused tokens would enter the loop guard's history (ConstrainedSampler samples
        # the chain first), and a format's structure repeats by design: constrained answers go without.
        if not job.grammar:
            add_repetition_guard(lib, chain, self._vocab, self._n_vocab, self.repetition, self._dry_breakers)
            if sampling.penalised:  # the request's own (OpenAI's), over its whole answer (a ring of that size)
                lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_penalties(
                    self._n_vocab, job.max_tokens, 1.0, sampling.frequency_penalty, sampling.presence_penalty))
        if sampling.temperature <= 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
            return chain
        if sampling.top_k:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(sampling.top_k))
        if sampling.top_p is not None and sampling.top_p < 1.0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(sampling.top_p, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(sampling.temperature))
        seed = sampling.seed if sampling.seed is not None else random.getrandbits(31)
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed))
        return chain

    def _step(self) -> None:
        for seq in list(self._active):
            if seq.job.cancel.is_set():
                if seq.job.max_tokens == 0:
                    self._release(seq)
                else:
                    self._finish(seq, "end_turn")
        batched = [s for s in self._active if not s.job.solo]
        if batched:
            self._decode(batched, prefill_limit=PREFILL_CHUNK if any(not s.prefilling for s in batched)
                         else self.n_batch)
        for seq in [s for s in self._active if s.job.solo]:
            self.solo_steps += 1
            self._decode([seq], prefill_limit=self.n_batch)
        self._steps += 1

    def _decode(self, group: list[_Sequence], prefill_limit: int) -> None:
        """One llama_decode over `group`: each decoding sequence's pending token, then prompt
        chunks in arrival order within `prefill_limit` tokens; then sample where logits came."""
        lib, batch = self._lib, self._batch
        group = sorted(group, key=lambda seq: seq.slot)  # llama.cpp groups consecutive ids in order
        n = 0
        added: list[tuple[_Sequence, int]] = []  # (sequence, tokens it added to its KV)

        def put(seq: _Sequence, token: int, pos: int, want: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = seq.slot
            batch.logits[n] = want
            if want:
                seq.index = n
            n += 1

        for seq in group:
            seq.index = -1
            if seq.pending is not None:
                put(seq, seq.pending, len(seq.kv), True)
                added.append((seq, 1))
        budget = min(self.n_batch - n, prefill_limit)
        for seq in group:
            if budget <= 0:
                break
            if seq.pending is None and seq.prefilling:
                start = len(seq.kv)
                take = min(len(seq.job.tokens) - start, budget)
                last = len(seq.job.tokens) - 1
                for pos in range(start, start + take):
                    put(seq, seq.job.tokens[pos], pos, pos == last)
                added.append((seq, take))
                budget -= take
        if n == 0:
            return
        batch.n_tokens = n
        started = time.perf_counter()
        status = lib.llama_decode(self._ctx, batch)
        self.stats.add(n, time.perf_counter() - started, slot_runs(seq.slot for seq, _ in added))
        if status != 0:
            raise EngineError(f"{self.name}: llama_decode failed with status {status} ({n} tokens, "
                              f"{len(group)} sequences)")
        for seq, count in added:
            if seq.pending is not None:
                seq.kv.append(seq.pending)
                seq.pending = None
            else:
                seq.kv.extend(seq.job.tokens[len(seq.kv):len(seq.kv) + count])
        for seq in group:
            if seq.index >= 0:
                self._sample(seq)

    def _sample(self, seq: _Sequence) -> None:
        lib, job = self._lib, seq.job
        if job.max_tokens == 0:
            self._post(job, self._log_softmax(seq.index))
            self._release(seq)
            return
        margin = self._top_two_gap(seq.index) if job.trace is not None else 0.0
        if seq.constrained is not None:
            token = seq.constrained.sample(self._ctx, seq.index)
        else:
            token = lib.llama_sampler_sample(seq.chain, self._ctx, seq.index)
        if job.trace is not None:
            job.trace.append((token, margin))
        seq.output_tokens += 1
        if lib.llama_vocab_is_eog(self._vocab, token):
            self._finish(seq, "end_turn")
            return
        assert seq.matcher is not None and seq.decoder is not None
        text = seq.matcher.feed(seq.decoder.decode(self._piece(token)))
        if text:
            self._post(job, TextDelta(text))
        if seq.matcher.hit is not None or job.cancel.is_set():
            self._finish(seq, "end_turn")
        elif seq.output_tokens >= job.max_tokens:
            self._finish(seq, "max_tokens")
        else:
            seq.pending = token

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    def _top_two_gap(self, index: int) -> float:
        import numpy as np

        pointer = self._lib.llama_get_logits_ith(self._ctx, index)
        best = np.partition(np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)), -2)[-2:]
        return float(best[1] - best[0])

    def _log_softmax(self, index: int):
        import numpy as np

        pointer = self._lib.llama_get_logits_ith(self._ctx, index)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).astype(np.float64)
        top = logits.max()
        return logits - (top + np.log(np.exp(logits - top).sum()))

    def _finish(self, seq: _Sequence, reason: str) -> None:
        assert seq.matcher is not None and seq.decoder is not None
        tail = seq.matcher.feed(seq.decoder.decode(b"", final=True)) + seq.matcher.flush()
        if tail:
            self._post(seq.job, TextDelta(tail))
        usage = Usage(input_tokens=len(seq.job.tokens), output_tokens=seq.output_tokens)
        hit = seq.matcher.hit
        if hit is not None and not hit.is_end_of_turn:
            self._post(seq.job, Finish("stop_sequence", usage, stop_sequence=hit.sequence))
        else:
            self._post(seq.job, Finish(reason, usage))  # type: ignore[arg-type]
        self._release(seq)

    def _fail(self, seq: _Sequence, exc: BaseException) -> None:
        self._post(seq.job, exc)
        self._lib.llama_memory_seq_rm(self._memory, seq.slot, 0, -1)
        seq.kv.clear()
        self._release(seq)

    def _release(self, seq: _Sequence) -> None:
        if seq.constrained is not None:
            self.last_full_grammar_passes = seq.constrained.full_passes
            seq.constrained.close()
        if seq.chain is not None:
            self._lib.llama_sampler_free(seq.chain)
        self._active.remove(seq)
        self._slot_free[seq.slot] = True
        self._slot_used[seq.slot] = self._steps
        self._post_ended(seq.job)

    def _post(self, job: Job, item: Any) -> None:
        self._outbox.append((job, item))

    def _post_ended(self, job: Job) -> None:
        if job.ended is not None:
            self._outbox.append((job, _ENDED))

    def _flush(self) -> None:
        """Hand this step's events to their event loops: one wake-up per loop, not per token."""
        if not self._outbox:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, Any]]] = {}
        for job, item in self._outbox:
            by_loop.setdefault(job.loop, []).append((job, item))
        self._outbox = []
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_dispatch, items)
            except RuntimeError:  # that loop has closed; nobody is listening
                pass


_ENDED = object()


def _dispatch(items: list[tuple[Job, Any]]) -> None:
    for job, item in items:
        if item is _ENDED:
            assert job.ended is not None
            job.ended()
        else:
            job.deliver(item)


def slot_runs(slots) -> int:
    """How many runs of consecutive numbers the slots form (each is one pass in llama.cpp)."""
    return len(_runs(sorted(set(slots))))


def _runs(ordered: list[int]) -> list[list[int]]:
    """Sorted distinct numbers split into runs of consecutive ones."""
    runs: list[list[int]] = []
    for slot in ordered:
        if runs and runs[-1][-1] == slot - 1:
            runs[-1].append(slot)
        else:
            runs.append([slot])
    return runs


def common_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    """How many leading tokens the two sequences share. Slices of growing length are compared in
    C, then the first unequal one is halved: placement compares a prompt with every slot's cache,
    thousands of tokens each, at every request."""
    a = cached if isinstance(cached, list) else list(cached)
    b = tokens if isinstance(tokens, list) else list(tokens)
    n = min(len(a), len(b))
    lo, step = 0, 16  # invariant: the first lo tokens match
    while True:
        hi = min(lo + step, n)
        if a[lo:hi] != b[lo:hi]:
            break  # the first hi do not
        if hi == n:
            return n
        lo, step = hi, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo
