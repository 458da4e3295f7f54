"""Plain data records that flow through the index stage."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BulletinMeta:
    """Catalog entry of one bulletin; missing facts stay None rather than guessed."""

    doc_id: str
    title: str
    publisher: str | None = None
    date: str | None = None  # ISO 8601, possibly partial ("2020-10")
    url: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Article:
    """One news item of a bulletin: headline, ISO date and its span in the text."""

    index: int
    title: str
    date: str | None
    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage; ``start``/``end`` are character offsets into the source text."""

    chunk_id: str
    doc_id: str
    article: int
    title: str
    bulletin_title: str
    publisher: str | None
    date: str | None
    start: int
    end: int
    text: str
    extra: dict[str, str] = field(default_factory=dict)

    def metadata(self) -> dict[str, str | int]:
        """Metadata stored with the chunk in every store (no None values: Chroma rejects them)."""
        meta: dict[str, str | int] = {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "article": self.article,
            "title": self.title,
            "bulletin_title": self.bulletin_title,
            "publisher": self.publisher or "",
            "date": self.date or "",
            "date_num": date_num(self.date),
        }
        meta.update(self.extra)
        return meta


def date_num(iso: str | None) -> int:
    """``2020-09`` -> 20200900; sortable and filterable as a number (Chroma compares numbers only)."""
    if not iso:
        return 0
    parts = (iso.split("-") + ["00", "00"])[:3]
    try:
        return int(parts[0]) * 10000 + int(parts[1]) * 100 + int(parts[2])
    except ValueError:
        return 0


@dataclass(frozen=True)
class Part:
    """One bulletin of a corpus file. ``key`` is "" for the file's own bulletin (doc_id = the file's),
    else what follows ``#`` in its doc_id (an e-mail's attachment, a mailbox's message); ``meta`` holds
    what the file itself says of it (e-mail headers, document properties), before the catalog."""

    key: str
    text: str
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class Loaded:
    """What a corpus file holds: its bulletins, the parts of it that could not be read (key, one-line
    reason) and caveats of those that were (a charset guessed)."""

    parts: list[Part]
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
