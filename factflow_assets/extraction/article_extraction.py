"""Pages that mark no main region (many news articles): boilerplate detection finds the article.

markdown_extraction.py takes this path only when main_region.py finds no region the page marks.
trafilatura finds the main content and writes the markdown (headings, nested lists, tables, code,
emphasis, links, images). Its weak side is precision: teasers, newsletter boxes and link lists
next to the article often come along. So a second extractor with its own boilerplate model,
Resiliparse, gives a second opinion block by block: a block of text that Resiliparse does not
count as main content either is dropped. Images have no text to judge, so an image stays when the
text around it stays. Measured on ../shared/corpora/aeb-dev by benchmarks/extraction_quality.py
(docs/decisions.md has the figures and the alternatives tried).

Everything here is plain CPU work with no event loop: the `html_to_markdown` adapter runs it in
worker processes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import trafilatura
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import ElementNode, HTMLTree

#: Image captions, by trafilatura's own rule for them (an element whose id or class says
#: "caption": its DISCARD_IMAGE_ELEMENTS, which its image mode turns off). <figure>'s <figcaption>
#: is not one of them: documentation puts real captions there.
CAPTION_TAGS = frozenset({"div", "p", "section", "span", "li", "ul", "ol"})
CAPTIONS = ", ".join(f"{tag}[{attribute}*=caption]" for tag in sorted(CAPTION_TAGS) for attribute in ("class", "id"))
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
#: A list item that opens with an image: a gallery's or a figure's, not a bullet of the text.
_IMAGE_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\[?!\[")
_CODE_SPAN_LINE = re.compile(r"^(`+) ?([^`].*?) ?\1$")
_FILENAME = re.compile(r"^[\w.-]*[-_][\w.-]*$")
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_JUDGED = ("text", "heading", "table", "list")
#: A list item whose link text is less than this share of its words is kept whatever Resiliparse
#: says: it drops short bulleted lists as navigation, and in documentation they are content.
LIST_LINK_SHARE = 0.5
_LANGUAGE_CLASS = re.compile(r"(?:^|\s)(?:language|lang|highlight-source|highlight|brush:)-?\s*([A-Za-z0-9_+#.-]+)")


@dataclass
class Article:
    markdown: str
    title: str | None
    language: str | None
    #: Code blocks whose language the page marked, by language (a summary for the sidecar).
    code_languages: list[str] = field(default_factory=list)


@dataclass
class _Block:
    kind: str  # text, heading, list, image, code, table, blank, caption
    lines: list[str]
    keep: bool | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @cached_property
    def words(self) -> list[str]:
        """The words a reader sees: link and image targets left out."""
        return _WORD.findall(_plain(self.text))


def extract_article(html: str | bytes, url: str | None = None, preserve_links: bool = True, preserve_images: bool = True) -> Article:
    """The article of one HTML page as markdown, with the page's title and language."""
    page = HTMLTree.parse_from_bytes(html) if isinstance(html, bytes) else HTMLTree.parse(html)
    page_title, language = _title_and_language(page)
    code_blocks = _code_blocks(page)
    reference_words = _WORD.findall(
        extract_plain_text(page, main_content=True, alt_texts=False, links=False, list_bullets=True, post_meta=False, skip_elements=[CAPTIONS])
    )
    options: dict[str, Any] = {"url": url, "include_links": preserve_links, "include_images": preserve_images}
    blocks = _blocks(_trafilatura(html, fast=True, **options))
    if _disagree(sum(len(block.words) for block in blocks if block.kind in _JUDGED), len(reference_words)):
        blocks = _blocks(_trafilatura(html, fast=False, **options))
    _restore_code_blocks(blocks, code_blocks)
    _mark_captions(blocks, page)
    _judge_by_agreement(blocks, reference_words)
    _drop_captions_said_by_images(blocks)
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
    return Article(_join(rendered), title, language, sorted(set(used_languages)))


def _trafilatura(html: str | bytes, fast: bool, url: str | None, include_links: bool, include_images: bool) -> str:
    """trafilatura's markdown of the page. Its recall focus also skips the second look at a short
    result that its balanced focus takes (a plain-text rendering of the whole page, ~1 ms); the
    Resiliparse comparison here does that job."""
    return trafilatura.extract(
        html,
        url=url,
        output_format="markdown",
        include_links=include_links,
        include_images=include_images,
        include_tables=True,
        include_formatting=True,
        include_comments=False,
        favor_recall=True,
        fast=fast,
    ) or ""


def _disagree(words: int, reference_words: int) -> bool:
    """Whether trafilatura's fast pass and Resiliparse differ so much on the page's size (one finds
    under MIN_REFERENCE_SHARE of what the other finds) that one of them took the wrong part of it:
    then trafilatura's full cascade, with its readability and jusText fallbacks, decides."""
    return min(words, reference_words) < MIN_REFERENCE_SHARE * max(words, reference_words)


def _title_and_language(page: HTMLTree) -> tuple[str | None, str | None]:
    """The page's <title> (whitespace collapsed) and its root's lang or xml:lang."""
    root = page.document.query_selector("html") if page.document is not None else None
    language = root and (root.getattr("lang") or root.getattr("xml:lang"))
    return page.title or None, language or None


