"""JSON building blocks for grammars: strings, bounded numbers and depth-bounded free values.

Whitespace between tokens is at most one space, or one newline and up to 24 spaces of indent, so
a small model cannot spin forever on layout; free-form values are bounded (`Limits`: nesting,
entries per container, characters per string) for the same reason. Numbers have at most 16 integer digits, 16 fraction digits and a two-digit
exponent, so every number parses to a finite float. Strings never hold a lone UTF-16 surrogate
escape (Python would accept it, most other parsers would not).
"""

from __future__ import annotations

from candor.formats.gbnf import Grammar, alt, lit
from candor.formats.limits import Limits

MAX_DIGITS = 16
WS = "json-ws"
SP = "json-sp"

_PRIMITIVES = {
    WS: '([ ] | "\\n" [ ]{0,24})?',
    SP: "[ ]?",
    "json-char": ('[^"\\\\\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" '
                  "([0-9a-cA-CeEfF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}))"),
    "json-int": '"-"? ("0" | [1-9] [0-9]{0,15})',
    "json-number": 'json-int ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?',
    "json-bool": '"true" | "false"',
    "json-null": '"null"',
}


def primitives(g: Grammar, limits: Limits) -> None:
    """Define the shared scalar rules (idempotent); json-string holds up to max_string characters."""
    for name, body in _PRIMITIVES.items():
        g.shared(name, body)
    g.shared("json-string", string_of_length(0, limits.max_string))


def string_of_length(min_len: int, max_len: int) -> str:
    return f'"\\"" json-char{{{min_len},{max_len}}} "\\""'


def free_value(g: Grammar, depth: int, limits: Limits) -> str:
    """Any JSON value nested at most `limits.max_depth - depth + 1` levels of containers deep."""
    primitives(g, limits)
    name = f"json-value-{depth}"
    if name in g.rules:
        return name
    scalars = ["json-string", "json-number", "json-bool", "json-null"]
    if depth > limits.max_depth:
        return g.shared(name, " | ".join(scalars))
    g.rules[name] = ""  # reserve, then fill
    g.rules[name] = " | ".join([free_object(g, depth, limits), free_array(g, depth, limits)] + scalars)
    return name


def free_object(g: Grammar, depth: int, limits: Limits) -> str:
    name = f"json-object-{depth}"
    if name not in g.rules:
        primitives(g, limits)
        g.rules[name] = ""
        inner = free_value(g, depth + 1, limits)
        g.rules[name] = mapping(f'json-string ":" {SP} {inner}', limits.max_items)
    return name


def free_array(g: Grammar, depth: int, limits: Limits) -> str:
    name = f"json-array-{depth}"
    if name not in g.rules:
        g.rules[name] = ""
        g.rules[name] = sequence(free_value(g, depth + 1, limits), 0, limits.max_items)
    return name


def mapping(pair: str, max_items: int) -> str:
    """`{ pair, pair, ... }` with up to max_items pairs."""
    return f'"{{" {WS} ({pair} ("," {WS} {pair}){{0,{max_items - 1}}} {WS})? "}}"'


def sequence(item: str, min_items: int, max_items: int | None) -> str:
    """`[ item, item, ... ]` with a count in [min_items, max_items]."""
    if max_items == 0:
        return f'"[" {WS} "]"'
    more_max = "" if max_items is None else str(max_items - 1)
    if min_items == 0:
        more = f'("," {WS} {item})' + ("*" if max_items is None else f"{{0,{more_max}}}")
        return f'"[" {WS} ({item} {more} {WS})? "]"'
    more = f'("," {WS} {item}){{{min_items - 1},{more_max}}}'
    return f'"[" {WS} {item} {more} {WS} "]"'


# -- bounded integers and numbers ---------------------------------------------------------------

def _digit(lo: str, hi: str) -> str:
    return lit(lo) if lo == hi else f"[{lo}-{hi}]"


