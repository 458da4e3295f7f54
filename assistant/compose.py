"""The offline default answerer: quotes the sentences of the retrieved passages that
best answer the question, each with its ``[n]``, or the items of a list the question
asks for; refuses when the evidence model says the answer is not there. Both
decisions are fitted models (assistant/weights.json) over the features of
assistant/evidence.py. No sentence leaves here without a citation."""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from assistant import weights
from assistant.answer import REFUSAL, Draft, History, OnDelta
from assistant.evidence import Candidate, evidence_features, question_kind, sentence_candidates
from assistant.question import Question, analyse, standalone
from assistant.retrieve import Passage
from assistant.when import resolve
from index.tokenize import tokens

Embed = Callable[[list[str]], list[list[float]]]

_PARTS = re.compile(r",?\s+and\s+(?=(?:who|what|when|where|which|how)\b)", re.I)
# "Which challenges are listed", "name the", "what are the": and "which/what <plural noun>" ("Which areas
# do ... focus on?"); a list is quoted only if a passage holds one sharing the question's words.
_LIST_Q = re.compile(r"\b(?:list(?:s|ed)?|enumerat\w*|name (?:the|all|some)|what are the|which are the)\b"
                     r"|\b(?:which|what)(?: (?:specific|main|key|other|[a-z]+-[a-z]+))?"
                     r" (?!is\b|was\b|has\b|does\b)[a-z]+[^s\W]s\b", re.I)
_ITEM = re.compile(r"^\s*(?:[-•·*–]|\d{1,2}[.)])\s+(\S.*?)\s*$")

__all__ = ["ExtractiveAnswerer"]


