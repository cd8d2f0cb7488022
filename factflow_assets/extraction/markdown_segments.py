"""Markdown cut into token-bounded segments along its own structure.

A page's markdown is parsed (markdown-it, CommonMark with GFM tables) into top-level blocks and
grouped into sections, one per heading. A section that fits in `max_tokens` is one segment; a
larger one is packed block by block. A single block larger than `max_tokens` is split where its
kind allows: a code block between lines (each part fenced again), a table between rows (each part
with the header row again), prose between lines, then sentences, then words; a code block inside
a list item is kept whole like a line, or split as code. So every segment's fences are balanced.
Segments smaller than `min_tokens` (a heading with one line under it) are merged into a neighbour
when the two fit. Each segment keeps the heading path where it starts and the lines of the page it
covers. Every segment's exact count (fence lines included) is at most `max_tokens`: a segment a join
pushed over is cut again. With `overlap_tokens`, a segment opens with the last lines (or a whole
code block) of the one before it in the same section, within that many tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from markdown_it import MarkdownIt

from .tokens import count_tokens, encoding

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_WHITESPACE = re.compile(r"(?<=\s)(?=\S)")


@dataclass
class Segment:
    text: str
    heading_path: list[str]
    line_start: int  # 0-based, in the page's markdown
    line_end: int  # exclusive
    tokens: int = 0
    #: Tokens at the start of `text` that repeat the end of the segment before it.
    overlap_tokens: int = 0


@dataclass
class _Block:
    kind: str  # heading, code, table, prose
    text: str
    line_start: int
    line_end: int
    heading_level: int = 0
    heading: str = ""


@dataclass
class _Section:
    path: list[str]
    blocks: list[_Block] = field(default_factory=list)


#: Tokens of the blank line that joins two blocks.
_SEPARATOR_TOKENS = 1


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    """Block structure only: segmenting reads block types, line ranges and a heading's raw text,
    never inline markup, so the inline pass (a third of the parse time) is switched off."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).disable(["inline", "text_join"])


def segment_markdown(markdown: str, max_tokens: int, min_tokens: int, overlap_tokens: int = 0) -> list[Segment]:
    """The segments of `markdown`, in order, each at most `max_tokens` tokens."""
    lines = markdown.split("\n")
    budget = max_tokens - overlap_tokens
    pieces: list[Segment] = []
    for section in _sections(_blocks(markdown, lines)):
        pieces.extend(_pack(section, budget))
    segments = [fitted for segment in _merge_small(pieces, budget, min(min_tokens, budget - 1)) for fitted in _fit(segment, budget)]
    return _with_overlap(segments, overlap_tokens, max_tokens) if overlap_tokens else segments


def _blocks(markdown: str, lines: list[str]) -> list[_Block]:
    tokens = _parser().parse(markdown)
    blocks = []
    for index, token in enumerate(tokens):
        if token.level != 0 or token.map is None or token.nesting == -1:
            continue
        start, end = token.map
        text = "\n".join(lines[start:end]).strip("\n")
        if not text.strip():
            continue
        if token.type == "heading_open":
            title = tokens[index + 1].content.strip()
            blocks.append(_Block("heading", text, start, end, int(token.tag[1]), title))
        elif token.type in ("fence", "code_block"):
            blocks.append(_Block("code", text, start, end))
        elif token.type == "table_open":
            blocks.append(_Block("table", text, start, end))
        else:
            blocks.append(_Block("prose", text, start, end))
    return blocks


def _sections(blocks: list[_Block]) -> list[_Section]:
    sections = [_Section([])]
    stack: list[tuple[int, str]] = []
    for block in blocks:
        if block.kind == "heading":
            stack = [(level, title) for level, title in stack if level < block.heading_level]
            stack.append((block.heading_level, block.heading))
            sections.append(_Section([title for _, title in stack]))
        sections[-1].blocks.append(block)
    return [section for section in sections if section.blocks]


