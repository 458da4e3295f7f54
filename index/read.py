"""Read-side lookups over the chunk table: what's new (articles that updates added, from the
update log) and the groups of articles that tell the same story (``index.dedupe``'s pairs)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from index import dedupe
from index.errors import UserError

if TYPE_CHECKING:
    from index.indexer import Index


def whats_new(index: Index, since: str | None = None) -> list[dict[str, Any]]:
    """Articles that updates added: those since ``since`` (YYYY-MM-DD), else the last update's.
    Only articles still in the index are listed, newest first."""
    from datetime import datetime

    if since:
        try:
            cutoff = datetime.fromisoformat(since).timestamp()
        except ValueError:
            raise UserError(f"--since {since!r} is not a date; use YYYY-MM-DD") from None
        logs = index.db.updates(10_000, cutoff)
    else:
        logs = [u for u in index.db.updates(10_000) if u.get("new_articles")][:1]
    present = index.db.sha_by_doc().keys()  # the doc_ids still indexed (not every bulletin's articles)
    seen: set[tuple[str, str]] = set()
    out = []
    for log in logs:
        for art in log.get("new_articles", []):
            key = (art["doc_id"], art["title"])
            if art["doc_id"] in present and key not in seen:
                seen.add(key)
                out.append({**art, "added_at": log["at"]})
    return sorted(out, key=lambda a: (a["date"] or "", a["added_at"]), reverse=True)


def duplicate_groups(index: Index, bulletins: list[dict[str, Any]] | None = None) -> list[list[dict[str, Any]]]:
    """Groups of articles that tell the same story, with their headlines (from ``bulletins``, the
    chunk table's ``bulletins()``, when the caller has read them already)."""
    titles = {(b["doc_id"], a["index"]): (a["title"], a["date"], b["publisher"])
              for b in (index.db.bulletins() if bulletins is None else bulletins) for a in b["articles"]}
    out = []
    for group in kept_groups(index):
        out.append([])
        for doc_id, art in group:
            title, date, publisher = titles.get((doc_id, art), ("?", None, None))
            out[-1].append({"doc_id": doc_id, "article": art, "title": title, "date": date,
                            "publisher": publisher})
    return out


def kept_groups(index: Index) -> list[list[tuple[str, int]]]:
    """``dedupe.groups`` of the stored pairs, kept in the meta table until a pair changes (0.3-1 s to
    compute from the ~82k pairs of a 100k-chunk index; ``index status`` and the Library ask often, and
    an update that changed pairs computes them after its log, so the next reader does not wait)."""
    version = index.db.pairs_version()
    cached = index.db.meta("dup_groups")
    if cached:
        saved = json.loads(cached)
        if saved["version"] == version:
            return [[(d, a) for d, a in group] for group in saved["groups"]]
    groups = dedupe.groups(index.db.dup_pairs())
    if version == index.db.pairs_version():  # no update stored pairs meanwhile
        index.db.set_meta("dup_groups", json.dumps({"version": version, "groups": groups}))
    return groups
