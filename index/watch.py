"""Keeping an index current as files arrive (``stdnews index watch``), and handing files
that ``stdnews index add`` copies in to the watcher already running, which has its model,
Chroma and LangChain loaded: a new process spends ~2.5 s importing those before it can
index one bulletin, the running watcher ~1 s in all.

A watcher announces itself by holding a lock on ``watch.lock`` in the data directory (the
file says its pid and corpus folder); the lock goes with the process, so a killed watcher
is never taken for a live one. It polls the corpus folders' modification times every
``QUICK_S`` (a file created, renamed or deleted changes them) and updates at once when
they change, and updates anyway every ``interval`` seconds (a file edited in place). Beside it, a
thread polls the news feeds that are due (``index.feeds``): what they write lands in the corpus
folder, where the watch loop sees it like any other new file."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from index.errors import UpdateBusy, UserError
from index.feeds import FeedBook, PollResult
from index.indexer import ADD_WAITS_S, Index, UpdateReport

QUICK_S = 0.2
HANDOVER = "handover"  # folder of the data directory: a note per `index add` handed over, naming its files
NOTE_S = 0.02  # how often the watcher looks for such a note
WATCHING = "index: watching"  # how `stdnews chat` says its watcher is warm and watching (benches wait for it)
HANDOFF_TIMEOUT_S = 600.0
FEED_CHECK_S = 2.0  # how often the feed thread looks for feeds that are due (reading a small JSON file)


class Watcher:
    """The watch loop of one index; a second watcher of the same data directory is refused."""

    def __init__(self, index: Index, interval: float = 5.0,
                 on_feed: Callable[[PollResult], None] | None = None) -> None:
        self.index = index
        self.interval = interval
        self.on_feed = on_feed  # None: feeds are not polled
        self.stop = threading.Event()
        self.corpus = index.settings.corpus
        self._lock = index.settings.home / "watch.lock"
        self._fh: Any = None

    def __enter__(self) -> Watcher:
        self._fh = open(self._lock, "a+")  # noqa: SIM115 - held while watching
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _read(self._fh)
            self._fh.close()
            raise UserError(f"a watcher is already running for {self.index.settings.home}"
                            f" (pid {other.get('pid', '?')})") from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(json.dumps({"pid": os.getpid(), "corpus": str(self.corpus.resolve())}))
        self._fh.flush()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self._fh.seek(0)
        self._fh.truncate()
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()

    def run(self, on_report: Callable[[UpdateReport], None], on_ready: Callable[[], None] | None = None) -> None:
        """Update at once when the corpus folders change, else every ``interval`` s; until interrupted.
        ``on_ready`` is called once the first full update is done: the index holds the folder, and a
        file added from then on waits only for its own update."""
        seen: object = None
        due = 0.0
        if self.on_feed is not None:
            threading.Thread(target=poll_feeds_forever, args=(FeedBook(self.index.settings), self.on_feed, self.stop),
                             name="stdnews-feeds", daemon=True).start()
        notes_at = self.index.settings.home / HANDOVER
        while True:
            if notes := sorted(notes_at.glob("*.json")):
                try:  # the files `index add` handed over, alone (the corpus folder changed too: a full update follows)
                    report = self.index.update(progress=False, only=[Path(f) for n in notes for f in _files_of(n)])
                except UpdateBusy:
                    time.sleep(QUICK_S)
                    continue
                for note in notes:
                    note.unlink(missing_ok=True)
                on_report(report)
            stamp = corpus_stamp(self.corpus)
            if stamp != seen or time.monotonic() >= due:
                try:
                    report = self.index.update(progress=False)
                except UpdateBusy:  # the app or `index add` is updating: look again shortly
                    time.sleep(QUICK_S)
                    continue
                seen, due = stamp, time.monotonic() + self.interval
                on_report(report)
                if on_ready is not None:
                    on_ready()
                    on_ready = None
            _wait_for_note(notes_at, QUICK_S)


def _wait_for_note(folder: Path, timeout: float) -> None:
    """Sleep ``timeout`` s, or less once a hand-over note is there: the folder is looked at every
    ``NOTE_S`` (an empty folder, listed in microseconds; the corpus, walked every ``QUICK_S``,
    holds thousands of files at 100k chunks)."""
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(NOTE_S, left))
        if folder.is_dir() and any(n.endswith(".json") for n in os.listdir(folder)):
            return


def report_printer(out: TextIO = sys.stdout, prefix: str = "") -> Callable[[UpdateReport], None]:
    """Prints what each watcher update changed (with its new articles) on ``out``, and each
    failing file once on stderr, not on every poll while it stays broken."""
    failing: set[tuple[str, str]] = set()

    def show(report: UpdateReport) -> None:
        nonlocal failing
        if report.added_docs or report.changed_docs or report.removed_docs:
            print(f"{prefix}{report.summary()}", file=out, flush=True)
            for art in report.new_articles:
                print(f"{prefix}  + {art['date'] or '????-??-??'}  {art['title']}  ({art['doc_id']})", file=out,
                      flush=True)
        for path, why in set(report.failed) - failing:
            print(f"{prefix}error: {path}: {why}", file=sys.stderr, flush=True)
        failing = set(report.failed)

    return show


def poll_feeds_forever(book: FeedBook, on_result: Callable[[PollResult], None], stop: threading.Event) -> None:
    """Poll each feed when it is due, until ``stop``; a feed's failure is its result, never the thread's end."""
    while not stop.is_set():
        try:
            if due := book.due():
                book.poll(due, on_result=on_result)
        except Exception as exc:  # the state file unreadable, the catalog broken: say so, try again later
            print(f"feeds: error: {exc}", file=sys.stderr, flush=True)
            stop.wait(60)
        stop.wait(FEED_CHECK_S)


def feed_printer(out: TextIO = sys.stdout, prefix: str = "") -> Callable[[PollResult], None]:
    """Prints each feed poll that wrote bulletins, its notes, and each feed's error when it changes."""
    errors: dict[str, str | None] = {}

    def show(result: PollResult) -> None:
        if result.written:
            print(f"{prefix}{result.line()}", file=out, flush=True)
            for note in result.notes:
                print(f"{prefix}  note: {note}", file=out, flush=True)
        if result.error and errors.get(result.name) != result.error:
            print(f"{prefix}{result.line()}", file=sys.stderr, flush=True)
        elif not result.error and errors.get(result.name):
            print(f"{prefix}feed {result.name}: reads again", file=out, flush=True)
        errors[result.name] = result.error

    return show


