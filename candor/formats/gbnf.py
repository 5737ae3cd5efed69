"""Building GBNF grammars (llama.cpp's grammar format) from Python, safely.

llama.cpp crashes the process on a grammar that references an undefined rule, so grammars are
never written as free text: a `Grammar` collects rules by name, escapes every literal and
character class, and `render` refuses to emit a grammar that names a rule it does not define.
`avoid_words` builds the small tries that keep generated text from starting with (or being) one
of a few words, which a context-free grammar cannot say with a plain negation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME_OK = re.compile(r"[^a-zA-Z0-9-]+")
_REF = re.compile(r"(?<![\w\"\\\]-])([a-zA-Z][a-zA-Z0-9-]*)(?![\w-])")


def _escape_char(ch: str, in_class: bool) -> str:
    code = ord(ch)
    if ch.isascii() and ch.isalnum() or (ch == " " and not in_class):
        return ch
    if not in_class and (code >= 0x80 or ch in "!#$%&'()*+,-./:;<=>?@[]^_`{|}~"):
        return ch
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def lit(text: str) -> str:
    """A GBNF string literal for `text` (escaped; the empty string is `""`)."""
    return '"' + "".join(_escape_char(c, in_class=False) for c in text) + '"'


@dataclass(frozen=True)
class CharClass:
    """A set of characters: ranges, or everything except ranges when `negated`."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool = False

    @classmethod
    def of(cls, spec: str, negated: bool = False) -> CharClass:
        """From a compact spec: single characters and `a-z` style ranges (`-` first/last is literal)."""
        ranges, i = [], 0
        while i < len(spec):
            if i + 2 < len(spec) and spec[i + 1] == "-":
                ranges.append((ord(spec[i]), ord(spec[i + 2])))
                i += 3
            else:
                ranges.append((ord(spec[i]), ord(spec[i])))
                i += 1
        return cls(tuple(ranges), negated)

    def contains(self, ch: str) -> bool:
        inside = any(lo <= ord(ch) <= hi for lo, hi in self.ranges)
        return inside != self.negated

    def minus(self, chars: str) -> CharClass:
        """This class without `chars`."""
        if self.negated:
            return CharClass(self.ranges + tuple((ord(c), ord(c)) for c in chars), True)
        ranges = list(self.ranges)
        for c in chars:
            code, out = ord(c), []
            for lo, hi in ranges:
                if lo <= code <= hi:
                    out += [r for r in ((lo, code - 1), (code + 1, hi)) if r[0] <= r[1]]
                else:
                    out.append((lo, hi))
            ranges = out
        return CharClass(tuple(ranges))

    def gbnf(self) -> str:
        body = "".join(_escape_char(chr(lo), True) if lo == hi else
                       f"{_escape_char(chr(lo), True)}-{_escape_char(chr(hi), True)}" for lo, hi in self.ranges)
        return f"[{'^' if self.negated else ''}{body}]"


@dataclass
class Grammar:
    """Named rules; `root` is rendered first. Names are sanitised to GBNF's [a-zA-Z0-9-]."""

    rules: dict[str, str] = field(default_factory=dict)

    def name(self, hint: str) -> str:
        """A fresh rule name based on `hint`."""
        base = _NAME_OK.sub("-", hint).strip("-").lower() or "r"
        if not base[0].isalpha():
            base = "r-" + base
        candidate, n = base, 1
        while candidate in self.rules:
            n += 1
            candidate = f"{base}-{n}"
        self.rules[candidate] = ""  # reserved until defined
        return candidate

    def define(self, name: str, body: str) -> str:
        if self.rules.get(name):
            raise ValueError(f"grammar rule {name!r} defined twice")
        self.rules[name] = body
        return name

    def add(self, hint: str, body: str) -> str:
        """Define a rule under a fresh name; returns the name."""
        return self.define(self.name(hint), body)

    def shared(self, name: str, body: str) -> str:
        """Define `name` once (later calls with the same name reuse it)."""
        if name not in self.rules:
            self.rules[name] = body
        elif self.rules[name] != body:
            raise ValueError(f"grammar rule {name!r} defined twice with different bodies")
        return name

    def render(self, root_body: str) -> str:
        self.rules.pop("root", None)
        rules = {"root": root_body, **self.rules}
        missing = [n for n, b in rules.items() if not b]
        if missing:
            raise ValueError(f"grammar rules reserved but never defined: {missing}")
        for name, body in rules.items():
            for ref in _REF.findall(_strip_literals(body)):
                if ref not in rules:
                    raise ValueError(f"grammar rule {name!r} refers to undefined rule {ref!r}")
        return "\n".join(f"{name} ::= {body}" for name, body in rules.items()) + "\n"


def _strip_literals(body: str) -> str:
    """The body without its quoted literals and character classes, for finding rule references."""
    return re.sub(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|\{[0-9, ]*\}', " ", body)


def alt(options: list[str]) -> str:
    return "(" + " | ".join(options) + ")" if len(options) > 1 else options[0]


def avoid_words(g: Grammar, hint: str, words: list[str], *, first: CharClass, cont: CharClass,
                rest: str, after: str, after_word: str | None, extra_first: str | None = None,
                extra_cont: str | None = None) -> str:
    """A rule for text that begins like `first cont*` but is never one of `words`.

    The text walks a trie of `words`; a character that leaves the trie continues as `rest`.
    `after` follows a complete piece of text that is not a word. With `after_word` None the
    words are forbidden prefixes: nothing may follow them (they never appear). Otherwise a text
    equal to a word must go on with `after_word` (say, " and more words"), so the word alone is
    never the whole text. `extra_first`/`extra_cont` are other units (a code span) that may take
    the place of a character; they leave the trie too.
    """
    trie: dict[str, set[str]] = {}
    for w in words:
        for k in range(len(w)):
            trie.setdefault(w[:k], set()).add(w[k])
    names = {p: g.name(f"{hint}-{i}") for i, p in enumerate(sorted(trie, key=len))}

    def node_body(prefix: str) -> str:
        chars = first if not prefix else cont
        options = []
        children = sorted(c for c in trie.get(prefix, ()) if chars.contains(c))
        for c in children:
            child = prefix + c
            if child in trie:
                options.append(f"{lit(c)} {names[child]}")
            elif after_word is not None:  # a complete word, not the prefix of a longer one
                options.append(f"{lit(c)} ({cont.gbnf()} {rest} | {after_word})")
        options.append(f"{chars.minus(''.join(children)).gbnf()} {rest}")
        extra = extra_first if not prefix else extra_cont
        if extra:
            options.append(f"{extra} {rest}")
        if prefix:
            options.append(after_word if prefix in words and after_word is not None else after)
        return " | ".join(options)

    for prefix, name in names.items():
        g.define(name, node_body(prefix))
    return names[""]
