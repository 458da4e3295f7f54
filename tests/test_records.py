"""SQLiteRecordManager against langchain_classic's SQLRecordManager: same results, same database file."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from langchain_classic.indexes import SQLRecordManager
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.indexing import index
from langchain_core.indexing.base import RecordManager
from langchain_core.vectorstores import InMemoryVectorStore

from index.records import SQLiteRecordManager

Factory = Callable[[str], RecordManager]
TICK = 0.01  # the database clock has millisecond resolution


@pytest.fixture()
def factories(tmp_path: Path) -> Iterator[Callable[[Path], dict[str, Factory]]]:
    """Makers of both kinds of manager on a given file; everything made is closed afterwards."""
    made: list[RecordManager] = []

    def on(path: Path) -> dict[str, Factory]:
        def ours(namespace: str) -> RecordManager:
            made.append(SQLiteRecordManager(namespace, path))
            return made[-1]

        def theirs(namespace: str) -> RecordManager:
            made.append(SQLRecordManager(namespace, db_url=f"sqlite:///{path}"))
            return made[-1]

        return {"ours": ours, "theirs": theirs}

    yield on
    for rm in made:
        if isinstance(rm, SQLiteRecordManager):
            rm.close()
        else:
            rm.engine.dispose()


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def _script(make: Factory) -> list[object]:
    """A run of calls covering every filter; returns everything the manager answered."""
    rm = make("ns")
    rm.create_schema()
    out: list[object] = []
    t0 = rm.get_time()
    out.append(type(t0))
    time.sleep(TICK)
    rm.update(["a", "b", "c"], group_ids=["g1", "g1", "g2"], time_at_least=t0)
    rm.update(["f", "f"], group_ids=["g1", "g2"])
    time.sleep(TICK)
    t1 = rm.get_time()
    time.sleep(TICK)
    rm.update(["d", "e"])
    rm.update(["c"], group_ids=["g3"], time_at_least=t1)
    time.sleep(TICK)
    t2 = rm.get_time()
    out += [
        rm.exists(["a", "z", "d", "a"]),
        rm.exists([]),
        rm.list_keys(),
        rm.list_keys(after=t1),
        rm.list_keys(before=t1),
        rm.list_keys(after=t0, before=t1),
        rm.list_keys(after=t2),
        rm.list_keys(after=0.0, before=0.0),
        rm.list_keys(group_ids=["g1"]),
        rm.list_keys(group_ids=["g2", "g3", "nope"]),
        rm.list_keys(group_ids=[]),
        rm.list_keys(limit=2),
        rm.list_keys(limit=0),
        rm.list_keys(group_ids=["g1", "g2"], before=t1, limit=1),
    ]
    other = make("other")
    other.create_schema()
    other.update(["a", "x"], group_ids=["g1", "g1"])
    out += [other.list_keys(), other.exists(["a", "b"]), rm.list_keys(group_ids=["g1"])]
    rm.delete_keys(["a", "zzz"])
    rm.delete_keys([])
    out += [rm.list_keys(), other.list_keys()]
    with pytest.raises(AssertionError, match="Time sync issue"):
        rm.update(["y"], time_at_least=rm.get_time() + 3600)
    with pytest.raises(ValueError, match="does not match"):
        rm.update(["y", "z"], group_ids=["g1"])
    out.append(rm.exists(["y", "z"]))
    return out


def test_same_answers_as_sqlrecordmanager(tmp_path: Path, factories: Callable[[Path], dict[str, Factory]]) -> None:
    results, tables, schemas = {}, {}, {}
    for kind in ("ours", "theirs"):
        path = tmp_path / f"{kind}.sqlite"
        results[kind] = _script(factories(path)[kind])
        tables[kind] = _rows(path, 'SELECT "key", namespace, group_id FROM upsertion_record ORDER BY rowid')
        schemas[kind] = _rows(path, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
    assert results["ours"] == results["theirs"]
    assert results["ours"][3] == ["a", "b", "c", "f", "d", "e"]
    assert tables["ours"] == tables["theirs"]
    assert schemas["ours"] == schemas["theirs"]


@pytest.mark.parametrize(("writer", "reader"), [("theirs", "ours"), ("ours", "theirs")])
def test_reads_the_others_database(
    tmp_path: Path, factories: Callable[[Path], dict[str, Factory]], writer: str, reader: str
) -> None:
    path = tmp_path / "record_manager.sqlite"
    make = factories(path)
    w = make[writer]("stdnews/stdnews")
    w.create_schema()
    w.update(["b1#1", "b1#2", "b2#1"], group_ids=["b1", "b1", "b2"])
    time.sleep(TICK)
    mid = w.get_time()
    time.sleep(TICK)
    w.update(["b3#1"], group_ids=["b3"])
    before = _rows(path, "SELECT * FROM upsertion_record ORDER BY rowid")

    r = make[reader]("stdnews/stdnews")
    r.create_schema()
    assert _rows(path, "SELECT * FROM upsertion_record ORDER BY rowid") == before
    assert r.list_keys() == w.list_keys() == ["b1#1", "b1#2", "b2#1", "b3#1"]
    assert r.exists(["b1#2", "b9#1"]) == [True, False]
    assert r.list_keys(group_ids=["b1"]) == ["b1#1", "b1#2"]
    assert r.list_keys(before=mid) == ["b1#1", "b1#2", "b2#1"]
    assert r.list_keys(after=mid) == ["b3#1"]
    assert make[reader]("elsewhere").list_keys() == []

    r.update(["b1#1"], group_ids=["b1x"])
    r.delete_keys(["b2#1"])
    assert w.list_keys(group_ids=["b1x"]) == ["b1#1"]
    assert w.list_keys(after=mid) == ["b1#1", "b3#1"]
    assert w.exists(["b2#1"]) == [False]
    uuids = {key: uid for uid, key, *_ in _rows(path, "SELECT * FROM upsertion_record")}
    assert uuids["b1#1"] == before[0][0]


def _docs(texts: dict[str, list[str]]) -> list[Document]:
    return [
        Document(
            page_content=text,
            metadata={"doc_id": doc_id, "chunk_id": f"{doc_id}#{hashlib.sha256(text.encode()).hexdigest()[:16]}"},
        )
        for doc_id, chunks in texts.items()
        for text in chunks
    ]


def _index_runs(rm: RecordManager) -> list[tuple[dict[str, int], list[str], list[str]]]:
    """Index, re-index, then change / drop / add chunks of one bulletin; results and what is stored after each."""
    rm.create_schema()
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=8))
    corpus = {"b1": ["alpha one", "alpha two", "alpha three"], "b2": ["beta one", "beta two"]}
    runs = [
        corpus,
        corpus,
        {"b1": ["alpha one", "alpha 2", "alpha four", "alpha five"]},
        {"b2": ["beta two"]},
        {"b1": ["alpha one", "alpha 2", "alpha four", "alpha five"], "b2": ["beta two"]},
    ]
    out = []
    for texts in runs:
        time.sleep(TICK)
        result = index(
            _docs(texts),
            rm,
            store,
            cleanup="scoped_full",
            source_id_key="doc_id",
            key_encoder=lambda d: d.metadata["chunk_id"],
            batch_size=2,
        )
        out.append((dict(result), sorted(store.store), sorted(rm.list_keys())))
    return out


def test_index_scoped_full_same_counts(tmp_path: Path, factories: Callable[[Path], dict[str, Factory]]) -> None:
    ours = _index_runs(factories(tmp_path / "ours.sqlite")["ours"]("stdnews/stdnews"))
    theirs = _index_runs(factories(tmp_path / "theirs.sqlite")["theirs"]("stdnews/stdnews"))
    assert ours == theirs
    counts = [(r["num_added"], r["num_skipped"], r["num_deleted"]) for r, _, _ in ours]
    assert counts == [(5, 0, 0), (0, 5, 0), (3, 1, 2), (0, 1, 1), (0, 5, 0)]
    assert all(stored == keys for _, stored, keys in ours)


def test_async_methods(tmp_path: Path) -> None:
    rm = SQLiteRecordManager("ns", tmp_path / "rm.sqlite")

    async def run() -> list[object]:
        await rm.acreate_schema()
        t0 = await rm.aget_time()
        await asyncio.sleep(TICK)
        await rm.aupdate(["a", "b"], group_ids=["g", "h"], time_at_least=t0)
        with pytest.raises(AssertionError):
            await rm.aupdate(["c"], time_at_least=t0 + 3600)
        found = await rm.aexists(["a", "c"])
        listed = await rm.alist_keys(group_ids=["h"], after=t0, limit=5)
        await rm.adelete_keys(["a"])
        return [found, listed, await rm.alist_keys()]

    try:
        assert asyncio.run(run()) == [[True, False], ["b"], ["b"]]
    finally:
        rm.close()


def test_threads_share_one_manager(tmp_path: Path) -> None:
    rm = SQLiteRecordManager("ns", tmp_path / "rm.sqlite")
    rm.create_schema()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                keys = [f"{n}-{i}-{j}" for j in range(5)]
                rm.update(keys, group_ids=[str(n)] * 5)
                assert rm.exists(keys) == [True] * 5
                if i % 2:
                    rm.delete_keys(keys[:2])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert len(rm.list_keys()) == 8 * (50 * 5 - 25 * 2)
        assert len(rm.list_keys(group_ids=["3"])) == 50 * 5 - 25 * 2
    finally:
        rm.close()


def test_many_keys_beyond_the_variable_limit(tmp_path: Path) -> None:
    rm = SQLiteRecordManager("ns", tmp_path / "rm.sqlite")
    rm.create_schema()
    rm._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)
    keys = [f"k{i}" for i in range(100)]
    try:
        with pytest.raises(sqlite3.OperationalError, match="too many SQL variables"):
            rm._conn.execute(f"SELECT {', '.join('?' * 21)}", [0] * 21)
        rm.update(keys, group_ids=keys)
        assert all(rm.exists(keys))
        assert rm.list_keys(group_ids=keys) == keys
        assert rm.list_keys(group_ids=keys, limit=30) == keys[:30]
        rm.delete_keys(keys[1:])
        assert rm.list_keys() == ["k0"]
    finally:
        rm.close()