def _pack(section: _Section, max_tokens: int) -> list[Segment]:
    """The section as few segments as fit, cut only between blocks when it can be helped.

    Joining two texts with a blank line costs at most the separator's one token: the boundary
    can only merge tokens (a sentence's final "." and the line breaks become one), never split
    them. So the sum of the parts' counts plus one per separator bounds the join from above, and
    the join is counted exactly only when that bound says it may not fit; counting every
    candidate join made packing quadratic in a section's blocks.
    """
    parts: list[tuple[_Block, int]] = []
    for block in section.blocks:
        tokens = count_tokens(block.text)
        if tokens <= max_tokens:
            parts.append((block, tokens))
        else:
            parts.extend((piece, count_tokens(piece.text)) for piece in _split_block(block, max_tokens))
    segments: list[Segment] = []
    current: list[_Block] = []
    bound = 0  # the tokens of `current` joined, or more: an upper bound
    for part, tokens in parts:
        if not current:
            bound = tokens
        elif (bound := bound + _SEPARATOR_TOKENS + tokens) > max_tokens:
            bound = count_tokens(_join(current + [part]))
            if bound > max_tokens:
                segments.append(_segment(current, section.path))
                current, bound = [], tokens
        current.append(part)
    if current:
        segments.append(_segment(current, section.path))
    return segments


def _segment(blocks: list[_Block], path: list[str]) -> Segment:
    text = _join(blocks)
    return Segment(text, list(path), blocks[0].line_start, blocks[-1].line_end, count_tokens(text))


def _join(blocks: list[_Block]) -> str:
    return "\n\n".join(block.text for block in blocks)


def _split_block(block: _Block, max_tokens: int) -> list[_Block]:
    if block.kind == "code":
        return _split_code(block, max_tokens)
    if block.kind == "table":
        return _split_table(block, max_tokens)
    return [_Block(block.kind, text, block.line_start, block.line_end) for text in _split_lines(block.text, max_tokens)]


def _split_code(block: _Block, max_tokens: int) -> list[_Block]:
    """A fenced code block in parts between lines, each part fenced like the original."""
    return [_Block("code", text, block.line_start, block.line_end) for text in _split_fenced(block.text.split("\n"), max_tokens)]


def _split_fenced(lines: list[str], budget: int) -> list[str]:
    """Code lines (a fenced block, or an indented one) in parts, each fenced like the whole."""
    opening = _FENCE.match(lines[0])
    if opening is None:  # an indented code block
        return _pack_lines(lines, budget)
    closing_line = lines[-1] if len(lines) > 1 and _closes(lines[-1], opening) else f"{opening.group('indent')}{opening.group('fence')}"
    body = lines[1:-1] if closing_line is lines[-1] else lines[1:]
    overhead = count_tokens(f"{lines[0]}\n\n{closing_line}")
    return ["\n".join((lines[0], chunk, closing_line)) for chunk in _pack_lines(body, max(budget - overhead, 1))]


def _closes(line: str, opening: re.Match) -> bool:
    found = _FENCE.match(line)
    fence = opening.group("fence")
    return found is not None and found.group("fence")[0] == fence[0] and len(found.group("fence")) >= len(fence) and not found.group("info").strip()


def _units(lines: list[str]) -> list[tuple[bool, list[str]]]:
    """Lines grouped for cutting: a fenced region (code inside a list item, say) is one unit,
    (True, its lines); every other line is a unit of its own, (False, [line])."""
    units: list[tuple[bool, list[str]]] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            units.append((False, [lines[index]]))
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not _closes(lines[end], opening):
            end += 1
        units.append((True, lines[index : end + 1]))
        index = end + 1
    return units


def _split_lines(text: str, budget: int) -> list[str]:
    """Prose (with any code nested in it) cut between lines, a fenced region never cut except as
    code, fenced again; a line too long for a part is cut at sentences, then words."""
    budget = max(budget, 1)
    if count_tokens(text) <= budget:
        return [text]
    chunks: list[str] = []
    current: list[str] = []
    for fenced, unit in _units(text.split("\n")):
        joined = "\n".join(unit)
        if count_tokens(joined) > budget:
            if current:
                chunks.append("\n".join(current))
                current = []
            chunks.extend(_split_fenced(unit, budget) if fenced else _split_text(joined, budget))
            continue
        if current and count_tokens("\n".join(current + unit)) > budget:
            chunks.append("\n".join(current))
            current = []
        current.extend(unit)
    if current:
        chunks.append("\n".join(current))
    return [chunk for chunk in (c.strip("\n") for c in chunks) if chunk.strip()]


def _split_table(block: _Block, max_tokens: int) -> list[_Block]:
    """A table in parts between rows, each part with the header and delimiter rows again."""
    lines = block.text.split("\n")
    header = "\n".join(lines[:2])
    budget = max_tokens - count_tokens(header + "\n")
    return [_Block("table", f"{header}\n{chunk}", block.line_start, block.line_end) for chunk in _pack_lines(lines[2:], budget)]


