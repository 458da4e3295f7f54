"""Foundation: incremental indexing against the real store (Chroma, BM25, record
manager), bad files, and the article splitter and chunker on the seeds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from index.indexer import Index
from index.store import FILTER_KEYS

NEWSLETTER = "china-standardisation-news-2020"


def _stores(index: Index, doc_id: str | None = None) -> tuple[set[str], set[str], set[str]]:
    chroma, bm25 = index.store.ids(), set(index.bm25.ids)
    rm = set(index.record_manager.list_keys())
    if doc_id:
        keep = lambda ids: {i for i in ids if i.startswith(doc_id + "#")}  # noqa: E731
        return keep(chroma), keep(bm25), keep(rm)
    return chroma, bm25, rm


def test_update_is_incremental_edit_and_delete(make_settings, corpus_copy: Path, embedder) -> None:
    index = Index(make_settings(corpus_copy), embedder=embedder)
    first = index.update(progress=False)
    assert first.ok and len(first.added_docs) == 5
    total = first.embedded
    assert total == index.store.count() == len(index.bm25.ids) > 50
    assert index.verify() == []

    again = index.update(progress=False)
    assert again.embedded == 0 and again.deleted == 0 and again.unchanged == 5

    # Edit one paragraph of one bulletin: only the chunk holding it is embedded again.
    path = corpus_copy / "jtc1-smart-cities-webconference.txt"
    before = {c["id"]: c for c in index.db.chunks_of("jtc1-smart-cities-webconference")}
    text = path.read_text()
    path.write_text(text.replace("over 160 registered experts", "over 170 registered experts"))
    edited = index.update(progress=False)
    assert edited.changed_docs == ["jtc1-smart-cities-webconference"]
    assert edited.embedded == 1 and edited.deleted == 1
    after = {c["id"]: c for c in index.db.chunks_of("jtc1-smart-cities-webconference")}
    assert len(set(after) - set(before)) == 1 and len(set(before) - set(after)) == 1
    new_chunk = after[(set(after) - set(before)).pop()]
    assert "170 registered experts" in new_chunk["text"]
    assert new_chunk["text"] == path.read_text()[new_chunk["start"]:new_chunk["end"]]
    assert index.bm25.search("170 registered experts", 1)[0][0] == new_chunk["id"]
    assert index.verify() == []

    # Delete one bulletin: its chunks leave Chroma, BM25 and the record manager.
    assert all(_stores(index, NEWSLETTER))
    (corpus_copy / f"{NEWSLETTER}.txt").unlink()
    removed = index.update(progress=False)
    assert removed.removed_docs == [NEWSLETTER] and removed.embedded == 0
    assert _stores(index, NEWSLETTER) == (set(), set(), set())
    assert index.db.bulletin(NEWSLETTER) is None
    assert index.verify() == []
    assert index.store.count() == total - removed.deleted


def test_bad_files_are_reported_and_the_rest_indexed(make_settings, corpus_copy: Path, embedder) -> None:
    index = Index(make_settings(corpus_copy), embedder=embedder)
    assert index.update(progress=False).ok
    kept = index.store.count()
    (corpus_copy / "empty.txt").write_text("")
    (corpus_copy / "binary.txt").write_bytes(b"\x00\x01\x02PK\x03\x04" * 50)
    (corpus_copy / "cp1252.txt").write_bytes("Caf\xe9 na\xefve r\xe9sum\xe9 standards".encode("cp1252"))
    (corpus_copy / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog")
    (corpus_copy / "good-news.md").write_text("# ISO publishes ISO 37120\n\nISO 37120 defines city indicators.\n")
    # An edit that breaks a bulletin that is already indexed must not lose its chunks.
    (corpus_copy / "iec-smart-cities.txt").write_bytes(b"\xff\xfe\x00broken")
    report = index.update(progress=False)
    failed = {Path(p).name: why for p, why in report.failed}
    assert set(failed) == {"empty.txt", "binary.txt", "cp1252.txt", "broken.pdf", "iec-smart-cities.txt"}
    assert "empty" in failed["empty.txt"] and "binary" in failed["binary.txt"]
    assert "UTF-8" in failed["cp1252.txt"] and "PDF" in failed["broken.pdf"]
    assert report.added_docs == ["good-news"] and not report.ok
    assert index.store.count() == kept + 1
    assert index.db.chunk_ids("iec-smart-cities"), "already indexed chunks were lost"
    assert index.verify() == []


def test_rebuild_gives_the_same_chunks(make_settings, embedder) -> None:
    index = Index(make_settings(), embedder=embedder)
    index.update(progress=False)
    ids = index.db.chunk_ids()
    report = index.rebuild(progress=False)
    assert report.kind == "rebuild" and report.embedded == len(ids)
    assert index.db.chunk_ids() == ids == index.store.ids() == set(index.bm25.ids)


def test_add_copies_into_corpus_and_refuses_bad(make_settings, tmp_path: Path, embedder) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    index = Index(make_settings(corpus), embedder=embedder)
    good = tmp_path / "itu-y4900.html"
    good.write_text("<html><head><script>evil()</script><style>x{}</style></head><body><nav>Home | News</nav>"
                    "<main><h1>ITU-T Y.4900 approved</h1><p>ITU-T approved Y.4900 on smart sustainable cities."
                    "</p></main><footer>(c) ITU</footer></body></html>")
    bad = tmp_path / "bad.txt"
    bad.write_text("   \n ")
    report = index.add([good, bad])
    assert (corpus / "itu-y4900.html").is_file() and not (corpus / "bad.txt").exists()
    assert [Path(p).name for p, _ in report.failed] == ["bad.txt"]
    (chunk,) = index.db.chunks_of("itu-y4900")
    assert "Y.4900 on smart sustainable cities" in chunk["text"]
    assert "evil" not in chunk["text"] and "Home | News" not in chunk["text"] and "(c) ITU" not in chunk["text"]
    (corpus / "by-hand.txt").write_text("Dropped by hand\n\nA file no add named.\n")
    later = tmp_path / "later.txt"
    later.write_text("Water metering\n\nOslo tests water meters.\n")
    report = index.add([later])  # indexes the files it adds alone: the rest is the next update's
    assert (report.added_docs, report.files, report.unchanged) == (["later"], 2, 1)
    assert index.db.bulletin("later") and not index.db.bulletin("by-hand")
    assert index.update(progress=False).added_docs == ["by-hand"]


def test_newsletter_splits_into_dated_articles(seed_index: Index) -> None:
    doc = seed_index.db.bulletin(NEWSLETTER)
    titles = [a["title"] for a in doc["articles"]]
    assert len(titles) == 10
    assert titles[3] == "SAC/TC28 sets up the Smart City Standardisation Working Group"
    dates = [a["date"] for a in doc["articles"]]
    assert dates[0] == dates[1] == "2020-10-19"  # two items share one byline
    assert dates[-1] == "2020-09-23" and all(dates)
    one = seed_index.db.bulletin("jtc1-smart-cities-webconference")
    assert len(one["articles"]) == 1 and one["publisher"] == "ANSI"


def test_chunks_respect_articles_and_point_into_the_text(seed_index: Index) -> None:
    for b in seed_index.db.bulletins():
        text = (seed_index.settings.corpus / Path(b["path"]).name).read_text()
        spans = [(a["start"], a["end"]) for a in b["articles"]]
        for c in seed_index.db.chunks_of(b["doc_id"]):
            assert text[c["start"]:c["end"]] == c["text"]
            assert any(s <= c["start"] and c["end"] <= e for s, e in spans), "chunk crosses an article"
            assert c["title"] and c["doc_id"] == b["doc_id"]


def test_chunk_ids_are_stable(make_settings, corpus_copy: Path, embedder, seed_index: Index) -> None:
    index = Index(make_settings(corpus_copy), embedder=embedder)
    from index.catalog import meta_for, read_catalog
    from index.chunk import chunk_bulletin
    from index.split import split_articles

    path = corpus_copy / f"{NEWSLETTER}.txt"
    text = path.read_text()
    meta = meta_for(NEWSLETTER, text, read_catalog(corpus_copy)[NEWSLETTER])
    ids = [c.chunk_id for c in chunk_bulletin(meta, text, split_articles(text, meta.title, meta.date))]
    assert set(ids) == seed_index.db.chunk_ids(NEWSLETTER)
    shifted = "A new opening paragraph about nothing in particular.\n\n" + text
    ids2 = {c.chunk_id for c in chunk_bulletin(meta, shifted, split_articles(shifted, meta.title, meta.date))}
    assert len(set(ids) - ids2) <= 1, "text moved down must keep its ids"
    del index


def test_the_fingerprint_is_kept_in_step_with_the_chunk_ids(tmp_path: Path) -> None:
    """``ChunkDB.id_sum`` (the index fingerprint) is kept by every write and equals the sum computed
    from the table: after inserts, replacements, deletions, and for a table from before it was kept."""
    from index.chunkdb import ChunkDB, _id_hash

    def row(cid: str, standards: str = "|ISO 37120|", orgs: str = "|ISO|") -> dict[str, object]:
        return {"id": cid, "doc_id": cid[0], "article": 0, "title": "", "bulletin_title": "", "publisher": "",
                "date": "", "date_num": 0, "text": f"text of {cid}", "standards": standards, "orgs": orgs}

    def from_scratch(db: ChunkDB) -> int:
        counted: Counter[tuple[str, str]] = Counter()
        for (meta,) in db.conn.execute("SELECT meta FROM chunks"):
            for kind in ("standards", "orgs"):
                counted.update((kind, v) for v in json.loads(meta).get(kind, "").split("|") if v)
        assert sorted(db.label_counts()) == sorted((k, v, n) for (k, v), n in counted.items())  # the filter lists
        return sum(_id_hash(c) for c in db.chunk_ids()) % 2**64

    db = ChunkDB(tmp_path / "c.sqlite")
    assert db.id_sum() == 0
    db.put_chunks([row(f"a{i}") for i in range(30)])
    first = db.id_sum()
    assert first == from_scratch(db) != 0
    db.put_chunks([row("a3", "|IEC 61850|", ""), row("a3", "|IEC 61850|", ""), row("b1")])  # a repeat counts once
    assert db.id_sum() == from_scratch(db) != first
    db.delete_chunks(["b1", "zz"])  # an id that is not there changes nothing
    assert db.id_sum() == first == from_scratch(db)
    db.conn.execute("DELETE FROM meta WHERE key IN ('id_sum', 'labels_kept')")  # as before they were kept
    db.put_chunks([row("c1")])
    assert db.id_sum() == from_scratch(db)
    db.delete_chunks(["c1"])
    assert db.id_sum() == first == from_scratch(db)


def test_unchanged_files_and_catalog_are_not_read_again(tmp_path: Path) -> None:
    """A running watcher keeps the fingerprints of files (and the catalog) whose size, times and inode
    did not change; any write is seen, also one of the same size, and one within 2 s of hashing
    (racy: its times may not tell) is hashed again next time."""
    import os
    import time

    from index.catalog import read_catalog
    from index.fingerprint import SeenFiles, file_fingerprint
    from index.settings import load_settings

    settings = load_settings(home=tmp_path / "home")
    seen = SeenFiles()
    f = tmp_path / "a.txt"
    f.write_text("first version")
    fp, data = seen.fingerprint(f, None, settings)
    assert data == b"first version" and seen.fingerprint(f, None, settings)[1] is not None  # racy: read again
    time.sleep(2.1)
    assert seen.fingerprint(f, None, settings)[1] is not None  # hashed now that it is old enough: kept
    assert seen.fingerprint(f, None, settings) == (fp, None)  # kept: not read
    assert seen.fingerprint(f, {"title": "T"}, settings)[1] is not None  # its catalog entry changed
    f.write_text("other version")  # same size
    fp2, data2 = seen.fingerprint(f, None, settings)
    assert data2 == b"other version" and fp2 == file_fingerprint(data2, None, settings) != fp
    os.utime(f, ns=(10**18, 10**18))  # only the times changed: read again, same fingerprint
    assert seen.fingerprint(f, None, settings) == (fp2, b"other version")

    (tmp_path / "catalog.toml").write_text('[a]\ntitle = "One"\n')
    time.sleep(2.1)
    first = read_catalog(tmp_path)
    assert read_catalog(tmp_path) is first == {"a": {"title": "One"}}  # kept
    (tmp_path / "catalog.toml").write_text('[a]\ntitle = "Two"\n')
    assert read_catalog(tmp_path) == {"a": {"title": "Two"}}


def test_fingerprints_and_catalog_are_kept_for_the_next_process(tmp_path: Path, monkeypatch) -> None:
    """A fresh process (a new SeenFiles on the same chunk table) reuses what an earlier one read
    while the files' stats hold, and reads a file or catalog again once it changed."""
    import os
    import time
    import tomllib

    from index import catalog
    from index.chunkdb import ChunkDB
    from index.fingerprint import SeenFiles, file_fingerprint
    from index.settings import load_settings

    settings = load_settings(home=tmp_path / "home")
    f = tmp_path / "a.txt"
    f.write_text("first version")
    (tmp_path / "catalog.toml").write_text('[a]\ntitle = "One"\ndate = 2025-01-10\n')
    time.sleep(2.1)  # older than the racy window
    first = SeenFiles(ChunkDB(tmp_path / "index.sqlite"))
    fp, data = first.fingerprint(f, {"title": "One"}, settings)
    entries = catalog.read_catalog(tmp_path, first.memo)
    first.save()

    catalog._READ.clear()  # a new process: nothing in memory
    monkeypatch.setattr(tomllib, "loads", lambda *_: (_ for _ in ()).throw(AssertionError("parsed again")))
    second = SeenFiles(ChunkDB(tmp_path / "index.sqlite"))
    assert second.fingerprint(f, {"title": "One"}, settings) == (fp, None)  # not read
    assert second.fingerprint(f, {"title": "Two"}, settings)[1] == b"first version"  # its entry changed
    assert catalog.read_catalog(tmp_path, second.memo) == {"a": {"title": "One", "date": "2025-01-10"}}
    assert str(entries["a"]["date"]) == "2025-01-10"

    mtime = f.stat().st_mtime_ns
    f.write_text("other version")
    os.utime(f, ns=(mtime, mtime))  # same size and modification time: the change time still tells
    fp2, data2 = SeenFiles(ChunkDB(tmp_path / "index.sqlite")).fingerprint(f, {"title": "One"}, settings)
    assert data2 == b"other version" and fp2 == file_fingerprint(data2, {"title": "One"}, settings) != fp


