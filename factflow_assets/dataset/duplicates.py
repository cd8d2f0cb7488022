"""Pages of one execution that say the same thing: found, so an index gets each text once.

Three kinds, checked in this order:
- canonical: the page names another crawled page as its `<link rel=canonical>`;
- exact: its markdown is byte for byte another page's (a `?utm=` variant, a trailing-slash one);
- near: its word 5-shingles overlap another page's by NEAR_JACCARD or more (a print view with a
  header line more, a syndicated copy in other chrome), estimated with MinHash and found with
  locality-sensitive hashing (datasketch), so the cost grows with the pages, not their pairs.
Of each group one page is kept: the one the others name as canonical, else the first crawled. A
page of fewer than MIN_WORDS words is never called a duplicate: a redirect stub or a "coming soon"
page says too little to be the same document as another.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..extraction.text_signature import MIN_WORDS, PERMUTATIONS, as_minhash, shingle_signature, word_count
from ..urls import same_page

__all__ = ["Duplicate", "PageFacts", "as_minhash", "find_duplicates", "shingle_signature", "word_count"]

#: The LSH bands are chosen to miss few true pairs (a missed pair is a duplicate indexed twice); a
#: candidate is checked on its signature anyway, so a false one only costs that check. Measured:
#: pairs overlapping by 0.9 become candidates 99.4 % of the time (with equal weights, 81 %).
LSH_WEIGHTS = (0.05, 0.95)
#: Shingle overlap from which two pages are one document (measured: the most alike distinct pages of
#: ../shared/corpora/docs-dev, Django release notes of two bugfix versions, overlap by 0.72).
NEAR_JACCARD = 0.85


@dataclass
class PageFacts:
    """What deciding needs of one page: where it is, what it names as canonical, its text's hash
    and signature, and when it was crawled."""

    message_id: str
    url: str
    final_url: str
    canonical_url: str | None
    content_hash: str
    order: tuple  # its URL's place in the sitemap, then when it was crawled
    words: int
    signature: list[int] | None = None  # its MinHash values (text_signature.py)


@dataclass(frozen=True)
class Duplicate:
    of: str  # the kept page's message id
    kind: str  # canonical, exact, near
    similarity: float


def find_duplicates(pages: list[PageFacts]) -> dict[str, Duplicate]:
    """{message id of a duplicate page: which page it duplicates, how}."""
    ordered = sorted(pages, key=lambda page: (page.order, page.message_id))
    by_url: dict[str, PageFacts] = {}
    for page in ordered:
        for url in (page.url, page.final_url):
            by_url.setdefault(same_page(url), page)
    for page in ordered:  # of the pages one normal URL names, the one at exactly that URL answers for it
        for url in (page.url, page.final_url):
            if url == same_page(url):
                by_url[url] = page
    named = {id(by_url[same_page(p.canonical_url)]) for p in ordered if p.canonical_url and same_page(p.canonical_url) in by_url}
    # the keeper of a group: a page others name as canonical comes first, then crawl order
    rank = {id(page): (id(page) not in named, index) for index, page in enumerate(ordered)}
    found: dict[str, Duplicate] = {}
    for page in sorted(ordered, key=lambda p: rank[id(p)]):
        target = by_url.get(same_page(page.canonical_url)) if page.canonical_url else None
        # two pages naming each other: the first one taken keeps its text
        if target is not None and target is not page and target.message_id not in found and page.words >= MIN_WORDS:
            found[page.message_id] = Duplicate(target.message_id, "canonical", 1.0)
    keepers: dict[str, PageFacts] = {}
    for page in sorted(ordered, key=lambda p: rank[id(p)]):
        if page.message_id in found or page.words < MIN_WORDS:
            continue
        keeper = keepers.setdefault(page.content_hash, page)
        if keeper is not page:
            found[page.message_id] = Duplicate(keeper.message_id, "exact", 1.0)
    found.update(_near_duplicates([page for page in sorted(ordered, key=lambda p: rank[id(p)]) if page.message_id not in found], rank))
    # a duplicate of a duplicate is one of the page that one duplicates
    for message_id, duplicate in list(found.items()):
        seen = {message_id}
        while duplicate.of in found and duplicate.of not in seen:
            seen.add(duplicate.of)
            duplicate = Duplicate(found[duplicate.of].of, duplicate.kind, duplicate.similarity)
        found[message_id] = duplicate
    return found


def _near_duplicates(candidates: list[PageFacts], rank: dict[int, tuple]) -> dict[str, Duplicate]:
    """Of `candidates` (in the order their keepers are chosen), each whose signature overlaps an
    earlier kept one's by NEAR_JACCARD or more. datasketch (and the scipy it imports) is loaded
    only when there are two signatures to compare: a one-page execution's dataset never needs it."""
    if sum(1 for page in candidates if page.signature) < 2:
        return {}
    from datasketch import MinHashLSH

    signed = [(page, signature) for page in candidates if (signature := as_minhash(page.signature)) is not None]
    found: dict[str, Duplicate] = {}
    index = MinHashLSH(threshold=NEAR_JACCARD, num_perm=PERMUTATIONS, weights=LSH_WEIGHTS)
    kept: dict[str, tuple[PageFacts, object]] = {}
    for page, signature in signed:
        scored = [(signature.jaccard(other_signature), other) for other, other_signature in (kept[key] for key in index.query(signature))]
        best = max(scored, key=lambda pair: (pair[0], -rank[id(pair[1])][1]), default=(0.0, None))
        if best[1] is not None and best[0] >= NEAR_JACCARD:
            found[page.message_id] = Duplicate(best[1].message_id, "near", round(best[0], 3))
        else:
            index.insert(page.message_id, signature)
            kept[page.message_id] = (page, signature)
    return found

