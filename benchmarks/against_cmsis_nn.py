"""Ours vs CMSIS-NN called directly, on every model in ../shared/models, with the TFLM baselines beside them.

    python benchmarks/against_cmsis_nn.py                          # all models: M4, M7; KWS also on M0+
    python benchmarks/against_cmsis_nn.py --models mlperf_kws_dscnn --cores cortex-m4
    python benchmarks/against_cmsis_nn.py --cmsis-nn path/to/CMSIS-NN --jobs 2

For each model and core, `specializer.against.compare_against_cmsis_nn` builds our library and the direct CMSIS-NN
build (CMSIS-NN compiled unmodified from --cmsis-nn, default ../shared/third_party/CMSIS-NN) with the baselines'
flags (-O3), runs both in the simulator on the model's reference input, and compares every layer's output.
Writes benchmarks/results/against_cmsis_nn.md and .json, and one PNG per model and core (two bars per layer).

Columns: TFLM reference and TFLM + CMSIS-NN cycles from ../shared/baselines/baselines.json (the -O3 builds, same
cost model), CMSIS-NN direct (measured here), its ratio to TFLM + CMSIS-NN (the check of the comparison itself:
same kernels, TFLM adds its interpreter, so about 1.00), ours (whatever kernels the tree has), ours / CMSIS-NN
direct, and bit-exactness. The baselines' Cortex-M7 figures come from their M4-built ELFs costed with the M7
approximation, so for M7 the table also gives our M4-built CMSIS-NN ELF costed the same way.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
M0_MODELS = ("mlperf_kws_dscnn",)


def _job(name: str, cores: list, opt: str, cmsis_nn: str, outdir: str) -> tuple[str, list]:
    from specializer.against import compare_against_cmsis_nn, plot_against
    from specializer.errors import SpecializerError
    from specializer.targets.cortex_m.sim import Simulator

    z = np.load(SHARED / "models" / f"{name}.ref.npz")
    inputs = [z[k] for k in sorted(z.files) if k.startswith("input_")]
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"against-{name}-") as tmp:
        for core in cores:
            t = time.time()
            try:
                rep = compare_against_cmsis_nn(SHARED / "models" / f"{name}.tflite", core, cmsis_nn=cmsis_nn,
                                               opt=opt, inputs=inputs, build_dir=Path(tmp) / core, label=name)
            except SpecializerError as e:
                rows.append({"model": name, "core": core, "error": str(e), "seconds": round(time.time() - t, 1)})
                continue
            plot_against(rep, Path(outdir) / f"against_cmsis_nn.{name}.{core}.png")
            d = rep.to_dict()
            row = {"model": name, "core": core, "seconds": round(time.time() - t, 1), "report": d}
            m4_elf = Path(tmp) / "cortex-m4" / "cmsis-nn" / "elf" / "net.elf"
            if core == "cortex-m7" and m4_elf.exists():  # the baselines' M7 method: M4 ELF, M7 cost model
                r = Simulator(m4_elf, core="cortex-m7").run([np.ascontiguousarray(x).tobytes() for x in inputs])
                row["cmsis_m4_elf_on_m7_cycles"] = r.cycles
            rows.append(row)
    return name, rows


def _fmt(v, spec=","):
    return "-" if v is None else format(v, spec)


def _ratio(a, b):
    return f"{a / b:.3f}" if a and b else "-"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", help="model names (default: all in ../shared/models/MANIFEST.json)")
    ap.add_argument("--cores", nargs="*", default=["cortex-m4", "cortex-m7"])
    ap.add_argument("--m0-models", nargs="*", default=list(M0_MODELS),
                    help="models also run on cortex-m0plus (CMSIS-NN's plain-C paths)")
    ap.add_argument("--opt", default="-O3", help="both sides' optimisation level (the baselines used -O3)")
    ap.add_argument("--cmsis-nn", default=str(SHARED / "third_party" / "CMSIS-NN"))
    ap.add_argument("--jobs", type=int, default=1, help="models in parallel (each runs two simulations)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    manifest = json.loads((SHARED / "models" / "MANIFEST.json").read_text())
    names = args.models or [m["file"][:-len(".tflite")] for m in manifest["models"]]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bp = SHARED / "baselines" / "baselines.json"
    baselines = json.loads(bp.read_text())["results"] if bp.exists() else {}

    # build the CMSIS-NN archives once, before the workers need them
    from specializer.cmsis_nn import build_library, find_cmsis_nn
    from specializer.targets.cortex_m.cores import get_core

    root = find_cmsis_nn(args.cmsis_nn)
    for core in dict.fromkeys(args.cores + (["cortex-m0plus"] if args.m0_models else [])):
        build_library(root, get_core(core), args.opt)

    t0 = time.time()
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as ex:
        futs = {ex.submit(_job, n, args.cores + (["cortex-m0plus"] if n in args.m0_models else []), args.opt,
                          str(root), str(out)): n for n in names}
        for k, fut in enumerate(as_completed(futs), 1):
            name, rows = fut.result()
            results += rows
            for r in rows:
                if "error" in r:
                    print(f"[{k}/{len(names)}] {name} {r['core']}: error: {r['error']}", flush=True)
                else:
                    a = r["report"]["against"]
                    print(f"[{k}/{len(names)}] {name} {r['core']}: CMSIS-NN direct {a['cycles']:,}, ours "
                          f"{r['report']['cycles']:,} cycles, layers agree: {a['layers_agree']} "
                          f"({r['seconds']} s)", flush=True)
    results.sort(key=lambda r: (r["model"], r["core"]))
    secs = time.time() - t0

    L = ["# Ours vs CMSIS-NN called directly", "",
         f"`python benchmarks/against_cmsis_nn.py` ({args.opt}, CMSIS-NN from `{root}`, {secs:.0f} s on this machine). "
         "Simulated, cost model of ../shared/COST_MODEL.md; input = each model's `.ref.npz` input.", "",
         "- *TFLM ref* and *TFLM+CMSIS-NN*: ../shared/baselines (the -O3 builds, same cost model).",
         "- *CMSIS-NN direct*: every layer calls the CMSIS-NN function TFLM's CMSIS-NN kernels call (structs filled "
         "from our IR), other layers run our generic kernel; no interpreter. *direct / TFLM+CMSIS-NN* checks the "
         "comparison itself (about 1.00 expected; within 0.05 required on M4).",
         "- *ours*: this tree's library (whatever kernels it selects), same flags. *ours / direct* < 1: ours is faster.",
         "- *bit-exact*: final outputs vs tflite-micro (ours / CMSIS-NN); *layers*: every layer's output, CMSIS-NN "
         "build vs ours.", ""]
    for core in dict.fromkeys(r["core"] for r in results):
        short = core.replace("cortex-", "")
        L += [f"## {core}", ""]
        if core == "cortex-m7":
            L += ["Cortex-M7 is a rough approximation. The baselines' M7 figures are their M4-built ELFs costed with "
                  "the M7 model; *M4 ELF on M7* is our M4-built CMSIS-NN ELF costed the same way here, so "
                  "*M4 ELF on M7 / TFLM+CMSIS-NN* compares the two simulators' M7 models on the same kernels.", ""]
        head = ("| model | TFLM ref | TFLM+CMSIS-NN | CMSIS-NN direct | direct / TFLM+CMSIS-NN | ours | ours / direct "
                "| RAM ours / direct (B) | flash ours / direct (B) | bit-exact ours / CMSIS-NN | layers agree |")
        sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|"
        if core == "cortex-m7":
            head = head[:-len(" bit-exact ours / CMSIS-NN | layers agree |")] + \
                " M4 ELF on M7 | M4 ELF on M7 / TFLM+CMSIS-NN | bit-exact ours / CMSIS-NN | layers agree |"
            sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|"
        L += [head, sep]
        for r in (r for r in results if r["core"] == core):
            b = baselines.get(r["model"], {})
            ref = b.get("tflm_ref", {}).get(short, {}).get("cycles")
            cm = b.get("tflm_cmsisnn", {}).get(short, {}).get("cycles")
            if "error" in r:
                L.append(f"| `{r['model']}` | {_fmt(ref)} | {_fmt(cm)} | error: {r['error']} |")
                continue
            d, a = r["report"], r["report"]["against"]
            yn = {True: "yes", False: "NO", None: "-"}
            cells = [f"`{r['model']}`", _fmt(ref), _fmt(cm), _fmt(a["cycles"]), _ratio(a["cycles"], cm),
                     _fmt(d["cycles"]), _ratio(d["cycles"], a["cycles"]),
                     f"{d['ram_total']:,} / {a['ram_total']:,}", f"{d['flash']:,} / {a['flash']:,}"]
            if core == "cortex-m7":
                m7 = r.get("cmsis_m4_elf_on_m7_cycles")
                cells += [_fmt(m7), _ratio(m7, cm)]
            cells += [f"{yn[d['bitexact']]} / {yn[a['bitexact_with_tflm']]}",
                      "yes" if a["layers_agree"] else "NO: " + ", ".join(
                          f"#{m['index']} {m['op']} ({m['function']}, first at {m['first_diff']})"
                          for m in a["mismatches"])]
            L.append("| " + " | ".join(cells) + " |")
        L.append("")
    fb = {}
    for r in results:
        for lay in r.get("report", {}).get("against", {}).get("layers", []):
            if lay.get("fallback_reason"):
                fb.setdefault(f"{lay['op']}: {lay['fallback_reason']}", set()).add(r["model"])
    if fb:
        L += ["Layers on our generic kernel in the CMSIS-NN build (TFLM runs its reference kernel there too):", ""]
        L += [f"- {k} ({', '.join(sorted(v))})" for k, v in sorted(fb.items())]
        L.append("")
    (out / "against_cmsis_nn.md").write_text("\n".join(L))
    (out / "against_cmsis_nn.json").write_text(json.dumps({"opt": args.opt, "cmsis_nn": str(root),
                                                           "seconds": round(secs, 1), "results": results}, indent=1))
    print(f"wrote {out / 'against_cmsis_nn.md'} and .json ({secs:.0f} s)")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