def test_a_catalog_read_right_after_its_writing_is_kept_by_its_bytes(tmp_path: Path, monkeypatch) -> None:
    """The next process does not parse a catalog again that was read within the racy window of its
    writing (as a build right after the corpus was copied reads it), while its bytes are the same;
    another catalog of the same size and times is parsed."""
    import os
    import tomllib

    from index import catalog
    from index.chunkdb import ChunkDB
    from index.fingerprint import SeenFiles

    path = tmp_path / "catalog.toml"
    path.write_text('[a]\ntitle = "One"\n')
    first = SeenFiles(ChunkDB(tmp_path / "index.sqlite"))
    assert catalog.read_catalog(tmp_path, first.memo) == {"a": {"title": "One"}}  # read at once: racy
    first.save()

    catalog._READ.clear()  # a new process
    parse = tomllib.loads
    monkeypatch.setattr(tomllib, "loads", lambda *_: (_ for _ in ()).throw(AssertionError("parsed again")))
    second = SeenFiles(ChunkDB(tmp_path / "index.sqlite"))
    assert catalog.read_catalog(tmp_path, second.memo) == {"a": {"title": "One"}}

    st = path.stat()
    path.write_text('[a]\ntitle = "Two"\n')  # same size, and the same times set back
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr(tomllib, "loads", parse)
    catalog._READ.clear()
    assert catalog.read_catalog(tmp_path, SeenFiles(ChunkDB(tmp_path / "index.sqlite")).memo) == {"a": {"title": "Two"}}


