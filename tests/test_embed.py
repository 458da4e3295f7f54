"""The two embedders of the same model: the int8 ONNX export stays close to PyTorch,
returns unit vectors, and a text's vector does not depend on what it is batched with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.embed import OnnxEmbedder, onnx_model_dir

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
def test_onnx_export_is_cached_and_close_to_torch(onnx_embedder: OnnxEmbedder, embedder,  # noqa: ANN001
                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    onnx = np.asarray(onnx_embedder.embed_documents(TEXTS))
    torch = np.asarray(embedder.embed_documents(TEXTS))
    assert onnx.shape == torch.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-3)
    cosines = (onnx * torch).sum(axis=1)
    assert cosines.min() > 0.98, cosines
    # Same ranking of texts for a query as the PyTorch model.
    q_onnx, q_torch = onnx_embedder.embed_query("Who convenes WG 11?"), embedder.embed_query("Who convenes WG 11?")
    assert np.argmax(onnx @ q_onnx) == np.argmax(torch @ q_torch) == 0


@pytest.mark.slow
def test_onnx_vectors_do_not_depend_on_the_batch(onnx_embedder: OnnxEmbedder) -> None:
    alone = np.asarray([onnx_embedder.embed_query(t) for t in TEXTS])
    together = np.asarray(onnx_embedder.embed_documents(list(reversed(TEXTS))))[::-1]
    assert np.allclose(alone, together, atol=1e-6)


def test_the_export_folder_names_the_recipe(tmp_path: Path) -> None:
    folder = onnx_model_dir(tmp_path)
    assert folder.parent == tmp_path and "int8" in folder.name