class ExtractiveAnswerer:
    """Quotes one to three supported sentences (or a list's items). The sentence and refusal models
    and the refusal threshold come from assistant/weights.json (``stdnews eval fit``)."""

    name = "extractive"

    def __init__(self, embed: Embed | None = None, max_sentences: int = 3, max_chars: int = 480,
                 embed_top: int = 24, fitted: weights.Weights | None = None, other_passage: float = 0.5) -> None:
        self.embed = embed
        self.max_sentences = max_sentences
        self.max_chars = max_chars
        self.embed_top = embed_top
        self.other_passage = other_passage
        self.fitted = fitted or weights.load()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()  # sentence -> vector

    def answer(self, question: str, passages: Sequence[Passage], history: History = (),
               on_delta: OnDelta | None = None, as_of: str | None = None) -> Draft:
        draft = self.draft(question, passages, history)  # the time frame is already in the passages' order
        if on_delta:
            on_delta(draft.text)
        return draft

    def candidates(self, question: str, passages: Sequence[Passage], history: History = ()
                   ) -> tuple[Question, Question, str | None, list[Candidate]]:
        """The question analysed (alone and with the conversation), the kind of answer it asks for, and
        every sentence of the passages with its features, not yet scored (``stdnews eval fit`` reads these)."""
        q = analyse(question)
        full = analyse(standalone(question, history)) if history else q
        kind = question_kind(question)
        return q, full, kind, sentence_candidates(q, full, kind, passages, self._similarities,
                                                  resolve(question).latest, self.embed_top)

    def assess(self, question: str, passages: Sequence[Passage], history: History = ()
               ) -> tuple[Question, Question, str | None, list[Candidate], dict[str, float], list[str]]:
        """The candidates scored best first, and the evidence features with the specific terms no
        passage holds."""
        q, full, kind, cands = self.candidates(question, passages, history)
        self.rank(cands)
        feats, absent = evidence_features(question, q, kind, passages, cands)
        return q, full, kind, cands, feats, absent

    def rank(self, cands: list[Candidate]) -> list[Candidate]:
        """Score sentences with the fitted sentence model, best first (in place)."""
        for c in cands:
            c.score = self.fitted.sentence.prob(c.features)
        cands.sort(key=lambda c: -c.score)
        return cands

    def draft(self, question: str, passages: Sequence[Passage], history: History = ()) -> Draft:
        if not passages:
            return Draft(REFUSAL, refused=True, notes=["nothing was retrieved"])
        q, _, _, cands, feats, absent = self.assess(question, passages, history)
        if not cands:
            return Draft(REFUSAL, refused=True, notes=["the passages hold no sentence to quote"])
        refusal = self.fitted.refusal
        p = refusal.prob(feats)
        note = f"evidence {p:.2f} (threshold {refusal.threshold:.2f})"
        if p < refusal.threshold:
            text = REFUSAL + (f" They do not mention {', '.join(repr(m) for m in absent[:3])}." if absent else "")
            return Draft(text, refused=True, notes=[note] + ([f"absent from the evidence: {', '.join(absent)}"]
                                                              if absent else []))
        ranked = [(c.passage, c.text) for c in cands]  # what a written answer reads (assistant/llm.py)
        if (_LIST_Q.search(question) or _leads_list(cands[0], passages)) and \
                (listed := self._list_answer(q, cands, passages)):
            return Draft(listed[0], quotes=listed[1], notes=[note, "answered with the items of a list"],
                         ranked=ranked)
        chosen = self._choose(question, cands, passages)
        parts_out, quotes = [], {}
        for c in chosen:
            body = c.text.rstrip()
            end = body[-1] if body[-1] in ".!?" else "."
            body = body.rstrip(".!?;:")
            parts_out.append(f"{body} [{c.passage}]{end}")
            quotes.setdefault(c.passage, []).append(c.text)
        return Draft(" ".join(parts_out), quotes=quotes, notes=[note, f"best sentence {chosen[0].score:.2f}"],
                     ranked=ranked)

    def _choose(self, question: str, cands: list[Candidate], passages: Sequence[Passage]) -> list[Candidate]:
        """The best sentence for each part of a two-part question ("who ... and when ..."), else the best
        ``max_sentences`` (``select``)."""
        parts = [p for p in _PARTS.split(question) if p.strip()]
        if len(parts) < 2 or min(len(p.split()) for p in parts) < 4:
            return self.select(cands, self.max_sentences)  # the kind is one of the fitted features
        chosen: list[Candidate] = []
        for part in parts:
            pc = self.rank(self.candidates(part, passages)[3])
            best = next((c for c in pc if c.kind_ok), pc[0] if pc else None)
            if best is not None and all(best.text != o.text for o in chosen):
                chosen.append(best)
        return chosen or cands[:1]

    def select(self, cands: list[Candidate], budget: int) -> list[Candidate]:
        """The best ``budget`` sentences within ``max_chars``, skipping near-repeats: the sentence model
        ranks well, but its first choice holds the answer less often than its first two or three do.
        A sentence from another passage than the best one must be nearly as likely (``other_passage``,
        a share of the best sentence's softmax weight), so the answer does not cite passages at random."""
        chosen: list[Candidate] = []
        length = 0
        top = self.fitted.sentence.logit(cands[0].features) if cands else 0.0
        for c in cands:
            if len(chosen) >= budget:
                break
            if chosen and length + len(c.text) > self.max_chars:
                continue
            if chosen and c.passage != chosen[0].passage and \
                    math.exp(self.fitted.sentence.logit(c.features) - top) < self.other_passage:
                continue
            if any(_overlap(c.text, o.text) > 0.6 for o in chosen):
                continue
            chosen.append(c)
            length += len(c.text)
        return chosen

    def _list_answer(self, q: Question, cands: Sequence[Candidate], passages: Sequence[Passage]
                     ) -> tuple[str, dict[int, list[str]]] | None:
        """A list question answered with the items of the list (two or more bulleted or numbered lines)
        whose lead-in shares most question terms, in the passages of the best sentences; each item cited.
        None when no list there says what the question asks (its lead-in shares no term, or the list
        shares under half of them, the lead-in counting double)."""
        order = list(dict.fromkeys(c.passage for c in cands[:3]))  # the passages of the best sentences
        terms = set(q.terms)
        best: tuple[float, int, str, list[str]] | None = None
        for n in order:
            for lead, items in _lists(passages[n - 1].text):
                # the lead-in ("Standards focusing on specific areas:") says what the list is; it counts double
                in_lead = len(terms & set(tokens(lead)))
                shared = (2 * in_lead + len(terms & set(tokens(" ".join(items))))) / (len(terms) or 1)
                rank_bonus = 0.01 * (len(order) - order.index(n))
                if in_lead and shared >= 0.5 and (best is None or shared + rank_bonus > best[0]):
                    best = (shared + rank_bonus, n, lead, items)
        if best is None:
            return None
        _, n, lead, items = best
        head = f"{lead.rstrip(':').strip()} [{n}]:" if lead else f"The passage lists [{n}]:"
        lines = [head] + [f"- {item.rstrip('.;,')} [{n}]." for item in items]
        return "\n".join(lines), {n: [lead, *items] if lead else list(items)}

    def _similarities(self, question: str, texts: list[str]) -> list[float]:
        if self.embed is None or not texts:
            return [0.0] * len(texts)
        todo = [t for t in dict.fromkeys([question, *texts]) if t not in self._cache]
        if todo:
            for t, v in zip(todo, self.embed(todo), strict=True):
                self._cache[t] = np.asarray(v, dtype=np.float32)
        while len(self._cache) > 20_000:
            self._cache.popitem(last=False)
        qv = self._cache[question]
        return [float(self._cache[t] @ qv) for t in texts]


def _leads_list(c: Candidate, passages: Sequence[Passage]) -> bool:
    """The best sentence introduces a list ("So, why do we need International Standards?" above its
    bullets): the list is what answers the question, whatever its wording."""
    said = " ".join(c.text.split())
    return any(" ".join(lead.split()) == said for lead, _ in _lists(passages[c.passage - 1].text))


def _lists(text: str) -> list[tuple[str, list[str]]]:
    """(lead-in line, items) for each run of two or more list lines in ``text``."""
    out: list[tuple[str, list[str]]] = []
    lead, items, previous = "", [], ""
    for line in [*text.splitlines(), ""]:
        m = _ITEM.match(line)
        if m:
            if not items:
                lead = previous
            items.append(m[1])
            continue
        if not line.strip() and not items:
            continue
        if len(items) >= 2:
            out.append((lead, items))
        items = []
        if line.strip():
            previous = line.strip()
    return out


def _overlap(a: str, b: str) -> float:
    ta, tb = set(tokens(a)), set(tokens(b))
    return len(ta & tb) / max(1, min(len(ta), len(tb)))
