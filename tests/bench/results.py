"""Where the benchmarks leave their figures: one JSON file each under .tmp/bench/."""
import json

from tests.sandbox.paths import TMP


def write_results(name, results):
    out = TMP / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    return out
