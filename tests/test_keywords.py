"""The keyword index (index/keywords.py): Lucene BM25 with bm25s's scores, updated in place through
the chunk table's log, and after any add, removal or replacement the same ranking as a rebuild."""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
from pathlib import Path

import bm25s
import numpy as np
import pytest

from index import keywords
from index.chunkdb import ChunkDB
from index.keywords import Dates, KeywordIndex


def _docs(rng: random.Random, n: int) -> list[str]:
    vocab = [f"t{i}" for i in range(rng.randint(50, 800))]
    weights = [1 / (i + 1) for i in range(len(vocab))]  # skewed like text's, lengths very different
    return [" ".join(rng.choices(vocab, weights, k=rng.choice([1, 3, 40, 200]))) for _ in range(n)]


def _row(cid: str, text: str, day: int = 0) -> dict[str, object]:
    return {"id": cid, "doc_id": cid.split("#")[0], "article": 0, "title": "", "bulletin_title": "",
            "publisher": "", "date": "", "date_num": day, "text": text}


def _day(rng: random.Random) -> int:
    """A date number in 2020, or 0 (undated) for one chunk in seven."""
    return rng.choice([0] + [20200001 + 100 * m for m in range(1, 13)] * 2)


def _queries(rng: random.Random) -> list[str]:
    return [" ".join(f"t{rng.randint(0, 60)}" for _ in range(rng.randint(1, 5))) for _ in range(25)] + ["t1 t1 t7"]


def _rebuilt(db_path: Path, tmp: Path) -> KeywordIndex:
    """A keyword index of the same chunks written from scratch (its own main segment, no delta)."""
    fresh = KeywordIndex(db_path, tmp / f"fresh-{random.random()}")
    fresh.compact(prune=False)  # the log belongs to the index under test
    fresh.refresh()
    assert fresh.pending() == 0
    return fresh


