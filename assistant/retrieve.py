"""Hybrid retrieval: dense (Chroma) and BM25 results fused by weighted reciprocal
rank fusion, the same filters applied in both, and at most a few chunks per
article so one long bulletin cannot fill every slot."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from index.errors import UserError
from index.indexer import Index
from index.model import date_num
from index.settings import Settings

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass(frozen=True)
class Filters:
    """Which articles may be retrieved. Articles without a known date never pass a date filter."""

    since: str | None = None
    until: str | None = None
    publisher: str | None = None
    bulletins: tuple[str, ...] = ()

    @classmethod
    def parse(cls, since: str | None = None, until: str | None = None, publisher: str | None = None,
              bulletins: list[str] | tuple[str, ...] | None = None) -> Filters:
        for name, value in (("--since", since), ("--until", until)):
            if value and not _DATE.match(value):
                raise UserError(f"{name} {value!r} is not a date; use YYYY-MM-DD")
        return cls(since or None, until or None, publisher or None, tuple(bulletins or ()))

    @property
    def empty(self) -> bool:
        return not (self.since or self.until or self.publisher or self.bulletins)

    def _bounds(self) -> tuple[int | None, int | None]:
        lo = date_num(self.since) if self.since else None
        hi = date_num(self.until) if self.until else None
        if hi is not None and self.until and len(self.until) < 10:  # "2020-09" means up to its end
            hi += 99 if len(self.until) == 7 else 9999
        return lo, hi

    def chroma_where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        lo, hi = self._bounds()
        if lo is not None:
            clauses.append({"date_num": {"$gte": lo}})
        if hi is not None:
            clauses.append({"date_num": {"$lte": hi}})
            clauses.append({"date_num": {"$gt": 0}})
        if self.publisher:
            clauses.append({"publisher": {"$eq": self.publisher}})
        if self.bulletins:
            clauses.append({"doc_id": {"$in": list(self.bulletins)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def sql(self) -> tuple[str, list[Any]]:
        where, params = [], []
        lo, hi = self._bounds()
        if lo is not None:
            where.append("date_num >= ?")
            params.append(lo)
        if hi is not None:
            where.append("date_num <= ? AND date_num > 0")
            params.append(hi)
        if self.publisher:
            where.append("publisher = ?")
            params.append(self.publisher)
        if self.bulletins:
            where.append(f"doc_id IN ({','.join('?' * len(self.bulletins))})")
            params.extend(self.bulletins)
        return " AND ".join(where) or "1", params


@dataclass
class Passage:
    """A retrieved chunk with its scores; ``rank`` starts at 1."""

    rank: int
    chunk_id: str
    doc_id: str
    title: str
    bulletin_title: str
    publisher: str
    date: str
    text: str
    start: int
    end: int
    score: float
    dense: float | None = None
    bm25: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Retriever:
    """Searches one index; cheap to call, the model and stores are loaded once."""

    def __init__(self, index: Index, settings: Settings) -> None:
        self.index = index
        self.settings = settings

    def search(self, query: str, k: int | None = None, filters: Filters | None = None,
               query_vector: list[float] | None = None) -> list[Passage]:
        k = k or self.settings.k
        filters = filters or Filters()
        n = max(self.settings.candidates, 3 * k)
        vector = query_vector if query_vector is not None else self.index.embedder.embed_query(query)
        dense = self.index.store.query(vector, n, filters.chroma_where())
        allowed = None
        if not filters.empty:
            clause, params = filters.sql()
            allowed = {r[0] for r in self.index.db.conn.execute(f"SELECT id FROM chunks WHERE {clause}", params)}
        sparse = self.index.bm25.search(query, n, allowed)
        return self.fuse(dense, sparse, k)

    def fuse(self, dense: list[tuple[str, float]], sparse: list[tuple[str, float]], k: int) -> list[Passage]:
        s = self.settings
        fused: dict[str, float] = {}
        for weight, results in ((s.dense_weight, dense), (s.bm25_weight, sparse)):
            for rank, (cid, _) in enumerate(results, 1):
                fused[cid] = fused.get(cid, 0.0) + weight / (s.rrf_k + rank)
        order = sorted(fused, key=lambda c: -fused[c])
        rows = self.index.db.get_chunks(order)
        dense_of, bm25_of = dict(dense), dict(sparse)
        per_article: dict[tuple[str, int], int] = {}
        out: list[Passage] = []
        for cid in order:
            row = rows.get(cid)
            if row is None:  # in a store but not (yet) in the chunk table: an update is mid-way
                continue
            key = (row["doc_id"], row["article"])
            if per_article.get(key, 0) >= s.per_article:
                continue
            per_article[key] = per_article.get(key, 0) + 1
            out.append(Passage(
                rank=len(out) + 1, chunk_id=cid, doc_id=row["doc_id"], title=row["title"],
                bulletin_title=row["bulletin_title"], publisher=row["publisher"], date=row["date"],
                text=row["text"], start=row["start"], end=row["end"], score=fused[cid],
                dense=dense_of.get(cid), bm25=bm25_of.get(cid),
            ))
            if len(out) == k:
                break
        return out
