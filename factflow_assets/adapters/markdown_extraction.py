"""HTML to clean GitHub-flavoured markdown: the page's main content and nothing around it.

trafilatura finds the main content and writes the markdown (headings, nested lists, tables, code,
emphasis, links, images). Its weak side is precision: teasers, newsletter boxes and link lists
next to the article often come along. So a second extractor with its own boilerplate model,
Resiliparse, gives a second opinion block by block: a block of text that Resiliparse does not
count as main content either is dropped. Images have no text to judge, so an image stays when the
text around it stays. Measured on ../shared/corpora/aeb-dev by benchmarks/extraction_quality.py
(docs/decisions.md has the figures and the alternatives tried).

Everything here is plain CPU work with no event loop: the `html_to_markdown` adapter runs
`extract_markdown` in worker processes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import trafilatura
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree
from trafilatura.utils import load_html

from .documents import title_and_language

#: A block whose 4-word shingles (or words, when it has fewer than four) Resiliparse also kept at
#: least this share of is main content.
AGREEMENT = 0.6
#: When Resiliparse keeps less than this share of trafilatura's words, it has misjudged the page
#: (a short page, an unusual layout) and its opinion is not asked.
MIN_REFERENCE_SHARE = 0.3

_WORD = re.compile(r"\w+")
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_IMAGE = re.compile(r"!\[(?P<alt>(?:\\.|[^\]\\])*)\]\((?P<src>[^)\s]*)(?P<title>\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[((?:\\.|[^\]\\])*)\]\([^)]*\)")
_IMAGE_LINE = re.compile(r"^\s*(?:\[?!\[(?:\\.|[^\]\\])*\]\([^)]*\)(?:\]\([^)]*\))?\s*)+$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s")
_CODE_SPAN_LINE = re.compile(r"^(`+) ?([^`].*?) ?\1$")
_FILENAME = re.compile(r"^[\w.-]*[-_][\w.-]*$")
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_JUDGED = ("text", "heading", "table", "list")
#: A list item whose link text is less than this share of its words is kept whatever Resiliparse
#: says: it drops short bulleted lists as navigation, and in documentation they are content.
LIST_LINK_SHARE = 0.5
_LANGUAGE_CLASS = re.compile(r"(?:^|\s)(?:language|lang|highlight-source|highlight|brush:)-?\s*([A-Za-z0-9_+#.-]+)")


@dataclass
class Extraction:
    markdown: str
    title: str | None
    language: str | None
    #: Code blocks whose language the page marked, by language (a summary for the sidecar).
    code_languages: list[str] = field(default_factory=list)


@dataclass
class _Block:
    kind: str  # text, heading, list, image, code, table, blank
    lines: list[str]
    keep: bool | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def extract_markdown(html: str | bytes, url: str | None = None, preserve_links: bool = True, preserve_images: bool = True) -> Extraction:
    """The main content of one HTML page as markdown, with the page's title and language."""
    tree = load_html(html)
    if tree is None:
        return Extraction("", None, None)
    page_title, language = title_and_language(tree)
    code_blocks = _code_blocks(tree)
    markdown = trafilatura.extract(
        tree,
        url=url,
        output_format="markdown",
        include_links=preserve_links,
        include_images=preserve_images,
        include_tables=True,
        include_formatting=True,
        include_comments=False,
        favor_recall=True,
    ) or ""
    blocks = _restore_code_blocks(_blocks(markdown), code_blocks)
    _judge_by_agreement(blocks, _WORD.findall(_main_text(html)))
    headline = _take_headline(blocks)
    title = headline or page_title
    title_words = " ".join(_WORD.findall(title or ""))
    used_languages: list[str] = []
    rendered = []
    for block in blocks:
        if not block.keep:
            continue
        if block.kind == "code":
            block.lines, found = _with_language(block.lines, code_blocks)
            if found:
                used_languages.append(found)
        elif block.kind != "blank":
            block.lines = [_clean_images(line.rstrip(), title_words) for line in block.lines]
        rendered.append(block)
    return Extraction(_join(rendered), title, language, sorted(set(used_languages)))


def _code_blocks(tree) -> dict[str, str]:
    """{code text: language, or "" when the markup names none} for every <pre> of the page."""
    found: dict[str, str] = {}
    for pre in tree.iter("pre"):
        language = None
        for element in (pre, *pre.iter("code")):
            language = element.get("data-lang") or element.get("data-language")
            match = _LANGUAGE_CLASS.search(element.get("class") or "")
            language = language or (match.group(1) if match else None)
            if language:
                break
        parent = pre.getparent()
        if not language and parent is not None:  # GitHub and Sphinx: <div class="highlight-python">
            match = _LANGUAGE_CLASS.search(parent.get("class") or "")
            language = match.group(1) if match else None
        if not language or language.lower() in {"none", "text", "plain", "plaintext", "nohighlight"}:
            language = ""
        found[_code_key(pre.text_content())] = language.lower()
    return found


def _code_key(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip("\n").splitlines())


def _main_text(html: str | bytes) -> str:
    tree = HTMLTree.parse_from_bytes(html) if isinstance(html, bytes) else HTMLTree.parse(html)
    return extract_plain_text(tree, main_content=True, alt_texts=False, links=False, list_bullets=True)


def _blocks(markdown: str) -> list[_Block]:
    """The markdown as judgeable units: a code block or a table is one unit, other lines one each."""
    blocks: list[_Block] = []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            end = i + 1
            closing = fence.group("fence")
            while end < len(lines) and not (lines[end].strip().startswith(closing) and set(lines[end].strip()) == {closing[0]}):
                end += 1
            blocks.append(_Block("code", lines[i : end + 1]))
            i = end + 1
        elif line.lstrip().startswith("|"):
            end = i
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            blocks.append(_Block("table", lines[i:end]))
            i = end
        else:
            if not line.strip():
                kind = "blank"
            elif _HEADING.match(line):
                kind = "heading"
            elif _IMAGE_LINE.match(line):
                kind = "image"
            elif _LIST_ITEM.match(line):
                kind = "list"
            else:
                kind = "text"
            blocks.append(_Block(kind, [line]))
            i += 1
    return blocks


