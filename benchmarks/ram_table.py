"""The RAM table of issue #7: per model, TFLM + CMSIS-NN's RAM, ours, the ratio against the goal, what is live at
the arena's peak, and what the build pays in cycles against the fastest specialized build measured.

    python benchmarks/run_models.py --no-generic --cores cortex-m4                                  # the default build
    python benchmarks/run_models.py --no-generic --cores cortex-m4 --optimize time --out benchmarks/results/time
    python benchmarks/ram_table.py --build benchmarks/results --fastest benchmarks/results/time [more result dirs]

How it works
1. `--build DIR` is a run_models result directory (its models.json, Cortex-M4 rows): the build whose RAM the
   table shows (default: the default build in benchmarks/results). RAM = .data + .bss (the arena included) + the
   stack peak, measured in the simulator; the baseline is TFLM + CMSIS-NN's (the better of its two builds, as
   run_models does).
2. The fastest specialized build of a model is the one with the fewest cycles among `--build` and every
   `--fastest DIR` (e.g. `--optimize time`, `--tune`); the overhead column is the build's cycles over it.
3. "Live at the peak" compiles the model again with `--optimize` (default: "ram" or "time" when the build's
   directory has that name, else "balanced"; without tuning) and reads the memory plan: the buffers live where
   the arena is highest ("–" where that compile fails). Rows of outside ELFs (run_models --elf) are left out.
Goals (issue #7): <= 0.35x on the MLPerf Tiny models, <= 0.5x on the others, within 5% of the fastest build.
Writes DIR/ram.md and prints it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from run_models import SHARED, WRITER_MODELS, _base, _model_bytes  # noqa: E402

CORE = "cortex-m4"


def _rows(d: Path) -> dict:
    data = json.loads((d / "models.json").read_text())
    return {name: r[CORE] for name, r in data.items() if CORE in r and "error" not in r[CORE]}


def _peak(name: str, path: str, optimize: str) -> str:
    try:
        return _peak_of(name, path, optimize)
    except Exception as e:  # a table: show the failure in its row, keep going
        return f"– ({type(e).__name__})"


def _peak_of(name: str, path: str, optimize: str) -> str:
    from specializer.api import lower
    from specializer.passes.plan_memory import arena_peak

    g, _ = lower(path if path else _model_bytes(name, path), CORE, optimize=optimize)
    top, _, where, live = arena_peak(g)

    def label(lab):
        if lab.startswith("scratch"):
            op = g.op_by_index(int(lab.split("#")[1]))
            return f"{op.kind.lower()} scratch"
        tid = int(lab[1:])
        t = g.t(tid)
        over = " (over its input)" if tid in g.memory_plan.inplace else ""
        return "x".join(str(v) for v in t.shape[1:] or t.shape) + over
    return f"{where}: " + " + ".join(f"{label(lab)} {size:,}" for lab, size in live)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--fastest", nargs="*", default=[], help="result directories of other builds (time, tuned)")
    ap.add_argument("--optimize", default=None, choices=("balanced", "time", "ram"))
    args = ap.parse_args(argv)

    build = Path(args.build)
    optimize = args.optimize or (build.name if build.name in ("ram", "time") else "balanced")
    rows = _rows(build)
    others = [_rows(Path(d)) for d in args.fastest]
    baselines = json.loads((SHARED / "baselines" / "baselines.json").read_text())["results"]
    manifest = json.loads((SHARED / "models" / "MANIFEST.json").read_text())
    paths = {m["file"][:-7]: str(SHARED / "models" / m["file"]) for m in manifest["models"]}
    paths.update({w: "" for w in WRITER_MODELS})
    out = [f"RAM on the Cortex-M4 ({build}; fastest of it and {', '.join(args.fastest) or 'nothing else'})", "",
           "| model | TFLM + CMSIS-NN RAM, B | ours, B | ratio | goal | cycles | fastest build's cycles | "
           "overhead | live at the arena's peak (bytes) |", "|---|---:|---:|---:|:-:|---:|---:|---:|---|"]
    for name in sorted(rows):
        r = rows[name]
        if not r.get("macs"):  # an outside ELF: no model to plan
            continue
        ram = _base(baselines, name, "tflm_cmsisnn", CORE, "static_ram_bytes")
        stack = _base(baselines, name, "tflm_cmsisnn", CORE, "stack_peak_bytes")
        base = ram + stack if ram is not None and stack is not None else None
        fastest = min([r["cycles"]] + [o[name]["cycles"] for o in others if name in o])
        over = r["cycles"] / fastest - 1
        if base:
            limit = 0.35 if name.startswith("mlperf_") else 0.5
            ratio = r["ram_total"] / base
            ok = "✓" if ratio <= limit and over <= 0.05 else "✗"
            goal = f"≤ {limit}× {ok}"
        else:
            ratio, goal = None, "–"
        out.append(f"| `{name}` | {base:,} | {r['ram_total']:,} | {ratio:.3f}× | {goal} | {r['cycles']:,} | "
                   f"{fastest:,} | {100 * over:+.1f}% | {_peak(name, paths.get(name, ''), optimize)} |"
                   if base else
                   f"| `{name}` | – | {r['ram_total']:,} | – | – | {r['cycles']:,} | {fastest:,} | "
                   f"{100 * over:+.1f}% | {_peak(name, paths.get(name, ''), optimize)} |")
    md = "\n".join(out) + "\n"
    (build / "ram.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
