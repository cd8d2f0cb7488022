"""Token counting that works offline: tiktoken's `cl100k_base` from a copy shipped in the package.

tiktoken fetches its byte-pair files from the network on first use; a pipeline that segments
markdown must not depend on that (nor on a cache a previous run happened to leave). The ranks are
checked against the hash tiktoken expects for them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import tiktoken
from tiktoken.load import load_tiktoken_bpe

ENCODING = "cl100k_base"
_RANKS = Path(__file__).parent / "data" / "cl100k_base.tiktoken"
_RANKS_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# As tiktoken_ext.openai_public defines cl100k_base.
_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
_SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    return tiktoken.Encoding(
        name=ENCODING,
        pat_str=_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(_RANKS), expected_hash=_RANKS_SHA256),
        special_tokens=_SPECIAL_TOKENS,
    )


def count_tokens(text: str) -> int:
    """Tokens in `text`; special-token strings in it count as plain text."""
    return len(encoding().encode_ordinary(text))
