"""Model output → safe HTML, on the server.

CommonMark (with tables) by markdown-it-py, code highlighted by Pygments, and the result cleaned
by nh3 (the ammonia sanitiser) with a short allow-list: no script, no event handler, no style, and
links only to http, https and mailto. Raw HTML in model output is escaped, never rendered.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

TAGS = {"p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "span", "blockquote", "ul", "ol", "li",
        "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "div"}
ATTRIBUTES = {"a": {"href", "title"}, "span": {"class"}, "code": {"class"}, "div": {"class"},
              "pre": {"class"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}
_formatter = HtmlFormatter(nowrap=True, classprefix="hl-")


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    return highlight(code, lexer, _formatter) if lexer else ""


_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight}).enable("table") \
    .enable("strikethrough")


def render_markdown(text: str) -> str:
    html = _md.render(text)
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True)


def highlight_css() -> str:
    return HtmlFormatter(classprefix="hl-", style="default").get_style_defs("pre code")