def _restore_code_blocks(blocks: list[_Block], code_blocks: dict[str, str]) -> list[_Block]:
    """A one-line <pre> comes out of trafilatura as an inline code span: make it a block again."""
    for block in blocks:
        span = _CODE_SPAN_LINE.match(block.lines[0]) if block.kind == "text" else None
        if span and _code_key(span.group(2)) in code_blocks:
            block.kind = "code"
            block.lines = ["```", span.group(2), "```"]
    return blocks


def _judge_by_agreement(blocks: list[_Block], reference_words: list[str]) -> None:
    """Keep each text block that the reference (Resiliparse's main text) also has."""
    words_of = {id(block): _WORD.findall(_plain(block.text)) for block in blocks if block.kind in _JUDGED}
    if len(reference_words) < MIN_REFERENCE_SHARE * sum(map(len, words_of.values())):
        for block in blocks:  # the reference misjudged the page: trafilatura alone decides
            block.keep = True
        return
    reference_shingles = set(_shingles(reference_words))
    vocabulary = set(reference_words)
    for block in blocks:
        if block.kind == "list" and _link_share(block.text) < LIST_LINK_SHARE:
            block.keep = True
        elif block.kind in _JUDGED:
            block.keep = _agrees(words_of[id(block)], reference_shingles, vocabulary)
        elif block.kind in ("code", "blank"):
            block.keep = True
    # An image stays when the judged text on both sides of it (or the one side it has) stays.
    before: list[bool | None] = []
    last = None
    for block in blocks:
        before.append(last)
        if block.kind in _JUDGED:
            last = block.keep
    after = None
    for block, previous in zip(reversed(blocks), reversed(before)):
        if block.kind == "image":
            sides = [side for side in (previous, after) if side is not None]
            block.keep = bool(sides) and all(sides)
        elif block.kind in _JUDGED:
            after = block.keep


def _agrees(words: list[str], reference_shingles: set, vocabulary: set[str]) -> bool:
    if not words:
        return True
    shingles = _shingles(words)
    if shingles:
        return sum(shingle in reference_shingles for shingle in shingles) / len(shingles) >= AGREEMENT
    return sum(word in vocabulary for word in words) / len(words) >= AGREEMENT


def _link_share(markdown: str) -> float:
    words = len(_WORD.findall(_plain(markdown)))
    linked = sum(len(_WORD.findall(match.group(1))) for match in _LINK.finditer(_IMAGE.sub("", markdown)))
    return linked / words if words else 0.0


def _shingles(words: list[str]) -> list[tuple[str, str, str, str]]:
    return list(zip(words, words[1:], words[2:], words[3:]))


def _plain(markdown: str) -> str:
    """Markdown without link and image targets, as text to compare."""
    return _LINK.sub(r"\1", _IMAGE.sub(lambda m: m.group("alt"), markdown))


def _take_headline(blocks: list[_Block]) -> str | None:
    """Remove the page's headline (an H1 before any text) and return it: it is the title."""
    for block in blocks:
        if not block.keep or block.kind in ("blank", "image"):
            continue
        heading = _HEADING.match(block.lines[0]) if block.kind == "heading" else None
        if heading and len(heading.group(1)) == 1:
            block.keep = False
            return _unescape(_plain(heading.group(2))).strip() or None
        return None
    return None


def _clean_images(line: str, title_words: str) -> str:
    """Drop image alt texts that say nothing: a file name, the title again, the alt text twice."""

    def clean(match: re.Match) -> str:
        alt = _unescape(match.group("alt")).strip()
        half = alt[: len(alt) // 2].strip()
        if half and not alt.replace(half, "").strip():
            alt = half  # trafilatura joins alt and title attributes, which often repeat
        words = " ".join(_WORD.findall(alt))
        if _FILENAME.match(alt) or (words and words in title_words):
            alt = ""
        alt = alt.replace("[", r"\[").replace("]", r"\]")
        return f"![{alt}]({match.group('src')}{match.group('title') or ''})"

    return _IMAGE.sub(clean, line)


def _unescape(text: str) -> str:
    return _MARKDOWN_ESCAPE.sub(r"\1", text)


def _with_language(lines: list[str], languages: dict[str, str]) -> tuple[list[str], str | None]:
    fence = _FENCE.match(lines[0])
    if fence is None or fence.group("info").strip():
        return lines, None
    closed = len(lines) > 1 and _FENCE.match(lines[-1]) is not None
    body = lines[1:-1] if closed else lines[1:]
    language = languages.get(_code_key("\n".join(body)))
    if not language:
        return lines, None
    return [f"{fence.group('indent')}{fence.group('fence')}{language}", *lines[1:]], language


def _join(blocks: list[_Block]) -> str:
    """The kept blocks as one document: one blank line between paragraphs, around code and tables."""
    out: list[str] = []
    for block in blocks:
        if block.kind == "blank":
            if out and out[-1] != "":
                out.append("")
            continue
        if block.kind in ("code", "table", "heading") and out and out[-1] != "":
            out.append("")
        out.extend(block.lines)
        if block.kind in ("code", "table", "heading"):
            out.append("")
    while out and out[-1] == "":
        out.pop()
    while out and out[0] == "":
        out.pop(0)
    return "\n".join(out) + "\n" if out else ""

