"""Personal data in prompts and answers: detection and redaction.

What is found, and how:
- e-mail addresses: a pattern for the usual `local@domain.tld` form;
- phone numbers: Google's libphonenumber (the `phonenumbers` package), numbers valid for their
  country; numbers without a `+country` prefix are read as CANDOR_PII_REGION's (default US);
- payment card numbers: 13 to 19 digits (spaces or dashes allowed) that pass the Luhn check and
  start like a card network's numbers (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay);
- national id numbers: US Social Security numbers (AAA-GG-SSSS, the ranges never issued left out)
  and UK National Insurance numbers;
- street addresses: a house number, one to four words and a street type (Street, St, Avenue, Road,
  Lane, Drive, Boulevard, Court, Way, Place, ...), optionally a unit ("Apt 4B"). Pattern-based:
  addresses without a street type ("10 Downing"), non-English ones and PO boxes are missed, and a
  sentence such as "3 long roads" is not matched only because "roads" is plural.

Redaction replaces each finding with its kind in brackets ("[EMAIL]"). CANDOR_PII_REDACT lists
where to redact: `answers` (the model's answers, as they stream) and/or `stored` (what the chat page
stores, by `candor moderation redact-stored`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from candor.config import env

KINDS = ("email", "phone", "card", "national_id", "address")
LABEL = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "national_id": "[NATIONAL_ID]",
         "address": "[ADDRESS]"}

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_CARD_PREFIX = re.compile(r"^(4|5[1-5]|2[2-7]|3[47]|6011|65|64[4-9]|35|30[0-5]|36|38|62)")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ]?)(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_NINO = re.compile(r"\b(?![DFIQUV])[A-CEGHJ-PR-TW-Z](?![DFIQUVO])[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_STREET_TYPES = (r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|"
                 r"Ter|Close|Crescent|Cres|Parkway|Pkwy|Highway|Hwy|Square|Sq|Circle|Cir|Trail|Row|Gardens|Grove")
_ADDRESS = re.compile(
    r"\b\d{1,6}[A-Za-z]?(?:-\d{1,4})?\s+(?:[A-Z][A-Za-z'.-]*\s+|[NSEW]\.?\s+|\d{1,3}(?:st|nd|rd|th)\s+){1,4}"
    r"(?:" + _STREET_TYPES + r")\b\.?(?:\s+(?:[NS][EW]|[NSEW])\b)?(?:,?\s+(?:Apt|Apartment|Unit|Suite|Ste|Flat|#)\.?\s*[A-Za-z0-9-]+)?")


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    text: str


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def region() -> str:
    return (env("CANDOR_PII_REGION") or "US").upper()


def find(text: str, kinds: tuple[str, ...] = KINDS) -> list[Finding]:
    """Every finding of `kinds` in `text`, in order, without overlaps (the earlier, longer one wins)."""
    found: list[Finding] = []
    if "email" in kinds:
        found += [Finding("email", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]
    if "card" in kinds:
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_ok(digits):
                found.append(Finding("card", m.start(), m.end(), m.group()))
    if "national_id" in kinds:
        found += [Finding("national_id", m.start(), m.end(), m.group()) for m in _SSN.finditer(text)]
        found += [Finding("national_id", m.start(), m.end(), m.group()) for m in _NINO.finditer(text)]
    if "phone" in kinds:
        import phonenumbers

        for pm in phonenumbers.PhoneNumberMatcher(text, region(), leniency=phonenumbers.Leniency.VALID):
            found.append(Finding("phone", pm.start, pm.end, pm.raw_string))
    if "address" in kinds:
        found += [Finding("address", m.start(), m.end(), m.group()) for m in _ADDRESS.finditer(text)]
    found.sort(key=lambda f: (f.start, -(f.end - f.start)))
    out: list[Finding] = []
    for f in found:
        if out and f.start < out[-1].end:
            continue
        out.append(f)
    return out


def redact(text: str, kinds: tuple[str, ...] = KINDS) -> str:
    parts, at = [], 0
    for f in find(text, kinds):
        parts += [text[at:f.start], LABEL[f.kind]]
        at = f.end
    return "".join(parts) + text[at:]


def redact_targets(values: dict[str, str] | None = None) -> set[str]:
    """Where CANDOR_PII_REDACT asks for redaction (`values` stands in for the environment in
    tests): a subset of {"answers", "stored"}."""
    from candor.errors import InvalidRequestError

    raw = (values.get("CANDOR_PII_REDACT", "") if values is not None else env("CANDOR_PII_REDACT")) or ""
    targets = {t.strip().lower() for t in raw.split(",") if t.strip()}
    unknown = targets - {"answers", "stored"}
    if unknown:
        raise InvalidRequestError(f"unknown targets {sorted(unknown)}; known: answers, stored", field="CANDOR_PII_REDACT")
    return targets


HOLD_CHARS = 80  # text held back while streaming, so a number split across deltas is still caught


async def redact_stream(events: AsyncGenerator, kinds: tuple[str, ...] = KINDS) -> AsyncGenerator:
    """Engine events with personal data redacted from the text. The last HOLD_CHARS of text are
    held back (cut at a space) until more arrives or the answer ends."""
    from candor.engine.base import TextDelta

    pending = ""
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                pending += event.text
                if len(pending) <= HOLD_CHARS:
                    continue
                findings = find(pending, kinds)
                cut = pending.rfind(" ", 0, len(pending) - HOLD_CHARS)
                while cut > 0 and any(f.start < cut < f.end for f in findings):
                    cut = pending.rfind(" ", 0, cut)  # never cut through a finding
                if cut <= 0:
                    continue
                head, pending = pending[:cut], pending[cut:]
                yield TextDelta(redact(head, kinds))
            else:
                if pending:
                    yield TextDelta(redact(pending, kinds))
                    pending = ""
                yield event
    finally:
        await events.aclose()
