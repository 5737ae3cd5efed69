"""Prometheus metrics: requests by endpoint and status, tokens, time to first token, latency,
and per loaded model (read at scrape time) queue depth and, for the embedded engine, its batched
forward passes: calls, tokens and seconds, so tokens per pass and time per pass can be derived."""

from __future__ import annotations

import time

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from candor.api.context import context_of

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self, hub):
        self.registry = CollectorRegistry()
        self.requests = Counter("candor_requests_total", "HTTP requests", ["endpoint", "status"], registry=self.registry)
        self.tokens = Counter("candor_tokens_total", "Tokens processed", ["model", "direction"], registry=self.registry)
        self.ttft = Histogram("candor_time_to_first_token_seconds", "Time to first token", ["endpoint"],
                              buckets=BUCKETS, registry=self.registry)
        self.moderation_decisions = Counter(
            "candor_moderation_decisions_total", "Requests and answers the moderation classifier flagged, by action",
            ["stage", "action", "category"], registry=self.registry)
        self.latency = Histogram("candor_request_latency_seconds", "Request latency", ["endpoint"],
                                 buckets=BUCKETS, registry=self.registry)
        hub_ref = hub

        class QueueCollector:
            def collect(self):
                depth = GaugeMetricFamily("candor_queue_depth", "Requests waiting per model", labels=["model"])
                busy = GaugeMetricFamily("candor_model_busy", "1 while a model generates", labels=["model"])
                passes = {name: CounterMetricFamily(f"candor_engine_decode_{name}", text, labels=["model"])
                          for name, text in (("calls", "Batched forward passes (llama_decode calls)"),
                                             ("tokens", "Tokens evaluated in batched forward passes"),
                                             ("seconds", "Seconds spent in batched forward passes"),
                                             ("slot_runs", ("Runs of consecutive slots in batched forward passes "
                                                            "(llama.cpp computes each run as its own pass)")))}
                copies = CounterMetricFamily(
                    "candor_engine_kv_copies", "KV cache streams copied between slots: a cached prefix copied to a "
                    "new request's slot (prefix), a running sequence moved to close a gap (move), a cached "
                    "conversation saved before its slot was taken (spill)", labels=["model", "reason"])
                for model in hub_ref.loaded():
                    moves, spills = getattr(model.engine, "slot_moves", None), getattr(model.engine, "slot_spills", None)
                    if moves is not None and spills is not None:
                        copies.add_metric([model.name, "prefix"], model.engine.slot_copies - moves - spills)
                        copies.add_metric([model.name, "move"], moves)
                        copies.add_metric([model.name, "spill"], spills)
                    queue = getattr(model.engine, "queue", None)
                    if queue is not None:
                        depth.add_metric([model.name], queue.depth)
                        busy.add_metric([model.name], 1 if queue.busy else 0)
                    stats = getattr(model.engine, "decode_stats", None)
                    if stats is not None:
                        for name, family in passes.items():
                            family.add_metric([model.name], getattr(stats, name))
                yield depth
                yield busy
                yield from passes.values()
                yield copies

        self.registry.register(QueueCollector())

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def finished(self, request: Request, gen) -> None:
        """Called once a generation ends (also for streams, whose HTTP status came earlier)."""
        if getattr(gen, "_metered", False):
            return
        gen._metered = True
        endpoint = request.url.path
        if gen.ttft is not None:
            self.ttft.labels(endpoint).observe(gen.ttft)
        self.tokens.labels(gen.model.name, "input").inc(gen.input_tokens)
        if gen.finish is not None:
            self.tokens.labels(gen.model.name, "output").inc(gen.finish.usage.output_tokens)
        context_of(request).generation_seconds = time.perf_counter() - gen.started

    def moderation(self, event) -> None:
        """A recorder for candor.moderation.service.Moderator: counts each flagged decision."""
        d = event.decision
        self.moderation_decisions.labels(d.stage, d.action, d.category or "none").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