def _code_blocks(page: HTMLTree) -> dict[str, str]:
    """{code text: language, or "" when the markup names none} for every <pre> of the page."""
    found: dict[str, str] = {}
    if page.document is None:
        return found
    for pre in page.document.query_selector_all("pre"):
        language = None
        for element in (pre, *pre.query_selector_all("code")):
            language = element.getattr("data-lang") or element.getattr("data-language")
            match = _LANGUAGE_CLASS.search(element.getattr("class") or "")
            language = language or (match.group(1) if match else None)
            if language:
                break
        parent = pre.parent
        if not language and isinstance(parent, ElementNode):  # GitHub and Sphinx: <div class="highlight-python">
            match = _LANGUAGE_CLASS.search(parent.getattr("class") or "")
            language = match.group(1) if match else None
        if not language or language.lower() in {"none", "text", "plain", "plaintext", "nohighlight"}:
            language = ""
        found[_code_key(pre.text or "")] = language.lower()
    return found


def _code_key(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip("\n").splitlines())


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
            elif item := _LIST_ITEM.match(line):
                kind = "image" if _IMAGE_LINE.match(line[item.end() :]) else "list"
            else:
                kind = "text"
            blocks.append(_Block(kind, [line]))
            i += 1
    return blocks


def _mark_captions(blocks: list[_Block], page: HTMLTree) -> None:
    """A line that is an image caption of the page (CAPTIONS) belongs to the image, not to the
    text: it is dropped, and the image is judged by the text around it, not by its caption."""
    # two attribute selectors and the tags checked here: a quarter of the time of CAPTIONS
    found = page.document.query_selector_all("[class*=caption], [id*=caption]") if page.document is not None else []
    captions = {" ".join(_WORD.findall(element.text or "")) for element in found if element.tag in CAPTION_TAGS}
    captions.discard("")
    if not captions:
        return
    for block in blocks:
        if block.kind != "text" or not block.words:
            continue
        words = block.words if "\\" not in block.text else _WORD.findall(_unescape(_plain(block.text)))
        if " ".join(words) in captions:
            block.kind = "caption"


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
    judged = [block for block in blocks if block.kind in _JUDGED]
    if len(reference_words) < MIN_REFERENCE_SHARE * sum(len(block.words) for block in judged):
        for block in blocks:  # the reference misjudged the page: trafilatura alone decides
            block.keep = block.kind != "caption"
        return
    reference_shingles = set(_shingles(reference_words))
    vocabulary = set(reference_words)
    for block in blocks:
        if block.kind == "list" and block.words and _link_share(block.text) < LIST_LINK_SHARE and not _IMAGE_ITEM.match(block.text):
            block.keep = True
        elif block.kind in _JUDGED:
            block.keep = _agrees(block.words, reference_shingles, vocabulary)
        elif block.kind in ("code", "blank"):
            block.keep = True
    # What has too few words to judge (an image, a line or heading of under four words) stays when
    # the judged text on both sides of it (or the one side it has) stays.
    def unjudged(block: _Block) -> bool:
        return block.kind == "image" or (block.kind in ("text", "heading") and len(block.words) < 4)

    before: list[bool | None] = []
    last = None
    for block in blocks:
        before.append(last)
        if block.kind in _JUDGED and not unjudged(block):
            last = block.keep
    after = None
    for block, previous in zip(reversed(blocks), reversed(before)):
        if unjudged(block):
            sides = [side for side in (previous, after) if side is not None]
            block.keep = bool(sides) and all(sides) and block.keep is not False
        elif block.kind in _JUDGED:
            after = block.keep


def _drop_captions_said_by_images(blocks: list[_Block]) -> None:
    """A line beside an image that says what the image's alt text already says (a caption the
    page wrote twice) is said once, by the image."""
    kept = [block for block in blocks if block.keep and block.kind != "blank"]
    for index, block in enumerate(kept):
        if block.kind != "text" or not block.words:
            continue
        text = " ".join(block.words)
        for neighbour in kept[max(0, index - 1) : index] + kept[index + 1 : index + 2]:
            if neighbour.kind == "image" and any(text in " ".join(_WORD.findall(m.group("alt"))) for m in _IMAGE.finditer(neighbour.text)):
                block.keep = False
                break


def _agrees(words: list[str], reference_shingles: set, vocabulary: set[str]) -> bool:
    """At least AGREEMENT of the block's 4-word shingles (or of its words, when it has fewer than
    four) are in the reference."""
    if not words:
        return True
    shingles = _shingles(words)
    if shingles:
        return sum(map(reference_shingles.__contains__, shingles)) >= AGREEMENT * len(shingles)
    return sum(map(vocabulary.__contains__, words)) >= AGREEMENT * len(words)


def _link_share(markdown: str) -> float:
    words = len(_WORD.findall(_plain(markdown)))
    linked = sum(len(_WORD.findall(match.group(1))) for match in _LINK.finditer(_IMAGE.sub("", markdown)))
    return linked / words if words else 0.0


def _shingles(words: list[str]) -> list[tuple[str, str, str, str]]:
    return list(zip(words, words[1:], words[2:], words[3:]))


def _plain(markdown: str) -> str:
    """Markdown without link and image targets, as text to compare."""
    if "](" not in markdown:
        return markdown
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