def _same_length(x: str, y: str) -> str:
    """Digit strings of len(x) == len(y) between x and y inclusive (x <= y)."""
    i = 0
    while i < len(x) and x[i] == y[i]:
        i += 1
    prefix, x, y = x[:i], x[i:], y[i:]
    if not x:
        return lit(prefix)
    n = len(x) - 1
    if n == 0:
        body = _digit(x, y)
    else:
        low_full, high_full = x[1:] == "0" * n, y[1:] == "9" * n
        start = int(x[0]) + (0 if low_full else 1)
        end = int(y[0]) - (0 if high_full else 1)
        parts = []
        if not low_full:
            parts.append(f"{lit(x[0])} {_same_length(x[1:], '9' * n)}")
        if start <= end:
            parts.append(f"{_digit(str(start), str(end))} [0-9]{{{n}}}")
        if not high_full:
            parts.append(f"{lit(y[0])} {_same_length('0' * n, y[1:])}")
        body = alt(parts)
    return f"{lit(prefix)} {body}" if prefix else body


def magnitude_range(lo: int, hi: int | None) -> str | None:
    """Unsigned decimal integers (no leading zeros) in [lo, hi]; hi None means up to 16 digits.
    None when the range is empty."""
    top = 10 ** MAX_DIGITS - 1 if hi is None else min(hi, 10 ** MAX_DIGITS - 1)
    if lo > top:
        return None
    parts = []
    for length in range(len(str(lo)), len(str(top)) + 1):
        a = max(lo, 10 ** (length - 1) if length > 1 else 0)
        b = min(top, 10 ** length - 1)
        if hi is None and a == 10 ** (length - 1) and length > 1:
            parts.append(f"[1-9] [0-9]{{{length - 1},{MAX_DIGITS - 1}}}")  # every longer length too
            break
        if a <= b:
            parts.append(_same_length(str(a), str(b)))
    return alt(parts)


def integer_range(lo: int | None, hi: int | None) -> str | None:
    """Integers in [lo, hi] (either side may be open); None when empty."""
    parts = []
    if hi is None or hi >= 0:
        pos = magnitude_range(max(lo or 0, 0) if lo is not None else 0, hi)
        if pos:
            parts.append(pos)
    if lo is None or lo < 0:
        neg = magnitude_range(max(1, -hi) if hi is not None else 1, None if lo is None else -lo)
        if neg:
            parts.append(f'"-" {neg}' if "|" not in neg else f'"-" ({neg})')
    return alt(parts) if parts else None


_ANY_FRACTION = '("." [0-9]{1,16})?'
_ZERO_FRACTION = '("." "0"{1,16})?'
_NONZERO_FRACTION = '"." [0-9]{0,15} [1-9] [0-9]{0,15}'


def _magnitudes(lo: int, lo_incl: bool, hi: int | None, hi_incl: bool) -> list[str]:
    """Decimal magnitudes m (no sign, no exponent) with lo <(=) m <(=) hi, integer bounds."""
    parts = []
    inner = magnitude_range(lo + 1, None if hi is None else hi - 1)
    if inner:
        parts.append(f"({inner}) {_ANY_FRACTION}")
    at_lo = _digit_str(lo)
    if hi is None or lo < hi:
        parts.append(f"{at_lo} {_ANY_FRACTION if lo_incl else _NONZERO_FRACTION}")
        if hi is not None and hi_incl:
            parts.append(f"{_digit_str(hi)} {_ZERO_FRACTION}")
    elif lo == hi and lo_incl and hi_incl:
        parts.append(f"{at_lo} {_ZERO_FRACTION}")
    return parts


def _digit_str(n: int) -> str:
    return lit(str(n))


def number_range(lo: int | None, lo_incl: bool, hi: int | None, hi_incl: bool) -> str | None:
    """Decimal numbers (no exponent) between integer bounds; None when empty."""
    parts = []
    if hi is None or hi > 0 or (hi == 0 and hi_incl):
        if lo is None or lo < 0:
            parts += _magnitudes(0, True, hi, hi_incl)
        else:
            parts += _magnitudes(lo, lo_incl, hi, hi_incl)
    if lo is None or lo < 0:
        if hi is None or hi >= 0:
            neg = _magnitudes(0, False, None if lo is None else -lo, lo_incl)
        else:
            neg = _magnitudes(-hi, hi_incl, None if lo is None else -lo, lo_incl)
        parts += [f'"-" {p}' for p in neg]
    return alt(parts) if parts else None
