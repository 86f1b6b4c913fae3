"""Benchmark every model in ../shared/models (plus the CIFAR-10 seed network built by specializer's own writer)
on the simulated Cortex-M4 and Cortex-M7: specialized and generic libraries side by side, with the baselines.

    python benchmarks/run_models.py                        # all models, M4 and M7, specialized + generic, -O3
    python benchmarks/run_models.py --models mlperf_kws_dscnn --cores cortex-m4
    python benchmarks/run_models.py --no-generic --opt -O2 # only the specialized library, at -O2
    python benchmarks/run_models.py --elf tflm_kws=app.elf # also measure an outside contract ELF (label=path)
    python benchmarks/run_models.py --optimize ram --out benchmarks/results/ram   # the compiler's RAM-first build
    python benchmarks/run_models.py --tune --out benchmarks/results/tuned         # variants timed in the simulator

Writes benchmarks/results/models.md (the model table, then one per-layer table per model and core: variant,
MACs, cycles, MAC/cycle, the practical ceiling of the layer type, code bytes), models.json and one PNG per model
and core. Baseline figures come from ../shared/baselines/baselines.json: TFLM reference kernels, and TFLM +
CMSIS-NN as the better of its two builds (-O3 and TFLM's release defaults), like the baselines' README; the
"CMSIS-NN direct" column is read from benchmarks/results/against_cmsis_nn.json when
benchmarks/against_cmsis_nn.py has been run. Goals: issue #6 (M4 cycles).
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


GOALS = {"mlperf_kws_dscnn": 3_760_000, "mlperf_vww_mobilenetv1_025": 9_960_000, "mlperf_ic_resnet8": 14_890_000,
         "mlperf_ad_fc_autoencoder": 360_000, "seed_cifar10_cnn": 15_420_000, "seed_cifar10_writer": 15_420_000}


# models the project's own writer builds (specializer.zoo); no baseline of their own except the CIFAR-10 seed's
WRITER_MODELS = {"seed_cifar10_writer": lambda zoo: zoo.cifar10_seed(), "gru_kws_writer": lambda zoo: zoo.gru_kws(),
                 "gru_kws_while_writer": lambda zoo: zoo.gru_kws_while(),
                 "kws_dscnn_16x8_writer": lambda zoo: zoo.kws_dscnn_16x8()}  # int16x8 (issue #9)


def _model_bytes(name: str, path: str) -> bytes:
    if path:
        return Path(path).read_bytes()
    from specializer import zoo

    return WRITER_MODELS[name](zoo)


def _job(name: str, path: str, core: str, opt: str, generic: bool, outdir: str, optimize: str = "balanced",
         prune: bool = True, tune: bool = False):
    from specializer.bench import bench_model, plot_layers

    inputs = None
    ref = SHARED / "models" / f"{name}.ref.npz"
    if ref.exists():
        z = np.load(ref)
        inputs = [z[k] for k in sorted(z.files) if k.startswith("input_")]
    model = path if path else None
    if model is None:  # built in-process by the project's writer
        from specializer import zoo

        model = WRITER_MODELS[name](zoo)
    t = time.time()
    rep = bench_model(model, core, opt=opt, generic_only=generic, inputs=inputs, label=name, optimize=optimize,
                      prune=prune, tune=tune and not generic)
    plot_layers([rep], Path(outdir) / f"{name}.{core}{'.generic' if generic else ''}.png")
    return name, core, rep.to_dict(), time.time() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", help="model names (default: all in MANIFEST.json + seed_cifar10_writer)")
    ap.add_argument("--cores", nargs="*", default=["cortex-m4", "cortex-m7"])
    ap.add_argument("--opt", default="-O3", help="cross-compiler optimisation level (the baselines are -O3)")
    ap.add_argument("--no-generic", action="store_true", help="skip the generic (unspecialized) library")
    ap.add_argument("--elf", action="append", default=[], metavar="LABEL=PATH",
                    help="also measure an ELF that follows the bench contract (e.g. a TFLM application)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--optimize", default="balanced", choices=("balanced", "time", "ram"),
                    help="the compiler's --optimize (row bands: none; pairs and residual blocks; RAM-first)")
    ap.add_argument("--no-prune", dest="prune", action="store_false", help="keep channels proven constant")
    ap.add_argument("--tune", action="store_true",
                    help="the compiler's --tune: variants chosen by their cycles measured in the simulator (each "
                         "model is tuned first, on --jobs cores, then read from the cache)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    manifest = json.loads((SHARED / "models" / "MANIFEST.json").read_text())
    names = {m["file"][:-7]: str(SHARED / "models" / m["file"]) for m in manifest["models"]}
    for wname in WRITER_MODELS:  # built in-process by specializer.zoo
        names[wname] = ""
    todo = args.models or list(names)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    baselines = {}
    bp = SHARED / "baselines" / "baselines.json"
    if bp.exists():
        baselines = json.loads(bp.read_text())["results"]

    if args.tune:
        from specializer.tune import measure_variants

        for n in todo:
            for c in args.cores:
                t = time.time()
                rep: dict = {}
                measure_variants(_model_bytes(n, names[n]), c, opt=args.opt, jobs=args.jobs, report=rep)
                how = "cached" if rep.get("hit") else f"{rep['builds']} builds"
                print(f"tuned {n} {c}: {rep['candidates']} variants of {rep['layers']} layers, {how} "
                      f"({time.time() - t:.0f} s)", flush=True)
    results = {}
    kinds = (False,) if args.no_generic else (False, True)
    jobs = [(n, names[n], c, gen) for n in todo for c in args.cores for gen in kinds]
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as ex:
        futs = {ex.submit(_job, n, p, c, args.opt, gen, str(out), args.optimize, args.prune, args.tune):
                (n, c + (":generic" if gen else ""))
                for n, p, c, gen in jobs}
        done = 0
        for fut in as_completed(futs):
            n, c = futs[fut]
            done += 1
            try:
                name, core, rep, secs = fut.result()
                results.setdefault(name, {})[c] = rep
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
    direct = {}
    ap_json = out / "against_cmsis_nn.json"
    if ap_json.exists():
        try:
            for row in json.loads(ap_json.read_text()).get("results", []):
                if "report" in row:
                    direct[(row["model"], row["core"])] = row["report"]["against"]["cycles"]
        except (ValueError, KeyError, AttributeError):
            direct = {}
    md = render_markdown(results, baselines, args.cores, args.opt, direct)
    (out / "models.md").write_text(md)
    print()
    print(md)
    print(f"wrote {out / 'models.md'}, {out / 'models.json'} and per-model PNGs ({time.time() - t0:.0f} s)")
    return 0


def _base(baselines, name, variant, core, key):
    if name == "seed_cifar10_writer":
        name = "seed_cifar10_cnn"
    short = core.replace("cortex-", "")
    try:
        if variant == "tflm_cmsisnn":  # the better of its two builds, as ../shared/baselines/README.md does
            vals = [baselines[name][v][short][key] for v in ("tflm_cmsisnn", "tflm_cmsisnn_tflm_release_defaults")
                    if v in baselines[name]]
            return min(vals) if vals else None
        return baselines[name][variant][short][key]
    except (KeyError, TypeError):
        return None


def _n(v) -> str:
    return f"{v:,}" if v else "–"


def _x(a, b) -> str:
    return f"{a / b:.2f}×" if a and b else "–"


def render_markdown(results, baselines, cores, opt, direct=None) -> str:
    direct = direct or {}
    L = [f"# specializer benchmark ({opt}, simulated; cost model ../shared/COST_MODEL.md)", ""]
    flash_ratios = []
    for core in cores:
        L += [f"## {core}: whole models", "",
              "| model | MACs | TFLM ref | TFLM+CMSIS-NN | CMSIS-NN direct | ours generic | ours specialized | "
              "speed-up vs TFLM+CMSIS-NN | goal | MAC/cycle | RAM (B) | vs CMSIS-NN RAM | flash (B) | "
              "vs CMSIS-NN flash | bit-exact |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|"]
        for name in sorted(results):
            r = results[name].get(core)
            gen = results[name].get(core + ":generic")
            if r is None:
                continue
            if "error" in r:
                L.append(f"| `{name}` | failed: {r['error'][:80]} |" + " |" * 13)
                continue
            ref_c = _base(baselines, name, "tflm_ref", core, "cycles")
            cm_c = _base(baselines, name, "tflm_cmsisnn", core, "cycles")
            cm_ram = _base(baselines, name, "tflm_cmsisnn", core, "static_ram_bytes")
            cm_stack = _base(baselines, name, "tflm_cmsisnn", core, "stack_peak_bytes")
            cm_flash = _base(baselines, name, "tflm_cmsisnn", core, "flash_bytes")
            cm_total = (cm_ram + cm_stack) if cm_ram is not None and cm_stack is not None else None
            be = {True: "yes", False: "**NO**", None: "?"}[r["bitexact"]]
            if not r["macs"]:  # an outside ELF
                L.append(f"| `{name}` (ELF) | | {_n(ref_c)} | {_n(cm_c)} | | | {r['cycles']:,} | "
                         f"{_x(cm_c, r['cycles'])} | | | {r['ram_total']:,} | {_x(r['ram_total'], cm_total)} | "
                         f"{r['flash']:,} | {_x(r['flash'], cm_flash)} | – |")
                continue
            goal = GOALS.get(name) if core == "cortex-m4" else None
            if goal is None and core == "cortex-m4" and cm_c:
                goal = cm_c // 2  # issue #6: every other model >= 2x fewer cycles than TFLM + CMSIS-NN
            met = "" if goal is None else (" ✓" if r["cycles"] <= goal else " ✗")
            dc = direct.get((name, core))
            if cm_flash and core == "cortex-m4" and name not in WRITER_MODELS:
                flash_ratios.append(r["flash"] / cm_flash)
            gen_c = gen.get("cycles") if gen else None
            L.append(f"| `{name}` | {r['macs']:,} | {_n(ref_c)} | {_n(cm_c)} | {_n(dc)} | {_n(gen_c)} | "
                     f"**{r['cycles']:,}** | {_x(cm_c, r['cycles'])} | {f'{goal:,}{met}' if goal else '–'} | "
                     f"{r['mac_per_cycle']:.3f} | {r['ram_total']:,} | {_x(r['ram_total'], cm_total)} | "
                     f"{r['flash']:,} | {_x(r['flash'], cm_flash)} | {be} |")
        L.append("")
    if flash_ratios:
        import math

        geo = math.exp(sum(math.log(v) for v in flash_ratios) / len(flash_ratios))
        L += [f"Flash vs TFLM + CMSIS-NN on the Cortex-M4: geometric mean {geo:.2f}×, largest {max(flash_ratios):.2f}×.",
              ""]
    L += ["TFLM + CMSIS-NN = the better of its two builds in ../shared/baselines/baselines.json (-O3 and TFLM's release "
          "defaults), as its README does; TFLM ref = reference kernels, -O3. Speed-up = their cycles / ours. Goal: "
          "issue #6 (M4), for the other models half of TFLM + CMSIS-NN. RAM = .data + .bss (arena included) + stack "
          "peak; flash = text + rodata + data of the whole ELF. The Cortex-M7 model is a dual-issue approximation.", ""]
    for core in cores:
        for name in sorted(results):
            r = results[name].get(core)
            if not r or "error" in r or not r.get("macs"):
                continue
            gen = results[name].get(core + ":generic") or {}
            gcyc = {row["index"]: row["cycles"] for row in gen.get("layers", [])}
            L += [f"### {name} on {core}: per layer", "",
                  "| layer | op | variant (kernel function) | MACs | cycles | MAC/cycle | ceiling | code B | generic cycles |",
                  "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
            for row in r["layers"]:
                if row["op"] == "-":
                    continue
                ceil = f"{row['ceiling']:.2f}" if row.get("ceiling") else "–"
                L.append(f"| {row['index']} | {row['op']} | `{row.get('variant') or row['kernel']}` | {row['macs']:,} | "
                         f"{row['cycles']:,} | {row['mac_per_cycle']:.3f} | {ceil} | {row.get('code_bytes') or '–'} | "
                         f"{gcyc.get(row['index'], 0):,} |")
            L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
