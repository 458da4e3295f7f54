"""Cut articles into passages along paragraph (then sentence) boundaries; a chunk
never crosses an article, and its id depends only on its text and its place."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator

from index.identifiers import find_identifiers, find_orgs, pack
from index.model import Article, BulletinMeta, Chunk

# Part of every chunk id: bump it when chunking or what is stored on chunks changes,
# so the next update re-embeds instead of keeping stale metadata.
CHUNKER_VERSION = "2"

_PARA = re.compile(r"\S(?:.*?\S)?(?=\n[ \t]*\n|\s*\Z)", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?;])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9•\-])")


def chunk_bulletin(
    meta: BulletinMeta, text: str, articles: list[Article], max_chars: int = 900, min_chars: int = 200
) -> list[Chunk]:
    """All chunks of one bulletin, in text order."""
    seen: Counter[str] = Counter()
    chunks = []
    for art in articles:
        for start, end in _spans(text, art.start, art.end, max_chars, min_chars):
            body = text[start:end]
            place = (CHUNKER_VERSION, meta.doc_id, art.title, art.date, meta.publisher, meta.title)
            key = "\x1f".join(map(str, place)) + f"\x1f{body}"
            seen[key] += 1
            digest = hashlib.sha256(f"{key}\x1f{seen[key]}".encode()).hexdigest()[:16]
            chunks.append(Chunk(
                chunk_id=f"{meta.doc_id}#{digest}", doc_id=meta.doc_id, article=art.index, title=art.title,
                bulletin_title=meta.title, publisher=meta.publisher, date=art.date,
                start=start, end=end, text=body, extra=_facets(f"{art.title}\n{body}"),
            ))
    return chunks


def _facets(text: str) -> dict[str, str]:
    """Standards, committees and organisations a chunk names, packed for filtering."""
    idents = find_identifiers(text)
    return {
        "standards": pack({i.label for i in idents}),
        "std_keys": pack({i.key for i in idents}),
        "orgs": pack(set(find_orgs(text))),
    }


def _paragraphs(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    for m in _PARA.finditer(text, start, end):
        yield m.start(), m.end()


def _pieces(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Split one over-long paragraph at sentence ends (hard cut at a space as a last resort)."""
    cut_points = [m.start() for m in _SENTENCE_END.finditer(text, start, end)]
    begin = start
    while end - begin > max_chars:
        fits = [c for c in cut_points if begin < c <= begin + max_chars]
        cut = fits[-1] if fits else text.rfind(" ", begin + 1, begin + max_chars)
        if cut <= begin:
            cut = begin + max_chars
        end_at = cut
        while end_at > begin and text[end_at - 1].isspace():
            end_at -= 1
        yield begin, end_at
        begin = cut
        while begin < end and text[begin].isspace():
            begin += 1
    if begin < end:
        yield begin, end


def _spans(text: str, start: int, end: int, max_chars: int, min_chars: int) -> Iterator[tuple[int, int]]:
    """Greedy packing of paragraphs (pieces of long ones) into spans of at most ``max_chars``."""
    cur: tuple[int, int] | None = None
    for p_start, p_end in _paragraphs(text, start, end):
        for s, e in _pieces(text, p_start, p_end, max_chars):
            if cur is None:
                cur = (s, e)
            elif e - cur[0] <= max_chars or cur[1] - cur[0] < min_chars and e - cur[0] <= 2 * max_chars:
                cur = (cur[0], e)
            else:
                yield cur
                cur = (s, e)
    if cur is not None:
        yield cur
