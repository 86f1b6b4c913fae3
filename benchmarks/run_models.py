"""Benchmark every model in ../shared/models (plus the CIFAR-10 seed network built by specializer's own writer)
on the simulated Cortex-M4 and Cortex-M7: cycles, MAC/cycle, RAM, flash, per layer; baselines side by side.

    python benchmarks/run_models.py                        # all models, M4 and M7, generic path
    python benchmarks/run_models.py --models mlperf_kws_dscnn --cores cortex-m4
    python benchmarks/run_models.py --elf tflm_kws=app.elf # also measure an outside contract ELF (label=path)

Writes benchmarks/results/models.md, models.json and one PNG per model (cycles per layer). Baseline figures come
from ../shared/baselines/baselines.json (TFLM reference kernels and TFLM + CMSIS-NN, same cost model); the
tables show our figure / theirs as ratios (< 1 is better for cycles and memory).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _job(name: str, path: str, core: str, opt: str, generic: bool, outdir: str):
    from specializer.bench import bench_model, plot_layers

    inputs = None
    ref = SHARED / "models" / f"{name}.ref.npz"
    if ref.exists():
        z = np.load(ref)
        inputs = [z[k] for k in sorted(z.files) if k.startswith("input_")]
    model = path if path else None
    if model is None:
        from specializer import zoo

        model = zoo.cifar10_seed()
    t = time.time()
    rep = bench_model(model, core, opt=opt, generic_only=generic, inputs=inputs, label=name)
    plot_layers([rep], Path(outdir) / f"{name}.{core}.png")
    return name, core, rep.to_dict(), time.time() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", help="model names (default: all in MANIFEST.json + seed_cifar10_writer)")
    ap.add_argument("--cores", nargs="*", default=["cortex-m4", "cortex-m7"])
    ap.add_argument("--opt", default="-O2")
    ap.add_argument("--generic", action="store_true", default=True,
                    help="generic kernels (the only path today; kept explicit for comparisons)")
    ap.add_argument("--elf", action="append", default=[], metavar="LABEL=PATH",
                    help="also measure an ELF that follows the bench contract (e.g. a TFLM application)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    manifest = json.loads((SHARED / "models" / "MANIFEST.json").read_text())
    names = {m["file"][:-7]: str(SHARED / "models" / m["file"]) for m in manifest["models"]}
    names["seed_cifar10_writer"] = ""  # built in-process by specializer.zoo.cifar10_seed()
    todo = args.models or list(names)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    baselines = {}
    bp = SHARED / "baselines" / "baselines.json"
    if bp.exists():
        baselines = json.loads(bp.read_text())["results"]

    results = {}
    jobs = [(n, names[n], c) for n in todo for c in args.cores]
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as ex:
        futs = {ex.submit(_job, n, p, c, args.opt, args.generic, str(out)): (n, c) for n, p, c in jobs}
        done = 0
        for fut in as_completed(futs):
            n, c = futs[fut]
            done += 1
            try:
                name, core, rep, secs = fut.result()
                results.setdefault(name, {})[core] = rep
                print(f"[{done}/{len(jobs)}] {name} {core}: {rep['cycles']:,} cycles, "
                      f"{'bit-exact' if rep['bitexact'] else 'NOT BIT-EXACT' if rep['bitexact'] is False else '?'}"
                      f" ({secs:.0f} s)", flush=True)
            except Exception as e:  # keep going: one failure should not hide the others
                results.setdefault(n, {})[c] = {"error": f"{type(e).__name__}: {e}"}
                print(f"[{done}/{len(jobs)}] {n} {c}: FAILED {type(e).__name__}: {e}", flush=True)

    for spec in args.elf:
        label, _, path = spec.partition("=")
        from specializer.bench import bench_elf

        for core in args.cores:
            print(f"[elf] {label} {core} ...", flush=True)
            results.setdefault(label, {})[core] = bench_elf(Path(path), core, label=label).to_dict()
            results[label][core]["bitexact"] = None

    (out / "models.json").write_text(json.dumps(results, indent=1))
    md = render_markdown(results, baselines, args.cores, args.opt)
    (out / "models.md").write_text(md)
    print()
    print(md)
    print(f"wrote {out / 'models.md'}, {out / 'models.json'} and per-model PNGs ({time.time() - t0:.0f} s)")
    return 0


def _base(baselines, name, variant, core, key):
    if name == "seed_cifar10_writer":
        name = "seed_cifar10_cnn"
    try:
        return baselines[name][variant][core.replace("cortex-", "")][key]
    except (KeyError, TypeError):
        return None


def render_markdown(results, baselines, cores, opt) -> str:
    L = [f"# specializer benchmark (generic kernels, {opt}, simulated; cost model ../shared/COST_MODEL.md)", ""]
    for core in cores:
        short = core.replace("cortex-", "")
        L += [f"## {core}", "",
              "| model | MACs | cycles | MAC/cycle | vs TFLM ref | vs TFLM+CMSIS-NN | RAM (B) | vs CMSIS-NN RAM | arena (B) "
              "| flash (B) | vs CMSIS-NN flash | bit-exact |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|"]
        for name in sorted(results):
            r = results[name].get(core)
            if r is None:
                continue
            if "error" in r:
                L.append(f"| `{name}` | | failed: {r['error'][:80]} | | | | | | | | | |")
                continue
            ref_c = _base(baselines, name, "tflm_ref", short, "cycles")
            cm_c = _base(baselines, name, "tflm_cmsisnn", short, "cycles")
            cm_ram = _base(baselines, name, "tflm_cmsisnn", short, "static_ram_bytes")
            cm_stack = _base(baselines, name, "tflm_cmsisnn", short, "stack_peak_bytes")
            cm_flash = _base(baselines, name, "tflm_cmsisnn", short, "flash_bytes")

            def ratio(a, b):
                return f"{a / b:.2f}×" if a and b else "–"

            cm_total = (cm_ram + cm_stack) if cm_ram is not None and cm_stack is not None else None
            be = {True: "yes", False: "**NO**", None: "?"}[r["bitexact"]]
            if not r["macs"]:  # an outside ELF: no MAC count, arena as it reports it
                L.append(f"| `{name}` (ELF) | | {r['cycles']:,} | | {ratio(r['cycles'], ref_c)} | "
                         f"{ratio(r['cycles'], cm_c)} | {r['ram_total']:,} | {ratio(r['ram_total'], cm_total)} | "
                         f"{r['arena'] if r['arena'] is not None else '–'} | {r['flash']:,} | "
                         f"{ratio(r['flash'], cm_flash)} | – |")
                continue
            L.append(f"| `{name}` | {r['macs']:,} | {r['cycles']:,} | {r['mac_per_cycle']:.3f} | "
                     f"{ratio(r['cycles'], ref_c)} | {ratio(r['cycles'], cm_c)} | {r['ram_total']:,} | "
                     f"{ratio(r['ram_total'], cm_total)} | {r['arena']:,} | {r['flash']:,} | "
                     f"{ratio(r['flash'], cm_flash)} | {be} |")
        L.append("")
    L += ["Ratios are ours / theirs (< 1 is better). Baselines: ../shared/baselines/baselines.json (TFLM reference "
          "kernels and TFLM + CMSIS-NN, both bit-exact, same cost model). RAM = .data + .bss (arena included) + "
          "stack peak. The Cortex-M7 model is a rough dual-issue approximation.", ""]
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
