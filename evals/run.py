"""The runner: load a question set, build or refresh the index it runs against,
ask every question (retrieving the top 10 for the ranking metrics and answering
the normal way), and return one record per question plus the run's metadata."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from assistant.pipeline import Assistant
from assistant.retrieve import Filters
from evals import history, metrics, report
from index.embed import Embedder
from index.errors import UserError
from index.indexer import Index
from index.settings import Settings

RETRIEVE_K = 10
_FIELDS = {
    "id": str,
    "question": str,
    "answerable": bool,
    "expected_sources": list,
    "must_include": list,
    "history": list,
    "tags": list,
    "as_of": str,
}
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class EvalQuestion:
    """One line of an evaluation set (format in DESIGN.md)."""

    id: str
    question: str
    answerable: bool
    expected_sources: tuple[str, ...] = ()
    must_include: tuple[tuple[str, ...], ...] = ()
    history: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()
    as_of: str | None = None  # the date the question is asked on (YYYY-MM-DD); None: today


@dataclass
class RunResult:
    """A finished run: its records, metrics, metadata and where they were written."""

    run_id: str
    records: list[dict[str, Any]]
    metrics: dict[str, float | None]
    by_tag: dict[str, dict[str, float | None]]
    meta: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    out_dir: Path | None = None

    def results(self) -> dict[str, Any]:
        """The ``results.json`` document."""
        return {
            "run_id": self.run_id,
            "metrics": self.metrics,
            "counts": metrics.counts(self.records),
            "by_tag": self.by_tag,
            "warnings": self.warnings,
            "meta": self.meta,
            "questions": self.records,
        }


def load_set(path: Path) -> list[EvalQuestion]:
    """Parse a JSON Lines set; a malformed line ends in one error naming the file, line and field."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--set {path}: cannot be read ({exc})") from None
    out: list[EvalQuestion] = []
    seen: set[str] = set()
    for no, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        where = f"{path}:{no}"
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise UserError(f"{where}: not valid JSON ({exc.args[0]})") from None
        if not isinstance(raw, dict):
            raise UserError(f"{where}: each line must be a JSON object")
        for key in ("id", "question", "answerable"):
            if key not in raw:
                raise UserError(f"{where}: missing field '{key}'")
        for key, kind in _FIELDS.items():
            if key in raw and not isinstance(raw[key], kind):
                raise UserError(f"{where}: field '{key}' must be a {kind.__name__}")
        qid = raw["id"]
        if qid in seen:
            raise UserError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        groups = raw.get("must_include") or []
        if not all(isinstance(g, list) and g and all(isinstance(s, str) for s in g) for g in groups):
            raise UserError(f"{where}: 'must_include' must be a list of non-empty lists of strings")
        turns = raw.get("history") or []
        if not all(isinstance(t, list) and len(t) == 2 for t in turns):
            raise UserError(f"{where}: 'history' must be a list of [user, assistant] pairs")
        if raw["answerable"] and not raw.get("expected_sources"):
            raise UserError(f"{where}: an answerable question needs 'expected_sources'")
        as_of = raw.get("as_of")
        if as_of is not None and not _is_day(as_of):
            raise UserError(f"{where}: field 'as_of' must be a date YYYY-MM-DD, not {as_of!r}")
        out.append(
            EvalQuestion(
                id=qid,
                question=raw["question"],
                answerable=raw["answerable"],
                expected_sources=tuple(raw.get("expected_sources") or ()),
                must_include=tuple(tuple(g) for g in groups),
                history=tuple((str(u), str(a)) for u, a in turns),
                tags=tuple(raw.get("tags") or ()),
                as_of=as_of,
            )
        )
    if not out:
        raise UserError(f"--set {path}: holds no questions")
    return out


def _is_day(value: str) -> bool:
    """A real calendar day written YYYY-MM-DD (``2021-02-30`` is not one)."""
    if not _ISO_DAY.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


@contextmanager
def open_index(
    settings: Settings, corpus: Path | None, embedder: Embedder | None = None, progress: bool = True
) -> Iterator[tuple[Index, list[str]]]:
    """With ``corpus``: a fresh index of that folder in a temporary data directory, removed afterwards.
    Without: the index of ``settings.home``, brought up to date first. Yields it with warnings."""
    if corpus is None:
        index = Index(settings, embedder=embedder)
        yield index, _updated(index, settings.corpus, progress)
        return
    if not corpus.is_dir():
        raise UserError(f"--corpus {corpus}: no such folder")
    with tempfile.TemporaryDirectory(prefix="stdnews-eval-", ignore_cleanup_errors=True) as tmp:
        fresh = settings.model_copy(update={"home": Path(tmp), "corpus": corpus})
        index = Index(fresh, embedder=embedder)
        yield index, _updated(index, corpus, progress)