def _same(a: KeywordIndex, b: KeywordIndex, queries: list[str], allowed: set[str] | None = None) -> None:
    for q in queries:
        assert a.search(q, 15, allowed) == b.search(q, 15, allowed), q  # same ids, same order, same scores


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scores_are_bm25s_scores(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    texts = _docs(rng, 300) + [""]  # an empty chunk counts as one token long, as bm25s counts it
    db = ChunkDB(tmp_path / "c.sqlite")
    db.put_chunks([_row(f"d{i}#0", t) for i, t in enumerate(texts)])
    ix = KeywordIndex(db.path, tmp_path / "bm25")
    reference = bm25s.BM25()
    reference.index([t.split() or [""] for t in texts], show_progress=False)
    for q in _queries(rng):
        expected = reference.get_scores(q.split())
        hits = ix.search(q, 10)
        assert len(hits) == min(10, int(np.count_nonzero(expected)))
        for cid, score in hits:  # bm25s's score, and nothing left out scores higher
            assert score == pytest.approx(float(expected[int(cid[1:].split("#")[0])]), rel=1e-5)
        if hits:
            assert hits[-1][1] == pytest.approx(float(np.sort(expected)[-len(hits)]), rel=1e-5)


@pytest.mark.parametrize("seed", [4, 5])
def test_adds_removals_and_replacements_rank_as_a_rebuild(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    texts = _docs(rng, 400)
    db = ChunkDB(tmp_path / "c.sqlite")
    db.put_chunks([_row(f"d{i}#0", t, _day(rng)) for i, t in enumerate(texts[:300])])
    ix = KeywordIndex(db.path, tmp_path / "bm25")
    queries = _queries(rng)
    _same(ix, _rebuilt(db.path, tmp_path), queries)
    for step in range(6):  # each step: some added, some removed, some rewritten (with a new date)
        db.put_chunks([_row(f"d{300 + 15 * step + i}#0", t, _day(rng))
                       for i, t in enumerate(texts[300 + 15 * step:][:15])])
        removed = [f"d{i}#0" for i in rng.sample(range(300), 7)]
        db.delete_chunks(removed)
        db.put_chunks([_row(f"d{i}#0", texts[rng.randrange(400)], _day(rng)) for i in rng.sample(range(300), 5)])
        db.conn.execute("UPDATE chunks SET date_num = ? WHERE id = ?", (20200301, f"d{rng.randrange(300)}#0"))
        assert 0 < ix.pending() <= 28 * (step + 1)  # the main segment stays: only the changed chunks moved
        assert sorted(ix.ids) == sorted(db.chunk_ids())
        _same(ix, _rebuilt(db.path, tmp_path), queries)
        allowed = set(rng.sample(sorted(db.chunk_ids()), 60))
        _same(ix, _rebuilt(db.path, tmp_path), queries, allowed)
        assert {c for c, _ in ix.search("t3 t4", 100, allowed)} <= allowed
        few = set(rng.sample(sorted(db.chunk_ids()), 4))  # not among the best: the ids looked up
        for restricted in (allowed, few, set(db.chunk_ids()) - {"d1#0"} | {"gone#0"}):  # or the chunks that scored
            for q, n in itertools.product(queries, (1, 3, 15)):  # the best HEAD * n holding n allowed, or not
                everything = ix.search(q, 10**6)
                assert ix.search(q, n, restricted) == [h for h in everything if h[0] in restricted][:n], q
        some = rng.sample(sorted(db.chunk_ids()), 50) + removed + ["gone#0"]
        for span in (Dates(20200101, 20200231), Dates(1, 20200931), Dates(0, 99_999_999), Dates(5, 4)):  # few
            dated = db.ids_where("date_num >= ? AND date_num <= ?", [span.lo, span.hi])  # or most, all, none
            assert ix.dated(some, span) == dated & set(some)
            for q, n in itertools.product(queries, (1, 3, 15)):  # the dates as of the last change
                assert ix.search_each(q, n, [span, None]) == [ix.search(q, n, dated), ix.search(q, n)], q


def test_common_words_count_only_where_they_can_lift_a_chunk_into_the_best(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MaxScore: the best n are those of every chunk scored with every word, the same ids, order and
    scores (the words are added in one order on every path), with a delta and under a restriction."""
    rng = random.Random(7)
    texts = _docs(rng, 3000)
    db = ChunkDB(tmp_path / "c.sqlite")
    db.put_chunks([_row(f"d{i}#0", t) for i, t in enumerate(texts)])
    ix = KeywordIndex(db.path, tmp_path / "bm25")
    ix.compact()
    db.put_chunks([_row(f"d{i}#0", texts[rng.randrange(3000)]) for i in rng.sample(range(3000), 40)])
    db.delete_chunks([f"d{i}#0" for i in rng.sample(range(3000), 20)])
    assert ix.pending() == 60  # a main segment and a delta
    splits = []
    essential = keywords._essential

    def spy(terms, total, norm, n):  # type: ignore[no-untyped-def]
        splits.append((essential(terms, total, norm, n), len(terms)))
        return splits[-1][0]

    monkeypatch.setattr(keywords, "_essential", spy)
    queries = [" ".join([f"t{rng.randint(100, 700)}"] * rng.randint(1, 2) + [f"t{rng.randint(0, 5)}" for _ in range(3)])
               for _ in range(40)]
    allowed = set(rng.sample(sorted(db.chunk_ids()), 300))
    for q, n in itertools.product(queries, (1, 5, 10)):
        everything = ix.search(q, 10**6)  # more than score: every word scored for every chunk
        assert ix.search(q, n) == everything[:n], q
        assert ix.search(q, n, allowed) == [h for h in everything if h[0] in allowed][:n], q
    assert sum(split < terms for split, terms in splits) > len(splits) // 3  # the common words were left out
    ix.compact()  # no delta
    for q in queries:
        assert ix.search(q, 5, allowed) == [h for h in ix.search(q, 10**6) if h[0] in allowed][:5], q


def test_a_second_process_sees_changes_and_survives_a_compaction(tmp_path: Path) -> None:
    rng = random.Random(6)
    texts = _docs(rng, 200)
    db = ChunkDB(tmp_path / "c.sqlite")
    db.put_chunks([_row(f"d{i}#0", t) for i, t in enumerate(texts[:100])])
    writer, reader = KeywordIndex(db.path, tmp_path / "bm25"), KeywordIndex(db.path, tmp_path / "bm25")
    queries = _queries(rng)
    _same(reader, writer, queries)
    db.put_chunks([_row("new#0", "zebra zebra t1")])
    assert reader.search("zebra", 3)[0][0] == "new#0"  # written by another connection, found at once
    db.put_chunks([_row(f"d{i}#0", t) for i, t in enumerate(texts[100:], 100)])
    db.delete_chunks(["d5#0"])
    writer.compact()  # a new main segment; the log it covers is pruned
    assert db.conn.execute("SELECT COUNT(*) FROM keyword_log").fetchone()[0] == 0
    _same(writer, _rebuilt(db.path, tmp_path), queries)  # its new segments, none of what it kept for the old
    db.put_chunks([_row("later#0", "yak t2")])
    _same(reader, _rebuilt(db.path, tmp_path), queries + ["zebra", "yak"])  # the reader's old segment was left
    assert "d5#0" not in reader.ids and {"new#0", "later#0"} <= set(reader.ids)
    assert len(list((tmp_path / "bm25").glob("gen-*"))) == 1


def test_a_build_compacts_when_the_delta_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keywords, "DELTA_MAX", 20)
    db = ChunkDB(tmp_path / "c.sqlite")
    ix = KeywordIndex(db.path, tmp_path / "bm25")
    ix.refresh()  # an empty main segment, as a build from an empty data directory starts with
    db.put_chunks([_row(f"d{i}#0", f"t{i} common") for i in range(15)])
    assert not ix.due()
    db.put_chunks([_row(f"e{i}#0", f"t{i} other") for i in range(10)])
    assert ix.due()
    ix.compact()
    assert not ix.due() and ix.pending() == 0 and len(ix.ids) == 25


def test_old_data_directories_are_taken_over(tmp_path: Path) -> None:
    """A data directory from the bm25s index (a generation folder without our arrays) and chunk rows
    from before the token cache: the first search writes a main segment of every chunk."""
    db = ChunkDB(tmp_path / "c.sqlite")
    db.put_chunks([_row("a#0", "standards for smart cities"), _row("b#0", "water metering")])
    db.conn.execute("UPDATE chunks SET tokens = NULL")
    db.conn.execute("DELETE FROM keyword_log")  # as before the log existed
    old = tmp_path / "bm25"
    (old / "gen-1-abcd" / "model").mkdir(parents=True)
    (old / "gen-1-abcd" / "ids.json").write_text(json.dumps(["a#0", "b#0"]))
    (old / "CURRENT").write_text("gen-1-abcd")
    ix = KeywordIndex(db.path, old)
    assert ix.search("metering", 5)[0][0] == "b#0"
    assert sorted(ix.ids) == ["a#0", "b#0"] and not (old / "gen-1-abcd").exists()


def test_a_main_segment_from_before_the_date_column_is_written_again(tmp_path: Path) -> None:
    db = ChunkDB(tmp_path / "c.sqlite")
    db.put_chunks([_row("a#0", "smart cities water", 20200105), _row("b#0", "water metering", 20210105)])
    KeywordIndex(db.path, tmp_path / "bm25").compact()
    gen = (tmp_path / "bm25" / "CURRENT").read_text()
    (tmp_path / "bm25" / gen / "dates.npy").unlink()  # as written before segments kept dates
    ix = KeywordIndex(db.path, tmp_path / "bm25")
    assert [c for c, _ in ix.search("water", 5, Dates(20210101, 20211231))] == ["b#0"]
    assert (tmp_path / "bm25" / "CURRENT").read_text() != gen and not (tmp_path / "bm25" / gen).exists()


def test_the_log_is_written_in_the_chunk_rows_transaction(tmp_path: Path) -> None:
    db = ChunkDB(tmp_path / "c.sqlite")
    conn = sqlite3.connect(db.path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO chunks (id, doc_id, article, title, bulletin_title, publisher, date, date_num, text)"
                 " VALUES ('x#0', 'x', 0, '', '', '', '', 0, 'text')")
    conn.execute("ROLLBACK")  # a write that never committed leaves no log entry either
    assert db.conn.execute("SELECT COUNT(*) FROM keyword_log").fetchone()[0] == 0
    db.put_chunks([_row("y#0", "text"), _row("z#0", "text")])
    db.delete_chunks(["y#0"])
    db.conn.execute("UPDATE chunks SET date_num = 20200101 WHERE id = 'z#0'")  # the index keeps dates too
    assert [r[0] for r in db.conn.execute("SELECT id FROM keyword_log ORDER BY seq")] == ["y#0", "z#0", "y#0", "z#0"]
