"""The offline default answerer: picks the sentences of the retrieved passages
that best answer the question and quotes them, each with its ``[n]``; refuses
when the evidence is too weak. No sentence leaves here without a citation."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.answer import REFUSAL, Draft, History, OnDelta
from assistant.question import Question, analyse, standalone
from assistant.retrieve import Passage
from index.identifiers import find_identifiers
from index.identifiers import keys as identifier_keys
from index.tokenize import normalise, tokens

Embed = Callable[[list[str]], list[list[float]]]

_SPLIT = re.compile(r"(?<=[.!?;])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9])|\n+")
_BULLET = re.compile(r"^[\s•·\-–*]+")
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_KIND = {
    "date": re.compile(rf"\b\d{{1,2}} {_MONTH}\b|\b{_MONTH} \d{{1,2}}\b|\b{_MONTH} (?:19|20)\d\d\b|\b(?:19|20)\d\d\b"),
    "year": re.compile(r"\b(?:19|20)\d\d\b"),
    "number": re.compile(r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                         r"dozens|hundreds|thousands)\b", re.I),
    "person": re.compile(r"\b(?:Dr\.? |Mr\.? |Ms\.? )?[A-Z][a-z]+ (?:[A-Z][a-z]+|[A-Z]{2,})\b"),
    "place": re.compile(r"\b(?:in|at|from|to) (?:the )?[A-Z][a-z]+"),
}
_YEAR_Q = re.compile(r"\b(what|which|in what|in which) year\b", re.I)


@dataclass
class Candidate:
    passage: int  # 1-based number of the passage
    text: str
    score: float = 0.0
    lex: float = 0.0
    sem: float = 0.0
    kind_ok: bool = False


class ExtractiveAnswerer:
    """Quotes one to three supported sentences; tuned thresholds live in the constructor."""

    name = "extractive"

    def __init__(self, embed: Embed | None = None, min_score: float = 0.42, max_sentences: int = 3,
                 max_chars: int = 480) -> None:
        self.embed = embed
        self.min_score = min_score
        self.max_sentences = max_sentences
        self.max_chars = max_chars

    def answer(self, question: str, passages: Sequence[Passage], history: History = (),
               on_delta: OnDelta | None = None) -> Draft:
        draft = self.draft(question, passages, history)
        if on_delta:
            on_delta(draft.text)
        return draft

    def draft(self, question: str, passages: Sequence[Passage], history: History = ()) -> Draft:
        q = analyse(question)
        full = analyse(standalone(question, history)) if history else q
        kind = "year" if _YEAR_Q.search(question) else q.kind
        if not passages:
            return Draft(REFUSAL, refused=True, notes=["nothing was retrieved"])
        joined = " ".join(p.text for p in passages)
        evidence = normalise(joined).lower()
        wanted = find_identifiers(question)
        have = identifier_keys(joined)
        missing = [i.label for i in wanted if i.key not in have]
        covered = " ".join(i.label for i in wanted) + " " + " ".join(i.key for i in wanted)
        missing += [t for t in q.specific if t not in covered and normalise(t).lower() not in evidence]
        if missing:
            return Draft(f"{REFUSAL} They do not mention {', '.join(repr(m) for m in missing[:3])}.",
                         refused=True, notes=[f"absent from the evidence: {', '.join(missing)}"])
        cands = self.score(q, full, kind, passages)
        if not cands or cands[0].score < self.min_score:
            best = cands[0].score if cands else 0.0
            return Draft(REFUSAL, refused=True, notes=[f"best sentence score {best:.2f} < {self.min_score:.2f}"])
        chosen = self.select(cands, full)
        parts, quotes = [], {}
        for c in chosen:
            body = c.text.rstrip()
            end = body[-1] if body[-1] in ".!?" else "."
            body = body.rstrip(".!?;:")
            parts.append(f"{body} [{c.passage}]{end}")
            quotes.setdefault(c.passage, []).append(c.text)
        return Draft(" ".join(parts), quotes=quotes,
                     notes=[f"best sentence score {chosen[0].score:.2f}"])

    def score(self, q: Question, full: Question, kind: str | None, passages: Sequence[Passage]) -> list[Candidate]:
        cands = [Candidate(i, s) for i, p in enumerate(passages, 1) for s in sentences(p.text)]
        if not cands:
            return []
        weights = {t: (2.0 if any(ch.isdigit() for ch in t) else 1.0) for t in full.terms}
        own = set(q.terms)
        total = sum(weights[t] * (1.0 if t in own else 0.5) for t in weights) or 1.0
        sems = self._similarities(q.text if q is full else full.text, [c.text for c in cands])
        for c, sem in zip(cands, sems, strict=True):
            toks = set(tokens(c.text))
            c.lex = sum(weights[t] * (1.0 if t in own else 0.5) for t in weights if t in toks) / total
            c.sem = sem
            c.kind_ok = kind is None or bool(_KIND[kind].search(_strip_question_terms(c.text, q)))
            prior = 1.0 / (1 + 0.25 * (c.passage - 1))
            c.score = 0.45 * c.sem + 0.35 * c.lex + 0.12 * c.kind_ok + 0.08 * prior
        cands.sort(key=lambda c: -c.score)
        return cands

    def select(self, cands: list[Candidate], q: Question) -> list[Candidate]:
        best = cands[0]
        chosen = [best]
        covered = set(tokens(best.text))
        length = len(best.text)
        for c in cands[1:]:
            if len(chosen) >= self.max_sentences:
                break
            new_terms = [t for t in q.terms if t in set(tokens(c.text)) - covered]
            if c.score < 0.8 * best.score or not new_terms or length + len(c.text) > self.max_chars:
                continue
            if any(_overlap(c.text, o.text) > 0.6 for o in chosen):
                continue
            chosen.append(c)
            covered |= set(tokens(c.text))
            length += len(c.text)
        return chosen

    def _similarities(self, question: str, texts: list[str]) -> list[float]:
        if self.embed is None:
            return [0.0] * len(texts)
        vectors = np.asarray(self.embed([question, *texts]), dtype=np.float32)
        return (vectors[1:] @ vectors[0]).tolist()


def sentences(text: str) -> list[str]:
    """Sentences (and bullet items) of a passage, cleaned for quoting."""
    out = []
    for raw in _SPLIT.split(text):
        s = _BULLET.sub("", raw).strip()
        s = re.sub(r"\s+", " ", s)
        if len(s.split()) >= 4:
            out.append(s)
    return out


def _strip_question_terms(text: str, q: Question) -> str:
    """The sentence without the question's own specific terms (a year asked about is no answer)."""
    for term in q.specific:
        text = text.replace(term, " ")
    return text


def _overlap(a: str, b: str) -> float:
    ta, tb = set(tokens(a)), set(tokens(b))
    return len(ta & tb) / max(1, min(len(ta), len(tb)))
