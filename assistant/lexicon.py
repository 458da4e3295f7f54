"""How common an English word is, from wordfreq's general frequency lists (shipped in
its wheel, no download): the answerer tells names and rare terms from ordinary words
this way instead of keeping word lists written for one corpus."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=200_000)
def zipf(word: str) -> float:
    """Zipf frequency of ``word`` in English (about 7 for "the", 0 for a word never seen)."""
    try:
        from wordfreq import zipf_frequency
    except ImportError as exc:  # a core dependency; only a broken install lacks it
        raise ImportError("wordfreq is missing: pip install -e . (it is a core dependency)") from exc
    return float(zipf_frequency(word.lower(), "en"))


def rare(word: str, below: float = 3.5) -> bool:
    """A word most English text never uses: a name, a place, a technical term."""
    return zipf(word) < below
