"""A page's text as a MinHash signature over word 5-shingles: made where the markdown is made (the
extraction's workers) and kept in its sidecar, so that finding near-duplicates later
(`dataset/duplicates.py`) reads it instead of reading and hashing every page again."""

from __future__ import annotations

import zlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasketch import MinHash

#: MinHash permutations: a Jaccard estimate within a few hundredths.
PERMUTATIONS = 128
#: Fewer words than this say too little to be the same document as another: no signature.
MIN_WORDS = 50
SHINGLE = 5
#: What the extraction's workers import before their first page (datasketch brings numpy and scipy).
SIGNATURE_MODULES = ("numpy", "datasketch")


@cache
def _kit():
    """numpy, datasketch's MinHash, and datasketch's own permutations for PERMUTATIONS (its default
    seed and scheme), made once. Imported on first use, not with this module: datasketch pulls in
    scipy (~0.3 s), which the run's own process needs only when it compares two signatures."""
    import numpy as np
    from datasketch import MinHash

    template = MinHash(num_perm=PERMUTATIONS)
    return np, MinHash, template.permutations, template.scheme, template.hashvalues.dtype


def shingle_signature(text: str) -> list[int] | None:
    """The text's MinHash values over word 5-shingles (None under MIN_WORDS words): what the
    markdown's sidecar keeps, made where the markdown is made (the extraction's workers), so that
    finding duplicates later reads it instead of reading and hashing every page again.

    A word is hashed once (crc32: the same in every process); a shingle's hash is rolled from its
    five words' in numpy (building each shingle as a string cost a 2,500-word page ~15 ms)."""
    words = text.lower().split()
    if len(words) < MIN_WORDS:
        return None
    np, minhash_type, permutations, scheme, _dtype = _kit()
    mask = np.uint64(0xFFFFFFFF)
    vocabulary = {word: zlib.crc32(word.encode()) for word in set(words)}
    hashes = np.fromiter(map(vocabulary.__getitem__, words), dtype=np.uint64, count=len(words))
    count = len(words) - SHINGLE + 1
    shingles = hashes[:count].copy()
    for offset in range(1, SHINGLE):
        shingles = (shingles * np.uint64(1_000_003) + hashes[offset : offset + count]) & mask
    minhash = minhash_type(num_perm=PERMUTATIONS, hashfunc=int, permutations=permutations, scheme=scheme)  # the values are hashes already
    minhash.update_batch(np.unique(shingles).tolist())
    return [int(value) for value in minhash.hashvalues]


def as_minhash(values: list[int] | None) -> MinHash | None:
    if not values or len(values) != PERMUTATIONS:
        return None
    np, minhash_type, permutations, scheme, dtype = _kit()
    return minhash_type(num_perm=PERMUTATIONS, hashvalues=np.array(values, dtype=dtype), permutations=permutations, scheme=scheme)


def word_count(text: str) -> int:
    return len(text.split())
