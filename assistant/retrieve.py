"""Hybrid retrieval: dense (Chroma) and BM25 results fused by weighted reciprocal
rank fusion, the same filters applied in both, and at most a few chunks per
article so one long bulletin cannot fill every slot."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from assistant import weights
from assistant.question import keyword_class
from assistant.weights import Fusion
from assistant.when import Frame, parse_as_of, resolve
from index.errors import UserError
from index.identifiers import find_identifiers
from index.identifiers import keys as identifier_keys
from index.indexer import Index
from index.keywords import Dates, Restriction
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
    standards: tuple[str, ...] = ()  # identifier keys (index.identifiers), any of them
    orgs: tuple[str, ...] = ()
    as_of: str | None = None  # the date the question is asked on (default today): later articles are no evidence

    @classmethod
    def parse(cls, since: str | None = None, until: str | None = None, publisher: str | None = None,
              bulletins: list[str] | tuple[str, ...] | None = None, standards: list[str] | None = None,
              orgs: list[str] | None = None, as_of: str | None = None) -> Filters:
        from datetime import date

        for name, value in (("--since", since), ("--until", until)):
            if not value:
                continue
            try:  # YYYY, YYYY-MM or YYYY-MM-DD of the calendar: no 2021-13, no 2021-02-30
                if not _DATE.match(value):
                    raise ValueError
                date(*(int(part) for part in (value.split("-") + ["01", "01"])[:3]))
            except ValueError:
                raise UserError(f"{name} {value!r} is not a date; use YYYY-MM-DD") from None
        keys: list[str] = []
        for raw in standards or ():
            found = [i.key for i in find_identifiers(raw)]
            if not found:
                raise UserError(f"--standard {raw!r} is not a standard or committee I recognise"
                                " (e.g. 'ISO/IEC 30145-3', 'GB/T 35273', 'JTC 1/WG 11')")
            keys.extend(found)
        day = parse_as_of(as_of).isoformat() if as_of else None
        return cls(since or None, until or None, publisher or None, tuple(bulletins or ()),
                   tuple(dict.fromkeys(keys)), tuple(orgs or ()), day)

    @property
    def empty(self) -> bool:
        return not (self.since or self.until or self.publisher or self.bulletins or self.standards or self.orgs
                    or self.as_of)

    @property
    def needs_ids(self) -> bool:
        """Facet filters live in the chunk table; Chroma then gets the allowed ids."""
        return bool(self.standards or self.orgs)

    def _bounds(self) -> tuple[int | None, int | None]:
        lo = date_num(self.since) if self.since else None
        hi = date_num(self.until) if self.until else None
        if hi is not None and self.until and len(self.until) < 10:  # "2020-09" means up to its end
            hi += 99 if len(self.until) == 7 else 9999
        return lo, hi

    def _clauses(self, window: tuple[int, int] | None = None) -> list[tuple[str, int]]:
        """Date bounds as (operator, number): the filters', the question's date, and a window inside them."""
        out: list[tuple[str, int]] = []
        lo, hi = self._bounds()
        if lo is not None:
            out.append((">=", lo))
        if hi is not None:
            out += [("<=", hi), (">", 0)]
        if self.as_of:
            out.append(("<=", date_num(self.as_of)))  # undated articles (0) stay evidence
        if window:
            out += [(">=", window[0]), ("<=", window[1])]
        return out

    def dates(self, window: tuple[int, int] | None = None) -> Dates | None:
        """The date bounds and ``window`` as one range of date numbers, where the filters are dates alone
        (None: they name publishers, bulletins, standards or organisations, and need the chunk table)."""
        if self.publisher or self.bulletins or self.standards or self.orgs:
            return None
        lo, hi = 0, 99_999_999  # every date number; undated articles are 0
        for op, value in self._clauses(window):
            if op == "<=":
                hi = min(hi, value)
            else:
                lo = max(lo, value + (op == ">"))
        return Dates(lo, hi)

    def chroma_where(self, window: tuple[int, int] | None = None) -> dict[str, Any] | None:
        ops = {">=": "$gte", "<=": "$lte", ">": "$gt"}
        clauses: list[dict[str, Any]] = [{"date_num": {ops[op]: v}} for op, v in self._clauses(window)]
        if self.publisher:
            clauses.append({"publisher": {"$eq": self.publisher}})
        if self.bulletins:
            clauses.append({"doc_id": {"$in": list(self.bulletins)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def sql(self, window: tuple[int, int] | None = None) -> tuple[str, list[Any]]:
        where, params = [], []
        for op, value in self._clauses(window):
            where.append(f"date_num {op} ?")
            params.append(value)
        if self.publisher:
            where.append("publisher = ?")
            params.append(self.publisher)
        if self.bulletins:
            where.append(f"doc_id IN ({','.join('?' * len(self.bulletins))})")
            params.extend(self.bulletins)
        for column, values in (("std_keys", self.standards), ("orgs", self.orgs)):
            if values:
                where.append("(" + " OR ".join(f"json_extract(meta, '$.{column}') LIKE ?" for _ in values) + ")")
                params.extend(f"%|{v}|%" for v in values)
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
    also_in: list[dict[str, str]] = field(default_factory=list)  # the same story in other bulletins
    in_window: bool = False  # inside the time window the question names ("this week")
    url: str = ""  # the bulletin's catalog url (a feed entry's page), where it has one


ALSO_IN_MAX = 10  # newest first; a story syndicated more widely lists its ten latest reports


@dataclass
class Gathered:
    """Everything fusion needs about one query: both result lists (best first, window results merged
    in), the chunks inside the question's time window, and what the question names."""

    dense: list[tuple[str, float]]
    sparse: list[tuple[str, float]]
    inside: set[str]
    wanted: set[str]
    keyword: str  # question.keyword_class: which BM25 weight applies
    frame: Frame


