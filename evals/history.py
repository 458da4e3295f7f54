"""Run history: every evaluation run is kept under ``<home>/evals/runs/<run_id>/``
with its results and what it ran against (set, index fingerprint, settings, git
commit), so two runs can be compared later and a change traced to its cause."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from index.errors import UserError
from index.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
_SECRETS = ("auth", "llm_api_key")


def runs_dir(home: Path) -> Path:
    return home / "evals" / "runs"


def new_run_id(home: Path, set_path: Path) -> str:
    """A sortable, readable id: time of the run and the set's name, made unique."""
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{re.sub(r'[^A-Za-z0-9_-]+', '-', set_path.stem)}"
    run_id, n = base, 1
    while (runs_dir(home) / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_commit(root: Path = ROOT) -> dict[str, Any]:
    """The commit the code ran at and whether tracked files differed from it (None outside git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head or None, "dirty": bool(dirty)}


def settings_dump(settings: Settings) -> dict[str, Any]:
    """The settings as JSON, secrets (passwords, API keys) redacted."""
    data = settings.model_dump(mode="json")
    for key in _SECRETS:
        if data.get(key):
            data[key] = "***"
    return data


def save_run(home: Path, run_id: str, results: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write ``results.json`` and ``meta.json`` of a run into the history; returns the run's folder."""
    folder = runs_dir(home) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "results.json", results)
    write_json(folder / "meta.json", meta)
    return folder


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def list_runs(home: Path) -> list[str]:
    """Run ids in the history, oldest first."""
    folder = runs_dir(home)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "results.json").is_file())


def resolve_run(home: Path, ref: str) -> Path:
    """A run's folder from a run id (or unique prefix), ``latest``/``latest~N``, or a path to a
    run or ``--out`` folder (or its ``results.json``)."""
    path = Path(ref)
    if path.is_file() and path.name == "results.json":
        return path.parent
    if (path / "results.json").is_file():
        return path
    runs = list_runs(home)
    if m := re.fullmatch(r"latest(?:~(\d+))?", ref):
        back = int(m.group(1) or 0)
        if back >= len(runs):
            raise UserError(f"{ref}: the history in {runs_dir(home)} holds only {len(runs)} run(s)")
        return runs_dir(home) / runs[-1 - back]
    matches = [r for r in runs if r == ref] or [r for r in runs if r.startswith(ref)]
    if len(matches) == 1:
        return runs_dir(home) / matches[0]
    if matches:
        raise UserError(f"{ref!r} matches {len(matches)} runs ({', '.join(matches[:3])}...); give more of the id")
    raise UserError(
        f"no run {ref!r}: not a folder with results.json, nor a run id in {runs_dir(home)}"
        f" (see the run ids there, or use latest / latest~1)"
    )


def load_run(folder: Path) -> dict[str, Any]:
    """A run's results (with its meta merged in when ``meta.json`` is beside it)."""
    try:
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder / 'results.json'}: cannot be read as a run's results ({exc})") from None
    meta_path = folder / "meta.json"
    if meta_path.is_file() and "meta" not in results:
        results["meta"] = json.loads(meta_path.read_text(encoding="utf-8"))
    if not isinstance(results.get("questions"), list):
        raise UserError(f"{folder / 'results.json'}: holds no 'questions' list; is it an evaluation run?")
    return results
