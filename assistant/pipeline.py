"""One question end to end: resolve follow-ups, retrieve, answer, check citations,
and report timings. The CLI, the chat UI and the evaluation runner all use it."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from assistant.answer import Answerer, History, OnDelta, check_citations
from assistant.compose import ExtractiveAnswerer
from assistant.question import standalone
from assistant.retrieve import Filters, Passage, Retriever
from assistant.when import resolve
from index.errors import UserError
from index.indexer import Index
from index.settings import Settings

__all__ = ["AskResult", "Assistant", "Filters", "make_answerer"]


@dataclass
class AskResult:
    """Everything about one answer; ``to_json`` is the ``ask --json`` shape of DESIGN.md."""

    question: str
    answer: str
    refused: bool
    citations: list[Passage]
    quotes: list[list[str]]
    passages: list[Passage]
    timings_ms: dict[str, float]
    query: str = ""
    notes: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    answerer: str = "extractive"
    as_of: str | None = None  # date of the newest cited article; the answer text ends with it

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "answerer": self.answerer,
            "citations": [
                {"n": n, "doc_id": p.doc_id, "title": p.title, "publisher": p.publisher, "date": p.date,
                 "chunk_id": p.chunk_id, "text": p.text, "also_in": p.also_in, "url": p.url}
                for n, p in enumerate(self.citations, 1)
            ],
            "passages": [
                {"rank": p.rank, "doc_id": p.doc_id, "chunk_id": p.chunk_id, "score": round(p.score, 6),
                 "text": p.text}
                for p in self.passages
            ],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }

    def render_sources(self) -> str:
        """Plain-text source list for the terminal."""
        lines = []
        if self.refused:
            lines.append("Nearest passages:")
            shown = [(p.rank, p) for p in self.passages[:3]]
        else:
            lines.append("Sources:")
            shown = list(enumerate(self.citations, 1))
        for n, p in shown:
            when = f", {p.date}" if p.date else ""
            lines.append(f"  [{n}] {p.title} ({p.publisher or 'unknown publisher'}{when}) - {p.doc_id}")
            for other in p.also_in:
                lines.append(f"      also reported in {other['doc_id']} ({other['publisher'] or '?'}"
                             f"{', ' + other['date'] if other['date'] else ''})")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)


def make_answerer(settings: Settings, index: Index) -> Answerer:
    """The extractive answerer, or an LLM backend that falls back to it."""
    extractive = ExtractiveAnswerer(embed=index.embedder.embed_documents)
    if settings.llm == "none":
        return extractive
    from assistant.llm import make_llm_answerer

    return make_llm_answerer(settings, fallback=extractive)


class Assistant:
    """Holds the index, retriever and answerer for a process; ``ask`` is thread-safe for reads."""

    def __init__(self, settings: Settings, index: Index | None = None, answerer: Answerer | None = None) -> None:
        self.settings = settings
        self.index = index or Index(settings)
        self.retriever = Retriever(self.index, settings)
        self.answerer = answerer or make_answerer(settings, self.index)

    def check(self, question: object, history: object = (), k: object = None) -> None:
        """Refuse, with one plain sentence (a ``UserError``), a request larger than the settings allow or
        of the wrong shape, before any embedding or retrieval: the CLI, ``/ask`` and ``/chat`` all get it."""
        limit, most_turns, most_k = (self.settings.max_question_chars, self.settings.max_history_turns,
                                     self.settings.max_k)
        if not isinstance(question, str):
            raise UserError("The question must be text.")
        if len(question) > limit:
            raise UserError(f"The question is {len(question):,} characters long; the limit is {limit:,}:"
                            " ask a shorter one.")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= most_k):
            raise UserError(f"The number of passages must be a whole number from 1 to {most_k} (got {k}).")
        if not isinstance(history, list | tuple) or not all(
                isinstance(t, list | tuple) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in history):
            raise UserError("The history must be a list of [question, answer] pairs of text.")
        if len(history) > most_turns:
            raise UserError(f"The history holds {len(history)} turns; the limit is {most_turns}:"
                            " start a new conversation.")
        longest = max((len(x) for t in history for x in t), default=0)
        if longest > limit:
            raise UserError(f"An earlier turn is {longest:,} characters long; the limit is {limit:,}:"
                            " start a new conversation.")

    def ask(self, question: str, history: History = (), k: int | None = None, filters: Filters | None = None,
            on_delta: OnDelta | None = None) -> AskResult:
        self.check(question, history, k)
        t0 = time.perf_counter()
        query = self.condense(question, history)
        passages = self.retriever.search(query, k=k, filters=filters)
        t1 = time.perf_counter()
        draft = self.answerer.answer(question, passages, history, on_delta, as_of=(filters or Filters()).as_of)
        checked = check_citations(draft, passages)
        t2 = time.perf_counter()
        answer, as_of = checked.text, None
        dates = [p.date for p in checked.cited if p.date]
        frame = resolve(query, (filters or Filters()).as_of)
        if not draft.refused and dates:
            as_of = max(dates)
            how = f"; {frame.describe()}, those articles first" if frame.window else (
                f"; {frame.describe()}" if frame.latest else "")
            answer = f"{answer} (as of {as_of}{how})"
        notes = list(draft.notes)
        if checked.dropped:
            notes.append(f"removed citation(s) to passages not given: {sorted(set(checked.dropped))}")
        if checked.unsupported:
            notes.append(f"{len(checked.unsupported)} sentence(s) without a citation")
        return AskResult(
            question=question, answer=answer, refused=draft.refused,
            citations=[] if draft.refused else checked.cited, quotes=[] if draft.refused else checked.quotes,
            passages=passages, query=query, notes=notes, unsupported=checked.unsupported,
            answerer=draft.answerer or self.answerer.name, as_of=as_of,
            timings_ms={"retrieval": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000, "total": (t2 - t0) * 1000},
        )

    def condense(self, question: str, history: History) -> str:
        """A standalone retrieval query; an LLM answerer may rewrite it, else the subject is carried over."""
        rewrite = getattr(self.answerer, "condense", None)
        if history and callable(rewrite):
            return rewrite(question, history)
        return standalone(question, history)

    def stream(self, question: str, history: History = (), k: int | None = None,
               filters: Filters | None = None) -> Iterator[str | AskResult]:
        """Yields text deltas as they arrive, then the final ``AskResult``."""
        q: queue.Queue[Any] = queue.Queue()
        done = object()

        def work() -> None:
            try:
                q.put(self.ask(question, history, k, filters, on_delta=q.put))
            except BaseException as exc:  # handed to the consumer thread
                q.put(exc)
            finally:
                q.put(done)

        threading.Thread(target=work, daemon=True).start()
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
