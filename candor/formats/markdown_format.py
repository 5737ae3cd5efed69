"""Markdown whose structure is guaranteed, since every string is already valid CommonMark.

"Parseable" means nothing for Markdown, so the guarantee is about structure a reader relies on:
  * every fenced code block is closed: it opens with ``` (and an optional language), and its code
    never holds three backticks in a row, so nothing but the closing fence can close it;
  * no raw HTML: '<' appears only inside code (escape it as &lt; elsewhere);
  * the document is blocks separated by exactly one blank line: ATX headings ("# " to "###### "),
    paragraphs, "- " bullet lists (one nested level, "  - "), "1. " ordered lists, "> " quotes,
    fenced code, and GFM tables of 1-6 columns whose every row has as many cells as the header;
  * a line of text never starts with a block marker (#, >, -, +, *, =, |, ~, _ or "1." and the like)
    or spaces, so a paragraph or list item cannot turn into another block by accident, nor become
    an indented code block, a setext heading or a thematic break;
  * no line starts with "Human:", which would end the turn in the Human/Assistant prompt format
    and cut the document short.
Not guaranteed: balanced emphasis or link syntax (unbalanced markers render as literal text),
meaningful content, or that a list numbers itself in order. Sizes are bounded like the other
formats: at most `max_blocks` blocks (default 32), `max_items` lines, items or table rows per
block (default 16), and four times that many lines of code per fence.
"""

from __future__ import annotations

import re
from typing import Any

from candor.formats.gbnf import CharClass, Grammar, avoid_words
from candor.formats.limits import DEFAULT_LIMITS, Limits

CHAT_MARKERS = ["Human:", "Assistant:"]
MAX_COLUMNS = 6
TEXT_CHAR = CharClass.of("\n<`\x00-\x08\x0b-\x1f\x7f", negated=True)
# Nor Unicode spaces: a line must not look indented, and callers strip leading whitespace.
FIRST_CHAR = CharClass.of("\x00-\x20#>+*=|~_`<0-9\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
                          "\u205f\u3000\ufeff-", negated=True)
CODE_CHAR = CharClass.of("\n`\x00-\x08\x0b-\x1f\x7f", negated=True)
CELL_CHAR = CharClass.of("\n|\\<`\x00-\x1f\x7f", negated=True)
_RULES = {
    "md-char": TEXT_CHAR.gbnf(),
    "md-code-span": '"`" [^`\\n\\x00-\\x1F]+ "`"',
    "md-rest": "(md-char | md-code-span)*",
    # Digits may start text only when they cannot be read as an ordered-list marker.
    "md-digits": '[0-9]{1,9} ([^0-9.)\\n<`\\x00-\\x1F] | [.)] [^ \\n<`\\x00-\\x1F])',
    "md-star": '"*" "*"? [^*\\n<`\\x00-\\x20]',
    "md-first-unit": "md-code-span | md-star | md-digits",
    "md-code-char": CODE_CHAR.gbnf(),
    "md-tick": '("`" | "``") md-code-char',
    "md-code-rest": '(md-code-char | md-tick)* ("`" | "``")?',
    "md-cell": f'({CELL_CHAR.gbnf()} | "`" [^`|\\n\\x00-\\x1F]+ "`")*',
}


def markdown_grammar(limits: Limits = DEFAULT_LIMITS) -> str:
    g = Grammar()
    for name, body in _RULES.items():
        g.shared(name, body)
    line = avoid_words(g, "md-line", CHAT_MARKERS, first=FIRST_CHAR, cont=TEXT_CHAR, rest="md-rest",
                       after='""', after_word=None, extra_first="md-first-unit", extra_cont="md-code-span")
    code_line = avoid_words(g, "md-code-line", CHAT_MARKERS, first=CODE_CHAR, cont=CODE_CHAR,
                            rest="md-code-rest", after='("`" | "``")?', after_word=None,
                            extra_first="md-tick", extra_cont="md-tick")
    g.define("md-inline", f"({FIRST_CHAR.gbnf()} | md-first-unit) md-rest")
    g.define("heading", '"#" "#"{0,5} " " md-inline')
    more = f"{{0,{limits.max_items - 1}}}"
    g.define("paragraph", f'{line} ("\\n" {line}){more}')
    g.define("bullet-item", f'"- " md-inline ("\\n  - " md-inline){more}')
    g.define("bullets", f'bullet-item ("\\n" bullet-item){more}')
    g.define("numbered", f'[0-9]{{1,3}} ". " md-inline ("\\n" [0-9]{{1,3}} ". " md-inline){more}')
    g.define("quote", f'"> " md-inline ("\\n> " md-inline){more}')
    g.define("fence", f'"```" [a-zA-Z0-9_+#.-]{{0,20}} "\\n" (({code_line} | "`" | "``")? "\\n")'
                      f'{{0,{4 * limits.max_items}}} "```"')
    tables = []
    for n in range(1, MAX_COLUMNS + 1):
        row = f'"|" (" " md-cell " |"){{{n}}}'
        delimiter = f'"|" (" " ":"? "---" ":"? " |"){{{n}}}'
        tables.append(g.define(f"table-{n}", f'{row} "\\n" {delimiter} ("\\n" {row}){more}'))
    g.define("block", " | ".join(["heading", "paragraph", "bullets", "numbered", "quote", "fence", *tables]))
    return g.render(f'block ("\\n\\n" block){{0,{limits.max_blocks - 1}}}')


_CLOSING_FENCE = re.compile(r"^[ >]*(`{3,}|~{3,})\s*$")


def parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table")


def parse_markdown(text: str) -> list:
    """Parse with markdown-it-py and check what the grammar guarantees; returns the block tokens."""
    from candor.formats.errors import FormatError

    if not text.strip():
        raise FormatError("Markdown output is empty")
    tokens = parser().parse(text)
    lines = text.split("\n")
    for tok in tokens:
        if tok.type == "html_block" or any(c.type == "html_inline" for c in tok.children or ()):
            raise FormatError(f"Markdown output has raw HTML on line {tok.map[0] + 1 if tok.map else '?'}")
        if tok.type == "code_block":
            raise FormatError(f"Markdown output has an indented code block on line {tok.map[0] + 1}")
        if tok.type == "fence":
            last = tok.map[1] - 1
            if last <= tok.map[0] or not _CLOSING_FENCE.match(lines[last]) \
                    or not lines[last].strip(" >").startswith(tok.markup):
                raise FormatError(f"Markdown code fence opened on line {tok.map[0] + 1} is never closed")
        if tok.type == "table_open":
            rows = [_cells(lines[i]) for i in range(tok.map[0], tok.map[1]) if lines[i].strip()]
            for i, row in enumerate(rows[1:], start=1):
                if row != rows[0]:
                    raise FormatError(f"Markdown table row on line {tok.map[0] + i + 1} has {row} cells, "
                                      f"the header has {rows[0]}")
    return tokens


def _cells(line: str) -> int:
    body = line.strip()
    body = body.removeprefix("|")
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return len(re.split(r"(?<!\\)\|", body))


def to_data(tokens: list) -> list[dict]:
    """Block tokens as plain data, for JSON output."""
    out = []
    for tok in tokens:
        item: dict[str, Any] = {"type": tok.type}
        if tok.tag:
            item["tag"] = tok.tag
        if tok.info:
            item["info"] = tok.info
        if tok.content:
            item["content"] = tok.content
        out.append(item)
    return out
