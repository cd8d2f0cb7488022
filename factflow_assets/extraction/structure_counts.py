"""What a page's main region holds and what its markdown kept: code blocks, tables, headings, list
items and links, counted on both sides so that a loss shows in the sidecar instead of passing in
silence.

The markdown side is read line by line the way CommonMark reads blocks, since a full parse costs
ten times the conversion on a large page: a code block counts only when its fence is closed, a
table only with its delimiter row, and nothing inside a fence counts as a heading, item or link.
"""

from __future__ import annotations

import re

from lxml import etree

from .main_region import Element, is_permalink, text_of

#: The kinds counted, in the order the sidecar lists them.
KINDS = ("code_blocks", "tables", "headings", "list_items", "links")

_HEADINGS = etree.XPath(".//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6")
_FENCE = re.compile(r"^ {0,3}(?:>\s?)*\s*(`{3,}|~{3,})(.*)$")
_ATX_HEADING = re.compile(r"^ {0,3}(?:>\s?)*#{1,6}(?:\s|$)")
_LIST_ITEM = re.compile(r"^\s*(?:>\s?)*\s*(?:[-*+]|\d{1,9}[.)])(?:\s|$)")
_TABLE_DELIMITER = re.compile(r"^\s*(?:>\s?)*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
_LINK = re.compile(r"(?<!\\)\]\((?!\))")
_IMAGE = re.compile(r"(?<!\\)!\[")
_INLINE_CODE = re.compile(r"(`+).*?\1")
_THEMATIC_BREAK = re.compile(r"^\s*(?:[-*_]\s*){3,}$")


def region_structure(region: Element, links: bool = True) -> dict[str, int]:
    """Counts of the region as the page wrote it (before any change for the converter)."""
    counted = {
        "code_blocks": sum(1 for pre in region.iter("pre") if not any(a.tag == "pre" for a in pre.iterancestors("pre"))),
        "tables": sum(1 for table in region.iter("table") if not _is_layout_table(table)),
        "headings": sum(1 for heading in _HEADINGS(region) if text_of(heading).strip()),
        "list_items": sum(1 for item in region.iter("li") if item.getparent() is not None and item.getparent().tag in ("ul", "ol")),
        "links": 0,
    }
    if links:
        counted["links"] = sum(1 for anchor in region.iter("a") if _counts_as_link(anchor) and not _in_code_block(anchor))
    return counted


def markdown_structure(markdown: str) -> dict[str, int]:
    counted = dict.fromkeys(KINDS, 0)
    lines = markdown.split("\n")
    fence: str | None = None
    previous = ""
    for line in lines:
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence) and not opening.group(2).strip():
                fence = None
                counted["code_blocks"] += 1
            continue
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence = opening.group(1)
        elif _ATX_HEADING.match(line):
            counted["headings"] += 1
        elif _LIST_ITEM.match(line) and not _THEMATIC_BREAK.match(line):
            counted["list_items"] += 1
        elif "|" in previous and "-" in line and _TABLE_DELIMITER.match(line):
            counted["tables"] += 1
        counted["tables"] += line.count("<table")
        counted["code_blocks"] += line.count("<pre")
        counted["list_items"] += line.count("<li")
        if "](" in line:
            code_free = _INLINE_CODE.sub("", line)
            counted["links"] += len(_LINK.findall(code_free)) - len(_IMAGE.findall(code_free))
        previous = line
    return counted


def losses(region: dict[str, int], markdown: dict[str, int]) -> dict[str, int]:
    """{kind: how many fewer the markdown has} for every kind it has fewer of."""
    return {kind: region[kind] - markdown[kind] for kind in KINDS if markdown.get(kind, 0) < region.get(kind, 0)}


def describe_structure(region: dict[str, int], markdown: dict[str, int]) -> str:
    """`code_blocks 3/3, tables 1/1, ...`: per kind, what the region held / what the markdown kept.
    One short string, so the lineage row keeps it too (rows keep scalars)."""
    return ", ".join(f"{kind} {region.get(kind, 0)}/{markdown.get(kind, 0)}" for kind in KINDS)


def parse_structure(described: str) -> dict[str, tuple[int, int]]:
    """`describe_structure`'s string read back: {kind: (region, markdown)}; unknown parts ignored."""
    counts: dict[str, tuple[int, int]] = {}
    for part in described.split(","):
        kind, _, numbers = part.strip().partition(" ")
        held, _, kept = numbers.partition("/")
        if kind in KINDS and held.isdigit() and kept.isdigit():
            counts[kind] = (int(held), int(kept))
    return counts


def describe_losses(region: dict[str, int], markdown: dict[str, int]) -> str | None:
    """`tables 1 of 3, links 2 of 40` for the kinds the markdown has fewer of, or None."""
    lost = losses(region, markdown)
    return ", ".join(f"{kind} {count} of {region[kind]}" for kind, count in lost.items()) or None


def _counts_as_link(anchor: Element) -> bool:
    href = (anchor.get("href") or "").strip()
    if not href or href.lower().startswith("javascript:") or is_permalink(anchor):
        return False
    return bool(text_of(anchor).strip() or anchor.find(".//img") is not None)


def _in_code_block(element: Element) -> bool:
    """A link inside a code block stays as its text: the code is kept verbatim."""
    return any(ancestor.tag == "pre" for ancestor in element.iterancestors())


def _is_layout_table(table: Element) -> bool:
    """A code listing's line-number table is part of a code block, not a table."""
    return table.find(".//pre") is not None and len(table.xpath(".//td")) <= 2
