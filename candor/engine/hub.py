"""Loaded engines by registry name: each model is loaded once, on first use, and shared.

This is the only place that turns a registry entry into an engine, so the CLI, the API server,
evals and data generation all load models the same way.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, fields

from candor.config import settings
from candor.engine.base import Engine, RepetitionGuard
from candor.engine.weights import Progress, ensure_weights
from candor.registry import ModelEntry, Registry


@dataclass
class LoadedModel:
    entry: ModelEntry
    engine: Engine
    chat_template: str | None  # None: the Human/Assistant format
    special_tokens: dict[str, str]  # candor.chat.model_format.chat_format renders with these

    @property
    def name(self) -> str:
        return self.entry.name


def is_anthropic(entry: ModelEntry) -> bool:
    """A remote entry that speaks Anthropic's Messages API (`remote_protocol = "anthropic"`)."""
    return entry.engine == "remote" and entry.extra.get("remote_protocol") == "anthropic"


def repetition_guard(entry: ModelEntry) -> RepetitionGuard:
    """The loop guard an entry asks for (off unless it sets dry_multiplier or repeat_penalty)."""
    return RepetitionGuard(**{f.name: getattr(entry, f.name) for f in fields(RepetitionGuard)})


def build_engine(entry: ModelEntry, progress: Progress | None = None) -> LoadedModel:
    """Create the engine an entry describes (blocking: loads weights)."""
    if entry.engine == "remote" and is_anthropic(entry):
        from candor.engine.anthropic import AnthropicEngine

        key = os.environ.get(entry.api_key_env, "") if entry.api_key_env else ""
        messages_client = AnthropicEngine(entry.name, entry.resolved(entry.base_url),
                                          entry.resolved(entry.remote_model) or entry.name, key, entry.context_window)
        return LoadedModel(entry, messages_client, None, {})  # the engine sends messages, not a prompt
    if entry.engine == "remote":
        from candor.engine.remote import RemoteConfig, RemoteEngine

        key = os.environ.get(entry.api_key_env, "") if entry.api_key_env else ""
        remote = RemoteEngine(entry.name, RemoteConfig(
            base_url=entry.resolved(entry.base_url), model=entry.resolved(entry.remote_model) or entry.name,
            api_key=key, api=entry.remote_api, context_window=entry.context_window))
        return LoadedModel(entry, remote, None, {})

    from candor.engine.llama import LlamaConfig, LlamaEngine

    path = ensure_weights(entry, progress)
    if progress:
        progress("loading", 0, 1)
    wants_template = entry.prompt_format in ("template", "auto")
    limits = settings()
    engine = LlamaEngine(entry.name, LlamaConfig(
        model_path=path, context_window=entry.context_window, adapter_path=entry.adapter_path(),
        parse_special=wants_template, max_waiting=limits.max_waiting, slots=limits.slots,
        slot_context=limits.slot_context, repetition=repetition_guard(entry)))
    template = engine.chat_template() if wants_template else None
    if entry.prompt_format == "template" and not template:
        from candor.errors import WeightsError

        raise WeightsError(f"{entry.name} asks for prompt_format = 'template' but {path} has no chat template")
    if progress:
        progress("loading", 1, 1)
    return LoadedModel(entry, engine, template, engine.special_tokens())


class EngineHub:
    def __init__(self, registry: Registry, progress: Progress | None = None):
        self.registry = registry
        self.progress = progress
        self._loaded: dict[str, LoadedModel] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def loaded(self) -> list[LoadedModel]:
        return list(self._loaded.values())

    async def get(self, name: str) -> LoadedModel:
        entry = self.registry.get(name)  # unknown names fail here, listing the known ones
        if name in self._loaded:
            return self._loaded[name]
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name not in self._loaded:
                self._loaded[name] = await asyncio.to_thread(build_engine, entry, self.progress)
        return self._loaded[name]

    def preload(self, name: str) -> LoadedModel:
        """Load a model now, from synchronous code (server start-up, before requests arrive)."""
        if name not in self._loaded:
            self._loaded[name] = build_engine(self.registry.get(name), self.progress)
        return self._loaded[name]

    async def close(self) -> None:
        for model in self._loaded.values():
            await model.engine.close()
        self._loaded.clear()
