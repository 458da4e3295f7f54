"""The corpus watcher: one per data directory, it outlasts other processes' updates, and
``stdnews index add`` hands its files to it instead of loading everything itself."""

from __future__ import annotations

import fcntl
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from index.indexer import Index
from index.watch import running_watcher

ENV = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
DATA = Path(__file__).parent / "data" / "standards"


def _wait_for(what: str, ok: Callable[[], bool], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _read_until(proc: subprocess.Popen, prefix: str, timeout: float) -> str:
    """What ``proc`` printed up to and including its first line starting with ``prefix``."""
    import os
    import select

    assert proc.stdout is not None
    fd, got, deadline = proc.stdout.fileno(), b"", time.monotonic() + timeout
    while not any(line.startswith(prefix.encode()) for line in got.splitlines()[: got.count(b"\n")]):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            pytest.fail(f"no line starting with {prefix!r} within {timeout:.0f} s; got {got[-500:]!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            pytest.fail(f"the process ended before a line starting with {prefix!r}; got {got[-500:]!r}")
        got += chunk
    return got.decode(errors="replace")


@pytest.fixture()
def watched(make_settings, corpus_copy: Path):  # noqa: ANN001, ANN201
    """A running ``stdnews index watch`` (full polls only every 60 s: what it does sooner, it does
    because the corpus folder changed) that has indexed the seeds; yields (index, process, cmd)."""
    index = Index(make_settings(corpus_copy))
    cmd = [sys.executable, "-m", "assistant", "--home", str(index.settings.home), "--corpus", str(corpus_copy)]
    proc = subprocess.Popen([*cmd, "index", "watch", "--interval", "60"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV)
    try:
        seeds = len(list(corpus_copy.glob("*.txt")))
        said = _read_until(proc, "watching ", timeout=240)  # said once the folder is indexed, not before
        assert len(index.db.bulletins()) == seeds and running_watcher(index) is not None, said
        yield index, proc, cmd
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=60)


def test_index_add_hands_the_file_to_the_running_watcher(watched) -> None:  # noqa: ANN001
    index, proc, cmd = watched
    assert running_watcher(index) == {"pid": proc.pid, "corpus": str(index.settings.corpus.resolve())}
    out = subprocess.run([*cmd, "index", "add", str(DATA / "smart-city-kpi-roundup.md")],
                         capture_output=True, text=True, env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"handing over to the running watcher (pid {proc.pid})" in out.stderr
    assert out.stdout.startswith("6 files: 1 new, 0 changed, 0 removed, 5 unchanged")
    assert index.db.updates(1)[0]["kind"] == "update"  # the watcher's update, not one of its own
    assert not list((index.settings.home / "handover").iterdir())  # the note naming the file: read and gone
    assert index.db.bulletin("smart-city-kpi-roundup") is not None

    again = subprocess.run([*cmd, "index", "add", str(DATA / "smart-city-kpi-roundup.md")],
                           capture_output=True, text=True, env=ENV, timeout=120)
    assert again.returncode == 1
    assert "is already in the corpus as 'smart-city-kpi-roundup'; nothing to add" in again.stderr
    assert again.stdout.startswith("6 files: 0 new, 0 changed, 0 removed, 6 unchanged")
    proc.terminate()
    log = proc.communicate(timeout=60)[0]
    assert "+ 2021-03-02  Smart city indicators: three standards to watch" in log
    assert subprocess.run([*cmd, "index", "status", "--verify"], env=ENV, capture_output=True).returncode == 0


def test_watcher_waits_out_other_updates_and_is_alone(watched) -> None:  # noqa: ANN001
    index, proc, cmd = watched
    second = subprocess.run([*cmd, "index", "watch"], capture_output=True, text=True, env=ENV, timeout=120)
    assert second.returncode == 2
    assert second.stderr.strip() == (f"error: a watcher is already running for {index.settings.home}"
                                     f" (pid {proc.pid})")

    with open(index.settings.home / "update.lock", "a+") as fh:  # another process updating
        fcntl.flock(fh, fcntl.LOCK_EX)
        shutil.copy(DATA / "smart-city-kpi-roundup.md", index.settings.corpus)
        time.sleep(2)
        assert proc.poll() is None, "the watcher gave up while another update ran"
        assert index.db.bulletin("smart-city-kpi-roundup") is None
    _wait_for("the watcher to index the new file", lambda: index.db.bulletin("smart-city-kpi-roundup") is not None,
              timeout=60)

    proc.send_signal(signal.SIGKILL)  # a killed watcher leaves its lock file but not its lock
    proc.wait(timeout=30)
    assert running_watcher(index) is None
    (index.settings.corpus / "smart-city-kpi-roundup.md").unlink()
    out = subprocess.run([*cmd, "index", "add", "--quiet", str(DATA / "smart-city-kpi-roundup.md")],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0 and "handing over" not in out.stderr, out.stderr
    assert index.db.updates(1)[0]["kind"] == "add"


def test_an_add_reports_files_another_process_indexed_first(make_settings, corpus_copy: Path, embedder) -> None:  # noqa: ANN001
    """A watcher may index a copied file before the adding process gets the update lock; the add
    still reports it (from the update log), and a removal likewise."""
    mine = Index(make_settings(corpus_copy), embedder=embedder)
    mine.update(progress=False)
    watcher = Index(mine.settings, embedder=embedder)  # as another process would, on its own connections
    since = time.time()
    shutil.copy(DATA / "smart-city-kpi-roundup.md", corpus_copy)
    assert watcher.update(progress=False).added_docs == ["smart-city-kpi-roundup"]
    own = mine.update(progress=False, kind="add")
    assert own.added_docs == []
    assert mine.account(own, ["smart-city-kpi-roundup"], since) == set()  # nothing left unhandled
    assert own.added_docs == ["smart-city-kpi-roundup"] and own.embedded >= 1
    assert any(a["title"].startswith("Smart city indicators") for a in own.new_articles)

    since = time.time()
    (corpus_copy / "smart-city-kpi-roundup.md").unlink()
    assert watcher.update(progress=False).removed_docs == ["smart-city-kpi-roundup"]
    own = mine.update(progress=False)
    assert own.removed_docs == []
    assert mine.account(own, ["smart-city-kpi-roundup", "never-added"], since) == {"never-added"}
    assert own.removed_docs == ["smart-city-kpi-roundup"]


def test_the_chat_server_is_the_watcher(tmp_path: Path) -> None:
    """`stdnews chat` watches the corpus folder: a dropped file is indexed without any command, and
    `stdnews index add` hands over to the server instead of loading everything itself."""
    from index.settings import load_settings
    from tests.app_server import chat_process

    with chat_process(tmp_path) as srv:
        corpus = tmp_path / "corpus"
        index = Index(load_settings(home=srv.home, corpus=corpus))
        _wait_for("the server to watch", lambda: (running_watcher(index) or {}).get("pid") == srv.pid, timeout=120)
        shutil.copy(DATA / "smart-city-kpi-roundup.md", corpus)
        _wait_for("the server to index a dropped file",
                  lambda: index.db.bulletin("smart-city-kpi-roundup") is not None, timeout=60)
        cmd = [sys.executable, "-m", "assistant", "--home", str(srv.home), "--corpus", str(corpus)]
        out = subprocess.run([*cmd, "index", "add", str(DATA / "cesi-smart-city-ict-framework.txt")],
                             capture_output=True, text=True, env=ENV, timeout=120)
        assert out.returncode == 0, out.stderr
        assert f"handing over to the running watcher (pid {srv.pid})" in out.stderr
        assert "1 new" in out.stdout and index.db.updates(1)[0]["kind"] == "update"
    log = srv.log.read_text()
    assert "index: 7 files: 1 new" in log and "+ 2021-03-02  Smart city indicators" in log
    assert f"index: watching {corpus}: files added there are indexed at once" in log  # once warm and caught up


def test_an_update_of_named_files_leaves_the_others_for_the_next_full_one(make_settings, corpus_copy: Path,
                                                                          embedder) -> None:  # noqa: ANN001
    """What a watcher runs for the files ``index add`` handed over: those files alone, the others
    counted as they were; where a name is shared or a file is gone, the whole corpus as usual."""
    from index.catalog import scan_files

    index = Index(make_settings(corpus_copy), embedder=embedder)
    first = index.update(progress=False)
    named = corpus_copy / "smart-city-kpi-roundup.md"
    shutil.copy(DATA / "smart-city-kpi-roundup.md", named)
    shutil.copy(DATA / "cesi-smart-city-ict-framework.txt", corpus_copy)  # dropped beside it, not named
    (corpus_copy / "notes.xyz").write_text("not a bulletin")  # the whole scan would report it

    report = index.update(progress=False, only=[named])
    assert report.added_docs == ["smart-city-kpi-roundup"] and not report.failed
    assert (report.files, report.unchanged) == (first.files + 1, first.files)
    assert index.db.bulletin("cesi-smart-city-ict-framework") is None
    assert index.update(progress=False, only=[named]).summary().startswith(
        f"{first.files + 1} files: 0 new, 0 changed, 0 removed, {first.files + 1} unchanged")

    full = index.update(progress=False)
    assert full.added_docs == ["cesi-smart-city-ict-framework"] and [p for p, _ in full.failed] == [
        str(corpus_copy / "notes.xyz")]
    assert index.verify() == []

    twin = corpus_copy / "smart-city-kpi-roundup.txt"
    twin.write_text("Another file of the same name")
    assert scan_files(corpus_copy, [twin]) is None  # x.txt beside x.md: only the whole scan says which
    assert scan_files(corpus_copy, [corpus_copy / "gone.txt"]) is None
    assert scan_files(corpus_copy, [named]) is None
    twin.unlink()
    assert scan_files(corpus_copy, [named]) == {"smart-city-kpi-roundup": named}
    named.unlink()
    assert index.update(progress=False, only=[named]).removed_docs == ["smart-city-kpi-roundup"]  # (the whole scan)
