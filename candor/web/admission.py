"""The chat page's side of admission: the access checks `admit_generation` runs for a signed-in
user's answer, and the usage record when it ends (the API's equivalent is candor.api.guard)."""

from __future__ import annotations

import asyncio

from candor.accounts.access import AccessControl, Admission
from candor.accounts.keys import KeyContext
from candor.registry import ModelEntry, Registry


class PageGate:
    """Rate and spend limits of one user's page answer (candor.serving.generation.Gate)."""

    def __init__(self, access: AccessControl, caller: KeyContext, endpoint: str = "/web/chat"):
        self.access, self.caller, self.endpoint = access, caller, endpoint
        self.admission: Admission | None = None
        self.input_tokens = 0

    def allow_model(self, entry: ModelEntry) -> None:
        AccessControl.check_model(self.caller, entry)

    async def admit(self, entry: ModelEntry, input_tokens: int) -> None:
        self.input_tokens = input_tokens
        self.admission = await asyncio.to_thread(self.access.admit, self.caller, entry, input_tokens)

    def charge_input(self, input_tokens: int) -> None:
        self.input_tokens = input_tokens

    def finish(self, registry: Registry, model: str, *, status: int, input_tokens: int, output_tokens: int,
               ttft_s: float | None, latency_s: float) -> None:
        """The usage record (and the output-token charge) of one page answer, whatever its end
        (endpoint "/web/chat"; each model call of a summary is one too, "/web/summarize")."""
        entry = registry.get(model) if model in registry else None
        self.access.finish(self.caller, self.admission, entry, model_name=model, endpoint=self.endpoint,
                           input_tokens=input_tokens, output_tokens=output_tokens, ttft_s=ttft_s,
                           latency_s=latency_s, status=status, end_user=None)
