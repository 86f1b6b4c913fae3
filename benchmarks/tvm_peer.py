"""Apache TVM as a peer: what the latest `apache-tvm` on PyPI does with every model in ../shared/models.

    python benchmarks/tvm_peer.py                       # all models; installs apache-tvm into .venv-tvm first
    python benchmarks/tvm_peer.py --models mlperf_ad_fc_autoencoder --cores cortex-m4 cortex-m7

An optional extra, not part of `make test`.  Writes benchmarks/results/tvm_peer.md and tvm_peer.json and prints the
table.  Per model it answers:
1. import   -- does TVM's TFLite frontend (Relax `from_tflite` in 0.2x) import the model; how the quantized
               layers are represented (R.dequantize -> float32 op -> R.quantize counts, from the imported IR);
2. host     -- does it compile for the host (`llvm` target) and run in the Relax VM;
3. bit-exact -- is the host output equal to the `.ref.npz` output (host TFLite Micro); how many elements differ;
4. MCU      -- can TVM produce code for a Cortex-M: the `c` target with `mcpu=cortex-m4/m7` (TVM 0.27 has no
               microTVM, CRT, AOT executor or CMSIS-NN backend; the graph itself only runs in the Relax VM of the
               C++ runtime).  The kernels it generates are plain C, so where the lowered Relax `main` is a straight
               list of static allocations and kernel calls, this script writes a small executor shim (static buffers
               at the offsets of TVM's own memory plan, one DLTensor per tensor, one packed call per kernel), builds
               it with the project's bench harness, startup code and linker script (DESIGN.md section 3) and measures
               cycles, RAM and flash in the project's simulator.  The shim is this script's, not TVM's: the row says
               so ("TVM kernels + shim").
How it works: TVM is installed into its own virtualenv (default `.venv-tvm` beside the project's `.venv`, created
on first use with `pip install apache-tvm tflite numpy`; a failed install is reported with pip's error) and this same
file runs there as a worker (`--worker`), one process per model, printing one JSON line.  The parent (the project's
venv) builds ELFs with `specializer.targets.cortex_m.toolchain` and runs `specializer.targets.cortex_m.sim`.
No TVM code is copied into the repository: generated sources live under the build directory only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPZ_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"
PIP_PACKAGES = ["apache-tvm", "tflite", "numpy"]


# ---------------------------------------------------------------------------------------------------- worker (TVM venv)
def _short(e: BaseException, n: int = 300) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    # TVM errors carry a C++ traceback first; the message is the last non-empty line(s)
    msg = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
    return f"{type(e).__name__}: {msg}"[:n]


def _ir_stats(mod) -> dict:
    import re
    txt = mod.script()
    compute = re.findall(r'R\.Tensor\([^)]*\), dtype="(\w+)"\) = R\.(nn\.conv2d|matmul|nn\.conv2d_transpose)\(', txt)
    return dict(dequantize=txt.count("R.dequantize("), quantize=txt.count("R.quantize("),
                compute_ops=len(compute), float_compute_ops=sum(1 for d, _ in compute if d.startswith("float")),
                int_compute_ops=sum(1 for d, _ in compute if d.startswith(("int", "uint"))))


def _c_dtype(dt: str):
    """DLDataType (code, bits) of a TVM dtype string."""
    dt = str(dt)
    code = {"int": 0, "uint": 1, "float": 2}
    for k in ("uint", "int", "float"):
        if dt.startswith(k):
            return code[k], int(dt[len(k):])
    if dt == "bool":
        return 1, 1
    raise ValueError(f"dtype {dt}")


def _vname(v) -> str:
    return str(getattr(v, "name_hint", None) or getattr(v, "name", "?"))


def _workspace_bytes(kernels_c: str) -> int:
    """Largest sum of TVMBackendAllocWorkspace sizes (64-byte rounded) inside one top-level function of the
    generated kernels: the static workspace the shim's LIFO allocator needs."""
    import re
    best = cur = 0
    for line in kernels_c.splitlines():
        if re.match(r"^[A-Za-z_].*\)\s*\{\s*$", line):
            cur = 0
        for m in re.finditer(r"TVMBackendAllocWorkspace\([^,]+,[^,]+,\s*\(uint64_t\)(\d+)", line):
            cur += (int(m.group(1)) + 63) // 64 * 64
            best = max(best, cur)
        if "TVMBackendAllocWorkspace" in line and "(uint64_t)" not in line:
            raise NotImplementedError("workspace of non-constant size")
    return best


