"""A small load test (bench/load.py) against a real ``stdnews chat`` process on loopback:
concurrent users get every answer, and the server's memory does not climb. No timing
assertions: CI machines differ; bench/load.py reports the figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_server import chat_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

USERS, QUESTIONS = 4, 40
GROWTH_LIMIT_MB = 150  # generous: a leak per question would pass it within a few hundred questions


def test_concurrent_users_all_answered_and_memory_flat(tmp_path: Path) -> None:
    from bench.load import SEED_SET, plot, read_questions, report, run_load

    questions = read_questions(SEED_SET)[::4]  # a spread: facts, follow-ups, questions to refuse
    with chat_process(tmp_path) as srv:
        result = run_load(srv.url, questions, users=USERS, total=QUESTIONS, pid=srv.pid, warmup=16, interval=0.5)
    print(report(result))
    assert result["errors"] == 0, result["error_samples"]
    assert result["answered"] == QUESTIONS
    assert result["refused"] < QUESTIONS, "most of the seed questions have answers"
    mem = result["memory"]
    assert mem["samples"] >= 4, mem
    assert mem["before_mb"] and mem["peak_mb"] >= mem["before_mb"]
    assert mem["growth_halves_mb"] < GROWTH_LIMIT_MB, mem
    assert plot(result, tmp_path / "load.png").stat().st_size > 10_000
