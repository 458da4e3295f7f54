"""The answer types, the ``Answerer`` protocol both paths implement, and the
citation check every answer passes before anyone sees it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from assistant.retrieve import Passage

History = Sequence[tuple[str, str]]


class Quote(str):
    """The extractive answer sent ahead of a written one (``on_delta`` gets it first, whole): shown at
    once as a quote, replaced when the written answer is done."""


OnDelta = Callable[[str], None]  # text as it is written; a ``Quote`` first where a written answer follows

REFUSAL = "The indexed bulletins do not cover this question."
_CITE = re.compile(r"\[(\d{1,3})\]")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])")


@dataclass
class Draft:
    """An answerer's output: text with ``[n]`` markers that refer to ``passages[n-1]``."""

    text: str
    refused: bool = False
    notes: list[str] = field(default_factory=list)
    quotes: dict[int, list[str]] = field(default_factory=dict)  # passage number -> sentences used
    answerer: str | None = None  # who wrote it, where an answerer hands over to another (LLM -> extractive)
    ranked: list[tuple[int, str]] = field(default_factory=list)  # (passage, sentence) best first, if ranked


class Answerer(Protocol):
    """Turns a question and retrieved passages into a cited draft; streams through ``on_delta``."""

    name: str

    def answer(self, question: str, passages: Sequence[Passage], history: History,
               on_delta: OnDelta | None = None, as_of: str | None = None) -> Draft: ...


@dataclass
class Checked:
    """A draft after the citation check: markers renumbered to the passages actually cited."""

    text: str
    cited: list[Passage]
    quotes: list[list[str]]
    unsupported: list[str]
    dropped: list[int]


def check_citations(draft: Draft, passages: Sequence[Passage]) -> Checked:
    """Drop markers that point outside the passages given, renumber the rest 1..m in
    order of first use, and flag sentences that carry no citation."""
    order: list[int] = []
    dropped: list[int] = []

    def renumber(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if not 1 <= n <= len(passages):
            dropped.append(n)
            return ""
        if n not in order:
            order.append(n)
        return f"[{order.index(n) + 1}]"

    text = _CITE.sub(renumber, draft.text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    unsupported = [] if draft.refused else [
        s for s in _SENT.split(text) if s.strip() and not _CITE.search(s) and len(s.split()) > 2]
    cited = [passages[n - 1] for n in order]
    quotes = [draft.quotes.get(n, []) for n in order]
    return Checked(text, cited, quotes, unsupported, dropped)
