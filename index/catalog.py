"""The corpus folder: which bulletin files it holds and what the catalog says of each."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from index.errors import UserError
from index.load import SUPPORTED
from index.model import BulletinMeta

CATALOG = "catalog.toml"


def doc_id_for(corpus: Path, path: Path) -> str:
    """The bulletin's file name without extension, relative to the corpus folder."""
    rel = path.relative_to(corpus)
    return rel.with_suffix("").as_posix()


def scan(corpus: Path) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    """Bulletin files by doc_id, plus files that will be skipped and why."""
    if not corpus.is_dir():
        raise UserError(f"corpus folder {corpus} does not exist; pass --corpus DIR")
    found: dict[str, Path] = {}
    skipped: list[tuple[Path, str]] = []
    root = corpus.resolve()
    for path in sorted(corpus.rglob("*")):
        if path.name == CATALOG or path.is_dir() or any(p.startswith(".") for p in path.relative_to(corpus).parts):
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            skipped.append((path, "is a link pointing outside the corpus folder; not followed"))
            continue
        if path.suffix.lower() not in SUPPORTED:
            skipped.append((path, f"unsupported file type '{path.suffix or '(none)'}' (use {', '.join(SUPPORTED)})"))
            continue
        doc_id = doc_id_for(corpus, path)
        if doc_id in found:
            skipped.append((path, f"has the same name as {found[doc_id].name}; rename one of them"))
            continue
        found[doc_id] = path
    return found, skipped


def read_catalog(corpus: Path) -> dict[str, dict[str, str]]:
    """Raw catalog entries by doc_id (empty when the folder has no catalog)."""
    path = corpus / CATALOG
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix the catalog") from None
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def meta_for(doc_id: str, text: str, entry: dict[str, str] | None) -> BulletinMeta:
    """Catalog metadata, falling back to the text's first heading-like line for the title."""
    entry = entry or {}
    title = entry.get("title") or _first_line_title(text) or doc_id
    return BulletinMeta(
        doc_id=doc_id,
        title=title,
        publisher=entry.get("publisher"),
        date=str(entry["date"]) if entry.get("date") else None,
        url=entry.get("url"),
        language=entry.get("language"),
    )


def _first_line_title(text: str) -> str | None:
    for line in text.splitlines():
        line = re.sub(r"^#+\s*", "", line.strip())
        if len(line.split()) >= 2:
            return line[:200]
    return None
