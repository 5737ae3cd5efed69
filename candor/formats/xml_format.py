"""Well-formed XML by grammar: the trade-off of making close tags match open tags.

Matching `</name>` to `<name>` for arbitrary names is not context-free, so no grammar can do it.
What a grammar can do is hold a finite set of element names and give each its own rule,
`<name>…</name>`, so every close tag is the one its open tag needs. The caller names the
elements (`tags=[...]`, and optionally the `root` element); without them a default vocabulary of
common names (DEFAULT_TAGS) is used, so a model asked for a <book> without tags=["book", ...]
can only use names from that list. Nesting is bounded (`max_depth`, default 4 levels) because
each level needs its own copy of the per-name rules; like the other formats, an element holds at
most `max_items` children (default 16) and `max_string` characters of text (default 256).

Guaranteed: one root element, optionally after an `<?xml version="1.0" encoding="UTF-8"?>`
declaration; every element closed by its own name or self-closing; text escaped (no raw `<`, `>`
or `&`, only the five predefined entities); no control characters; elements hold either text or
child elements (no mixed content), children separated by at most a newline and 16 spaces.
Not produced: attributes, comments, CDATA, processing instructions, namespaces, multi-line text.
"""

from __future__ import annotations

import re
from typing import Any

from candor.errors import InvalidRequestError
from candor.formats.gbnf import Grammar, lit
from candor.formats.limits import DEFAULT_LIMITS, Limits

DEFAULT_TAGS = (
    "root", "data", "item", "items", "list", "entry", "record", "name", "title", "author", "description",
    "summary", "text", "note", "value", "key", "id", "type", "category", "tag", "tags", "status", "date",
    "time", "year", "start", "end", "price", "total", "quantity", "unit", "size", "color", "weight", "age",
    "person", "people", "user", "employee", "company", "product", "order", "book", "books", "movie",
    "song", "recipe", "ingredient", "ingredients", "step", "steps", "task", "tasks", "event", "location",
    "address", "street", "city", "country", "email", "phone", "url", "language", "animal", "species",
    "question", "answer", "option", "result", "score", "message",
)
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,63}$")
TEXT_CHAR = '[^<>&\\x00-\\x1F\\x7F\\uFFFE\\uFFFF] | "&" ("lt" | "gt" | "amp" | "quot" | "apos") ";"'


def check_options(tags: Any = None, root: Any = None) -> tuple[tuple[str, ...], str | None]:
    """Normalise and check the element names; bad ones are the caller's error."""
    if tags is None:
        tags = DEFAULT_TAGS
    if isinstance(tags, str) or not isinstance(tags, (list, tuple)) or not tags:
        raise InvalidRequestError("must be a non-empty list of element names", field="tags")
    for tag in tags:
        if not isinstance(tag, str) or not _NAME.match(tag) or tag.lower().startswith("xml"):
            raise InvalidRequestError(f"{tag!r} is not a usable XML element name "
                                      "(letters, digits, '_', '-', '.'; not starting with 'xml')", field="tags")
    if root is not None and (not isinstance(root, str) or not _NAME.match(root) or root.lower().startswith("xml")):
        raise InvalidRequestError(f"{root!r} is not a usable XML element name", field="root")
    return tuple(dict.fromkeys([*tags, *([root] if root else [])])), root


def xml_grammar(tags: Any = None, root: Any = None, limits: Limits = DEFAULT_LIMITS) -> str:
    names, root = check_options(tags, root)
    g = Grammar()
    g.shared("xml-char", TEXT_CHAR)
    g.shared("xml-text", f"xml-char{{1,{limits.max_string}}}")
    g.shared("xml-ws", '("\\n" [ ]{0,16})?')

    def level(depth: int, allowed: tuple[str, ...]) -> str:
        if depth < limits.max_depth:
            inner = level(depth + 1, names)
            content = g.add(f"content-{depth}", f"(xml-text | (xml-ws {inner}){{1,{limits.max_items}}} xml-ws)?")
        else:
            content = g.add(f"content-{depth}", "xml-text?")
        bodies = {name: g.add(f"el-{depth}-{name}", f'"/>" | ">" {content} {lit("</" + name + ">")}')
                  for name in allowed}
        return g.add(f"element-{depth}", f'"<" {name_trie(g, f"names-{depth}", bodies)}')

    top = level(1, (root,) if root else names)
    return g.render(f'({lit(DECLARATION)} "\\n")? {top}')


def name_trie(g: Grammar, hint: str, leaves: dict[str, str]) -> str:
    """A rule spelling one of the names letter by letter, then going on with that name's rule.

    Sharing prefixes keeps the alternatives open at any point few: llama.cpp checks every
    vocabulary token against every open alternative, so one alternative per name is slow."""
    prefixes = sorted({name[:k] for name in leaves for k in range(len(name))}, key=len)
    rules = {p: g.name(f"{hint}-{i}") for i, p in enumerate(prefixes)}
    for prefix, rule in rules.items():
        options = [leaves[prefix]] if prefix in leaves else []
        for ch in sorted({name[len(prefix)] for name in leaves if len(name) > len(prefix) and name.startswith(prefix)}):
            nxt = prefix + ch
            options.append(f"{lit(ch)} {rules[nxt] if nxt in rules else leaves[nxt]}")
        g.define(rule, " | ".join(options))
    return rules[""]


def parse_xml(text: str, tags: Any = None, root: Any = None, max_depth: int | None = None) -> Any:
    """Parse with defusedxml and check the grammar's promises: no attributes, and the element
    names, root and depth when they are given (pass grammar_for's options to check them)."""
    from xml.etree.ElementTree import ParseError

    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException

    from candor.formats.errors import FormatError

    try:
        element = DET.fromstring(text)
    except (ParseError, ValueError) as exc:
        raise FormatError(f"output is not well-formed XML: {exc}") from None
    except DefusedXmlException as exc:  # entity declarations, DTDs: refused, not parse errors
        raise FormatError(f"output was refused by the XML parser: {type(exc).__name__}: {exc}") from None
    allowed = set(check_options(tags, root)[0]) if tags is not None else None
    if root and element.tag != root:
        raise FormatError(f"XML root element is <{element.tag}>, expected <{root}>")
    stack = [(element, 1)]
    while stack:
        node, depth = stack.pop()
        if allowed is not None and node.tag not in allowed:
            raise FormatError(f"XML element <{node.tag}> is not one of the allowed element names")
        if node.attrib:
            raise FormatError(f"XML element <{node.tag}> has attributes, which the grammar never writes")
        if max_depth is not None and depth > max_depth:
            raise FormatError(f"XML nests deeper than {max_depth} levels at <{node.tag}>")
        stack.extend((child, depth + 1) for child in node)
    return element


def to_data(element: Any) -> dict:
    """An element as plain data: {"tag", "text", "children"}, for JSON output."""
    data: dict[str, Any] = {"tag": element.tag}
    if len(element):
        data["children"] = [to_data(child) for child in element]
    else:
        data["text"] = element.text or ""
    return data
