"""The update log's side of an update: ``UpdateReport`` (what one update did, printed by the CLI
and stored in ``ChunkDB.updates``) and ``account``, which adds to a report the updates other
processes ran for the same bulletins (a watcher may index a new file before ``add`` gets the lock)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.catalog import doc_id_for, holders

if TYPE_CHECKING:
    from index.indexer import Index


@dataclass
class UpdateReport:
    """What one update did; printed by the CLI and kept in the update log."""

    kind: str = "update"
    files: int = 0
    unchanged: int = 0
    added_docs: list[str] = field(default_factory=list)
    changed_docs: list[str] = field(default_factory=list)
    removed_docs: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # read, with a caveat (a charset guessed)
    embedded: int = 0
    deleted: int = 0
    kept: int = 0
    new_articles: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0  # of ``seconds``, wall time in the model's calls (overlapping the rest)

    @property
    def ok(self) -> bool:
        return not self.failed

    def absorb(self, other: UpdateReport) -> None:
        """Add what ``other`` (another process's update) did to this report."""
        if not self.files:  # a report made only of others' updates takes their counts
            self.files, self.unchanged = other.files, other.unchanged
        for name in ("added_docs", "changed_docs", "removed_docs", "failed", "notes", "new_articles"):
            getattr(self, name).extend(x for x in getattr(other, name) if x not in getattr(self, name))
        self.embedded += other.embedded
        self.deleted += other.deleted
        self.kept += other.kept
        self.seconds += other.seconds
        self.embed_seconds += other.embed_seconds

    @classmethod
    def from_log(cls, entry: dict[str, Any]) -> UpdateReport:
        """The report an update stored in the update log (``ChunkDB.updates``)."""
        names = {f.name for f in fields(cls)}
        report = cls(**{k: v for k, v in entry.items() if k in names})
        report.failed = [(path, why) for path, why in report.failed]
        report.notes = [(path, why) for path, why in report.notes]
        return report

    def summary(self) -> str:
        parts = [f"{self.files} files: {len(self.added_docs)} new, {len(self.changed_docs)} changed,"
                 f" {len(self.removed_docs)} removed, {self.unchanged} unchanged"]
        model = f" ({self.embed_seconds:.1f} s in the model)" if self.embed_seconds >= 0.05 else ""
        parts.append(f"embedded {self.embedded} chunks{model}, deleted {self.deleted}, kept {self.kept}")
        if self.failed:
            parts.append(f"{len(self.failed)} file(s) failed and were left as they were in the index")
        return "; ".join(parts) + f" ({self.seconds:.1f} s)"


def account(index: Index, report: UpdateReport, doc_ids: Sequence[str], since: float) -> set[str]:
    """Add to ``report`` the updates of other processes since ``since`` that handled these
    bulletins (a watcher that sees a new file may index it before this process gets the lock);
    returns those that no update has handled yet."""
    def handled(r: UpdateReport) -> set[str]:
        failed = {_doc_id(index, path) for path, _ in r.failed}
        done = {*r.added_docs, *r.changed_docs, *r.removed_docs}  # an e-mail's bulletins stand for its file
        return {*done, *(h for d in done for h in holders(d)), *failed}

    missing = set(doc_ids) - handled(report)
    for entry in reversed(index.db.updates(50, since) if missing else []):  # oldest first
        other = UpdateReport.from_log(entry)
        if handled(other) & missing:
            report.absorb(other)
            missing -= handled(other)
    return missing


def _doc_id(index: Index, path: str) -> str:
    try:
        return doc_id_for(index.settings.corpus.resolve(), Path(path).resolve())
    except ValueError:  # not a corpus file (a refused upload)
        return path
