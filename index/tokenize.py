"""BM25 tokens: stemmed words without stop words, and identifiers (standard
numbers, committees) kept whole so "30145-3" or "TC260" match exactly."""

from __future__ import annotations

import re
from functools import lru_cache

# Committee-style names written with a space ("JTC 1", "WG 11", "SG 16", "TC 28", "SDG 11").
_SPACED = re.compile(r"\b(JTC|SC|WG|SG|TC|SDG|SyC|CD|FDIS|DIS)\s+(\d{1,4})\b", re.I)
# group 1: words with a digit (standard numbers, "tc260"); group 2: other words
_TOKEN = re.compile(r"([A-Za-z]*\d\w*(?:[-./:]\w+)*)|([^\W\d_]+(?:['’][a-z]+)?)", re.U)
_PARTS = re.compile(r"[-./:]")
_BRITISH = re.compile(r"is(?=ation|e\b|es\b|ed\b|ing\b)")
_STOP = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it "
    "its of on or our so such than that the their them then there these they this those to was we were "
    "what when where which who whom whose why will with would you your about also after all any both each "
    "more most other over same some up very".split()
)


@lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202 - PyStemmer has no type hints
    import Stemmer

    return Stemmer.Stemmer("english")


def normalise(text: str) -> str:
    """Join spaced committee numbers so they tokenise as one identifier."""
    return _SPACED.sub(lambda m: f"{m.group(1)}{m.group(2)}", text)


_STEMMED: dict[str, str] = {}  # word as written -> its token ("" for a stop word): a corpus has few


def _word_token(raw: str) -> str:
    word = raw.lower()
    if word in _STOP or len(word) < 2:
        return ""
    return str(_stemmer().stemWord(_BRITISH.sub("iz", word.replace("’", "'"))))


def tokens(text: str) -> list[str]:
    """Tokens for BM25: identifiers whole (and their parts), other words stemmed, plus one
    ``id:`` token per standard or committee so every spelling of it matches every other."""
    from index.identifiers import keys

    out: list[str] = [f"id:{k.lower().replace(' ', '')}" for k in sorted(keys(text))]
    stemmed = _STEMMED
    for number, raw in _TOKEN.findall(normalise(text)):
        if number:  # it cannot start or end with a separator, so nothing to strip
            word = number.lower()
            out.append(word)
            parts = [p for p in _PARTS.split(word) if p]
            if len(parts) > 1:
                out.extend(parts)
            continue
        tok = stemmed.get(raw)
        if tok is None:
            if len(stemmed) > 500_000:
                stemmed.clear()
            tok = stemmed[raw] = _word_token(raw)
        if tok:
            out.append(tok)
    return out
