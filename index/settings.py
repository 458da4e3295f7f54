"""One settings object for the whole program: defaults, then a TOML file, then
``STDNEWS_*`` environment variables, then CLI flags (passed as init kwargs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Everything configurable; built once at the entry point and passed down."""

    model_config = SettingsConfigDict(env_prefix="STDNEWS_", extra="ignore")

    home: Path = Field(Path(".stdnews"), description="data directory for all built state")
    corpus: Path = Field(Path("corpus"), description="folder of bulletins + catalog.toml")
    config: Path | None = Field(None, description="TOML file with settings")
    chroma_url: str | None = Field(None, description="Chroma server URL; embedded store when unset")
    collection: str = "stdnews"

    # onnx: the int8 export of the same model (2.6x the indexing throughput, a 5 s cold start
    # instead of 36 s, retrieval quality equal within noise: docs/benchmarks.md); torch: the model as shipped
    embed_backend: Literal["torch", "onnx"] = "onnx"
    models_dir: Path | None = Field(None, description="cache of the ONNX export and the joined local LLM;"
                                    " default ~/.cache/stdnews/models")
    embed_batch_size: int = 64
    index_batch_size: int = 256  # chunks per indexing-API batch (record manager round trip)
    chunk_max_chars: int = 900
    chunk_min_chars: int = 200

    k: int = 5
    candidates: int = 30
    # Fusion weights are fitted (assistant/weights.json, by question class); these override them when set.
    rrf_k: int | None = None
    dense_weight: float | None = None
    bm25_weight: float | None = None
    per_article: int = 5  # an article's passages among the k; 2-5 measured on held-out answers: docs/fitting.md

    # Bounds on one request (CLI, /ask, /chat): longer or more is refused with one line, before any work.
    max_question_chars: int = 2000  # also each text of an earlier turn
    max_k: int = 50
    max_history_turns: int = 20

    # local: the instruction model installed from PyPI (assistant/packaged.py), run in-process
    llm: Literal["none", "local", "openai", "ollama", "llamacpp"] = "none"
    llm_size: Literal["1.5b", "0.5b"] = "1.5b"  # which packaged model --llm local runs
    llm_threads: int | None = None  # llama.cpp threads; default: every core
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_model_path: Path | None = None
    llm_api_key: str = "not-needed"
    llm_timeout: float = 60.0

    auth: str | None = None

    # News feeds (index/feeds.py): each fetch, of a feed or an entry's page, within these bounds.
    feed_interval: float = 1800.0  # s between polls of a feed, unless its own is given
    feed_min_interval: float = 300.0  # s; no feed is polled more often (the publisher's server is not ours)
    feed_timeout: float = 20.0  # s for one whole fetch
    feed_max_bytes: int = 10 * 1024 * 1024
    feed_max_redirects: int = 5

    # Fault injection for the crash-safety tests only: the update SIGKILLs itself at this point
    # ("embedding", "after-chroma", "record-manager", "before-bm25").
    crash_at: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence, strongest first: CLI flags, environment, TOML file, defaults.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    # Derived locations inside the data directory.
    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"

    @property
    def bm25_path(self) -> Path:
        return self.home / "bm25"

    @property
    def db_path(self) -> Path:
        return self.home / "index.sqlite"

    @property
    def record_manager_path(self) -> Path:
        return self.home / "record_manager.sqlite"


def load_settings(**flags: Any) -> Settings:
    """Build settings from CLI flags (None means 'not given') over env, TOML and defaults.

    The TOML file is ``--config``, else ``STDNEWS_CONFIG``, else ``<home>/config.toml``.
    """
    import os

    given = {k: v for k, v in flags.items() if v is not None}
    home = given.get("home") or os.environ.get("STDNEWS_HOME") or ".stdnews"
    toml = given.get("config") or os.environ.get("STDNEWS_CONFIG") or Path(home) / "config.toml"
    bound = type(
        "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": toml}}
    )
    return bound(**given)
