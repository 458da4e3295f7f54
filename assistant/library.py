"""The chat window's library actions: add uploaded bulletins to the corpus (with optional
catalog metadata) and remove one; both end in an incremental index update."""

from __future__ import annotations

import re
import threading
import time
import tomllib
from pathlib import Path

from index.catalog import CATALOG, read_catalog, scan
from index.errors import UserError
from index.indexer import ADD_WAITS_S, Index, UpdateReport
from index.load import SUPPORTED

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOCK = threading.Lock()  # one library change at a time per server process


def add_bulletins(index: Index, files: list[Path], publisher: str = "", date: str = "", title: str = "",
                  progress: bool = True) -> tuple[UpdateReport, list[str]]:
    """Copy files into the corpus and index them; returns the update report and notes for the user."""
    if not files:
        raise UserError("choose at least one file to add")
    for f in files:
        if f.suffix.lower() not in SUPPORTED:
            raise UserError(f"{f.name}: unsupported file type (use {', '.join(SUPPORTED)})")
    meta = {"title": title.strip(), "publisher": publisher.strip(), "date": date.strip()}
    if meta["date"] and not _DATE.match(meta["date"]):
        raise UserError(f"date {meta['date']!r} is not a date; use YYYY-MM-DD (or YYYY-MM, YYYY)")
    if meta["title"] and len(files) > 1:
        raise UserError("a title can only be given when adding one file")
    with _LOCK:
        notes = catalog_entries(index.settings.corpus, [f.stem for f in files], meta)
        report = index.add(files, progress=progress)
    return report, notes


def remove_bulletin(index: Index, doc_id: str, progress: bool = True) -> UpdateReport:
    """Delete the bulletin's file from the corpus folder, then update so its passages leave the index."""
    if not doc_id:
        raise UserError("choose a bulletin to remove")
    corpus = index.settings.corpus
    with _LOCK:
        since = time.time()
        files, _ = scan(corpus)
        path = files.get(doc_id)
        if path is None and index.db.bulletin(doc_id) is None:
            raise UserError(f"no bulletin {doc_id!r} in the library")
        if path is not None:
            if not path.resolve().is_relative_to(corpus.resolve()):
                raise UserError(f"{doc_id}: its file lies outside the corpus folder; remove it by hand")
            path.unlink()
        report = index.update(progress=progress, wait=ADD_WAITS_S)  # a watcher may be updating: wait for it
        index.account(report, [doc_id], since)  # ... or may have removed it already
        return report


def catalog_entries(corpus: Path, doc_ids: list[str], meta: dict[str, str]) -> list[str]:
    """Append catalog entries for new doc_ids; an existing entry is kept as it is (and said so)."""
    fields = {k: _CONTROL.sub(" ", v).strip() for k, v in meta.items() if v and v.strip()}
    if not fields:
        return []
    path = corpus / CATALOG
    existing = read_catalog(corpus)
    notes, blocks = [], []
    for doc_id in doc_ids:
        if doc_id in existing:
            notes.append(f"{doc_id}: the catalog already describes it; edit {CATALOG} to change its details")
            continue
        lines = [f"\n[{_toml_str(doc_id)}]"] + [f"{k} = {_toml_str(v)}" for k, v in fields.items()]
        blocks.append("\n".join(lines) + "\n")
    if blocks:
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        new = old + ("" if not old or old.endswith("\n") else "\n") + "".join(blocks)
        tomllib.loads(new)  # never write a catalog that no longer parses
        tmp = path.with_name(f".{CATALOG}.part")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
    return notes


def _toml_str(value: str) -> str:
    """A TOML basic string (control characters are removed before this)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