def _shim(low, name: str, kernels_c: str = "") -> tuple[str, str, dict]:
    """C executor for the lowered Relax main of ``low``: returns (source, info).  Raises NotImplementedError on a
    construct outside the supported straight-line subset."""
    import numpy as np
    import tvm
    from tvm import relax

    main = low["main"]
    pool = []          # (var, size) in allocation order
    storages = {}      # storage var -> offset in the pool
    tensors = {}       # var -> (kind, base, offset, shape, dtype): kind "pool" (base = storage var) or "const"
    consts = []        # numpy arrays
    calls = []
    off = 0

    def tensor_of(expr):
        const = getattr(expr, "value", None) if type(expr).__name__ in ("GenericConst", "Constant") else None
        if type(expr).__name__ == "Constant" and hasattr(expr, "data"):      # TVM < 0.27
            const = expr.data
        if const is not None and hasattr(const, "numpy"):
            arr = const.numpy()
            consts.append(arr)
            return ("const", len(consts) - 1, 0, tuple(arr.shape), str(arr.dtype))
        if isinstance(expr, relax.Var) and expr in tensors:
            return tensors[expr]
        raise NotImplementedError(f"argument {type(expr).__name__} {expr}")

    params = list(main.params)
    for p in params:
        sinfo = getattr(p, "struct_info", None) or p.ty      # TVM < 0.27: struct_info; 0.27: ty
        shape = tuple(int(x) for x in sinfo.shape.values)
        size = int(np.prod(shape)) * max(1, _c_dtype(sinfo.dtype)[1] // 8)
        storages[p] = off
        tensors[p] = ("pool", p, 0, shape, str(sinfo.dtype))
        pool.append((_vname(p), size))
        off += (size + 63) // 64 * 64
    for blk in main.body.blocks:
        for b in blk.bindings:
            v = b.value
            if isinstance(v, relax.Var):
                tensors[b.var] = tensors[v]
                continue
            if not isinstance(v, relax.Call):
                raise NotImplementedError(f"binding {type(v).__name__}")
            op = v.op
            if isinstance(op, tvm.ir.Op):
                if op.name == "relax.vm.alloc_storage":
                    size = int(v.args[0].values[0])
                    storages[b.var] = off
                    pool.append((_vname(b.var), size))
                    off += (size + 63) // 64 * 64
                elif op.name == "relax.vm.alloc_tensor":
                    st, o, shp, dt = v.args[:4]
                    if st not in storages:
                        raise NotImplementedError("alloc_tensor on an unknown storage")
                    tensors[b.var] = ("pool", st, int(o.value), tuple(int(x) for x in shp.values), str(dt.value))
                elif op.name in ("relax.vm.kill_object", "relax.null_value"):
                    pass
                else:
                    raise NotImplementedError(f"op {op.name}")
            elif isinstance(op, relax.ExternFunc):
                sym = op.global_symbol
                if sym in ("vm.builtin.check_tensor_info", "vm.builtin.match_shape"):
                    continue
                if sym == "vm.builtin.reshape":
                    kind, base, o, _shape, dt = tensor_of(v.args[0])
                    tensors[b.var] = (kind, base, o, tuple(int(x) for x in v.args[1].values), dt)
                    continue
                raise NotImplementedError(f"packed function {sym}")
            elif isinstance(op, tvm.ir.GlobalVar):
                f = low[op]
                sym = str(f.attrs["global_symbol"]) if f.attrs and "global_symbol" in f.attrs else op.name_hint
                calls.append((sym, [tensor_of(a) for a in v.args]))
            else:
                raise NotImplementedError(f"callee {type(op).__name__}")
    ret = main.body.body
    outs = [ret] if isinstance(ret, relax.Var) else list(ret.fields) if isinstance(ret, relax.Tuple) else None
    if outs is None:
        raise NotImplementedError(f"return {type(ret).__name__}")
    out_t = [tensor_of(o) for o in outs]
    in_t = [tensors[p] for p in params]

    ws = _workspace_bytes(kernels_c)

    # ---- emit C
    desc = {}          # tensor tuple -> C name of its DLTensor
    lines_t = []

    def dl(t):
        if t in desc:
            return desc[t]
        kind, base, o, shape, dt = t
        i = len(desc)
        code, bits = _c_dtype(dt)
        shp = ", ".join(str(s) for s in shape) or "1"
        lines_t.append(f"static int64_t tvm_shape{i}[] = {{{shp}}};")
        data = (f"(void *)(tvm_pool + {storages[base] + o})" if kind == "pool" else f"(void *)tvm_const{base}")
        lines_t.append(f"static DLTensor tvm_t{i} = {{{data}, {{kDLCPU, 0}}, {len(shape)}, "
                       f"{{{code}, {bits}, 1}}, tvm_shape{i}, NULL, 0}};")
        desc[t] = f"tvm_t{i}"
        return desc[t]

    body = []
    for k, (sym, args) in enumerate(calls):
        names = [dl(a) for a in args]
        body.append(f"    {{ /* {sym} */\n        TVMFFIAny a[{len(args)}];\n        TVMFFIAny r;")
        for j, n in enumerate(names):
            body.append(f"        a[{j}].type_index = kTVMFFIDLTensorPtr; a[{j}].zero_padding = 0; "
                        f"a[{j}].v_ptr = &{n};")
        body.append(f"        r.type_index = kTVMFFINone; r.zero_padding = 0; r.v_int64 = 0;\n"
                    f"        if (__tvm_ffi_{sym}(NULL, a, {len(args)}, &r) != 0) return {k + 1};\n    }}")
    protos = sorted({f"int32_t __tvm_ffi_{s}(void *self, void *args, int32_t num_args, void *result);"
                     for s, _ in calls})
    const_lines = []
    for i, arr in enumerate(consts):
        raw = np.ascontiguousarray(arr).tobytes()
        vals = ",".join(str(x) for x in raw)
        const_lines.append(f"static const uint8_t tvm_const{i}[{max(1, len(raw))}] __attribute__((aligned(64))) = "
                           f"{{{vals or '0'}}};")
    for t in in_t + out_t:
        dl(t)

    def ptr(t):
        kind, base, o, _s, _d = t
        return f"(tvm_pool + {storages[base] + o})" if kind == "pool" else f"(uint8_t *)tvm_const{base}"

    def nbytes(t):
        return int(np.prod(t[3])) * max(1, _c_dtype(t[4])[1] // 8)

    src = f"""/* Generated by benchmarks/tvm_peer.py: a static executor shim for TVM's generated kernels ({name}).
 * TVM 0.27 has no microcontroller executor; this replays the lowered Relax main: static buffers at the offsets of
 * TVM's memory plan (alloc_storage), one DLTensor per tensor, one packed call per kernel. Bench contract through
 * targets/cortex_m/bench_harness.c (tvmnet.h). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "tvm/ffi/c_api.h"
#include "tvmnet.h"

static uint8_t tvm_pool[{max(off, 64)}] __attribute__((aligned(64)));
{chr(10).join(const_lines)}
{chr(10).join(lines_t)}
{chr(10).join(protos)}

/* Kernel scratch (e.g. padded inputs): TVMBackendAllocWorkspace/FreeWorkspace of the C runtime API, here a LIFO
 * bump allocator over a static buffer sized from the kernels' constant requests. */
static uint8_t tvm_ws[{max(ws, 64)}] __attribute__((aligned(64)));
static uint32_t tvm_ws_top;

void *TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes, int code_hint, int bits_hint)
{{
    uint32_t n = (uint32_t)((nbytes + 63u) & ~(uint64_t)63u);
    (void)device_type; (void)device_id; (void)code_hint; (void)bits_hint;
    if (n > sizeof tvm_ws - tvm_ws_top) {{
        return NULL;
    }}
    void *p = tvm_ws + tvm_ws_top;
    tvm_ws_top += n;
    return p;
}}

int TVMBackendFreeWorkspace(int device_type, int device_id, void *ptr)
{{
    uint8_t *p = (uint8_t *)ptr;
    (void)device_type; (void)device_id;
    if (p >= tvm_ws && p < tvm_ws + tvm_ws_top) {{
        tvm_ws_top = (uint32_t)(p - tvm_ws);
    }}
    return 0;
}}

/* The generated kernels report argument errors through this FFI call; nothing to record on the target. */
void TVMFFIErrorSetRaisedFromCStrParts(const char *kind, const char **parts, int32_t n)
{{
    (void)kind; (void)parts; (void)n;
}}

void *tvmnet_input(uint8_t *arena, int i)
{{
    (void)arena;
    static uint8_t *const p[] = {{{", ".join(ptr(t) for t in in_t)}}};
    return p[i];
}}

void *tvmnet_output(uint8_t *arena, int i)
{{
    (void)arena;
    static uint8_t *const p[] = {{{", ".join(ptr(t) for t in out_t)}}};
    return p[i];
}}

void tvmnet_reset(uint8_t *arena)
{{
    (void)arena; /* no state */
}}

int32_t tvmnet_run(uint8_t *arena)
{{
    (void)arena;
{chr(10).join(body)}
    return 0;
}}
"""
    hdr = [f"/* Generated by benchmarks/tvm_peer.py for {name}. */", "#include <stdint.h>",
           "/* the harness arena is unused: the shim's buffers are static (tvm_pool, tvm_ws in .bss) */",
           "#define TVMNET_ARENA_SIZE 8", "#define TVMNET_ARENA_ALIGN 8",
           f"#define TVMNET_NUM_INPUTS {len(in_t)}", f"#define TVMNET_NUM_OUTPUTS {len(out_t)}"]
    hdr += [f"#define TVMNET_INPUT{i}_SIZE {nbytes(t)}" for i, t in enumerate(in_t)]
    hdr += [f"#define TVMNET_OUTPUT{i}_SIZE {nbytes(t)}" for i, t in enumerate(out_t)]
    hdr += ["void *tvmnet_input(uint8_t *arena, int i);", "void *tvmnet_output(uint8_t *arena, int i);",
            "int32_t tvmnet_run(uint8_t *arena);", "void tvmnet_reset(uint8_t *arena);", ""]
    info = dict(pool_bytes=off, workspace_bytes=ws, storages=len(pool), kernel_calls=len(calls),
                kernels=len({s for s, _ in calls}), const_bytes=int(sum(a.nbytes for a in consts)))
    return src, "\n".join(hdr), info


def worker(name: str, work: Path, cores: list[str]) -> dict:
    import numpy as np
    import tflite
    import tvm
    from tvm import relax

    res = dict(model=name, tvm_version=tvm.__version__)
    buf = (MODELS / f"{name}.tflite").read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    ops = set()
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        ops.add(next((k for k, v in vars(tflite.BuiltinOperator).items() if v == code), str(code)))
    res["tflite_ops"] = sorted(ops)
    try:
        from tvm.relax.frontend.tflite import from_tflite
        res["frontend"] = "tvm.relax.frontend.tflite.from_tflite"
    except ImportError:
        from tvm.relay.frontend import from_tflite  # older TVM
        res["frontend"] = "tvm.relay.frontend.from_tflite"
    t = time.time()
    try:
        mod = from_tflite(model)
        res["import"] = "ok"
        res["import_s"] = round(time.time() - t, 2)
        res["ir"] = _ir_stats(mod)
    except Exception as e:  # noqa: BLE001 - the verdict is the message
        res["import"] = _short(e)
        return res

    ref = np.load(MODELS / f"{name}.ref.npz")
    ins = [ref[k] for k in sorted(ref.files) if k.startswith("input_")]
    outs = [ref[k] for k in sorted(ref.files) if k.startswith("output_")]
    t = time.time()
    try:
        ex = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}))
        vm = relax.VirtualMachine(ex, tvm.cpu())
        got = vm["main"](*[tvm.runtime.tensor(x) for x in ins])
        got = [got] if not isinstance(got, (list, tuple)) and hasattr(got, "numpy") else list(got)
        got = [g.numpy() for g in got]
        res["host"] = "ok"
        res["host_s"] = round(time.time() - t, 2)
        diff = []
        for g, r in zip(got, outs):
            if g.shape != r.shape or g.dtype != r.dtype:
                diff.append(dict(shape=list(g.shape), dtype=str(g.dtype), ref_shape=list(r.shape)))
                continue
            d = np.abs(g.astype(np.float64) - r.astype(np.float64))
            diff.append(dict(differing=int(np.count_nonzero(d)), of=int(d.size), max_abs=float(d.max())))
        res["host_outputs"] = diff
        res["bitexact"] = len(got) == len(outs) and all(x.get("differing") == 0 for x in diff)
        res["host_output_hex"] = [g.tobytes().hex() for g in got]
    except Exception as e:  # noqa: BLE001
        res["host"] = _short(e)

    # microcontroller: the `c` target for each core; kernels to C; the lowered main to an executor shim
    res["mcu"] = {}
    for core in cores:
        r = res["mcu"][core] = {}
        mcpu = core if core.startswith("cortex-") else f"cortex-{core}"
        try:
            tgt = tvm.target.Target({"kind": "c", "mcpu": mcpu})
            with tgt:
                low = relax.get_pipeline("default")(mod)
            ex = relax.build(low, target=tgt, relax_pipeline=None)
            srcs = [m.inspect_source() for m in ex.mod.imports if m.kind == "c"]
            if not srcs:
                raise RuntimeError("the c target produced no C module")
            d = work / core
            d.mkdir(parents=True, exist_ok=True)
            (d / "tvm_kernels.c").write_text(srcs[0])
            r["c_target"] = str(tgt.attrs.get("mcpu")) if hasattr(tgt, "attrs") else mcpu
            r["kernels_c_bytes"] = len(srcs[0])
            r["kernels_c"] = str(d / "tvm_kernels.c")
        except Exception as e:  # noqa: BLE001
            r["c_target"] = _short(e)
            continue
        try:
            src, hdr, info = _shim(low, name, srcs[0])
            (d / "tvmnet_shim.c").write_text(src)
            (d / "tvmnet.h").write_text(hdr)
            r["shim"] = str(d / "tvmnet_shim.c")
            r.update(info)
        except NotImplementedError as e:
            r["shim"] = f"unsupported: {e}"
        except Exception as e:  # noqa: BLE001
            r["shim"] = _short(e)
    import tvm_ffi  # header locations for the C build
    r0 = Path(tvm.__file__).parent
    res["include_dirs"] = [str(r0 / "include"), str(Path(tvm_ffi.__file__).parent / "include")]
    return res


