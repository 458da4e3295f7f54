"""A question's content terms, the specific terms the evidence must contain, and
follow-up resolution. What kind of answer it asks for is decided in compose.py."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.tokenize import normalise, tokens

_QUESTION_WORDS = frozenset(
    "who whom whose when where what which why how many much does do did is are was were tell me please "
    "name list give".split()
)
_FOLLOW_UP = re.compile(r"\b(it|its|it's|they|them|their|this|that|these|those|he|she|his|her|there|the group|"
                        r"the standard|the committee|the task force|the report|the forum|the meeting)\b", re.I)
_CAPITAL = re.compile(r"\b[A-Z][\w’'-]*[A-Z0-9][\w-]*\b|\b[A-Z][a-z]{2,}\b")
_NUMBER = re.compile(r"\b\d[\d,.:/-]*\b")
_STOP_CAPS = frozenset(
    "Who When Where What Which Why How Does Do Did Is Are Was Were The A An In On Of For And Tell Name "
    "List Give Please Can Could Has Have Had According".split()
)


@dataclass(frozen=True)
class Question:
    text: str
    terms: tuple[str, ...]  # stemmed content terms (BM25 tokens)
    specific: tuple[str, ...]  # numbers, identifiers, names the evidence must contain


def analyse(text: str) -> Question:
    terms = tuple(t for t in tokens(text) if t not in _QUESTION_WORDS)
    specific: list[str] = []
    norm = normalise(text)
    for m in _NUMBER.finditer(norm):
        specific.append(m.group().rstrip(".,"))
    words = norm.split()
    for m in _CAPITAL.finditer(norm):
        word = m.group()
        first = words and norm.lstrip().startswith(word)
        if word in _STOP_CAPS or (first and word.istitle()):
            continue
        specific.append(word)
    return Question(text, terms, tuple(dict.fromkeys(specific)))


def keyword_class(text: str) -> str:
    """What BM25 can add for this question: "id" (a standard or committee), "number" (a year, a
    count), "name" (a rare capitalised word, such as a person or place), or "plain" (ordinary words,
    where it mostly adds look-alikes). Retrieval weighs BM25 by class (fitted: assistant/weights.json)."""
    from assistant.lexicon import rare
    from index.identifiers import find_identifiers

    norm = normalise(text)
    if find_identifiers(norm):
        return "id"
    if _NUMBER.search(norm):
        return "number"
    words = norm.split()
    for m in _CAPITAL.finditer(norm):
        word = m.group().strip("’'-")
        if word in _STOP_CAPS or (words and norm.lstrip().startswith(word) and word.istitle()):
            continue
        if rare(word):
            return "name"
    return "plain"


def is_follow_up(text: str) -> bool:
    """Short or pronoun-led questions lean on the conversation for their subject."""
    q = analyse(text)
    return bool(_FOLLOW_UP.search(text)) and len(q.specific) == 0 or len(q.terms) <= 1


def standalone(text: str, history: Sequence[tuple[str, str]]) -> str:
    """Carry the subject of the last turn into a follow-up question (no LLM needed)."""
    if not history or not is_follow_up(text):
        return text
    last_user = history[-1][0]
    return f"{last_user} {text}"
