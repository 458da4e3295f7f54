"""The corpus folder: which bulletin files it holds and what the catalog says of each."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import tomllib
from collections.abc import Container, Iterable, Iterator
from pathlib import Path
from typing import Any

from index.errors import UserError
from index.fingerprint import FileMemo, settled, stat_key
from index.load import MULTIPART, SUPPORTED, strip_controls
from index.model import BulletinMeta, Part

CATALOG = "catalog.toml"
PART = "#"  # between a file's doc_id and the key of one of its further bulletins: "newsletter#agenda", "digest#2"


def doc_id_for(corpus: Path, path: Path) -> str:
    """The bulletin's file name without extension, relative to the corpus folder."""
    rel = path.relative_to(corpus)
    return rel.with_suffix("").as_posix()


def part_id(doc_id: str, key: str) -> str:
    """The doc_id of the bulletin ``key`` of the file ``doc_id`` ("" is the file's own bulletin)."""
    return f"{doc_id}{PART}{key}" if key else doc_id


def holders(doc_id: str) -> list[str]:
    """The doc_ids of the files that may hold the bulletin ``doc_id``, longest first: itself, then
    each name before one of its ``#``."""
    cuts = [i for i, c in enumerate(doc_id) if c == PART and i > 0]
    return [doc_id, *(doc_id[:i] for i in reversed(cuts))]


def by_file(doc_ids: Iterable[str], files: Container[str]) -> dict[str | None, list[str]]:
    """Bulletin doc_ids grouped by the file (its doc_id among ``files``) that holds them: a bulletin
    whose own name is a file is that file's, else the longest file name before a ``#`` holds it;
    those no file holds are under None."""
    out: dict[str | None, list[str]] = {}
    for doc_id in sorted(doc_ids):
        if doc_id in files:  # (most bulletins: a file of one; ``holders`` only for the others)
            owner: str | None = doc_id
        else:
            owner = next((h for h in holders(doc_id)[1:] if h in files), None) if PART in doc_id else None
        out.setdefault(owner, []).append(doc_id)
    return out


def entries_of(catalog: dict[str, dict[str, str]], doc_id: str, suffix: str,
               described: dict[str | None, list[str]]) -> Any:
    """The catalog entries that describe the bulletins of the file ``doc_id`` (what its fingerprint
    covers): its own, and for a file of several bulletins those of its parts too. ``described`` is
    ``by_file`` of the catalog's doc_ids (grouped once, not once per file)."""
    if suffix.lower() not in MULTIPART:
        return catalog.get(doc_id)
    return {k: catalog[k] for k in described.get(doc_id, [])} or None


def part_entry(catalog: dict[str, dict[str, str]], doc_id: str, part: Part) -> dict[str, Any]:
    """What ``meta_for`` gets for one bulletin of the file ``doc_id``: what the file says of it (e-mail
    headers, document properties), overridden by the file's catalog entry (but its title, for a part)
    and then by the part's own entry."""
    own = catalog.get(doc_id) or {}
    if not part.key:
        return {**part.meta, **own}
    shared = {k: v for k, v in own.items() if k != "title"}
    return {**part.meta, **shared, **(catalog.get(part_id(doc_id, part.key)) or {})}


def supported(name: str) -> bool:
    """Whether a file name has a type the corpus indexes (``index.load.SUPPORTED``)."""
    return os.path.splitext(name)[1].lower() in SUPPORTED


def links_out(path: Path | str, root: Path) -> bool:
    """Whether the link ``path`` points outside the (resolved) corpus folder ``root``: not a bulletin
    of it, and never followed."""
    return not Path(path).resolve().is_relative_to(root)