def watch_in_background(index: Index, on_report: Callable[[UpdateReport], None],
                        interval: float = 5.0, on_feed: Callable[[PollResult], None] | None = None
                        ) -> threading.Thread:
    """What ``stdnews chat`` runs beside the server: watch the corpus (so ``index add`` hands over to
    the app and dropped files are indexed) unless another watcher already does, which is said once on
    stderr; the update path is warmed once the watcher's lock is held. A daemon thread: it ends with
    the process."""
    def run() -> None:
        try:
            with Watcher(index, interval, on_feed) as watcher:  # first: `index add` hands over from now on,
                index.warm(update=True)  # and waits for the warm-up (~4 s at 100k chunks), not a model of its own
                watcher.run(on_report, on_ready=lambda: print(  # once caught up with the folder
                    f"{WATCHING} {index.settings.corpus}: files added there are indexed at once", file=sys.stderr,
                    flush=True))
        except UserError as exc:
            print(f"note: not watching the corpus folder: {exc}", file=sys.stderr, flush=True)
            index.warm(update=True)  # uploads in the Library tab still update here

    thread = threading.Thread(target=run, name="stdnews-watch", daemon=True)
    thread.start()
    return thread


def corpus_stamp(corpus: Path) -> tuple[int, ...]:
    """Modification times of the corpus folder and its subfolders, and of the catalog."""
    stamps = []
    for root, dirs, files in os.walk(corpus):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        stamps.append(os.stat(root).st_mtime_ns)
        if "catalog.toml" in files:
            stamps.append(os.stat(os.path.join(root, "catalog.toml")).st_mtime_ns)
    return tuple(stamps)


def running_watcher(index: Index) -> dict[str, Any] | None:
    """The watcher of this data directory and corpus folder, if one is running: {"pid", "corpus"}."""
    path = index.settings.home / "watch.lock"
    if not path.is_file():
        return None
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read(fh)
            if info.get("corpus") == str(index.settings.corpus.resolve()):
                return info
            return None
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None


def hand_over(index: Index, files: Sequence[Path], timeout: float = HANDOFF_TIMEOUT_S) -> UpdateReport:
    """``index add`` through the running watcher (``running_watcher`` said one runs): copy the files
    into the corpus and wait for the watcher's update(s) that indexed them; their report, with
    refused files first. When the watcher stops before indexing them, this process updates instead."""
    since = time.time()
    placed, refused = index.place(files)
    note = _leave_note(index, [p.target for p in placed])
    try:
        report = settle(index, [p.doc_id for p in placed], since, timeout)
    finally:
        if note:
            note.unlink(missing_ok=True)  # (the watcher removes it once it has updated them)
    report.failed[:0] = refused
    return report


def _leave_note(index: Index, targets: Sequence[Path]) -> Path | None:
    """Tell the watcher which corpus files these are (``index.update``'s ``only``), so that it updates
    them without scanning the whole corpus; written atomically."""
    if not targets:
        return None
    folder = index.settings.home / HANDOVER
    folder.mkdir(exist_ok=True)
    note = folder / f"{os.getpid()}-{time.time_ns()}.json"
    tmp = note.with_suffix(".part")
    tmp.write_text(json.dumps({"files": [str(t) for t in targets]}))
    os.replace(tmp, note)
    return note


def _files_of(note: Path) -> list[str]:
    """The files a hand-over note names ([] when it is unreadable or already gone)."""
    try:
        return list(json.loads(note.read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def settle(index: Index, doc_ids: Sequence[str], since: float, timeout: float = HANDOFF_TIMEOUT_S,
           progress: bool = False) -> UpdateReport:
    """The index brought up to these bulletins, written into the corpus since ``since``: by the running
    watcher when there is one (this process waits for its updates, loading no model), else here."""
    report = UpdateReport(kind="add")
    if running_watcher(index) is None:
        report = index.update(progress=progress, wait=ADD_WAITS_S)
        index.account(report, doc_ids, since)  # a watcher that started meanwhile may have done some
        return report
    deadline = time.monotonic() + timeout
    while waiting := index.account(report, doc_ids, since):
        if running_watcher(index) is None:  # it stopped: index them here
            report.absorb(index.update(progress=progress, kind="add", wait=ADD_WAITS_S))
            break
        if time.monotonic() > deadline:
            late = "is in the corpus; the running watcher has not indexed it yet"
            report.failed += [(d, late) for d in sorted(waiting)]
            break
        time.sleep(0.05)
    if not report.files:  # nothing was indexed: the index is as it was
        report.files = report.unchanged = index.db.counts()[0]
    return report


def _read(fh: Any) -> dict[str, Any]:
    fh.seek(0)
    try:
        return dict(json.loads(fh.read() or "{}"))
    except ValueError:
        return {}
