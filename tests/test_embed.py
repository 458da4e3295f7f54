"""The two embedders of the same model: the int8 ONNX export stays close to PyTorch,
returns unit vectors, and a text's vector does not depend on what it is batched with, nor
on whether it was embedded in this process or in a worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index.embed import OnnxEmbedder, onnx_model_dir
from index.errors import UserError

TEXTS = [
    "JTC 1/WG 11 convenor Heng Qian will lead the session.",
    "On 7 August 2020, the international standard ISO/IEC 30145-3 was officially released.",
    "The IEC systems committee on smart cities prepared a reference architecture and standardization roadmap.",
    "Smart city",
]


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    return OnnxEmbedder(tmp_path_factory.mktemp("models"))


@pytest.mark.slow
def test_onnx_export_is_cached_and_close_to_torch(onnx_embedder: OnnxEmbedder, torch_embedder,  # noqa: ANN001
                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    onnx = np.asarray(onnx_embedder.embed_documents(TEXTS))
    torch = np.asarray(torch_embedder.embed_documents(TEXTS))
    assert onnx.shape == torch.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-3)
    cosines = (onnx * torch).sum(axis=1)
    assert cosines.min() > 0.98, cosines
    # Same ranking of texts for a query as the PyTorch model.
    question = "Who convenes WG 11?"
    q_onnx, q_torch = onnx_embedder.embed_query(question), torch_embedder.embed_query(question)
    assert np.argmax(onnx @ q_onnx) == np.argmax(torch @ q_torch) == 0


@pytest.mark.slow
def test_onnx_vectors_do_not_depend_on_the_batch(onnx_embedder: OnnxEmbedder) -> None:
    alone = np.asarray([onnx_embedder.embed_query(t) for t in TEXTS])
    together = np.asarray(onnx_embedder.embed_documents(list(reversed(TEXTS))))[::-1]
    assert np.allclose(alone, together, atol=1e-6)


@pytest.mark.slow
def test_worker_processes_give_the_same_vectors_bit_for_bit(onnx_embedder: OnnxEmbedder) -> None:
    texts = [f"{t} ({i})" * (1 + i % 5) for i, t in enumerate(TEXTS * 12)]  # 48 texts, 3 tasks per worker
    procs = onnx_embedder.in_processes()
    try:
        deadline = time.monotonic() + 60
        while not procs.ready():
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        assert np.array_equal(procs.vectors(texts), onnx_embedder.vectors(texts))
        assert procs.embed_documents([]) == []
    finally:
        procs.close()


WORKERS_OF_A_KILLED_PROCESS = """
import os, signal, sys, time
from pathlib import Path
from index.embed import OnnxEmbedder
procs = OnnxEmbedder(Path(sys.argv[1])).in_processes()
while not procs.ready():
    time.sleep(0.05)
print(" ".join(str(p) for p in procs._pool._processes), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_worker_processes_die_with_a_killed_update(onnx_embedder: OnnxEmbedder) -> None:
    out = subprocess.run([sys.executable, "-c", WORKERS_OF_A_KILLED_PROCESS, str(onnx_embedder.models_dir)],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == -9, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == onnx_embedder.workers

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie has exited

    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)


def test_the_export_folder_names_the_recipe(tmp_path: Path) -> None:
    folder = onnx_model_dir(tmp_path)
    assert folder.parent == tmp_path and "int8" in folder.name


@pytest.mark.slow
def test_an_index_is_queried_only_with_the_model_that_built_it(tmp_path: Path, embedder,  # noqa: ANN001
                                                                torch_embedder) -> None:  # noqa: ANN001
    import shutil

    from index.indexer import Index
    from index.settings import load_settings
    from tests.conftest import SEED_CORPUS

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED_CORPUS / "iec-smart-cities.txt", corpus)
    home = tmp_path / "home"
    built = Index(load_settings(home=home, corpus=corpus, embed_backend="torch"), embedder=torch_embedder)
    assert built.update(progress=False).embedded
    other = Index(load_settings(home=home, corpus=corpus, embed_backend="onnx"))
    with pytest.raises(UserError, match=r'built with the all-MiniLM-L6-v2/torch embedder.*embed_backend = "torch"'):
        _ = other.embedder
    other.rebuild(progress=False)  # the way out the message names
    assert other.db.meta("embedder") == embedder.name == "all-MiniLM-L6-v2/onnx-int8"
    assert other.verify() == []
