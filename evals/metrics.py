"""Every evaluation metric, defined once: small pure functions over per-question
records (the ``questions`` of ``results.json``), so a report, a threshold and a
test all read the same definition. ``evals/README.md`` documents each one."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from index.tokenize import tokens

Record = Mapping[str, Any]
Value = float | None  # None: nothing to measure (e.g. no unanswerable questions in the set)

SUPPORT_MIN = 0.6  # share of a sentence's content tokens that must occur in the passages it cites
_MARKER = re.compile(r"\[(\d{1,3})\]")
_MARKER_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d{1,3}\])+)")
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[\"“(\[]?[A-Z0-9])")
_ABBREV = re.compile(r"(?:\b(?:[A-Za-z]\.){2,}|\b(?:Dr|Mr|Mrs|Ms|Prof|St|No|Nos|vs|etc|Inc|Ltd|Co|Jr|Sr|e\.g|i\.e)\.)$")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


# per-question verdicts --------------------------------------------------------------
def fold(text: str) -> str:
    """Case-insensitive, white-space-folded form used for ``must_include`` matching."""
    return re.sub(r"\s+", " ", text.translate(_QUOTES)).strip().casefold()


def strip_markers(text: str) -> str:
    """The answer without its ``[n]`` citation markers."""
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"\s*\[\d{1,3}\]", "", text)).strip()


def retrieved_docs(rec: Record) -> list[str]:
    """doc_ids of the retrieved passages, best first."""
    return [p["doc_id"] if isinstance(p, Mapping) else str(p) for p in rec.get("retrieved", [])]


def first_hit_rank(rec: Record, k: int = 10) -> int | None:
    """Rank (1-based) of the first passage from an expected source within the top ``k``, else None."""
    expected = set(rec.get("expected_sources") or ())
    for rank, doc in enumerate(retrieved_docs(rec)[:k], 1):
        if doc in expected:
            return rank
    return None


def ndcg(rec: Record, k: int = 10) -> float:
    """Document-level nDCG@k: each expected source gains 1 at the rank of its first passage."""
    expected = list(dict.fromkeys(rec.get("expected_sources") or ()))
    if not expected:
        return 0.0
    seen: set[str] = set()
    dcg = 0.0
    for rank, doc in enumerate(retrieved_docs(rec)[:k], 1):
        if doc in expected and doc not in seen:
            seen.add(doc)
            dcg += 1.0 / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(expected), k) + 1))
    return dcg / ideal


def missing_groups(rec: Record) -> list[list[str]]:
    """The ``must_include`` groups of which the answer contains none of the strings."""
    return _missing(rec, strip_markers(rec.get("answer") or ""))


def missing_in_passages(rec: Record, k: int = 5) -> list[list[str]] | None:
    """The ``must_include`` groups that none of the top ``k`` retrieved passages contains
    (None when the record does not hold the passages' text)."""
    top = list(rec.get("retrieved") or ())[:k]
    if not all(isinstance(p, Mapping) and "text" in p for p in top):
        return None
    return _missing(rec, " \n ".join(p["text"] for p in top))


def _missing(rec: Record, text: str) -> list[list[str]]:
    folded = fold(text)
    return [list(g) for g in rec.get("must_include") or () if not any(fold(s) in folded for s in g)]


def answer_correct(rec: Record) -> bool:
    """An answerable question is answered correctly: not refused, and every ``must_include`` group matched."""
    return bool(rec.get("answerable")) and not rec.get("refused") and not missing_groups(rec)


def is_correct(rec: Record) -> bool:
    """The question's overall verdict: answered correctly if answerable, refused if not."""
    return answer_correct(rec) if rec.get("answerable") else bool(rec.get("refused"))


def citation_hits(rec: Record) -> list[bool]:
    """For each citation of the answer, whether it points to an expected source."""
    expected = set(rec.get("expected_sources") or ())
    return [c.get("doc_id") in expected for c in rec.get("citations") or ()]


_AS_OF_NOTE = re.compile(r"\s*\(as of \d{4}[^()]*\)\s*$")  # the pipeline's closing date note: no claim to check


def answer_sentences(answer: str) -> list[str]:
    """Sentences of an answer, without its closing "(as of ...)" note; markers written after the full
    stop ("x. [1]") are moved before it."""
    text = _MARKER_AFTER_STOP.sub(lambda m: f"{m.group(2)}{m.group(1)}", _AS_OF_NOTE.sub("", answer.strip()))
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if _ABBREV.search(text[start : m.start()]):
            continue  # "a.m.", "U.S.", "Dr." do not end a sentence
        out.append(text[start : m.start()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def sentence_support(answer: str, citations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Check each answer sentence against the passages it cites (see README: supported-sentence rate).

    A sentence is supported when it carries at least one ``[n]`` that names a citation, and at least
    ``SUPPORT_MIN`` of its distinct content tokens (``index.tokenize.tokens``: stemmed, stop words out,
    identifiers whole) occur in the text of the passages it cites. Sentences without content tokens are
    left out (there is nothing to check)."""
    out = []
    for sentence in answer_sentences(answer):
        words = set(tokens(strip_markers(sentence)))
        if not words:
            continue
        cited = [int(n) for n in _MARKER.findall(sentence)]
        texts = [citations[n - 1].get("text") or "" for n in cited if 1 <= n <= len(citations)]
        evidence = set(tokens(" ".join(texts))) if texts else set()
        overlap = len(words & evidence) / len(words)
        out.append(
            {
                "sentence": sentence,
                "cites": cited,
                "overlap": round(overlap, 3),
                "supported": bool(texts) and overlap >= SUPPORT_MIN,
            }
        )
    return out


def answer_words(rec: Record) -> int:
    """Words of the answer text, citation markers left out."""
    return len(strip_markers(rec.get("answer") or "").split())


def latency_ms(rec: Record) -> float:
    """What the user waited for: the ``ask`` total (retrieval + answer + citation check)."""
    return float((rec.get("timings_ms") or {}).get("total", 0.0))


# aggregate metrics ------------------------------------------------------------
def _answerable(records: Sequence[Record]) -> list[Record]:
    return [r for r in records if r.get("answerable")]


def _unanswerable(records: Sequence[Record]) -> list[Record]:
    return [r for r in records if not r.get("answerable")]


def _mean(values: Sequence[float]) -> Value:
    return sum(values) / len(values) if values else None


def hit_at(records: Sequence[Record], k: int) -> Value:
    """Share of answerable questions with a passage from an expected source in the top ``k``."""
    return _mean([float(first_hit_rank(r, k) is not None) for r in _answerable(records)])


def mrr_at_10(records: Sequence[Record]) -> Value:
    """Mean over answerable questions of 1/rank of the first expected-source passage (0 beyond rank 10)."""
    return _mean([1.0 / rank if (rank := first_hit_rank(r, 10)) else 0.0 for r in _answerable(records)])


def ndcg_at_10(records: Sequence[Record]) -> Value:
    """Mean document-level nDCG@10 over answerable questions."""
    return _mean([ndcg(r, 10) for r in _answerable(records)])


def evidence_at_5(records: Sequence[Record]) -> Value:
    """Share of answerable questions whose top 5 passages together contain every ``must_include`` group."""
    found = [missing_in_passages(r, 5) for r in _answerable(records)]
    if any(m is None for m in found):
        return None
    return _mean([float(not m) for m in found])


def answer_accuracy(records: Sequence[Record]) -> Value:
    """Share of answerable questions answered correctly (not refused, every ``must_include`` group matched)."""
    return _mean([float(answer_correct(r)) for r in _answerable(records)])


def refusal_accuracy(records: Sequence[Record]) -> Value:
    """Share of unanswerable questions the assistant refused."""
    return _mean([float(bool(r.get("refused"))) for r in _unanswerable(records)])


def false_refusal_rate(records: Sequence[Record]) -> Value:
    """Share of answerable questions the assistant refused."""
    return _mean([float(bool(r.get("refused"))) for r in _answerable(records)])


def overall_accuracy(records: Sequence[Record]) -> Value:
    """Share of all questions with a correct verdict (right answer, or a refusal when unanswerable)."""
    return _mean([float(is_correct(r)) for r in records])


def citation_precision(records: Sequence[Record]) -> Value:
    """Pooled over the answers to answerable questions: share of citations that point to an expected source."""
    hits = [h for r in _answerable(records) if not r.get("refused") for h in citation_hits(r)]
    return _mean([float(h) for h in hits])


def supported_sentence_rate(records: Sequence[Record]) -> Value:
    """Pooled over all answers given (not refusals): share of sentences supported by the passages they cite."""
    checks = [
        c["supported"]
        for r in records
        if not r.get("refused")
        for c in sentence_support(r.get("answer") or "", r.get("citations") or ())
    ]
    return _mean([float(c) for c in checks])


def answer_length(records: Sequence[Record]) -> Value:
    """Mean words per answer given (refusals left out), citation markers not counted."""
    return _mean([float(answer_words(r)) for r in records if not r.get("refused")])


def percentile(values: Sequence[float], p: float) -> Value:
    """The p-th percentile with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_p50(records: Sequence[Record]) -> Value:
    """Median ``ask`` latency in milliseconds over all questions."""
    return percentile([latency_ms(r) for r in records], 50)


def latency_p95(records: Sequence[Record]) -> Value:
    """95th-percentile ``ask`` latency in milliseconds over all questions."""
    return percentile([latency_ms(r) for r in records], 95)


# the registry ------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A named metric: its function, which way is better, and what it is computed over."""

    name: str
    fn: Callable[[Sequence[Record]], Value]
    better: str | None  # "higher", "lower", or None (neither: no threshold)
    over: str
    kind: str = "rate"  # rate (0..1) | ms | words
    text: str = ""  # what it measures, when the function's docstring does not say it exactly

    @property
    def doc(self) -> str:
        return self.text or (self.fn.__doc__ or "").strip().splitlines()[0]


_HIT = "Share of answerable questions with a passage from an expected source in the top {k}."
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("hit@1", lambda rs: hit_at(rs, 1), "higher", "answerable", text=_HIT.format(k=1)),
        Metric("hit@3", lambda rs: hit_at(rs, 3), "higher", "answerable", text=_HIT.format(k=3)),
        Metric("hit@5", lambda rs: hit_at(rs, 5), "higher", "answerable", text=_HIT.format(k=5)),
        Metric("hit@10", lambda rs: hit_at(rs, 10), "higher", "answerable", text=_HIT.format(k=10)),
        Metric("mrr@10", mrr_at_10, "higher", "answerable"),
        Metric("ndcg@10", ndcg_at_10, "higher", "answerable"),
        Metric("evidence@5", evidence_at_5, "higher", "answerable"),
        Metric("answer_accuracy", answer_accuracy, "higher", "answerable"),
        Metric("refusal_accuracy", refusal_accuracy, "higher", "unanswerable"),
        Metric("false_refusal_rate", false_refusal_rate, "lower", "answerable"),
        Metric("overall_accuracy", overall_accuracy, "higher", "all"),
        Metric("citation_precision", citation_precision, "higher", "citations of answers to answerable"),
        Metric("supported_sentence_rate", supported_sentence_rate, "higher", "sentences of answers given"),
        Metric("answer_length_words", answer_length, None, "answers given", "words"),
        Metric("latency_p50_ms", latency_p50, "lower", "all", "ms"),
        Metric("latency_p95_ms", latency_p95, "lower", "all", "ms"),
    )
}


def compute(records: Sequence[Record]) -> dict[str, Value]:
    """Every metric of the registry over the records."""
    return {name: m.fn(records) for name, m in METRICS.items()}


def counts(records: Sequence[Record]) -> dict[str, int]:
    """How many questions of each kind the metrics were computed over."""
    return {
        "questions": len(records),
        "answerable": len(_answerable(records)),
        "unanswerable": len(_unanswerable(records)),
        "correct": sum(is_correct(r) for r in records),
    }


def by_tag(records: Sequence[Record]) -> dict[str, dict[str, Value]]:
    """Per tag: questions, overall accuracy, hit@5 (answerable only) and the share refused."""
    tags = sorted({t for r in records for t in r.get("tags") or ()})
    out: dict[str, dict[str, Value]] = {}
    for tag in tags:
        group = [r for r in records if tag in (r.get("tags") or ())]
        out[tag] = {
            "n": float(len(group)),
            "accuracy": overall_accuracy(group),
            "hit@5": hit_at(group, 5),
            "refused": _mean([float(bool(r.get("refused"))) for r in group]),
        }
    return out


def verdicts(rec: Record) -> dict[str, Any]:
    """The per-question verdicts written to ``results.json`` (what the aggregate metrics count)."""
    return {
        "correct": is_correct(rec),
        "first_hit_rank": first_hit_rank(rec, 10),
        "ndcg@10": round(ndcg(rec, 10), 4),
        "missing": missing_groups(rec) if rec.get("answerable") else [],
        "missing_in_top5": missing_in_passages(rec, 5) if rec.get("answerable") else [],
        "citation_hits": citation_hits(rec),
        "sentences": []
        if rec.get("refused")
        else sentence_support(rec.get("answer") or "", rec.get("citations") or ()),
        "answer_words": answer_words(rec),
    }
