"""Stop-sequence matching over streamed text.

Text that might be the start of a stop sequence is held back until it is clear either way, so a
stop sequence never leaks into the output and nothing else is withheld for longer than needed.
Shared by every engine so the embedded and remote engines stop the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StopHit:
    sequence: str
    is_end_of_turn: bool


class StopMatcher:
    def __init__(self, stop_sequences: tuple[str, ...] = (), end_sequences: tuple[str, ...] = ()):
        self._kinds: dict[str, bool] = {s: True for s in end_sequences if s}
        # The caller's own stop sequences win when both lists name the same string.
        self._kinds.update({s: False for s in stop_sequences if s})
        self._pending = ""
        self.hit: StopHit | None = None

    def feed(self, text: str) -> str:
        """Add streamed text; return the part that is now safe to emit."""
        if self.hit is not None:
            return ""
        self._pending += text
        earliest: tuple[int, str] | None = None
        for seq in self._kinds:
            at = self._pending.find(seq)
            if at != -1 and (earliest is None or at < earliest[0]):
                earliest = (at, seq)
        if earliest is not None:
            at, seq = earliest
            self.hit = StopHit(seq, self._kinds[seq])
            out, self._pending = self._pending[:at], ""
            return out
        keep = self._longest_partial_suffix()
        cut = len(self._pending) - keep
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return out

    def flush(self) -> str:
        """At the end of generation, release whatever was held back."""
        out, self._pending = self._pending, ""
        return out if self.hit is None else ""

    def _longest_partial_suffix(self) -> int:
        best = 0
        for seq in self._kinds:
            for n in range(min(len(seq) - 1, len(self._pending)), best, -1):
                if self._pending.endswith(seq[:n]):
                    best = n
                    break
        return best
