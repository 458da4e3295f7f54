"""One-off (issue 17, after 51ed9ff): retrieval and answer latency measured again on the 10k and 100k
embedded indexes the scale bench built (bench/out/scale/<size>-embedded/home), three runs each, with
bench/scale.py's own query child. Writes bench/out/scale-query-again.json (or the file named first on its
command line: the ninth run's, bench/out/scale-query-again-ninth.json)."""
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.common import git_commit, loadavg  # noqa: E402

out = {"commit": git_commit(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": {}}
for size in ("10k", "100k"):
    for _ in range(3):
        load = loadavg()
        res = subprocess.run([sys.executable, str(ROOT / "bench" / "scale.py"), "--child", "query",
                              str(ROOT / "bench" / "out" / "scale" / f"{size}-embedded" / "home")],
                             capture_output=True, text=True, check=True)
        q = json.loads(res.stdout.strip().splitlines()[-1])
        out["runs"].setdefault(size, []).append({"retrieval_ms": q["retrieval_ms"], "ask_ms": q["ask_ms"],
                                                  "load": [load, loadavg()]})
        print(size, q["retrieval_ms"], q["ask_ms"]["p50"], load, flush=True)
target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "out" / "scale-query-again.json"
target.write_text(json.dumps(out, indent=1) + "\n")
