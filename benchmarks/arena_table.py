"""Arena size per model: our memory plan next to TFLM's arena figures.

How it works
1. Every `*.tflite` under ../shared/models (or `--models DIR`) is imported with `specializer.frontend.load_model`.
2. RESHAPE/SQUEEZE/EXPAND_DIMS become aliases (`passes.eliminate_reshapes` when it exists, else a local stand-in),
   then `passes.plan_memory` places the tensors and `check_plan` proves the plan. This column has no kernel
   scratch and no in-place (no kernels are chosen yet): it isolates the planner.
3. With `--pipeline CORE` (for example `m4`) the full compilation pipeline also runs (kernel choice => scratch
   buffers and in-place pairs) and its arena is shown in an extra column; failures there show as `error`.
4. The table compares with the MANIFEST's `tflm_host_arena_bytes` and with `tflm_cmsisnn.m4.arena_used_bytes` of
   ../shared/baselines/baselines.json (TFLM's figures also hold its tensor/node structs, ours only data).
   `peak live` is the lower bound no plan without in-place can beat. `--json FILE` writes the rows.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Optional

from specializer.frontend import load_model
from specializer.ir import Graph
from specializer.passes.liveness import peak_live_bytes
from specializer.passes.plan_memory import check_plan, plan_memory

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _alias_reshapes(g: Graph) -> Graph:
    try:
        from specializer.passes.eliminate_reshapes import eliminate_reshapes
    except ImportError:
        return g.with_ops(dataclasses.replace(op, alias_of=op.inputs[0])
                          if op.kind in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS") else op for op in g.ops)
    return eliminate_reshapes(g)


def _pipeline_arena(g: Graph, core_name: str) -> tuple[Optional[int], str]:
    try:
        from specializer.pipeline import run_pipeline
        from specializer.targets.cortex_m.cores import get_core

        h = run_pipeline(g, get_core(core_name))
        check_plan(h)
        mp = h.memory_plan
        return mp.arena_size, f"{mp.strategy}, {len(mp.scratch_offsets)} scratch, {len(mp.inplace)} in-place"
    except Exception as e:  # a benchmark table: show the failure, keep going
        return None, f"{type(e).__name__}: {e}".splitlines()[0][:80]


def measure(models: Path, baselines: Path, core: Optional[str] = None) -> list[dict]:
    manifest = {m["file"]: m for m in json.loads((models / "MANIFEST.json").read_text())["models"]}
    base = json.loads(baselines.read_text())["results"] if baselines.is_file() else {}
    rows = []
    for path in sorted(models.glob("*.tflite")):
        g = load_model(path, name=path.stem)
        h = plan_memory(_alias_reshapes(g))
        check_plan(h)
        tflm_host = manifest.get(path.name, {}).get("tflm_host_arena_bytes")
        tflm_m4 = base.get(path.stem, {}).get("tflm_cmsisnn", {}).get("m4", {}).get("arena_used_bytes")
        row = {
            "model": path.stem,
            "arena_bytes": h.memory_plan.arena_size,
            "peak_live_bytes": peak_live_bytes(h),
            "strategy": h.memory_plan.strategy,
            "tflm_host_arena_bytes": tflm_host,
            "tflm_cmsisnn_m4_arena_used_bytes": tflm_m4,
            "ratio_vs_tflm_m4": round(h.memory_plan.arena_size / tflm_m4, 3) if tflm_m4 else None,
        }
        if core is not None:
            row["pipeline_core"] = core
            row["pipeline_arena_bytes"], row["pipeline_note"] = _pipeline_arena(g, core)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    pipeline = any("pipeline_core" in r for r in rows)
    head = ["model", "our arena", "peak live (lower bound)", "TFLM host arena (MANIFEST)",
            "TFLM+CMSIS-NN M4 arena_used", "ratio (ours / M4)", "winning ordering"]
    if pipeline:
        head += [f"full pipeline ({rows[0]['pipeline_core']})", "pipeline plan"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]

    def fmt(v):
        return "-" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))

    for r in rows:
        cells = [r["model"], fmt(r["arena_bytes"]), fmt(r["peak_live_bytes"]), fmt(r["tflm_host_arena_bytes"]),
                 fmt(r["tflm_cmsisnn_m4_arena_used_bytes"]), fmt(r["ratio_vs_tflm_m4"]), r["strategy"]]
        if pipeline:
            cells += [fmt(r["pipeline_arena_bytes"]), r["pipeline_note"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=SHARED / "models")
    ap.add_argument("--baselines", type=Path, default=SHARED / "baselines" / "baselines.json")
    ap.add_argument("--pipeline", metavar="CORE", help="also run the full pipeline for this core (e.g. m4)")
    ap.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    args = ap.parse_args(argv)
    if not (args.models / "MANIFEST.json").is_file():
        print(f"no models at {args.models}", file=sys.stderr)
        return 1
    rows = measure(args.models, args.baselines, args.pipeline)
    sys.stdout.write(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
