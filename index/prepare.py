"""Update step 3, prepare: a changed file's bulletins (``parts_of``) and, for each, its articles,
chunks (as LangChain Documents, for the embed and write steps), record for the bulletin table, new
articles for the update's report and near-duplicate links (``prepare``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index import dedupe
from index.catalog import meta_for, part_id
from index.chunk import chunk_bulletin
from index.chunkdb import ChunkDB
from index.model import Loaded, Part
from index.settings import Settings
from index.split import split_articles
from index.tokenize import tokens

if TYPE_CHECKING:
    from index.report import UpdateReport


def parts_of(db: ChunkDB, doc_id: str, path: Path, loaded: Loaded, files: dict[str, Path], owned: list[str],
             report: UpdateReport) -> tuple[dict[str, Part], list[dict[str, Any]]]:
    """The bulletins a changed file now holds, by doc_id, and the indexed records of those it held
    and can no longer read (kept as they were, like a refused file); failures and caveats go into
    the report. A bulletin whose doc_id names another corpus file is refused."""
    report.notes.extend((str(path), note) for note in loaded.notes)
    parts: dict[str, Part] = {}
    unread: set[str] = set()
    for part in loaded.parts:
        bulletin_id = part_id(doc_id, part.key)
        if bulletin_id != doc_id and bulletin_id in files:
            report.failed.append((str(path), f"holds a bulletin named '{bulletin_id}' like the file"
                                             f" {files[bulletin_id].name}; rename one of them"))
            unread.add(bulletin_id)
        else:
            parts[bulletin_id] = part
    for key, why in loaded.failed:
        report.failed.append((str(path), why))
        unread.add(part_id(doc_id, key))
    kept = [db.bulletin(d) for d in owned if d in unread]
    return parts, [k for k in kept if k]


def prepare(db: ChunkDB, settings: Settings, doc_id: str, path: Path, text: str, fp: str,
            entry: dict[str, Any] | None, report: UpdateReport) -> tuple[list[Any], dict[str, Any]]:
    """A changed bulletin: its chunks as LangChain Documents and its record for the bulletin
    table; its new articles go into the report and its near-duplicate links into the chunk table."""
    from langchain_core.documents import Document  # imported only once a file has changed

    meta = meta_for(doc_id, text, entry)
    articles = split_articles(text, meta.title, meta.date)
    chunks = chunk_bulletin(meta, text, articles, settings.chunk_max_chars, settings.chunk_min_chars)
    old = db.bulletin(doc_id)
    (report.changed_docs if old else report.added_docs).append(doc_id)
    old_titles = {a["title"] for a in old["articles"]} if old else set()
    report.new_articles.extend(
        {"doc_id": doc_id, "title": a.title, "date": a.date, "publisher": meta.publisher,
         "lead": _lead(text[a.start:a.end], a.title)}
        for a in articles if a.title not in old_titles)
    # each chunk's keyword tokens, computed once: the chunk table stores them, and an article's words
    # for duplicate linking are its chunks' tokens together (tokenizing it again was ~15% of the
    # update's own CPU; the two differ only by a headline word or an identifier split between chunks)
    toks = [tokens(f"{c.title}\n{c.text}") for c in chunks]
    words: dict[int, set[str]] = {}
    for c, t in zip(chunks, toks, strict=True):
        words.setdefault(c.article, set()).update(t)
    dedupe.link(db, doc_id, [dedupe.article(doc_id, a.index, text[a.start:a.end], words.get(a.index))
                             for a in articles])
    docs = [Document(page_content=c.text, metadata={**c.metadata(), "start": c.start, "end": c.end,
                                                    "tokens": " ".join(t)})
            for c, t in zip(chunks, toks, strict=True)]
    return docs, {**asdict(meta), "path": str(path), "sha256": fp, "text": text,
                  "articles": [asdict(a) for a in articles],
                  "offsets": [(c.chunk_id, c.start, c.end) for c in chunks]}


def _lead(body: str, title: str) -> str:
    """First sentence of an article after its headline."""
    rest = body.strip()
    if rest.startswith(title):
        rest = rest[len(title):].strip()
    first = rest.split("\n", 1)[0].strip()
    end = first.find(". ")
    return first[: end + 1] if 0 < end < 300 else first[:300]