# ---------------------------------------------------------------------------------------------------- parent (project venv)
def ensure_venv(venv: Path) -> tuple[Path | None, str]:
    py = venv / "bin" / "python"
    if py.exists() and subprocess.run([py, "-c", "import tvm, tflite"], capture_output=True).returncode == 0:
        return py, "present"
    if not py.exists():
        p = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if p.returncode:
            return None, f"venv creation failed: {p.stderr.strip()[-500:]}"
    p = subprocess.run([py, "-m", "pip", "install", "--quiet", "--upgrade", *PIP_PACKAGES],
                       capture_output=True, text=True)
    if p.returncode:
        return None, f"pip install {' '.join(PIP_PACKAGES)} failed: {(p.stderr or p.stdout).strip()[-1500:]}"
    return py, "installed"


def build_and_measure(name: str, core: str, w: dict, out_dir: Path) -> dict:
    import numpy as np
    from specializer.targets.cortex_m import SUPPORT_DIR
    from specializer.targets.cortex_m.sim import Simulator
    from specializer.targets.cortex_m.toolchain import ToolchainError, build_elf, compile_object

    r = w["mcu"][core]
    d = Path(r["kernels_c"]).parent
    inc = w["include_dirs"] + [str(d)]
    try:
        k_obj = compile_object(d / "tvm_kernels.c", core, d / "obj_tvm", opt="-O2", include_dirs=inc,
                               warnings=False, extra_cflags=["-std=gnu11"])
        s_obj = compile_object(d / "tvmnet_shim.c", core, d / "obj_tvm", opt="-O2", include_dirs=inc,
                               warnings=False, extra_cflags=["-std=gnu11"])
        elf = build_elf([SUPPORT_DIR / "bench_harness.c"], [d], core, out_dir / f"{name}_{core}", opt="-O2",
                        defines=['SPZ_MODEL_HEADER="tvmnet.h"', "SPZ_PREFIX=tvmnet", "SPZ_PREFIX_UPPER=TVMNET"],
                        objects=[k_obj, s_obj], name=f"tvm_{name}")
    except ToolchainError as e:
        return dict(elf=f"build failed: {str(e)[:400]}")
    ref = np.load(MODELS / f"{name}.ref.npz")
    ins = [ref[k].tobytes() for k in sorted(ref.files) if k.startswith("input_")]
    try:
        res = Simulator(elf, core=core).run(ins)
    except Exception as e:  # noqa: BLE001
        return dict(elf=str(elf), sim=f"{type(e).__name__}: {str(e)[:300]}")
    outs = [ref[k] for k in sorted(ref.files) if k.startswith("output_")]
    exact = all(o == r_.tobytes() for o, r_ in zip(res.outputs, outs))
    return dict(elf=str(elf), cycles=res.cycles, instructions=res.instructions, ram_total=res.ram_total,
                static_ram=res.static_ram, stack_peak=res.stack_peak_bytes, flash=res.flash, text=res.text,
                bench_status=res.extra.get("bench_status"), bitexact_mcu=exact,
                same_as_host=[o.hex() for o in res.outputs] == w.get("host_output_hex"),
                wall_s=round(res.wall_seconds, 1))


