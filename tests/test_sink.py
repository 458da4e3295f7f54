"""The embedding look-ahead of an update: vectors come back for the right ids, the thread
stays within its look-ahead, a large update moves to worker processes once they are ready
(and back if they fail), errors reach the writer, and closing stops it. The embedder
here is a stand-in that records its calls: the subject is the threading, not the model."""

from __future__ import annotations

import threading
import time

import pytest

from index.sink import Prefetch


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.fail_on in texts:
            raise RuntimeError(f"cannot embed {self.fail_on}")
        with self.lock:
            self.calls.append(list(texts))
        return [[float(len(t)), float(t.count("x"))] for t in texts]


def _items(n: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"c{i}", "x" * (i % 7) + f"text {i}") for i in range(start, start + n)]


def test_vectors_match_their_ids_in_any_batching() -> None:
    model, done = Recorder(), []
    pre = Prefetch(lambda: model, done.append, ahead=64, min_call=8)
    items = _items(100)
    for i in range(0, 100, 30):
        pre.add(items[i:i + 30])
    pre.finish()
    for i in range(0, 100, 25):
        part = items[i:i + 25]
        assert pre.take([cid for cid, _ in part]) == [[float(len(t)), float(t.count("x"))] for _, t in part]
    assert sum(done) == 100 and sum(len(c) for c in model.calls) == 100
    pre.close()


def test_look_ahead_is_bounded_until_the_writer_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("index.sink.EMBED_STEP", 8)  # texts per embedding call
    model = Recorder()
    pre = Prefetch(lambda: model, lambda n: None, ahead=20, min_call=1)
    pre.add(_items(200))
    pre.finish()
    time.sleep(0.3)
    embedded = sum(len(c) for c in model.calls)
    assert 20 <= embedded < 20 + 8  # stopped at the bound (a call may end past it), not at the end
    assert pre.take([f"c{i}" for i in range(10)]) is not None
    pre.close()


def test_unplanned_ids_are_not_waited_for_and_errors_reach_the_writer() -> None:
    pre = Prefetch(lambda: Recorder(fail_on="x" * 3 + "text 3"), lambda n: None, min_call=1)
    pre.add(_items(5))
    pre.finish()
    assert pre.take(["not-planned"]) is None
    with pytest.raises(RuntimeError, match="cannot embed"):
        pre.take(["c0", "c3"])
    pre.close()


def test_close_stops_the_thread() -> None:
    pre = Prefetch(lambda: Recorder(), lambda n: None, ahead=4, min_call=1)
    pre.add(_items(50))  # more than the look-ahead, never taken, never finished
    pre.close()
    pre._thread.join(timeout=5)
    assert not pre._thread.is_alive()


class Workers(Recorder):
    """Stands in for the embedder in worker processes: ready after ``warm`` checks; ``dies`` after that many calls."""

    def __init__(self, warm: int = 1, dies: int | None = None) -> None:
        super().__init__()
        self.warm, self.dies, self.closed = warm, dies, False

    def ready(self) -> bool:
        self.warm -= 1
        return self.warm < 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.dies is not None and len(self.calls) >= self.dies:
            raise RuntimeError("a worker process died")
        return super().embed_documents(texts)

    def close(self) -> None:
        self.closed = True


class InProcess(Recorder):
    def __init__(self, workers: Workers) -> None:
        super().__init__()
        self.workers, self.started = workers, 0

    def in_processes(self) -> Workers:
        self.started += 1
        return self.workers


@pytest.mark.parametrize("dies", [None, 2])
def test_a_large_update_moves_to_worker_processes_and_back_if_they_fail(monkeypatch: pytest.MonkeyPatch,
                                                                        dies: int | None) -> None:
    monkeypatch.setattr("index.sink.EMBED_STEP", 10)
    workers = Workers(warm=1, dies=dies)
    model = InProcess(workers)
    pre = Prefetch(lambda: model, lambda n: None, min_call=10, processes_after=25)
    items = _items(100)
    pre.add(items[:20])  # under the threshold: embedded here, no workers started
    assert pre.take([cid for cid, _ in items[:20]]) is not None
    assert model.started == 0 and len(model.calls) == 2
    pre.add(items[20:])
    pre.finish()
    assert pre.take([cid for cid, _ in items[20:]]) == [[float(len(t)), float(t.count("x"))] for _, t in items[20:]]
    assert model.started == 1  # started once, and used once ready (the first call after starting ran here)
    if dies is None:
        assert sum(len(c) for c in workers.calls) == 70 and sum(len(c) for c in model.calls) == 30
    else:  # two calls in the workers, then the rest here again
        assert sum(len(c) for c in workers.calls) == 20 and sum(len(c) for c in model.calls) == 80
        assert workers.closed
    pre.close()
    assert workers.closed
