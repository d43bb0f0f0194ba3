"""Problem statements and code as HTML: Markdown with highlighted code, maths left for KaTeX."""

from __future__ import annotations

import re

import markdown
from django.utils.html import escape, linebreaks
from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

# $$...$$ and $...$ spans are lifted out before Markdown runs (it would read their `_` and `*`
# as emphasis) and put back verbatim for KaTeX's auto-render to typeset in the browser.
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.DOTALL)
_EXTENSIONS = ["fenced_code", "codehilite", "tables", "sane_lists"]
_EXTENSION_CONFIGS = {"codehilite": {"guess_lang": False, "css_class": "highlight"}}
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)


def markdown_html(text: str) -> str:
    """The statement's HTML; raw HTML in the source is escaped, not passed through."""
    spans: list[str] = []

    def lift(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"MATHSPAN{len(spans) - 1}END"

    renderer = markdown.Markdown(extensions=_EXTENSIONS, extension_configs=_EXTENSION_CONFIGS)
    renderer.preprocessors.deregister("html_block")
    renderer.inlinePatterns.deregister("html")
    html = renderer.convert(_MATH.sub(lift, text))
    return re.sub(r"MATHSPAN(\d+)END", lambda m: _escape(spans[int(m.group(1))]), html)


def _escape(math: str) -> str:
    return math.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def python_html(code: str) -> str:
    """Python source as highlighted HTML (the classes static/css/pygments.css styles)."""
    return highlight(code, PythonLexer(), HtmlFormatter(cssclass="highlight"))


def prose(text: str) -> SafeString:
    """Escaped paragraphs with the design prompts' one piece of Markdown, **bold**, rendered."""
    return mark_safe(linebreaks(_BOLD.sub(r"<strong>\1</strong>", escape(text))))  # noqa: S308