def _baseline(name: str, core: str):
    """(TFLM reference cycles, TFLM + CMSIS-NN cycles, TFLM + CMSIS-NN RAM) from ../shared/baselines, or None."""
    p = SHARED / "baselines" / "baselines.json"
    if not p.exists():
        return None
    r = json.loads(p.read_text()).get("results", {}).get(name, {})
    k = core.replace("cortex-", "")
    try:
        ref, cm = r["tflm_ref"][k], r["tflm_cmsisnn"][k]
        return ref["cycles"], cm["cycles"], cm["static_ram_bytes"] + cm["stack_peak_bytes"]
    except KeyError:
        return None


def _verdict_row(w: dict, cores: list[str]) -> dict:
    row = dict(model=w["model"], imp=w.get("import", "-"))
    ir = w.get("ir")
    if ir:
        row["quant"] = (f"{ir['dequantize']} dequantize / {ir['quantize']} quantize; "
                        f"{ir['float_compute_ops']}/{ir['compute_ops']} conv/matmul in float")
    row["host"] = w.get("host", "-")
    if "bitexact" in w:
        ho = w["host_outputs"]
        row["exact"] = "yes" if w["bitexact"] else "no (" + "; ".join(
            f"{h['differing']}/{h['of']} differ, max {h['max_abs']:g}" if "differing" in h else str(h)
            for h in ho) + ")"
    for core in cores:
        m = w.get("mcu", {}).get(core, {})
        if not m:
            row[core] = "-"
        elif "kernels_c" not in m:
            row[core] = f"c target: {m.get('c_target')}"
        elif "cycles" in m:
            row[core] = (f"TVM kernels + shim: {m['cycles']:,} cycles, RAM {m['ram_total']:,} B, flash "
                         f"{m['flash']:,} B, {'bit-exact' if m['bitexact_mcu'] else 'NOT bit-exact'}"
                         f"{', = TVM host output' if m.get('same_as_host') else ', differs from TVM host output'}")
            b = _baseline(w["model"], core)
            if b:
                row[core] += (f" ({m['cycles'] / b[0]:.2f}x TFLM-ref, {m['cycles'] / b[1]:.2f}x TFLM+CMSIS-NN cycles; "
                              f"{m['ram_total'] / b[2]:.1f}x CMSIS-NN RAM)")
        else:
            row[core] = f"kernels C ok; {m.get('shim') if not str(m.get('shim', '')).endswith('.c') else ''} " \
                        f"{m.get('elf', '')} {m.get('sim', '')}".strip()
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*")
    ap.add_argument("--cores", nargs="*", default=["cortex-m4"])
    ap.add_argument("--venv", default=str(REPO / ".venv-tvm"))
    ap.add_argument("--build", default=str(REPO / "build" / "tvm_peer"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--no-sim", action="store_true", help="stop after building the ELFs")
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "WORKDIR"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        w = worker(a.worker[0], Path(a.worker[1]), a.cores)
        print("TVMPEER-JSON " + json.dumps(w))
        return 0

    manifest = json.loads((MODELS / "MANIFEST.json").read_text())
    names = a.models or [m["file"][:-len(".tflite")] for m in manifest["models"]]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    build = Path(a.build)
    t0 = time.time()
    py, how = ensure_venv(Path(a.venv))
    report = dict(generated=time.strftime("%Y-%m-%d %H:%M:%S"), venv=a.venv, venv_status=how,
                  command="python benchmarks/tvm_peer.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  models=[])
    if py is None:
        print(f"apache-tvm could not be installed: {how}", file=sys.stderr)
    else:
        v = subprocess.run([py, "-c", "import tvm; print(tvm.__version__)"], capture_output=True, text=True)
        report["tvm_version"] = v.stdout.strip()
        print(f"apache-tvm {report['tvm_version']} ({how}) in {a.venv}", flush=True)
    for name in names:
        if py is None:
            report["models"].append(dict(model=name, **{"import": f"TVM not installed: {how[:200]}"}))
            continue
        t = time.time()
        p = subprocess.run([py, __file__, "--worker", name, str(build / name), "--cores", *a.cores],
                           capture_output=True, text=True)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("TVMPEER-JSON ")), None)
        if line is None:
            w = dict(model=name, **{"import": "worker crashed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:300]})
        else:
            w = json.loads(line[len("TVMPEER-JSON "):])
        for core in a.cores:
            m = w.get("mcu", {}).get(core, {})
            if str(m.get("shim", "")).endswith(".c") and not a.no_sim:
                print(f"  {name}: building and simulating on {core} ...", flush=True)
                m.update(build_and_measure(name, core, w, build / name))
        w["seconds"] = round(time.time() - t, 1)
        report["models"].append(w)
        row = _verdict_row(w, a.cores)
        print(f"{name}: import {row['imp']}; host {row.get('host', '-')}; bit-exact {row.get('exact', '-')}; "
              + "; ".join(f"{c}: {row[c]}" for c in a.cores) + f" ({w['seconds']} s)", flush=True)

    rows = [_verdict_row(w, a.cores) for w in report["models"]]
    hdr = ["model", "TFLite import", "quantized layers", "host (llvm) build+run", "bit-exact vs TFLM ref"] + \
          [f"MCU {c}" for c in a.cores]
    md = [f"# apache-tvm {report.get('tvm_version', '(not installed)')} as a peer", "",
          f"Generated {report['generated']} by `{report['command']}` ({time.time() - t0:.0f} s).", "",
          "| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r in rows:
        cells = [f"`{r['model']}`", r.get("imp", "-"), r.get("quant", "-"), r.get("host", "-"),
                 r.get("exact", "-")] + [r.get(c, "-") for c in a.cores]
        md.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    md += ["", "MCU column: TVM 0.27 has no microTVM / CRT / AOT executor and no CMSIS-NN backend; its `c` target with "
           "`mcpu=cortex-m*` emits the kernels as C. \"TVM kernels + shim\" = those kernels driven by a static executor "
           "shim generated by this script from the lowered Relax main (TVM's own memory plan), built with the "
           "project's bench harness and measured in the project's simulator. RAM = static RAM + stack peak."]
    (out / "tvm_peer.md").write_text("\n".join(md) + "\n")
    (out / "tvm_peer.json").write_text(json.dumps(report, indent=1))
    print("\n".join(md))
    print(f"wrote {out / 'tvm_peer.md'} and {out / 'tvm_peer.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
