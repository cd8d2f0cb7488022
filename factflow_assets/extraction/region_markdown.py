"""A page's main region, converted faithfully to GitHub-flavoured markdown.

The converter is html-to-markdown (a Rust core; docs/decisions.md has why it and not markdownify):
it writes headings at their level, nested lists at their depth, GFM tables, fenced code and
links. What it cannot know from the HTML alone is prepared here first, on the lxml tree:
- links and images resolved against the page's own URL (and its `<base href>`);
- every `<pre>` as one code block with its exact text (line-number gutters, copy buttons and
  highlighting markup removed; `<br>` kept as line breaks) and the language the page marks;
- admonitions (`div.admonition`, `.note`, `.warning`, ...) as blockquotes that open with their
  label in bold;
- definition lists as their terms (bold, or inline code for an API signature) each followed by
  its definition's blocks, so code and tables inside a definition stay blocks;
- tables GFM cannot hold (a cell holding a list, code, a table or several paragraphs; merged
  cells) kept as HTML tables, stripped of attributes, instead of being flattened into one line.
Afterwards no fence is left open, whatever the page held.

Plain CPU work with no event loop; it runs in the html_to_markdown worker processes.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any
from urllib.parse import urljoin

import html_to_markdown
from lxml import etree

from .main_region import Element, drop, text_of, unwrap

_LANGUAGE_CLASS = re.compile(r"(?:^|\s)(?:language|lang|highlight-source|highlight|brush:)-?\s*([A-Za-z0-9_+#.-]+)")
_NO_LANGUAGE = frozenset({"none", "text", "plain", "plaintext", "nohighlight", "default", "txt", "output"})
#: Classes of a code block's line-number gutter (Pygments, Prism, highlight.js plugins).
_LINE_NUMBER_CLASSES = frozenset({"linenos", "lineno", "line-numbers-rows", "gutter"})
_ADMONITION_KINDS = (
    "note",
    "warning",
    "tip",
    "caution",
    "important",
    "danger",
    "attention",
    "hint",
    "error",
    "seealso",
    "info",
    "todo",
    "example",
    "success",
    "question",
    "failure",
    "bug",
    "quote",
    "abstract",
)
_ADMONITION_CLASS = re.compile(
    r"(?:^|\s)(?:admonition|callout|alert|markdown-alert|theme-admonition|notice|admonitionblock|(?:" + "|".join(_ADMONITION_KINDS) + r"))(?:\s|$)"
)
#: The element that holds an admonition's label says so in its class (Sphinx's `admonition-title`,
#: GitHub's `markdown-alert-title`, Docusaurus' `admonitionHeading_x`).
_ADMONITION_TITLE = re.compile(r"title|heading|label", re.IGNORECASE)
_SIGNATURE_CLASS = re.compile(r"(?:^|\s)(?:sig|sig-object|signature)(?:\s|$)")
_BLOCKS_IN_CELL = ".//pre | .//ul | .//ol | .//table | .//dl | .//blockquote | .//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6"
_BLOCK_TAGS = frozenset({"p", "div", "pre", "ul", "ol", "dl", "table", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "section"})
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})")
#: Icon fonts draw with characters of Unicode's private use area; as text they are noise.
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
_SEPARATOR = "FACTFLOWSEPARATOR"
#: An image's alt text that is a file's name: no space, and an image extension, or words joined
#: by "_" or "-" with a digit among them.
_FILE_NAME = re.compile(r"^(?:\S+\.(?:png|jpe?g|gif|svg|webp|avif|bmp)|(?=\S*\d)(?=\S*[_-])[\w.-]+)$", re.IGNORECASE)
#: Stands for a backslash the markdown needs (the converter would escape a real one).
_ESCAPE_MARK = "\ue000"
_TAG_LIKE = re.compile(r"<(?=[A-Za-z/!?])")
_SEPARATOR_LINE = re.compile(rf"^[ >]*{_SEPARATOR}[ ]*$", re.MULTILINE)

_OPTIONS_KEPT: dict[str, Any] = dict(
    heading_style="atx",
    bullets="-",
    list_indent_width=2,
    code_block_style="backticks",
    newline_style="backslash",
    br_in_tables=True,
    extract_metadata=False,
    autolinks=False,
    escape_asterisks=False,
    escape_underscores=False,
    escape_misc=False,
)


def region_to_markdown(region: Element, base_url: str | None, preserve_links: bool = True, preserve_images: bool = True) -> str:
    """The region (already cleaned of boilerplate) as markdown. Changes the tree in place."""
    _resolve_links(region, base_url, preserve_links, preserve_images)
    _prepare_code_blocks(region)
    _prepare_admonitions(region)
    _prepare_definition_lists(region)
    _join_item_paragraphs(region)
    kept_tables = _set_aside_tables(region)
    _separate_blockquotes(region)
    _mark_angle_brackets(region)
    html = etree.tostring(region, method="html", encoding="unicode", with_tail=False)
    options = html_to_markdown.ConversionOptions(skip_images=not preserve_images, **_OPTIONS_KEPT)
    markdown = html_to_markdown.convert(html, options).content or ""
    markdown = _SEPARATOR_LINE.sub("", markdown).replace(_ESCAPE_MARK, "\\")
    for placeholder, table in kept_tables.items():
        markdown = re.sub(rf"^([ >]*){placeholder}$", partial(_indent_match, table), markdown, count=1, flags=re.MULTILINE)
    return tidy_markdown(markdown)


def _indent_match(block: str, match: re.Match[str]) -> str:
    return _indented(block, match.group(1))


def _indented(block: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in block.split("\n"))


def tidy_markdown(markdown: str) -> str:
    """Outside code: trailing spaces, icon-font characters and runs of blank lines removed.
    Every fence closed."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group("fence")
            line = _PRIVATE_USE.sub("", line).rstrip()
            if line or (out and out[-1]):
                out.append(line)
        else:
            out.append(line)
            if (
                match
                and match.group("fence")[0] == fence[0]
                and len(match.group("fence")) >= len(fence)
                and not line.strip()[len(match.group("fence")) :].strip()
            ):
                fence = None
    if fence is not None:
        while out and not out[-1].strip():
            out.pop()
        out.append(fence)
    text = "\n".join(out).strip("\n")
    return text + "\n" if text else ""