def _pack_lines(lines: list[str], budget: int) -> list[str]:
    """Consecutive lines joined into chunks of at most `budget` tokens; a longer line is cut."""
    chunks: list[str] = []
    current: list[str] = []
    for line in lines:
        if count_tokens(line) > budget:
            if current:
                chunks.append("\n".join(current))
                current = []
            chunks.extend(_split_text(line, budget))
            continue
        if current and count_tokens("\n".join(current + [line])) > budget:
            chunks.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        chunks.append("\n".join(current))
    return chunks


def _split_text(text: str, budget: int) -> list[str]:
    """Prose cut at the coarsest boundary that works: lines, then sentences, then words, then tokens."""
    budget = max(budget, 1)
    if count_tokens(text) <= budget:
        return [text]
    for boundary in ("\n", _SENTENCE_END, _WHITESPACE):
        pieces = text.split("\n") if boundary == "\n" else boundary.split(text)
        if len(pieces) > 1:
            glue = "\n" if boundary == "\n" else (" " if boundary is _SENTENCE_END else "")
            return _greedy(pieces, budget, glue)
    encoded = encoding().encode_ordinary(text)
    return [encoding().decode(encoded[i : i + budget]) for i in range(0, len(encoded), budget)]


def _greedy(pieces: list[str], budget: int, glue: str) -> list[str]:
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if count_tokens(piece) > budget:
            if current:
                chunks.append(current)
                current = ""
            chunks.extend(_split_text(piece, budget))
            continue
        candidate = f"{current}{glue}{piece}" if current else piece
        if current and count_tokens(candidate) > budget:
            chunks.append(current)
            candidate = piece
        current = candidate
    if current:
        chunks.append(current)
    return [chunk.strip() for chunk in chunks if chunk.strip()]


def _fit(segment: Segment, max_tokens: int) -> list[Segment]:
    """The segment, or its parts when its exact count is over `max_tokens` (a join of parts can
    tokenize longer than the parts did): cut again with a budget shrunk by the excess."""
    if segment.tokens <= max_tokens:
        return [segment]
    budget = max_tokens - (segment.tokens - max_tokens)
    while True:
        parts = _split_lines(segment.text, budget)
        counted = [count_tokens(part) for part in parts]
        if max(counted) <= max_tokens or budget <= 1:
            return [Segment(part, segment.heading_path, segment.line_start, segment.line_end, tokens) for part, tokens in zip(parts, counted)]
        budget -= max(max(counted) - max_tokens, 1)


def _with_overlap(segments: list[Segment], overlap_tokens: int, max_tokens: int) -> list[Segment]:
    """Each segment after the first of its section opens with the end of the one before it: its
    last lines, or its last code block whole, within `overlap_tokens` (and `max_tokens` in all)."""
    result = [segments[0]] if segments else []
    for before, segment in zip(segments, segments[1:]):
        taken: list[str] = []
        if before.heading_path == segment.heading_path:
            for _, unit in reversed(_units(before.text.split("\n"))):
                candidate = unit + taken
                if count_tokens("\n".join(candidate)) > overlap_tokens:
                    break
                taken = candidate
        overlap = "\n".join(taken).strip("\n")
        text = f"{overlap}\n\n{segment.text}" if overlap.strip() else segment.text
        tokens = count_tokens(text)
        if tokens > max_tokens:
            text, tokens, overlap = segment.text, segment.tokens, ""
        result.append(Segment(text, segment.heading_path, segment.line_start, segment.line_end, tokens, count_tokens(overlap) if overlap else 0))
    return result


def _merge_small(pieces: list[Segment], max_tokens: int, min_tokens: int) -> list[Segment]:
    """Merge each segment under `min_tokens` into the next one, else the previous, when they fit."""
    merged: list[Segment] = []
    pending: Segment | None = None
    for piece in pieces:
        if pending is not None:
            combined = _combine(pending, piece)
            if combined.tokens <= max_tokens:
                piece = combined
            else:
                merged.append(pending)
            pending = None
        if piece.tokens < min_tokens:
            pending = piece
        else:
            merged.append(piece)
    if pending is not None:
        if merged and (combined := _combine(merged[-1], pending)).tokens <= max_tokens:
            merged[-1] = combined
        else:
            merged.append(pending)
    return merged


def _combine(first: Segment, second: Segment) -> Segment:
    text = f"{first.text}\n\n{second.text}"
    return Segment(text, first.heading_path, first.line_start, second.line_end, count_tokens(text))
