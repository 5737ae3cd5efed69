"""Block-style YAML that `yaml.safe_load` always reads as a mapping or a list.

The subset: block mappings and sequences, two spaces of indent per level, one set of rules per
level up to `max_depth` (default 4) because indentation is not context-free either; a sequence of
mappings writes its first key after "- ". Scalars cannot change type or break the parse:
  * plain strings start with a letter, have no ':' or '#' and single spaces between words, and
    are never one of YAML 1.1's boolean/null words alone (yes, No, on, OFF, null…), so "Norway's
    NO" stays a string; words that need ':' or '#' go in double quotes (escapes: \\" \\\\ \\n \\t);
  * numbers are plain decimal (no octal-looking leading zeros, no 1_000, no sexagesimal 1:20);
  * true, false, null, [] and {} are written as such.
Keys are short plain words (letters, digits, '_' and '-', up to four words) so they stay strings
and under YAML's 1024-character limit for keys. No blank lines, comments, anchors, tags,
multi-line or flow collections (other than empty ones), and no document markers; the chat turn
labels Human and Assistant are not used as keys. Like the other formats, a mapping or sequence
holds at most `max_items` entries (default 16) and a scalar about `max_string` characters.
"""

from __future__ import annotations

from typing import Any

from candor.formats.gbnf import CharClass, Grammar, avoid_words
from candor.formats.limits import DEFAULT_LIMITS, Limits

# PyYAML's YAML 1.1 resolver reads these (and nothing else starting with a letter) as bool/null.
SPECIAL_WORDS = [w for base in ("yes", "no", "true", "false", "on", "off", "null")
                 for w in (base, base.capitalize(), base.upper())]
# The chat format's turn labels: as keys they would let an answer carry on as a made-up dialogue.
CHAT_LABELS = ["Human", "Assistant"]
LETTER = CharClass.of("A-Za-z\u00c0-\u024f")
WORD_CHAR = CharClass.of("\x00- :#\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff", negated=True)
QUOTED_CHAR = CharClass.of("\x00-\x1f\"\\\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff", negated=True)
KEY_FIRST = CharClass.of("A-Za-z_")
KEY_CHAR = CharClass.of("A-Za-z0-9_-")
NUMBER = '"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})?'
WORD_MAX = 40  # characters in one word of a plain scalar


def scalar_rules(g: Grammar, limits: Limits) -> str:
    words = max(2, limits.max_string // 8)  # words in a plain scalar, so it stays bounded too
    g.shared("yaml-wchar", WORD_CHAR.gbnf())
    g.shared("yaml-word", f"yaml-wchar{{1,{WORD_MAX}}}")
    g.shared("yaml-more", f'(" " yaml-word){{0,{words - 1}}}')
    g.shared("yaml-rest", f"yaml-wchar{{0,{WORD_MAX - 1}}} yaml-more")
    plain = avoid_words(g, "yaml-plain", SPECIAL_WORDS, first=LETTER, cont=WORD_CHAR, rest="yaml-rest",
                        after="yaml-more", after_word=f'(" " yaml-word){{1,{words - 1}}}')
    g.shared("yaml-kchar", KEY_CHAR.gbnf())
    g.shared("yaml-kmore", '(" " yaml-kchar{1,32}){0,3}')
    g.shared("yaml-krest", "yaml-kchar{0,31} yaml-kmore")
    key = avoid_words(g, "yaml-key", SPECIAL_WORDS + CHAT_LABELS, first=KEY_FIRST, cont=KEY_CHAR,
                      rest="yaml-krest", after="yaml-kmore", after_word='(" " yaml-kchar{1,32}){1,3}')
    g.shared("yaml-key", key)
    g.shared("yaml-qchar", f'{QUOTED_CHAR.gbnf()} | "\\\\" ["\\\\nt]')
    quoted = f'"\\"" yaml-qchar{{0,{limits.max_string}}} "\\""'
    return g.shared("yaml-scalar", f'{plain} | {quoted} | {NUMBER} | "true" | "false" | "null" | "[]" | "{{}}"')


def yaml_grammar(limits: Limits = DEFAULT_LIMITS) -> str:
    g = Grammar()
    scalar = scalar_rules(g, limits)
    more = f"{{0,{limits.max_items - 1}}}"
    for depth in range(limits.max_depth - 1, -1, -1):  # deepest first, so each level can name the next
        indent = '"\\n"' + (f' "{"  " * depth}"' if depth else "")
        nested = f"map-{depth + 1} | seq-{depth + 1}" if depth + 1 < limits.max_depth else None
        value = f'" " {scalar}' + (f' | "\\n" "{"  " * (depth + 1)}" ({nested})' if nested else "")
        item = f"{scalar} | {nested}" if nested else scalar
        g.define(f"map-{depth}", f'yaml-key ":" ({value}) ({indent} yaml-key ":" ({value})){more}')
        g.define(f"seq-{depth}", f'"- " ({item}) ({indent} "- " ({item})){more}')
    return g.render("map-0 | seq-0")


def parse_yaml(text: str) -> Any:
    import yaml

    from candor.formats.errors import FormatError

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FormatError(f"output is not valid YAML: {exc}") from None
    if not isinstance(value, (dict, list)):
        raise FormatError(f"YAML output is a {type(value).__name__}, not a mapping or a list")
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            bad = [k for k in node if not isinstance(k, str)]
            if bad:
                raise FormatError(f"YAML mapping key {bad[0]!r} is a {type(bad[0]).__name__}, not a string")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return value