def _separate_blockquotes(region: Element) -> None:
    """Two blockquotes one after the other (two admonitions) stay two: the converter writes no
    blank line between them, which would merge them, so a separator paragraph goes around each
    and is removed from the markdown afterwards."""
    for quote in list(region.iter("blockquote")):
        for before in (True, False):
            separator = etree.Element("p")
            separator.text = _SEPARATOR
            if before:
                quote.addprevious(separator)
            else:
                separator.tail, quote.tail = quote.tail, None
                quote.addnext(separator)


def _mark_angle_brackets(region: Element) -> None:
    """Text such as `<Object>` or `<T>` is text, but in markdown it would read as an HTML tag and
    vanish when rendered: outside code its `<` is escaped."""
    for element in region.iter(etree.Element):
        text_has, tail_has = "<" in (element.text or ""), "<" in (element.tail or "")
        if not (text_has or tail_has):
            continue
        parent_in_code = any(ancestor.tag in ("pre", "code") for ancestor in element.iterancestors())
        if text_has and not parent_in_code and element.tag not in ("pre", "code"):
            element.text = _TAG_LIKE.sub(_ESCAPE_MARK + "<", element.text)
        if tail_has and not parent_in_code:
            element.tail = _TAG_LIKE.sub(_ESCAPE_MARK + "<", element.tail)


def _resolve_links(region: Element, base_url: str | None, preserve_links: bool, preserve_images: bool) -> None:
    for anchor in region.xpath(".//a"):
        href = (anchor.get("href") or "").strip()
        if not preserve_links or not href or href.lower().startswith("javascript:"):
            unwrap(anchor)
        elif base_url:
            anchor.set("href", _join(base_url, href))
    for image in region.xpath(".//img"):
        if not preserve_images:
            drop(image)
            continue
        source = (image.get("src") or image.get("data-src") or "").strip()
        if base_url and source and not source.startswith("data:"):
            image.set("src", _join(base_url, source))
        if _FILE_NAME.match((image.get("alt") or "").strip()):
            image.set("alt", "")  # "IMG_2041-final.jpg", "dp3_1_en": a file's name says nothing of the picture
        if image.get("title") and image.get("title") == image.get("alt"):
            del image.attrib["title"]
        for attribute in ("srcset", "sizes", "loading", "decoding"):
            image.attrib.pop(attribute, None)