def listed(corpus: Path) -> Iterator[tuple[tuple[str, ...], os.DirEntry[str], Path]]:
    """Every file under ``corpus`` that may be a bulletin, with its path's parts below the folder: not
    hidden (a name starting with "."), not in a hidden folder, not the catalog; links to folders are
    not followed. Written on ``os.scandir``, whose entries tell a link without a stat (``os.walk``
    drops them), with each folder's Paths from ``Path.iterdir`` (parsing every path string again cost
    60 ms of a 6,350-file corpus's update)."""
    todo: list[tuple[tuple[str, ...], Path]] = [((), corpus)]
    while todo:
        parts, folder = todo.pop()
        try:
            with os.scandir(folder) as it:
                entries = [e for e in it if e.name[0] != "."]
            paths = {p.name: p for p in folder.iterdir()}
        except OSError:  # (as os.walk: a folder that cannot be listed is passed over)
            continue
        for e in entries:
            path = paths.get(e.name) or folder / e.name
            if e.is_dir():
                if not e.is_symlink():
                    todo.append(((*parts, e.name), path))
            elif e.name != CATALOG:
                yield (*parts, e.name), e, path


def scan(corpus: Path) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    """Bulletin files by doc_id, plus files that will be skipped and why (``listed`` tells which files
    are looked at: every update scans the corpus)."""
    if not corpus.is_dir():
        raise UserError(f"corpus folder {corpus} does not exist; pass --corpus DIR")
    found: dict[str, Path] = {}
    skipped: list[tuple[Path, str]] = []
    root = corpus.resolve()
    for parts, entry, path in sorted(listed(corpus), key=lambda f: f[0]):  # by path parts, as Path sorts
        if entry.is_symlink() and links_out(path, root):
            skipped.append((path, "is a link pointing outside the corpus folder; not followed"))
            continue
        suffix = path.suffix
        if suffix.lower() not in SUPPORTED:
            skipped.append((path, f"unsupported file type '{suffix or '(none)'}' (use {', '.join(SUPPORTED)})"))
            continue
        doc_id = "/".join((*parts[:-1], parts[-1][: len(parts[-1]) - len(suffix)]))  # = doc_id_for(corpus, path)
        if doc_id in found:
            skipped.append((path, f"has the same name as {found[doc_id].name}; rename one of them"))
            continue
        found[doc_id] = path
    return found, skipped


def scan_files(corpus: Path, paths: Iterable[Path]) -> dict[str, Path] | None:
    """``scan`` of only these files of ``corpus`` (those an ``index add`` handed to a watcher), or None
    where only the whole scan can tell: a file gone, outside the corpus, hidden, of an unsupported
    type, a link out of it, or one sharing its doc_id with another file (``x.txt`` beside ``x.md``)."""
    root = corpus.resolve()
    found: dict[str, Path] = {}
    for path in paths:
        try:
            rel = path.relative_to(corpus)
        except ValueError:
            return None
        if (any(p.startswith(".") for p in rel.parts) or path.name == CATALOG or not supported(path.name)
                or not path.is_file() or (path.is_symlink() and links_out(path, root))):
            return None
        stem = os.path.splitext(path.name)[0]
        with os.scandir(path.parent) as entries:  # one folder listed, not the whole corpus walked
            if any(e.name != path.name and e.name.startswith(stem) and os.path.splitext(e.name)[0] == stem
                   and supported(e.name) for e in entries):
                return None
        found[doc_id_for(corpus, path)] = path
    return found


def of_files(doc_ids: Iterable[str], files: Container[str]) -> list[str]:
    """Those of ``doc_ids`` that one of ``files`` holds (``by_file`` of a few files among many bulletins)."""
    return [d for d in doc_ids if d in files or (PART in d and any(h in files for h in holders(d)))]


_READ: dict[Path, tuple[tuple[int, ...], dict[str, dict[str, str]]]] = {}  # catalog path -> (its stat, entries)


