import json, os, sys, time
from pathlib import Path
sys.path.insert(0, "/work/main")
from bench import scale
from bench.common import git_commit, loadavg
kind = sys.argv[1]
H = Path("/tmp/x/h100")
home = H / "home" if kind == "embedded" else Path("/tmp/x/h100c/home")
(H / "corpus" / "new-bulletin.txt").unlink(missing_ok=True)
res = {"commit": git_commit(), "load_start": loadavg()}
import contextlib
ctx = __import__("tests.servers", fromlist=["x"]).chroma_server(home.parent / "chroma-server") if kind == "chroma" else contextlib.nullcontext()
with ctx as url:
    if url:
        os.environ["STDNEWS_CHROMA_URL"] = url
    run = {"home": home, "corpus": H / "corpus", "url": ["--chroma-url", url] if url else [], "work": H / "work"}
    scale.cli_step(res, "100k", kind, run, "first update", ("index", "update", "--quiet"))
    for i in (1, 2, 3):
        scale.cli_step(res, "100k", kind, run, f"no-op update {i}", ("index", "update", "--quiet"))
    scale.chat_step(res, "100k", kind, run, 8, 64)
Path(f"/tmp/x/chat-{kind}.json").write_text(json.dumps(res, indent=1, default=str))