def _join(base_url: str, href: str) -> str:
    try:
        return urljoin(base_url, href)
    except ValueError:  # an invalid IPv6 literal and the like: kept as the page wrote it
        return href


def page_base_url(document: Element, url: str | None) -> str | None:
    """What the page's relative links are relative to: its `<base href>`, resolved against its
    own URL, else its URL."""
    base = document.find(".//head/base[@href]")
    href = base.get("href").strip() if base is not None else ""
    if href and url:
        return _join(url, href)
    return url or href or None


def _prepare_code_blocks(region: Element) -> None:
    for table in region.xpath(".//table[.//pre]"):
        _unwrap_line_number_table(table)
    for pre in region.xpath(".//pre"):
        if any(ancestor.tag == "pre" for ancestor in pre.iterancestors()):
            continue
        language = _code_language(pre)
        for gutter in [e for e in pre.iter() if e.get("class") and not _LINE_NUMBER_CLASSES.isdisjoint(e.get("class").split())]:
            drop(gutter)
        for br in pre.iter("br"):
            br.tail = "\n" + (br.tail or "")
        text = text_of(pre).expandtabs(4) if "\t" in text_of(pre) else text_of(pre)
        lines = [line.rstrip() for line in text.split("\n")]
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        code = etree.Element("code")
        code.text = "\n".join(lines)
        if language:
            code.set("class", f"language-{language}")
        replacement = etree.Element("pre")
        replacement.append(code)
        replacement.tail = pre.tail
        pre.getparent().replace(pre, replacement)


def _unwrap_line_number_table(table: Element) -> None:
    """Pygments' and others' `<table>` of a line-number column beside the code: only the code."""
    cells = table.xpath("./tr/td | ./tbody/tr/td")
    code_cells = [cell for cell in cells if cell.xpath(".//pre")]
    if len(cells) != 2 or len(code_cells) != 1:
        return
    other = cells[0] if cells[1] is code_cells[0] else cells[1]
    if text_of(other).split() and not all(token.isdigit() for token in text_of(other).split()):
        return
    holder = code_cells[0]
    pre = holder.xpath(".//pre")[0]
    # the language may be on the table's wrapper (Sphinx: div.highlight-python > table)
    language = _code_language(pre) or _language_of(table)
    if language and not _code_language(pre):
        pre.set("class", f"language-{language}")
    pre.tail = table.tail
    table.getparent().replace(table, pre)


def _code_language(pre: Element) -> str | None:
    """The language the page marks on a `<pre>`, its `<code>`, or up to two wrappers around it
    (Sphinx: `div.highlight-python > div.highlight > pre`)."""
    for element in (pre, *pre.iterchildren("code")):
        language = element.get("data-lang") or element.get("data-language") or _language_of(element)
        if language:
            return _normal_language(language)
    for ancestor, _ in zip(pre.iterancestors(), range(2)):
        language = _language_of(ancestor)
        if language:
            return _normal_language(language)
    return None


def _language_of(element: Element) -> str | None:
    match = _LANGUAGE_CLASS.search(element.get("class") or "")
    return match.group(1) if match else None


def _normal_language(language: str) -> str | None:
    language = language.lower().strip(".-")
    return None if not language or language in _NO_LANGUAGE else language


def _prepare_admonitions(region: Element) -> None:
    for box in region.xpath(".//div | .//aside | .//section"):
        if not _ADMONITION_CLASS.search(box.get("class") or "") or not text_of(box).strip():
            continue
        if box.xpath(".//h1 | .//h2 | .//h3"):  # a section that only looks like one
            continue
        first = next(box.iterchildren(etree.Element), None)
        if first is not None and _ADMONITION_TITLE.search(first.get("class") or "") and len(text_of(first).split()) <= 20:
            # the label, with what it holds (a link, code), in bold as the quote's first paragraph
            strong = etree.Element("strong")
            strong.text, first.text = first.text, None
            for child in list(first):
                strong.append(child)
            first.tag = "p"
            first.attrib.clear()
            first.append(strong)
        box.tag = "blockquote"
        box.attrib.clear()


