"""Thumbs up/down and comments on answers, kept in ``<home>/feedback.sqlite`` with the
question, answer, citations and index version, and exported as JSON Lines."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from index.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, updated_at REAL NOT NULL,
    rating INTEGER NOT NULL, comment TEXT NOT NULL DEFAULT '', question TEXT NOT NULL, answer TEXT NOT NULL,
    refused INTEGER NOT NULL, citations TEXT NOT NULL, index_version TEXT NOT NULL,
    answerer TEXT NOT NULL DEFAULT '', filters TEXT NOT NULL DEFAULT '{}', history TEXT NOT NULL DEFAULT '[]');
"""
_JSON_COLUMNS = ("citations", "filters", "history")


def feedback_path(settings: Settings) -> Path:
    return settings.home / "feedback.sqlite"


class FeedbackStore:
    """One SQLite file; safe to share between the server's worker threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(_SCHEMA)

    def record(self, rating: int, question: str, answer: str, refused: bool, citations: list[dict[str, Any]],
               index_version: str, answerer: str = "", filters: dict[str, Any] | None = None,
               history: list[list[str]] | None = None, comment: str = "") -> int:
        """Store a new rating (+1 up, -1 down) and return its id."""
        now = time.time()
        with self._lock:
            cur = self.conn.execute(
                "INSERT INTO feedback (at, updated_at, rating, comment, question, answer, refused, citations,"
                " index_version, answerer, filters, history) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (now, now, rating, comment, question, answer, int(refused), json.dumps(citations, ensure_ascii=False),
                 index_version, answerer, json.dumps(filters or {}), json.dumps(history or [], ensure_ascii=False)))
            return int(cur.lastrowid or 0)

    def update(self, feedback_id: int, rating: int | None = None, comment: str | None = None) -> bool:
        """Change the rating and/or comment of an earlier record; False when there is no such record."""
        sets, params = ["updated_at = ?"], [time.time()]
        if rating is not None:
            sets.append("rating = ?")
            params.append(rating)
        if comment is not None:
            sets.append("comment = ?")
            params.append(comment)
        with self._lock:
            cur = self.conn.execute(f"UPDATE feedback SET {', '.join(sets)} WHERE id = ?", [*params, feedback_id])
            return cur.rowcount > 0

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.conn.execute("SELECT * FROM feedback ORDER BY id").fetchall()
        out = []
        for r in rows:
            d = dict(r)
            for col in _JSON_COLUMNS:
                d[col] = json.loads(d[col])
            d["refused"] = bool(d["refused"])
            out.append(d)
        return out

    def close(self) -> None:
        self.conn.close()


def export_jsonl(settings: Settings, out: Path | None) -> int:
    """Write every feedback record as one JSON object per line to ``out`` (stdout when None)."""
    path = feedback_path(settings)
    rows = FeedbackStore(path).rows() if path.is_file() else []
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in rows]
    if out is None:
        sys.stdout.writelines(lines)
        sys.stdout.flush()
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(lines), encoding="utf-8")
    return len(rows)