WIDE = 10  # a filtered dense search first looks at this many times the candidates it needs, unfiltered;
# when some but too few of those pass, it looks once more, as far as should hold SPARE times the number it
# needs at the rate seen (a year of a decade at 100k chunks: ~470 nearest, 5-7 ms, against 25 ms for
# Chroma's search among the year's ~9k ids), unless that is more than WIDEST times it
SPARE, WIDEST = 1.25, 40


class Retriever:
    """Searches one index; cheap to call, the model and stores are loaded once."""

    def __init__(self, index: Index, settings: Settings, fusion: Fusion | None = None) -> None:
        self.index = index
        self.settings = settings
        fusion = fusion or weights.load().fusion
        if settings.bm25_weight is not None:  # a flag or STDNEWS_BM25_WEIGHT overrides every class
            fusion = replace(fusion, bm25=dict.fromkeys(weights.CLASSES, settings.bm25_weight))
        if settings.dense_weight is not None:
            fusion = replace(fusion, dense=settings.dense_weight)
        if settings.rrf_k is not None:
            fusion = replace(fusion, rrf_k=settings.rrf_k)
        self.fusion = fusion

    def search(self, query: str, k: int | None = None, filters: Filters | None = None,
               query_vector: list[float] | None = None) -> list[Passage]:
        """Top ``k`` passages; articles inside the window the question names ("this week", resolved
        against ``filters.as_of``) come first, and nothing dated after ``as_of`` is returned."""
        k = k or self.settings.k
        return self.fuse(self.gather(query, k, filters, query_vector), k)

    def gather(self, query: str, k: int, filters: Filters | None = None,
               query_vector: list[float] | None = None) -> Gathered:
        filters = filters or Filters()
        frame = resolve(query, filters.as_of)  # against the question's date, even when no article is later
        filters = self._live(filters)
        n = max(self.settings.candidates, 3 * k)
        vector = query_vector if query_vector is not None else self.index.embedder.embed_query(query)
        if not frame.window:
            dense, sparse = self._candidates(query, vector, n, filters)
            return Gathered(dense, sparse, set(), identifier_keys(query), keyword_class(query), frame)
        window = (date_num(frame.start), date_num(frame.end))
        (dense, sparse), (wd, ws) = self._candidates_each(query, vector, n, filters, [None, window])
        inside = {c for c, _ in wd} | {c for c, _ in ws}
        return Gathered(_union(dense, wd), _union(sparse, ws), inside, identifier_keys(query), keyword_class(query),
                        frame)

    def _live(self, filters: Filters) -> Filters:
        """Drop an ``as_of`` no article is dated after: the common case costs no filter."""
        if filters.as_of and date_num(filters.as_of) >= self.index.db.newest_date_num():
            return replace(filters, as_of=None)
        return filters

    def _candidates(self, query: str, vector: list[float], n: int, filters: Filters,
                    window: tuple[int, int] | None = None) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """Dense and BM25 results under the filters (and inside ``window``, as date numbers)."""
        return self._candidates_each(query, vector, n, filters, [window])[0]

    def _candidates_each(self, query: str, vector: list[float], n: int, filters: Filters,
                         windows: list[tuple[int, int] | None]
                         ) -> list[tuple[list[tuple[str, float]], list[tuple[str, float]]]]:
        """``_candidates`` for each window (None: the filters alone), the query scored once by BM25 and
        looked up once in the unfiltered nearest neighbours. Dates alone restrict by date range; only
        other filters, or a dense search among a window's ids, read the allowed ids from the chunk table."""
        restrictions: list[Restriction] = []
        for window in windows:
            allowed: Restriction = None
            if window or not filters.empty:
                allowed = filters.dates(window)
                if allowed is None:
                    allowed = self.index.db.ids_where(*filters.sql(window))
            restrictions.append(allowed)
        sparse_each = self.index.bm25.search_each(query, n, restrictions)
        # even among given ids a filtered search costs 15-40 ms at 100k chunks (3-5 ms unfiltered):
        # when the nearest WIDE * n chunks hold n allowed ones, those are the allowed nearest n
        anything = any(isinstance(r, Dates) or r for r in restrictions)  # (no allowed ids: nothing to look for)
        near = self.index.store.query(vector, WIDE * n) if anything else None
        out = []
        for window, allowed, sparse in zip(windows, restrictions, sparse_each, strict=True):
            if allowed is None:
                out.append((near[:n] if near is not None and WIDE else self.index.store.query(vector, n), sparse))
                continue
            found = self._passing(near or [], allowed)
            inside = found[:n]
            if 0 < len(found) < n and near:  # some pass: look as far as should hold n of them, once
                wider = math.ceil(len(near) * n * SPARE / len(found))
                if wider <= WIDEST * n:
                    inside = self._passing(self.index.store.query(vector, wider), allowed)[:n]
            if isinstance(allowed, Dates) and len(inside) < n:  # searched among the window's ids below: read them
                allowed = self.index.db.ids_where(*filters.sql(window))
            if allowed and len(inside) < n:  # nothing allowed: nothing to search
                where = filters.chroma_where(window)
                if filters.needs_ids:
                    where = {"chunk_id": {"$in": sorted(allowed)}}
                inside = self.index.store.query(vector, n, where, among=allowed)  # searched among the allowed ids
            out.append((inside, sparse))
        return out

    def _passing(self, hits: list[tuple[str, float]], allowed: set[str] | Dates) -> list[tuple[str, float]]:
        """Those of these dense hits the restriction allows, in order."""
        if isinstance(allowed, Dates):
            held = self.index.bm25.dated([cid for cid, _ in hits], allowed)
            return [hit for hit in hits if hit[0] in held]
        return [hit for hit in hits if hit[0] in allowed]

    def fuse(self, g: Gathered, k: int, fusion: Fusion | None = None) -> list[Passage]:
        """Weighted RRF (BM25 weighed by the question's class); passages inside the question's time
        window come first, then those naming a standard the question names, and "latest" questions
        lean towards newer articles."""
        f = fusion or self.fusion
        dense, sparse, inside, wanted = g.dense, g.sparse, g.inside, g.wanted
        fused: dict[str, float] = {}
        for weight, results in ((f.dense, dense), (f.bm25_for(g.keyword), sparse)):
            if weight <= 0:
                continue
            for rank, (cid, _) in enumerate(results, 1):
                fused[cid] = fused.get(cid, 0.0) + weight / (f.rrf_k + rank)
        rows = self.index.db.get_chunks(list(fused))
        if g.frame.latest and fused:
            dates = [rows[c]["date_num"] for c in fused if c in rows and rows[c]["date_num"]]
            lo, hi, top = min(dates or [0]), max(dates or [0]), max(fused.values())
            for c in fused:
                if c in rows and rows[c]["date_num"] and hi > lo:
                    fused[c] += 0.5 * top * (rows[c]["date_num"] - lo) / (hi - lo)
        s = self.settings

        def carries(cid: str) -> bool:
            have = rows[cid].get("std_keys", "") if cid in rows else ""
            return bool(wanted) and any(f"|{w}|" in have for w in wanted)

        order = sorted(fused, key=lambda c: (c not in inside, not carries(c), -fused[c]))
        keys = list(dict.fromkeys((rows[c]["doc_id"], rows[c]["article"]) for c in order if c in rows))
        at = {key: i for i, key in enumerate(keys)}
        same_story: dict[tuple[str, int], set[tuple[str, int]]] = {}
        looked = 0  # the articles' same-story pairs are read as the loop reaches them, 2k at a time (of the
        # ~60 candidates' articles, ~10 are reached)
        grouped: list[tuple[Passage, tuple[str, int]]] = []
        shown: set[tuple[str, int]] = set()
        dense_of, bm25_of = dict(dense), dict(sparse)
        per_article: dict[tuple[str, int], int] = {}
        out: list[Passage] = []
        for cid in order:
            row = rows.get(cid)
            if row is None:  # in a store but not (yet) in the chunk table: an update is mid-way
                continue
            key = (row["doc_id"], row["article"])
            if at[key] >= looked:
                looked = at[key] + 2 * k
                same_story.update(self.index.db.dup_neighbours(keys[at[key]:looked]))
            if not same_story.get(key, set()).isdisjoint(shown):
                continue  # the same story from another bulletin: shown once, listed in also_in
            if per_article.get(key, 0) >= s.per_article:
                continue
            per_article[key] = per_article.get(key, 0) + 1
            passage = Passage(
                rank=len(out) + 1, chunk_id=cid, doc_id=row["doc_id"], title=row["title"],
                bulletin_title=row["bulletin_title"], publisher=row["publisher"], date=row["date"],
                text=row["text"], start=row["start"], end=row["end"], score=fused[cid],
                dense=dense_of.get(cid), bm25=bm25_of.get(cid), in_window=cid in inside,
            )
            shown.add(key)
            if key in same_story:
                grouped.append((passage, key))
            out.append(passage)
            if len(out) == k:
                break
        info = self.index.db.article_info(other for _, key in grouped for other in same_story[key])
        for passage, key in grouped:
            elsewhere = sorted((info[o] for o in same_story[key] if o in info), key=lambda a: (a["date"], a["doc_id"]),
                               reverse=True)
            passage.also_in = elsewhere[:ALSO_IN_MAX]
        urls = self.index.db.urls(p.doc_id for p in out)
        for passage in out:
            passage.url = urls.get(passage.doc_id, "")
        return out


def _union(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Two result lists of the same search (same scores), merged best first."""
    return sorted({**dict(a), **dict(b)}.items(), key=lambda item: -item[1])
