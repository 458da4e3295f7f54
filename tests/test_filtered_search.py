"""A filtered dense search first looks at the unfiltered nearest neighbours (Chroma's filtered search is
slow on a large index) and falls back to a search among the allowed ids only when too few of them pass:
either way the same passages, in the same order, as Chroma's own metadata filter, whether the search among
ids is Chroma's or (up to ``EXACT_UP_TO`` ids) their vectors read and ranked here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant import retrieve
from assistant.retrieve import Filters, Retriever
from index import store

AMONG = pytest.mark.parametrize("exact_up_to", [store.EXACT_UP_TO, 0])  # ranked here; Chroma's search among ids
QUESTION = "smart city standards published by China"


def _recorded(index, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[tuple[int, object, bool]]]:  # noqa: ANN001
    """The store's real ``query``, and from now on each call to it as (n, where, searched among ids)."""
    calls: list[tuple[int, object, bool]] = []
    real = index.store.query

    def recorded(embedding, n, where=None, among=None):  # noqa: ANN001, ANN202
        calls.append((n, where, among is not None))
        return real(embedding, n, where, among)

    monkeypatch.setattr(index.store, "query", recorded)
    return real, calls


@AMONG
@pytest.mark.parametrize(("filters", "window"), [
    (Filters(publisher="SESEC"), None),  # many passages pass: the unfiltered neighbours hold enough
    (Filters(), (20200101, 20201231)),  # a question's window ("in 2020")
    (Filters(publisher="ANSI"), None),  # few pass: the filtered query
    (Filters(until="2020-09-30"), (20200901, 20200930)),
])
def test_the_filtered_dense_search_gives_what_the_filtered_query_gives(
        seed_index, monkeypatch: pytest.MonkeyPatch, filters: Filters, window: tuple[int, int] | None,  # noqa: ANN001
        exact_up_to: int) -> None:
    monkeypatch.setattr(store, "EXACT_UP_TO", exact_up_to)
    retriever = Retriever(seed_index, seed_index.settings)
    vector = seed_index.embedder.embed_query(QUESTION)
    real, calls = _recorded(seed_index, monkeypatch)
    for n in (3, 10, 30):
        calls.clear()
        fast, sparse = retriever._candidates(QUESTION, vector, n, filters, window)
        sent = [where for _, where, _ in calls]
        monkeypatch.setattr(retrieve, "WIDE", 0)  # nothing unfiltered: always the filtered query
        slow, sparse_slow = retriever._candidates(QUESTION, vector, n, filters, window)
        monkeypatch.setattr(retrieve, "WIDE", 10)
        assert [c for c, _ in fast] == [c for c, _ in slow] and sparse == sparse_slow, n
        assert [s for _, s in fast] == pytest.approx([s for _, s in slow])
        chroma = real(vector, n, filters.chroma_where(window))  # Chroma's metadata filter, no ids given
        assert [c for c, _ in slow] == [c for c, _ in chroma], n
        assert [s for _, s in slow] == pytest.approx([s for _, s in chroma])
        if filters.publisher == "SESEC" and n == 3:  # most passages are SESEC's: the unfiltered look suffices
            assert sent == [None], sent


@pytest.mark.parametrize(("filters", "window"), [
    (Filters(), (20200101, 20201231)),
    (Filters(publisher="ANSI"), None),
    (Filters(until="2020-09-30"), (20200901, 20200930)),
    (Filters(publisher="SESEC"), None),
])
def test_a_second_wider_look_gives_what_the_filtered_query_gives(
        seed_index, monkeypatch: pytest.MonkeyPatch, filters: Filters, window: tuple[int, int] | None) -> None:  # noqa: ANN001
    """When some but too few of the nearest pass, a second look as far as should hold enough of them at
    that rate: where it holds enough, they are the filtered query's; where not, the search among ids."""
    retriever = Retriever(seed_index, seed_index.settings)
    vector = seed_index.embedder.embed_query(QUESTION)
    real, calls = _recorded(seed_index, monkeypatch)
    monkeypatch.setattr(retrieve, "WIDE", 1)  # the first look holds just the n nearest: a second one is wanted
    looked = []
    for n in (3, 10, 30):
        calls.clear()
        fast, _ = retriever._candidates(QUESTION, vector, n, filters, window)
        looked += [size for size, where, among in calls if where is None and not among and size > n]
        chroma = real(vector, n, filters.chroma_where(window))
        assert [c for c, _ in fast] == [c for c, _ in chroma], n
        assert [s for _, s in fast] == pytest.approx([s for _, s in chroma])
    if filters.publisher != "SESEC":  # (most passages are SESEC's: the n nearest hold enough)
        assert looked, "no second look"


@AMONG
def test_a_search_among_ids_without_vectors_falls_back_to_the_metadata_filter(
        seed_index, monkeypatch: pytest.MonkeyPatch, exact_up_to: int) -> None:  # noqa: ANN001
    """A removal deletes the vectors before the chunk rows: ids the chunk table still lists but Chroma
    no longer holds make Chroma refuse the id list, and the metadata filter answers instead; the
    exact ranking leaves them out."""
    monkeypatch.setattr(store, "EXACT_UP_TO", exact_up_to)
    vector = seed_index.embedder.embed_query("smart city standards")
    where = Filters(publisher="SESEC").chroma_where()
    expected = seed_index.store.query(vector, 5, where)
    among = {c for c, _ in seed_index.store.query(vector, 50, where)} | {"gone#0000000000000000"}
    got = seed_index.store.query(vector, 5, where, among=among)
    assert [c for c, _ in got] == [c for c, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected])