def test_a_removed_file_is_forgotten_by_the_next_update(tmp_path: Path) -> None:
    """The kept fingerprints follow the corpus: a file that left it leaves the chunk table's memo."""
    import time

    from index.indexer import Index
    from index.settings import load_settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a", "b"):
        body = f"News item {name} about smart city standards. " * 20
        (corpus / f"{name}.txt").write_text(f"Bulletin {name}\n\n{body}")
    time.sleep(2.1)
    index = Index(load_settings(home=tmp_path / "home", corpus=corpus))
    assert index.update(progress=False).ok
    kept = set(index.db.file_memo())
    assert {str((corpus / "a.txt").resolve()), str((corpus / "b.txt").resolve())} <= kept
    (corpus / "b.txt").unlink()
    assert index.update(progress=False).removed_docs == ["b"]
    assert str((corpus / "b.txt").resolve()) not in index.db.file_memo()
    assert str((corpus / "a.txt").resolve()) in index.db.file_memo()


def test_chroma_holds_vectors_and_the_filtered_metadata_not_the_text(seed_index: Index) -> None:
    """A chunk's text lives in the chunk table alone: Chroma's copy only fed a full-text index nothing
    queries (40% of the upsert's CPU, 6x the disk); of its metadata, Chroma keeps what its filter reads."""
    got = seed_index.store._collection.get(limit=5, include=["documents", "metadatas"])
    assert len(got["ids"]) == 5 and all(set(m) == set(FILTER_KEYS) for m in got["metadatas"])
    for cid, m in zip(got["ids"], got["metadatas"], strict=True):
        assert m["chunk_id"] == cid and cid.startswith(f"{m['doc_id']}#")
    assert got["documents"] == [None] * 5
    texts = seed_index.db.get_chunks(got["ids"])
    assert all(texts[cid]["text"] for cid in got["ids"])


def test_update_logs_since_a_time_leave_older_logs_unread(tmp_path: Path) -> None:
    """``index add`` polls the logs for its files' report; older logs (a build's lists every article) stay unread."""
    import time

    from index.chunkdb import ChunkDB

    db = ChunkDB(tmp_path / "index.sqlite")
    db.log_update("update", {"new_articles": [{"title": f"a{i}"} for i in range(3)]})
    time.sleep(0.01)
    since = time.time()
    db.log_update("add", {"added_docs": ["new"]})
    assert [u["kind"] for u in db.updates(50)] == ["add", "update"]
    assert [u["kind"] for u in db.updates(50, since)] == ["add"]
    assert db.updates(50, time.time() + 1) == []
