"""Variant tuning in the simulator (issue #6 part 6): every candidate variant of every specialized layer timed on
the simulated core, so that choose_variants ranks them by measured cycles instead of estimates.

How it works
1. The candidates are the ones choose_variants sees: the pipeline runs up to select_kernels and
   `choose_variants._candidates` lists each layer's variants.
2. Build k (k = 0 .. the largest candidate count - 1) takes candidate k of every layer (a layer with fewer takes
   its last), with row bands off so that every layer runs alone: prefer={"@force": ...}, optimize="time". Each
   build is cross-compiled and run once in the simulator (on one seeded random input) with the per-layer profile
   marks, which give every layer's cycles for the variant it took. So a model is tuned in as many builds as its
   layer with the most candidates has (KWS: 10), not one build per candidate; builds run in parallel (`jobs`). A
   layer's count moves by a few tenths of a percent with its neighbours' variants (the arena placement changes),
   well below the differences between variants that matter.
3. The result, {layer index: {variant parameters: cycles}}, is cached on disk (deterministic: the simulator is)
   under a key of the model bytes, the core, the optimization level and the sources of the kernels and of the
   compiler; a second tuning of the same model reads the file.
4. `compile(..., tune=True)` / `specializer compile --tune` pass the measurements to choose_variants as
   prefer={"@cycles": ...}: the flash budget, RAM steps and row bands then work as without tuning, on measured
   cycles.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Optional

import numpy as np

CACHE_ENV = "SPECIALIZER_CACHE"


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "specializer")
    return Path(root) / "tune"


def _sources_digest() -> str:
    """A digest of the compiler's, the passes', the runtime's and the kernels' sources: measurements are kept only
    for the code that made them."""
    import specializer
    from specializer import passes, runtime, targets

    h = hashlib.sha256()
    for pkg in (specializer, passes, runtime, targets):
        root = Path(list(pkg.__path__)[0])
        files = sorted(p for ext in ("*.py", "*.c.in", "*.h", "*.c", "*.ld") for p in root.rglob(ext)
                       if "__pycache__" not in p.parts)
        for p in files:
            h.update(f"{pkg.__name__}/{p.relative_to(root)}".encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _model_bytes(model) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    return Path(model).read_bytes()


def candidates(model: bytes, core) -> list:
    """[(layer index, [Variant])] as choose_variants sees them."""
    from .frontend import load_model
    from .passes.choose_variants import _candidates
    from .pipeline import run_pipeline

    g = run_pipeline(load_model(model), core, stop_after="select_kernels")
    return _candidates(g)


def _measure_build(args) -> dict:
    """One build: the model with the forced variants, simulated once; {layer index: cycles}."""
    model, core_name, force, opt = args
    from .bench import build_model_elf
    from .targets.cortex_m.sim import Simulator

    with tempfile.TemporaryDirectory(prefix="spz-tune-") as d:
        res, elf = build_model_elf(model, core_name, Path(d), opt=opt, flash_budget=None,
                                   prefer={"@force": force}, optimize="time")
        rng = np.random.default_rng(0)  # the same input for every build (the cycles barely depend on it)
        xs = [rng.integers(np.iinfo(io.dtype).min, np.iinfo(io.dtype).max + 1, size=io.shape)
              .astype(io.dtype).tobytes() if np.issubdtype(np.dtype(io.dtype), np.integer)
              else np.zeros(io.shape, dtype=io.dtype).tobytes() for io in res.inputs]
        r = Simulator(elf, core=core_name).run(xs)
        return {rec.id: int(rec.cycles) for rec in r.layers if isinstance(rec.id, int)}


def measure_variants(model, target: str = "cortex-m4", opt: str = "-O3", jobs: int = 2,
                     use_cache: bool = True, report: Optional[dict] = None) -> dict:
    """{str(layer index): {params_key: cycles}} for every candidate variant of every specialized layer, measured
    in the simulator (cached). `report` (a dict) receives builds, layers, candidates and whether the cache hit."""
    from .passes.choose_variants import params_key
    from .targets.cortex_m.cores import get_core

    core = get_core(target) if isinstance(target, str) else target
    data = _model_bytes(model)
    key = hashlib.sha256(data + f"|{core.name}|{opt}|{_sources_digest()}".encode()).hexdigest()[:32]
    path = cache_dir() / f"{key}.json"
    rep = report if report is not None else {}
    cands = candidates(data, core)
    rep.update(layers=len(cands), candidates=sum(len(cs) for _, cs in cands), cache=str(path))
    if use_cache and path.exists():
        rep.update(hit=True, builds=0)
        return json.loads(path.read_text())
    n = max((len(cs) for _, cs in cands), default=0)
    forces = [{idx: dict(cs[min(k, len(cs) - 1)].params) for idx, cs in cands} for k in range(n)]
    jobs_ = [(data, core.name, f, opt) for f in forces]
    if jobs > 1 and len(jobs_) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            results = list(ex.map(_measure_build, jobs_))
    else:
        results = [_measure_build(j) for j in jobs_]
    out: dict = {}
    for force, cycles in zip(forces, results):
        for idx, params in force.items():
            if idx in cycles:
                out.setdefault(str(idx), {})[params_key(params)] = cycles[idx]
    rep.update(hit=False, builds=len(forces))
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1, sort_keys=True))
        os.replace(tmp, path)
    return out


def tuned_prefer(prefer: Any, measured: dict) -> dict:
    """`prefer` for the tuned compile: the user's preferences plus the measurements."""
    return {**(prefer or {}), "@cycles": measured}
