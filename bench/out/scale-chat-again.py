"""One-off (issue 17, after the ninth run): the scale bench's own chat step (five bulletins added
through `stdnews index add`, handed over; the next question; 8 concurrent users; the server's memory)
run again over the indexes the ninth run built, once the Regrouper waited for quiet (e119563). Both
sizes, both stores; the bulletins the run before added leave the corpus first. Writes
bench/out/scale-chat-again.json."""
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from bench import scale  # noqa: E402
from bench.common import git_commit, loadavg  # noqa: E402

out = {"commit": git_commit(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": {}}
for size in ("10k", "100k"):
    for kind in ("embedded", "chroma"):
        work = ROOT / "bench" / "out" / "scale" / f"{size}-{kind}"
        for added in (work / "corpus").glob("new-bulletin*.txt"):
            added.unlink()
        res = {"load_start": loadavg()}
        with scale.store(kind, work) as url:
            run = {"home": work / "home", "corpus": work / "corpus", "url": url, "work": work}
            scale.cli_step(res, size, kind, run, "update", ("index", "update", "--quiet"), 1)
            scale.chat_step(res, size, kind, run, 8, 64, 5)
        res["load_end"] = loadavg()
        out["runs"][f"{size}-{kind}"] = res
        (ROOT / "bench" / "out" / "scale-chat-again.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