def _prepare_definition_lists(region: Element) -> None:
    """Each term a paragraph of its own (bold, or inline code for an API signature), each
    definition's blocks after it, unindented: a fence or a table inside a definition stays one."""
    for dl in reversed(region.xpath(".//dl")):  # innermost first
        parent = dl.getparent()
        if parent is None:
            continue
        replacement = etree.Element("div")
        for item in dl.iterchildren(etree.Element):
            if item.tag == "dt":
                replacement.append(_term(item))
            elif item.tag == "dd":
                holder = etree.SubElement(replacement, "div")
                holder.text = item.text
                for child in list(item):
                    holder.append(child)
            else:  # a <div> grouping dt/dd pairs (HTML allows it)
                replacement.append(item)
        replacement.tail = dl.tail
        parent.replace(dl, replacement)


def _term(dt: Element) -> Element:
    paragraph = etree.Element("p")
    if _SIGNATURE_CLASS.search(dt.get("class") or "") or dt.xpath(".//*[contains(@class, 'sig-name') or contains(@class, 'descname')]"):
        # An API signature: its text as code, and the links beside it ("[source]") after it.
        links = [anchor for anchor in dt.iter("a") if text_of(anchor).strip().startswith("[")]
        for anchor in links:
            drop(anchor)
        code = etree.SubElement(paragraph, "code")
        code.text = " ".join(text_of(dt).split())
        code.tail = " " if links else None
        for anchor in links:
            anchor.tail = " " if anchor is not links[-1] else None
            paragraph.append(anchor)
        return paragraph
    strong = etree.SubElement(paragraph, "strong")
    strong.text = dt.text
    for child in list(dt):
        strong.append(child)
    return paragraph


def _join_item_paragraphs(region: Element) -> None:
    """A list item that opens with a few inline words and then a paragraph ("`permalink`: <p>Generate
    ...</p>") is one line of text: the paragraph joins the words instead of starting a block of its
    own, so the item reads whole."""
    for item in region.iter("li"):
        paragraph = item.find("p")
        if paragraph is None:
            continue
        leading = item[: item.index(paragraph)]
        if not (item.text or "").strip() and not leading:
            continue  # the item opens with its paragraph
        if any(child.tag in _BLOCK_TAGS for child in leading):
            continue
        paragraph.tail = (" " + paragraph.tail) if paragraph.tail else None
        if paragraph.text:
            paragraph.text = " " + paragraph.text
        unwrap(paragraph)


def _set_aside_tables(region: Element) -> dict[str, str]:
    """Tables GFM cannot hold, replaced by a placeholder paragraph; {placeholder: the table as
    HTML, attributes but spans stripped, with no blank line (which would end an HTML block)}.
    Cells with several paragraphs fit GFM: their paragraphs are joined by line breaks."""
    kept: dict[str, str] = {}
    for table in region.xpath(".//table"):
        if table.getparent() is None or any(ancestor.tag == "table" for ancestor in table.iterancestors()):
            continue
        if _fits_gfm(table):
            for cell in table.xpath(".//td[count(p) > 1] | .//th[count(p) > 1]"):
                _join_paragraphs(cell)
            continue
        for element in table.iter(etree.Element):
            for attribute in list(element.attrib):
                if attribute not in ("colspan", "rowspan", "href", "src", "alt"):
                    del element.attrib[attribute]
        html = etree.tostring(table, method="html", encoding="unicode", with_tail=False).strip()
        while "\n\n" in html or "\n \n" in html:
            html = html.replace("\n\n", "\n&#10;").replace("\n \n", "\n&#10;")
        placeholder = f"FACTFLOWTABLE{len(kept)}X"
        kept[placeholder] = html
        paragraph = etree.Element("p")
        paragraph.text = placeholder
        paragraph.tail = table.tail
        table.getparent().replace(table, paragraph)
    return kept


def _fits_gfm(table: Element) -> bool:
    for cell in table.xpath(".//td | .//th"):
        if cell.get("rowspan", "1") != "1" or cell.get("colspan", "1") != "1":
            return False
        if cell.xpath(_BLOCKS_IN_CELL):
            return False
    return True


def _join_paragraphs(cell: Element) -> None:
    paragraphs = cell.findall("p")
    for paragraph in paragraphs[1:]:
        paragraph.addprevious(etree.Element("br"))
    for paragraph in paragraphs:
        unwrap(paragraph)