def read_catalog(corpus: Path, memo: FileMemo | None = None) -> dict[str, dict[str, str]]:
    """Raw catalog entries by doc_id (empty when the folder has no catalog); not to be changed by
    callers: a catalog whose size, times and inode are unchanged is parsed once per process (a
    watcher reads it on every update; 0.4-0.5 s for the 6,350 entries of a 100k-chunk corpus), and
    with ``memo`` (an update's) once per data directory, kept by its bytes' hash (10 ms to read and
    hash at 100k chunks): a catalog written just before it was read is not read again for its times
    alone, as one kept by stat would be (``fingerprint.RACY_NS``)."""
    path = corpus / CATALOG
    try:
        st = path.stat()
    except OSError:
        return {}
    if not path.is_file():
        return {}
    key = stat_key(st)
    kept = _READ.get(path)
    if kept and kept[0] == key:
        return kept[1]
    now = time.time_ns()
    data = path.read_bytes()
    name, digest = os.path.abspath(path), hashlib.sha256(data).hexdigest()
    if memo and (saved := memo.get(name, digest)) is not None:
        entries = json.loads(saved)
    else:
        try:  # (newlines as ``Path.read_text`` reads them)
            parsed = tomllib.loads(data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not valid TOML ({exc}); fix the catalog") from None
        entries = {k: _clean(v) for k, v in parsed.items() if isinstance(v, dict)}
        if memo:
            memo.put_content(name, digest, json.dumps(entries, default=str))
    if settled(st, now):
        _READ[path] = (key, entries)
    return entries


def _clean(value: Any) -> Any:
    """A catalog value without terminal escape sequences or control characters, at any depth:
    titles and publishers are printed by ``ask``, ``index status`` and ``whats-new``."""
    if isinstance(value, str):
        return strip_controls(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


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


def replace_entries(corpus: Path, entries: dict[str, dict[str, str] | None], backups: Path | None = None) -> None:
    """Rewrite the catalog with these doc_ids' entries replaced (``None``: dropped), everything else
    kept as written (comments too); a dropped entry's text is saved under ``backups`` first. The
    catalog is replaced atomically and only when the result parses to exactly what was asked; one
    writer at a time (uploads and feed polls may run at once, in one process or several)."""
    import fcntl

    with open(corpus / ".catalog.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _replace_entries(corpus, entries, backups)


def _replace_entries(corpus: Path, entries: dict[str, dict[str, str] | None], backups: Path | None) -> None:
    path = corpus / CATALOG
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    try:  # as written (read_catalog may clean values)
        before = {k: v for k, v in tomllib.loads(old).items() if isinstance(v, dict)}
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix the catalog") from None
    lines = old.splitlines(keepends=True)
    keep: list[str] = []
    dropped: dict[str, str] = {}
    i = 0
    while i < len(lines):
        doc_id = _table_name(lines[i])
        if doc_id is None or doc_id not in entries:
            keep.append(lines[i])
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].lstrip().startswith("["):
            end += 1
        while end > i + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1  # blank lines and comments just above the next table belong to it
        dropped[doc_id] = "".join(lines[i:end])
        i = end
    blocks = ["\n".join([f"[{_toml_str(d)}]", *(f"{k} = {_toml_str(v)}" for k, v in e.items())]) + "\n"
              for d, e in entries.items() if e]
    text = "".join(keep)
    if blocks:
        text += ("\n" if text and not text.endswith("\n") else "") + ("\n" if text else "") + "\n".join(blocks)
    want = {**{k: v for k, v in before.items() if k not in entries}, **{d: e for d, e in entries.items() if e}}
    try:
        ok = {k: v for k, v in tomllib.loads(text).items() if isinstance(v, dict)} == want
    except tomllib.TOMLDecodeError:
        ok = False
    if not ok:
        raise UserError(f"{path}: cannot change the entries of {', '.join(sorted(entries))} safely; edit it by hand")
    if backups is not None and dropped:
        import time

        backups.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for doc_id, block in dropped.items():
            (backups / f"{doc_id.replace('/', '__')}-{stamp}.catalog.toml").write_text(block, encoding="utf-8")
    tmp = path.with_name(f".{CATALOG}.part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _table_name(line: str) -> str | None:
    """The doc_id a ``[name]`` table header line opens, or None for any other line."""
    stripped = line.strip()
    if not stripped.startswith("[") or stripped.startswith("[["):
        return None
    try:
        parsed = tomllib.loads(stripped)
    except tomllib.TOMLDecodeError:
        return None
    if len(parsed) == 1:
        (name, value), = parsed.items()
        if value == {}:
            return str(name)
    return None


def _toml_str(value: str) -> str:
    """A TOML basic string; control characters become spaces."""
    value = re.sub(r"[\x00-\x1f\x7f]", " ", value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