def test_a_write_the_vector_index_does_not_serve_reopens_the_embedded_store(make_settings, corpus_copy: Path,  # noqa: ANN001
                                                                             embedder,  # noqa: ANN001
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Chroma's embedded client sometimes stores a vector but leaves it out of its in-process index;
    the store checks its last write and opens the folder again, after which the vector is found."""
    from index.indexer import Index

    index = Index(make_settings(corpus_copy), embedder=embedder)
    index.update(progress=False)
    store = index.store
    vector = embedder.embed_query("tidal turbine noise")
    first = store._client
    monkeypatch.setattr(type(store), "_searchable", lambda self, cid, emb: self._client is not first)
    store.upsert(["new#1"], [vector], [{"doc_id": "new"}])
    assert store._client is first  # checked once per update, after its last write
    store.check_last_write()
    assert store._client is not first  # opened again
    assert store.query(vector, 1)[0][0] == "new#1" and store.count() == len(index.db.chunk_ids()) + 1
    second = store._client
    store.upsert(["new#2"], [vector], [{"doc_id": "new"}])
    store.check_last_write()
    assert store._client is second  # served: not opened again

    monkeypatch.setattr(type(store), "_searchable", lambda self, cid, emb: self._client is not second)
    (corpus_copy / "tidal-notes.txt").write_text("Tidal turbine notes\n\nTidal turbines were tested.\n")
    index.update(progress=False)
    assert store._client is not second  # an update checks its last write


def test_chroma_s_filter_names_only_the_metadata_chroma_keeps() -> None:
    """Chroma keeps ``store.FILTER_KEYS`` of a chunk's metadata: a filter naming any other key would
    silently match nothing in the fallback above."""

    def named(where: object) -> set[str]:
        if isinstance(where, dict):
            return {k for k in where if not k.startswith("$")} | {n for v in where.values() for n in named(v)}
        if isinstance(where, list):
            return {n for v in where for n in named(v)}
        return set()

    every = Filters.parse(since="2020-01-01", until="2020-09", publisher="ISO", bulletins=["a", "b"],
                          standards=["ISO 37120"], orgs=["ISO"], as_of="2021-01-01")
    for window in (None, (20200101, 20201231)):
        where = every.chroma_where(window)
        assert where and named(where) <= set(store.FILTER_KEYS), where
    assert {"chunk_id"} <= set(store.FILTER_KEYS)  # what a facet filter sends Chroma (its allowed ids)


@pytest.mark.parametrize(("filters", "window"), [
    (Filters(), (20200101, 20201231)),  # a question's window alone
    (Filters(until="2020-09"), None),  # to the end of September; undated articles never pass
    (Filters(since="2020-03-01", until="2021"), (20200901, 20200930)),
    (Filters(as_of="2020-06-30"), None),  # undated articles stay evidence
    (Filters(since="2021-01-01", as_of="2020-06-30"), None),  # nothing
])
def test_date_filters_restrict_by_date_range_as_the_chunk_table_does(seed_index, filters: Filters,  # noqa: ANN001
                                                                     window: tuple[int, int] | None) -> None:
    """Dates alone restrict the keyword search and the dense search's nearest chunks by a range of date
    numbers, not by ids read from the chunk table: the same chunks pass."""
    span = filters.dates(window)
    assert span is not None
    allowed = seed_index.db.ids_where(*filters.sql(window))
    assert bool(allowed) == (filters.since != "2021-01-01")
    dated = seed_index.db.conn.execute("SELECT id, date_num FROM chunks").fetchall()
    assert {c for c, d in dated if span.lo <= d <= span.hi} == allowed
    assert seed_index.bm25.dated([c for c, _ in dated], span) == allowed
    for question in ("smart city standards", "ISO/IEC JTC 1 plenary", "national standards released"):
        assert seed_index.bm25.search(question, 10, span) == seed_index.bm25.search(question, 10, allowed)
    assert Filters(publisher="ISO").dates(window) is None and Filters(orgs=("ISO",)).dates(window) is None


def test_a_written_vector_is_found_even_among_more_copies_of_itself_than_are_looked_at(
        tmp_path: Path, embedder) -> None:  # noqa: ANN001
    """``check_last_write`` asks whether a search finds the vector just written: among the nearest to
    itself, else (the same text stored more often than that) searched among its id alone; a vector
    that is not there is not found."""
    chroma = store.make_store(tmp_path / "chroma", None, "probe")
    vector = embedder.embed_query("tidal turbine noise")
    other = embedder.embed_query("water metering in Oslo")
    copies = [f"copy#{i}" for i in range(store.SELF_AMONG + 5)]
    chroma.upsert(copies + ["other#0"], [vector] * len(copies) + [other], [{"doc_id": "d"}] * (len(copies) + 1))
    assert all(chroma._searchable(c, vector) for c in copies)
    assert chroma._searchable("other#0", other)
    assert not chroma._searchable("missing#0", vector)