def _updated(index: Index, corpus: Path, progress: bool) -> list[str]:
    """Update the index; files that failed become warnings, an empty index an error."""
    report = index.update(progress=progress)
    if not index.db.bulletins():
        raise UserError(f"the index of {corpus} holds no bulletins; check the folder (stdnews index update)")
    return [f"not indexed: {path}: {why}" for path, why in report.failed]


def ask_one(bot: Assistant, q: EvalQuestion) -> dict[str, Any]:
    """One question: the top-10 retrieval for the ranking metrics, then the normal answer."""
    t0 = time.perf_counter()
    filters = Filters(as_of=q.as_of)  # as the question's date sees the corpus: later articles are not evidence
    query = bot.condense(q.question, q.history)
    top = bot.retriever.search(query, k=RETRIEVE_K, filters=filters)
    t_k10 = (time.perf_counter() - t0) * 1000
    result = bot.ask(q.question, history=q.history, filters=filters)
    shown = result.to_json()
    rec: dict[str, Any] = {
        "id": q.id,
        "question": q.question,
        "answerable": q.answerable,
        "expected_sources": list(q.expected_sources),
        "must_include": [list(g) for g in q.must_include],
        "history": [list(t) for t in q.history],
        "tags": list(q.tags),
        "as_of": q.as_of,
        "query": query,
        "retrieved": [
            {"rank": p.rank, "doc_id": p.doc_id, "chunk_id": p.chunk_id, "score": round(p.score, 6), "text": p.text}
            for p in top
        ],
        "answer": result.answer,
        "refused": result.refused,
        "citations": [{k: c[k] for k in ("n", "doc_id", "chunk_id", "title", "text")} for c in shown["citations"]],
        "answer_passages": [p["chunk_id"] for p in shown["passages"]],
        "notes": list(result.notes),
        "answerer": result.answerer,
        "timings_ms": {**shown["timings_ms"], "retrieval_top10": round(t_k10, 1)},
    }
    rec["verdicts"] = metrics.verdicts(rec)
    return rec


def ask_all(bot: Assistant, questions: Sequence[EvalQuestion], progress: bool = True) -> list[dict[str, Any]]:
    """Every question in order, with a progress bar on stderr."""
    from tqdm import tqdm

    records = []
    with tqdm(total=len(questions), desc="eval", unit="q", disable=not progress, dynamic_ncols=True) as bar:
        for q in questions:
            records.append(ask_one(bot, q))
            bar.set_postfix(correct=sum(r["verdicts"]["correct"] for r in records), refresh=False)
            bar.update()
    return records


def run_set(
    settings: Settings,
    set_path: Path,
    corpus: Path | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
    every: int = 1,
) -> RunResult:
    """Run a set end to end and return its records, metrics and metadata (nothing written yet);
    ``every`` > 1 asks only every ``every``-th question (the sample is recorded in the run's metadata)."""
    if every < 1:
        raise UserError(f"--every must be 1 or more (got {every})")
    questions = load_set(set_path)[::every]
    started = time.time()
    with open_index(settings, corpus, embedder, progress) as (index, warnings):
        bot = Assistant(index.settings, index=index)
        known = {b["doc_id"] for b in index.db.bulletins()}
        unknown = sorted({s for q in questions for s in q.expected_sources} - known)
        if unknown:
            warnings.append(f"expected source(s) not in the index: {', '.join(unknown)}")
        records = ask_all(bot, questions, progress)
        for rec in records:
            rec["failure"] = report.failure(rec)
        fingerprint = index.fingerprint()
        run_settings = index.settings
        answerer = bot.answerer.name
    run_id = history.new_run_id(settings.home, set_path)
    meta = {
        "run_id": run_id,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "set": {"path": str(set_path), "sha256": history.sha256_file(set_path), "questions": len(questions),
                "every": every},
        "corpus": str(corpus or settings.corpus),
        "fresh_index": corpus is not None,
        "index_fingerprint": fingerprint,
        "answerer": answerer,
        "settings": history.settings_dump(run_settings),
        "git": history.git_commit(),
    }
    computed = metrics.compute(records)
    meta["metrics"] = computed
    return RunResult(run_id, records, computed, metrics.by_tag(records), meta, warnings)
