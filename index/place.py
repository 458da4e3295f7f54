"""Files into the corpus folder, before an update indexes them: ``check`` says which files would
go in and where (refusing bad types, unreadable files, content already there, and names already
taken unless replacing), ``place`` copies them in atomically (a replaced file goes to
``<home>/backups`` first), and ``add`` does both and then updates."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from index.catalog import doc_id_for, links_out, listed, supported
from index.errors import LoadError
from index.load import SUPPORTED, load_text
from index.report import UpdateReport, account
from index.update import ADD_WAITS_S, update

if TYPE_CHECKING:
    from index.indexer import Index

ASK_TO_REPLACE = "ask to replace it"  # how the refusal of a taken name ends; callers say how


@dataclass
class Placement:
    """One file ``Index.place`` will copy into the corpus: from where, to where, under which doc_id,
    and the corpus files of that doc_id it replaces (moved to the backups folder first)."""

    source: Path
    shown: str
    target: Path
    doc_id: str
    replaces: list[Path]
    replacing: bool  # a bulletin of this name was in the corpus (even when its file stays as it is)


def add(index: Index, files: Sequence[Path], corpus: Path | None = None, progress: bool = True,
        names: Sequence[str] | None = None, replace: bool = False, replace_hint: str = ASK_TO_REPLACE,
        before_copy: Callable[[list[Placement]], None] | None = None) -> UpdateReport:
    """Copy files into the corpus folder (``place``), then update those files alone (``update``'s
    ``only``: the corpus's other files are a watcher's to scan; at 100k chunks the scan was 0.23 s of
    the 0.73 s an add in the chat's Library took); an update already running (a watcher's, say) is
    waited for, since it may be indexing these very files."""
    corpus = corpus or index.settings.corpus
    since = time.time()
    placed, refused = place(index, files, corpus, names, replace, replace_hint, before_copy)
    report = update(index, corpus, progress, kind="add", wait=ADD_WAITS_S, only=[p.target for p in placed])
    account(index, report, [p.doc_id for p in placed], since)
    report.failed[:0] = refused
    return report


def place(index: Index, files: Sequence[Path], corpus: Path | None = None, names: Sequence[str] | None = None,
          replace: bool = False, replace_hint: str = ASK_TO_REPLACE,
          before_copy: Callable[[list[Placement]], None] | None = None
          ) -> tuple[list[Placement], list[tuple[str, str]]]:
    """Copy files into the corpus folder, each atomically; returns where each went and the refused
    files with why. A file is refused when its type is not allowed, it is too large or
    unreadable, the corpus already holds the same content, or a bulletin of the same name (any
    extension) is there and ``replace`` is not given; with it, the old file moves to
    ``<home>/backups``. ``names`` are the names users gave (uploads arrive under temporary names).
    ``before_copy`` sees the accepted files before any is copied (catalog entries are written there)."""
    corpus = corpus or index.settings.corpus
    plan, refused = check(index, files, corpus, names, replace, replace_hint)
    if before_copy and plan:
        before_copy(plan)
    for item in plan:
        if item.source.resolve() != item.target.resolve():
            tmp = item.target.with_name(f".{item.target.name}.part")
            shutil.copyfile(item.source, tmp)
            for old in item.replaces:  # the file the new one overwrites is copied first: no gap
                if old.resolve() == item.target.resolve():
                    backup(index.settings.home, corpus, old, keep=True)
            os.replace(tmp, item.target)  # atomic: the corpus never holds half a file
            for old in item.replaces:  # then the same name under other extensions leaves
                if old.resolve() != item.target.resolve():
                    backup(index.settings.home, corpus, old)
    return plan, refused


def check(index: Index, files: Sequence[Path], corpus: Path | None = None, names: Sequence[str] | None = None,
          replace: bool = False, replace_hint: str = ASK_TO_REPLACE) -> tuple[list[Placement],
                                                                               list[tuple[str, str]]]:
    """Which files ``place`` would copy in, and where (nothing is written); the refused ones with why."""
    corpus = corpus or index.settings.corpus
    corpus.mkdir(parents=True, exist_ok=True)
    plan: list[Placement] = []
    refused: list[tuple[str, str]] = []
    safe: dict[int, str] = {}  # the names the files would take, and their sizes: only files with those
    sizes: set[int] = set()  # can be taken or hold the same bytes
    for i, f in enumerate(files):
        with contextlib.suppress(LoadError, OSError):
            sizes.add(f.stat().st_size)
            safe[i] = safe_name(names[i] if names else f.name)
    # a file goes to the top of the corpus folder: only its names can be taken
    by_doc = _by_stem(corpus, {doc_id_for(corpus, corpus / name) for name in safe.values()})
    known = _Contents(corpus, sizes)
    for i, f in enumerate(files):
        shown = names[i] if names else str(f)
        try:
            name = safe[i] if i in safe else safe_name(names[i] if names else f.name)  # (raises its refusal)
            if not f.is_file():
                raise LoadError(shown, "does not exist or is not a file")
            _load_checked(f, Path(name).suffix)
            target = corpus / name
            doc_id = doc_id_for(corpus, target)
            data = f.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            holder = known.holder(digest, len(data))
            if any(p.doc_id == doc_id for p in plan):
                raise LoadError(shown, f"has the same name ('{doc_id}') as another file added with it;"
                                       " add one of them")
            if holder is not None and not (replace and holder == doc_id):
                raise LoadError(shown, f"is already in the corpus as '{holder}'; nothing to add")
            taken = [p for p in by_doc.get(doc_id, []) if p.resolve() != f.resolve()]
            if taken and not replace:
                raise LoadError(shown, f"has the same name as the bulletin '{doc_id}' in the corpus"
                                       f" ({', '.join(p.name for p in taken)}); nothing was changed;"
                                       f" {replace_hint}")
        except LoadError as exc:
            refused.append((shown, exc.reason))
            continue
        same = holder == doc_id and by_doc[doc_id][0].name == target.name
        plan.append(Placement(f, shown, target, doc_id, [] if same else taken, bool(taken)))
        known.found[digest] = doc_id
    return plan, refused


def _by_stem(corpus: Path, stems: set[str]) -> dict[str, list[Path]]:
    """The files at the top of the corpus folder named ``stems`` (doc_ids), by doc_id, as ``scan``
    names them (the one it indexes first, then any it skips for sharing the name: ``x.txt`` beside
    ``x.md``), from one listing of that folder: ``check`` need not walk or stat the whole corpus (0.1 s
    of each ``index add`` at 100k chunks), nor look at the other names (40 ms more)."""
    out: dict[str, list[Path]] = {}
    root = corpus.resolve()
    with os.scandir(corpus) as entries:
        named = [e for e in entries if os.path.splitext(e.name)[0] in stems]
        for e in sorted(named, key=lambda e: e.name):
            if e.name[0] == "." or not supported(e.name) or e.is_dir():
                continue
            if e.is_symlink() and links_out(e.path, root):
                continue  # scan skips a link out of the corpus
            out.setdefault(os.path.splitext(e.name)[0], []).append(Path(e.path))
    return out


class _Contents:
    """Which corpus file holds given bytes: the bulletin files (``catalog.listed``, as ``scan`` lists
    them) of the ``sizes`` asked about, each read and hashed only once one of its size is asked about
    (hashing the whole corpus took 0.4 s of each ``index add`` at 100k chunks)."""

    def __init__(self, corpus: Path, sizes: set[int]) -> None:
        self.corpus = corpus
        self.by_size: dict[int, list[tuple[os.DirEntry[str], Path]]] = {}
        for _, entry, path in listed(corpus):
            with contextlib.suppress(OSError):
                if (size := entry.stat().st_size) in sizes and supported(entry.name):
                    self.by_size.setdefault(size, []).append((entry, path))
        self.found: dict[str, str] = {}  # sha256 -> doc_id

    def holder(self, digest: str, size: int) -> str | None:
        root = self.corpus.resolve()
        for entry, path in self.by_size.pop(size, []):
            if entry.is_symlink() and links_out(path, root):
                continue  # not a bulletin of this corpus: scan skips it
            with contextlib.suppress(OSError):
                self.found.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), doc_id_for(self.corpus, path))
        return self.found.get(digest)


def backup(home: Path, corpus: Path, path: Path, keep: bool = False) -> Path:
    """Move (with ``keep``: copy) a corpus file to ``<home>/backups/<doc_id>-<timestamp><ext>``;
    returns where it went."""
    folder = home / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{doc_id_for(corpus, path).replace('/', '__')}-{time.strftime('%Y%m%dT%H%M%S')}"
    target, n = folder / f"{stem}{path.suffix}", 1
    while target.exists():
        target, n = folder / f"{stem}-{n}{path.suffix}", n + 1
    if keep:
        shutil.copy2(path, target)
    else:
        shutil.move(path, target)
    return target


def _load_checked(path: Path, suffix: str) -> None:
    """``load_text``, with any parser failure it lets through as the file's one-line error."""
    try:
        load_text(path, suffix=suffix)
    except LoadError:
        raise
    except Exception:  # a parser's own error (a malformed PDF, say): this file is refused, not the upload
        raise LoadError(path, f"cannot be read as a {suffix} file") from None


def safe_name(name: str) -> str:
    """A file name safe to create in the corpus: no folders, no ``..``, no control or shell-special
    characters (letters of any script are kept); the extension must be allowed."""
    import re
    import unicodedata

    if "/" in name.replace("\\", "/").rstrip("/") and ".." in name.replace("\\", "/").split("/"):
        raise LoadError(name, "a path with '..' is refused; give a plain file name")
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    stem, dot, ext = base.rpartition(".")
    if not dot or f".{ext.lower()}" not in SUPPORTED:
        raise LoadError(name, f"unsupported file type '.{ext if dot else ''}' (use {', '.join(SUPPORTED)})")
    stem = re.sub(r"[^\w.\- ]+", "-", stem).strip(" .-")[:120]
    if not stem:
        raise LoadError(name, "has no usable file name")
    return f"{stem}.{ext.lower()}"
