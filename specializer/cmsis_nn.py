"""A direct CMSIS-NN build of a model: the side `specializer bench --against cmsis-nn` compares with.

How it works
1. `find_cmsis_nn(path)` locates a CMSIS-NN checkout (`Include/arm_nnfunctions.h`, `Source/`: Arm's, unmodified,
   never copied into this repository). `build_library` compiles its integer sources with the same compiler, core
   flags and optimisation level as our library into a static archive, cached by content and flags, so the link
   pulls in only the objects a model needs.
2. `map_layer(g, op)` decides, per layer, the CMSIS-NN call TFLite Micro's CMSIS-NN kernels make for it
   (`arm_convolve_wrapper_s8`, `arm_depthwise_conv_wrapper_s8`, `arm_fully_connected_s8` / `_per_channel_s8`,
   `arm_avgpool_s8`, `arm_max_pool_s8`, `arm_elementwise_add_s8` / `_mul_s8` (same shapes), `arm_softmax_s8`,
   `arm_lstm_unidirectional_s8`) and fills its parameter structs from our IR: zero points as CMSIS-NN offsets
   (input offset = -zp_in, output offset = +zp_out), per-channel multipliers/shifts from `op.requant`, clamps
   from `op.clamp`, (top, left) padding from the attributes or `fold_padding`'s explicit padding, the original
   bias (not `fold_zero_points`' folded one). Any other layer returns the reason and runs our generic kernel.
3. `build_cmsis_nn_elf` lowers the model with our generic-only pipeline (weights stay in TFLite's layouts: OHWI
   for conv, 1HWC for depthwise, [out, in] for fully connected, which is what CMSIS-NN reads), then
   a. probes the scratch sizes: a tiny contract ELF calls every layer's CMSIS-NN `*_get_buffer_size` function,
      compiled for the core, and the simulator reads the results back;
   b. plans memory with those sizes (our planner; a CMSIS-NN layer's scratch is planned like our kernels' scratch,
      live during its layer only; CMSIS-NN layers never run in place);
   c. emits the library through `emit.emit_library` with one `KernelEntry` per CMSIS-NN function (the call and
      its `static const` structs), so the per-layer profile marks, the header and the accessors are the usual
      ones, and links it with `bench_harness.c` into an ELF of the bench contract (DESIGN.md section 3).
   A CMSIS-NN call that returns an error makes `<name>_run` return the layer index + 1.
4. `flash_by_origin(map)` splits the linked flash bytes by origin: CMSIS-NN objects, weights, generated code,
   runtime (startup, harness) and the C library.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from .errors import SpecializerError, TargetError
from .ir import Graph, KernelChoice, Op
from .ops import explicit_padding
from .registry import KernelEntry

ENTRY_PREFIX = "cmsis-nn:"
LIB_NAME = "libcmsis-nn.a"


class CmsisNNError(SpecializerError):
    """CMSIS-NN cannot be found, built or probed."""


# ---- 1. the library -----------------------------------------------------------------------------------------
def find_cmsis_nn(path: Union[str, os.PathLike, None] = None) -> Path:
    """The CMSIS-NN checkout at `path`, else $CMSIS_NN_PATH; raises CmsisNNError naming what is missing."""
    p = path or os.environ.get("CMSIS_NN_PATH")
    if not p:
        raise CmsisNNError("--against cmsis-nn needs a CMSIS-NN checkout: pass --cmsis-nn PATH or set CMSIS_NN_PATH")
    root = Path(p).expanduser().resolve()
    for need in ("Include/arm_nnfunctions.h", "Source"):
        if not (root / need).exists():
            raise CmsisNNError(f"--cmsis-nn {p}: not a CMSIS-NN checkout ({need} not found)")
    return root


def integer_sources(root: Path) -> list[Path]:
    """CMSIS-NN's C sources minus the experimental float API (those need ARM_NN_ENABLE_F16/F32)."""
    srcs = sorted(p for p in (root / "Source").rglob("*.c")
                  if not re.search(r"_(f16|f32|flt)\.c$", p.name))
    stems = [p.stem for p in srcs]
    if len(set(stems)) != len(stems):
        raise CmsisNNError(f"{root}: two CMSIS-NN sources share a file name; cannot build one archive")
    return srcs


def _default_cache() -> Path:
    base = os.environ.get("SPZ_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "specializer")
    return Path(base) / "cmsis-nn"


def build_library(root: Path, core, opt: str = "-O3", cache_dir: Optional[Path] = None, jobs: int = 2) -> Path:
    """Compile CMSIS-NN (unmodified) for `core` at `opt` into a static archive; returns its path (cached under
    `cache_dir`, default $SPZ_CACHE_DIR or ~/.cache/specializer, keyed by the sources, compiler and flags)."""
    from .targets.cortex_m.toolchain import ToolchainError, ensure_toolchain

    try:
        gcc = ensure_toolchain()
    except ToolchainError as e:
        raise TargetError(str(e)) from None
    srcs = integer_sources(root)
    h = hashlib.sha256()
    version = subprocess.run([str(gcc), "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    h.update(repr((str(gcc), version, core.cflags(), opt)).encode())
    for p in srcs + sorted((root / "Include").rglob("*.h")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    cache = Path(cache_dir) if cache_dir is not None else _default_cache()
    final = cache / f"{core.name}{opt}-{h.hexdigest()[:16]}"
    lib = final / LIB_NAME
    if lib.exists():
        return lib
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{final.name}.lock", "w") as lock:  # one build at a time; the others then reuse it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not lib.exists():
            _build_archive(srcs, root, core, opt, cache, final, jobs)
    if not lib.exists():
        raise CmsisNNError(f"CMSIS-NN archive {lib} was not created")
    return lib


def _build_archive(srcs, root: Path, core, opt: str, cache: Path, final: Path, jobs: int) -> None:
    from .targets.cortex_m.toolchain import ToolchainError, compile_object, ensure_toolchain

    gcc = ensure_toolchain()
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        def one(src):
            return compile_object(src, core, tmp / "obj", opt=opt, include_dirs=[root / "Include"], warnings=False)

        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
                objs = list(ex.map(one, srcs))
        except ToolchainError as e:
            raise CmsisNNError(f"compiling CMSIS-NN ({root}) for {core.name} failed: {e}") from None
        ar = Path(str(gcc)[:-len("gcc")] + "ar") if str(gcc).endswith("gcc") else Path("arm-none-eabi-ar")
        proc = subprocess.run([str(ar), "rcs", str(tmp / LIB_NAME), *map(str, objs)], capture_output=True, text=True)
        if proc.returncode:
            raise CmsisNNError(f"archiving CMSIS-NN failed: {proc.stderr.strip()}")
        shutil.rmtree(tmp / "obj")
        os.replace(tmp, final)  # atomic: a reader sees no archive or the whole one
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- 2. the layers ------------------------------------------------------------------------------------------
@dataclass
class CmsisLayer:
    """One layer as a CMSIS-NN call.

    `decls`: file-scope `static const` structs (dims, params) that depend neither on weights nor on the memory
    plan; `size_expr`: C expression of the scratch bytes, through CMSIS-NN's own `*_get_buffer_size`;
    `emit(ctx, scratch)`: registers weights, adds weight-dependent structs and writes the call, given the C
    expression of the scratch pointer ("NULL" when the layer needs none)."""

    index: int
    kind: str
    function: str
    decls: list = field(default_factory=list)  # (ctype, symbol, initializer)
    size_expr: str = "0"
    emit: Callable = None

    def decl_text(self) -> str:
        return "\n".join(f"static const {t} {s} = {init};" for t, s, init in self.decls)


def _tile(w: int, h: int) -> str:
    return f"{{.w = {w}, .h = {h}}}"


def _dims(n: int, h: int, w: int, c: int) -> str:
    return f"{{.n = {n}, .h = {h}, .w = {w}, .c = {c}}}"


def _clamp(op: Op) -> tuple[int, int]:
    return op.clamp if op.clamp is not None else (-128, 127)


def _act(op: Op) -> str:
    lo, hi = _clamp(op)
    return f"{{.min = {lo}, .max = {hi}}}"


def _checked_call(ctx, call: str, setup: tuple = ()) -> None:
    """`call` (a CMSIS-NN function returning arm_cmsis_nn_status); a failure returns layer index + 1 from run."""
    lines = [f"if ({call} != ARM_CMSIS_NN_SUCCESS) {{", f"    return {ctx.op.index + 1};", "}"]
    if setup:
        lines = ["{"] + ["    " + ln for ln in (*setup, *lines)] + ["}"]
    ctx.call("\n".join(lines))


def _per_channel(rq, n: int) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(rq.multiplier, dtype=np.int32)
    s = np.asarray(rq.shift, dtype=np.int32)
    if m.size == 1:  # per-tensor: TFLM fills the per-channel arrays with the one value
        m, s = np.full(n, m[0], dtype=np.int32), np.full(n, s[0], dtype=np.int32)
    return m, s


def _per_channel_params(ctx, op: Op, n: int) -> str:
    """Emit the per-channel multipliers and shifts of `op` (`n` channels) as a static
    cmsis_nn_per_channel_quant_params; returns its name."""
    mult, shift = _per_channel(op.requant, n)
    qm = ctx.weights(mult, "int32_t", hint=f"l{op.index}_mult")
    qs = ctx.weights(shift, "int32_t", hint=f"l{op.index}_shift")
    q = ctx.sym("quant")
    ctx.static(f"static const cmsis_nn_per_channel_quant_params {q} = {{(int32_t *){qm}, (int32_t *){qs}}};")
    return q


def _int8(g: Graph, *tids) -> bool:
    return all(g.t(t).dtype == "int8" and g.t(t).quant is not None and not g.t(t).quant.per_channel for t in tids)


def _conv_like(g: Graph, op: Op, sym: Callable[[str], str]):
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if not _int8(g, x.id, y.id) or w.dtype != "int8" or len(x.shape) != 4 or len(y.shape) != 4:
        return "CMSIS-NN's int8 convolutions need int8 NHWC input and output (per-tensor) and int8 weights"
    if op.requant is None or w.quant is None or any(w.quant.zero_point):
        return "needs symmetric int8 weights and requantization constants"
    b = op.input(2)
    if b is not None and g.t(b).dtype != "int32":
        return "needs an int32 bias"
    a = op.attrs
    top, _, left, _ = explicit_padding(a, x.shape[1:3], y.shape[1:3], (w.shape[1], w.shape[2]))
    n, ci, co = x.shape[0], x.shape[3], y.shape[3]
    offsets = f".input_offset = {-x.quant.zp}, .output_offset = {y.quant.zp}, "
    geometry = (f".stride = {_tile(a.stride_w, a.stride_h)}, .padding = {_tile(left, top)}, "
                f".dilation = {_tile(a.dilation_w, a.dilation_h)}, .activation = {_act(op)}")
    if depthwise:
        if co % ci:
            return f"output channels {co} are not a multiple of input channels {ci}"
        fn, ptype, p = "arm_depthwise_conv_wrapper_s8", "cmsis_nn_dw_conv_params", sym("dw")
        init = "{" + offsets + f".ch_mult = {co // ci}, " + geometry + "}"
        fdims = _dims(1, w.shape[1], w.shape[2], co)
    else:
        fn, ptype, p = "arm_convolve_wrapper_s8", "cmsis_nn_conv_params", sym("conv")
        init = "{" + offsets + geometry + "}"
        fdims = _dims(co, w.shape[1], w.shape[2], w.shape[3])
    d_in, d_f, d_b, d_out = sym("in"), sym("filter"), sym("bias"), sym("out")
    decls = [(ptype, p, init), ("cmsis_nn_dims", d_in, _dims(n, x.shape[1], x.shape[2], ci)),
             ("cmsis_nn_dims", d_f, fdims), ("cmsis_nn_dims", d_b, _dims(1, 1, 1, co)),
             ("cmsis_nn_dims", d_out, _dims(n, y.shape[1], y.shape[2], co))]
    size = f"{fn}_get_buffer_size(&{p}, &{d_in}, &{d_f}, &{d_out})"

    def emit(ctx, scratch):
        q = _per_channel_params(ctx, op, co)
        bias = ctx.ptr(b) if b is not None else "NULL"
        _checked_call(ctx, f"{fn}(&ctx, &{p}, &{q}, &{d_in}, {ctx.ptr(x.id)}, &{d_f}, {ctx.ptr(w.id)}, "
                           f"&{d_b}, {bias}, &{d_out}, {ctx.ptr(y.id)})",
                      setup=(f"const cmsis_nn_context ctx = {{{scratch}, 0}};",))

    return CmsisLayer(op.index, op.kind, fn, decls, size, emit)


def _fully_connected(g: Graph, op: Op, sym):
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if not _int8(g, x.id, y.id) or w.dtype != "int8" or len(w.shape) != 2:
        return "CMSIS-NN's fully connected needs int8 input/output and 2-D int8 weights"
    if op.requant is None or w.quant is None or any(w.quant.zero_point):
        return "needs symmetric int8 weights and requantization constants"
    b = op.input(2)
    if b is not None and g.t(b).dtype != "int32":
        return "needs an int32 bias"
    depth, co = w.shape[1], w.shape[0]
    batches = x.size // depth
    per_channel = len(op.requant.multiplier) > 1
    fn = "arm_fully_connected_per_channel_s8" if per_channel else "arm_fully_connected_s8"
    p, d_in, d_f, d_b, d_out = sym("fc"), sym("in"), sym("filter"), sym("bias"), sym("out")
    decls = [("cmsis_nn_fc_params", p, f"{{.input_offset = {-x.quant.zp}, .filter_offset = 0, "
                                       f".output_offset = {y.quant.zp}, .activation = {_act(op)}}}"),
             ("cmsis_nn_dims", d_in, _dims(batches, 1, 1, depth)), ("cmsis_nn_dims", d_f, _dims(depth, 1, 1, co)),
             ("cmsis_nn_dims", d_b, _dims(1, 1, 1, co)), ("cmsis_nn_dims", d_out, _dims(batches, 1, 1, co))]
    size = f"arm_fully_connected_s8_get_buffer_size(&{d_f})"

    def emit(ctx, scratch):
        if per_channel:
            q = _per_channel_params(ctx, op, co)
        else:
            q = ctx.sym("quant")
            ctx.static(f"static const cmsis_nn_per_tensor_quant_params {q} = "
                       f"{{{op.requant.multiplier[0]}, {op.requant.shift[0]}}};")
        bias = ctx.ptr(b) if b is not None else "NULL"
        _checked_call(ctx, f"{fn}(&ctx, &{p}, &{q}, &{d_in}, {ctx.ptr(x.id)}, &{d_f}, {ctx.ptr(w.id)}, "
                           f"&{d_b}, {bias}, &{d_out}, {ctx.ptr(y.id)})",
                      setup=(f"const cmsis_nn_context ctx = {{{scratch}, 0}};",))

    return CmsisLayer(op.index, op.kind, fn, decls, size, emit)


def _pool(g: Graph, op: Op, sym):
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if not _int8(g, x.id, y.id) or len(x.shape) != 4 or len(y.shape) != 4 or x.shape[3] != y.shape[3]:
        return "CMSIS-NN's pooling needs int8 NHWC input and output with equal channels"
    a = op.attrs
    top, _, left, _ = explicit_padding(a, x.shape[1:3], y.shape[1:3], (a.filter_h, a.filter_w))
    avg = op.kind == "AVERAGE_POOL_2D"
    fn = "arm_avgpool_s8" if avg else "arm_max_pool_s8"
    n, c = x.shape[0], x.shape[3]
    p, d_in, d_f, d_out = sym("pool"), sym("in"), sym("filter"), sym("out")
    decls = [("cmsis_nn_pool_params", p, f"{{.stride = {_tile(a.stride_w, a.stride_h)}, "
                                         f".padding = {_tile(left, top)}, .activation = {_act(op)}}}"),
             ("cmsis_nn_dims", d_in, _dims(n, x.shape[1], x.shape[2], c)),
             ("cmsis_nn_dims", d_f, _dims(1, a.filter_h, a.filter_w, 1)),
             ("cmsis_nn_dims", d_out, _dims(n, y.shape[1], y.shape[2], c))]
    # TFLM asks arm_avgpool_s8_get_buffer_size (output width, channels); max pooling needs no buffer
    size = f"arm_avgpool_s8_get_buffer_size({d_out}.w, {d_out}.c)" if avg else "0"

    def emit(ctx, scratch):
        _checked_call(ctx, f"{fn}(&ctx, &{p}, &{d_in}, {ctx.ptr(x.id)}, &{d_f}, &{d_out}, {ctx.ptr(y.id)})",
                      setup=(f"const cmsis_nn_context ctx = {{{scratch}, 0}};",))

    return CmsisLayer(op.index, op.kind, fn, decls, size, emit)


def _binary(g: Graph, op: Op, sym):
    a, b, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    if not _int8(g, a.id, b.id, y.id):
        return "CMSIS-NN's elementwise kernels need int8 per-tensor inputs and output"
    if not (a.size == b.size == y.size):
        return "broadcasting: TFLM runs its reference kernel, CMSIS-NN has no broadcasting add/mul"
    if op.requant is None:
        return "missing requantization constants"
    lo, hi = _clamp(op)
    rq = op.requant
    if op.kind == "ADD":
        fn = "arm_elementwise_add_s8"
        args = (f"{-a.quant.zp}, {rq.in1_multiplier}, {rq.in1_shift}, {-b.quant.zp}, {rq.in2_multiplier}, "
                f"{rq.in2_shift}, {rq.left_shift}, OUT, {y.quant.zp}, {rq.out_multiplier}, {rq.out_shift}, "
                f"{lo}, {hi}, {y.size}")
    else:
        fn = "arm_elementwise_mul_s8"
        args = (f"{-a.quant.zp}, {-b.quant.zp}, OUT, {y.quant.zp}, {rq.multiplier[0]}, {rq.shift[0]}, "
                f"{lo}, {hi}, {y.size}")

    def emit(ctx, scratch):
        _checked_call(ctx, f"{fn}({ctx.ptr(a.id)}, {ctx.ptr(b.id)}, " + args.replace("OUT", ctx.ptr(y.id)) + ")")

    return CmsisLayer(op.index, op.kind, fn, [], "0", emit)


def _softmax(g: Graph, op: Op, sym):
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if not _int8(g, x.id, y.id) or op.requant is None or not x.shape:
        return "CMSIS-NN's arm_softmax_s8 needs int8 input and output and TFLM's softmax constants"
    rq = op.requant
    depth = x.shape[-1]
    fn = "arm_softmax_s8"

    def emit(ctx, scratch):
        ctx.call(f"{fn}({ctx.ptr(x.id)}, {x.size // depth}, {depth}, {rq.input_multiplier}, {rq.input_left_shift}, "
                 f"{rq.diff_min}, {ctx.ptr(y.id)});")

    return CmsisLayer(op.index, op.kind, fn, [], "0", emit)


def _lstm(g: Graph, op: Op, sym):
    from .kernels import lstm

    why = lstm._reject(g, op, None)  # TFLM's integer LSTM restrictions are ours
    if why:
        return why
    batches, steps, n_input, n_cell = lstm._sizes(g, op)
    x, h, c = g.t(op.inputs[0]), g.t(op.input(18)), g.t(op.input(19))
    rq = op.requant
    fn = "arm_lstm_unidirectional_s8"
    temp = batches * n_cell * 2  # two int16 gate buffers (TFLM's third one is the cell state: ours in the arena)

    def emit(ctx, scratch):
        gates = []
        for k, name in enumerate(("input", "forget", "cell", "output")):
            w_in = g.t(op.input(1 + k)).data.astype(np.int64)
            w_rec = g.t(op.input(5 + k)).data.astype(np.int64)
            bias = g.t(op.input(12 + k)).data.astype(np.int64).reshape(-1)
            eff_in = bias - x.quant.zp * w_in.sum(axis=1)  # arm_vector_sum_s8 with lhs offset -zp_x, plus bias
            eff_rec = -h.quant.zp * w_rec.sum(axis=1)  # lhs offset -zp_h, no bias
            if max(np.abs(eff_in).max(initial=0), np.abs(eff_rec).max(initial=0)) > 2 ** 31 - 1:
                raise TargetError(f"op #{op.index} LSTM: effective bias exceeds int32")
            s_in = ctx.weights(eff_in.astype(np.int32), "int32_t", hint=f"l{op.index}_{name}_in_bias")
            s_rec = ctx.weights(eff_rec.astype(np.int32), "int32_t", hint=f"l{op.index}_{name}_rec_bias")
            act = "ARM_TANH" if name == "cell" else "ARM_SIGMOID"
            gates.append(f"{{{rq.input_mult[k]}, {rq.input_shift[k]}, {ctx.ptr(op.input(1 + k))}, {s_in}, "
                         f"{rq.recurrent_mult[k]}, {rq.recurrent_shift[k]}, {ctx.ptr(op.input(5 + k))}, {s_rec}, "
                         f"{ctx.ptr(op.input(12 + k))}, {act}}}")
        p = ctx.sym("lstm")
        ctx.static(f"static const cmsis_nn_lstm_params {p} = {{{int(op.attrs.time_major)}, {batches}, {steps}, "
                   f"{n_input}, {n_cell}, {-x.quant.zp}, {rq.forget_cell[0]}, {rq.forget_cell[1]}, "
                   f"{rq.input_cell[0]}, {rq.input_cell[1]}, {rq.cell_clip}, {rq.cell_scale_power}, "
                   f"{rq.hidden[0]}, {rq.hidden[1]}, {h.quant.zp},\n    "
                   # cmsis_nn_lstm_params orders the gates forget, input, cell, output
                   f"{gates[1]},\n    {gates[0]},\n    {gates[2]},\n    {gates[3]}}};")
        _checked_call(ctx, f"{fn}({ctx.ptr(x.id)}, {ctx.ptr(op.outputs[0])}, &{p}, &buf)",
                      setup=("/* hidden_state NULL: CMSIS-NN clears the cell state, TFLM's fresh-state semantics */",
                             f"cmsis_nn_lstm_context buf = {{(int16_t *){scratch}, (int16_t *){scratch} + "
                             f"{temp // 2}, {ctx.ptr(c.id)}, NULL}};"))

    return CmsisLayer(op.index, op.kind, fn, [], str(2 * temp), emit)


MAPPERS: dict[str, Callable] = {
    "CONV_2D": _conv_like,
    "DEPTHWISE_CONV_2D": _conv_like,
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _binary,
    "MUL": _binary,
    "SOFTMAX": _softmax,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm,
}


def map_layer(g: Graph, op: Op, prefix: str) -> Union[CmsisLayer, str]:
    """The CMSIS-NN call for `op`, or a one-line reason why it runs our generic kernel instead."""
    fn = MAPPERS.get(op.kind)
    if fn is None:
        return "no CMSIS-NN kernel in TFLM's CMSIS-NN build (TFLM runs its reference kernel)"
    return fn(g, op, lambda s: f"{prefix}_l{op.index}_{s}")


# ---- 3. the build -------------------------------------------------------------------------------------------
@dataclass
class CmsisBuild:
    """What `build_cmsis_nn_elf` produced."""

    elf: Path
    graph: Graph  # planned; op.kernel.entry is "cmsis-nn:<function>" for CMSIS-NN layers
    layers: dict  # op index -> CmsisLayer
    fallback: dict  # op index -> reason it runs our generic kernel
    scratch: dict  # op index -> CMSIS-NN scratch bytes (from *_get_buffer_size on the core)
    activation_arena: int  # the same plan without CMSIS-NN scratch
    library: Path
    root: Path
    lib_dir: Path
    map_file: Path

    @property
    def arena_size(self) -> int:
        return self.graph.memory_plan.arena_size


def _probe_source(prefix: str, layers: list[CmsisLayer]) -> str:
    L = ["/* Generated by specializer.cmsis_nn: CMSIS-NN scratch sizes of each layer, on this core. */",
         "#include <stdint.h>", '#include "arm_nnfunctions.h"', "",
         "void spz_cmsis_probe_sizes(int32_t *sizes);", "extern const uint32_t spz_cmsis_probe_count;",
         f"const uint32_t spz_cmsis_probe_count = {len(layers)}u;", ""]
    for lay in layers:
        if lay.decls:
            L.append(lay.decl_text())
    L += ["", "void spz_cmsis_probe_sizes(int32_t *sizes)", "{"]
    for lay in layers:
        for _, s, _ in lay.decls:
            L.append(f"    (void)&{s};")
    for k, lay in enumerate(layers):
        L.append(f"    sizes[{k}] = {lay.size_expr}; /* #{lay.index} {lay.function} */")
    L += ["}", ""]
    return "\n".join(L)


def probe_scratch(layers: list[CmsisLayer], core, build_dir: Path, library: Path, root: Path, opt: str,
                  prefix: str) -> list[int]:
    """Run every layer's CMSIS-NN *_get_buffer_size compiled for `core` in the simulator; bytes per layer."""
    from .targets.cortex_m import SUPPORT_DIR
    from .targets.cortex_m.sim import SimError, Simulator
    from .targets.cortex_m.toolchain import ToolchainError, build_elf

    if not layers:
        return []
    if len(layers) > 4096:  # SPZ_PROBE_MAX of cmsis_nn_probe.c
        raise CmsisNNError(f"{len(layers)} CMSIS-NN layers: the size probe takes at most 4096")
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{prefix}_cmsis_probe_sizes.c"
    src.write_text(_probe_source(prefix, layers))
    try:
        elf = build_elf([src, SUPPORT_DIR / "cmsis_nn_probe.c"], [], core, build_dir, opt=opt,
                        extra_cflags=["-isystem", str(root / "Include")], objects=[library], name="probe")
        r = Simulator(elf, core=core.name).run(b"")
    except (ToolchainError, SimError) as e:
        hint = (f" ({core.name} code uses MVE/Helium, which the simulator cannot execute)"
                if "mve" in core.features and isinstance(e, SimError) else "")
        raise CmsisNNError(f"CMSIS-NN build on {core.name}, before the first layer (probing the scratch sizes): "
                           f"{str(e).splitlines()[0]}{hint}") from None
    sizes = np.frombuffer(r.outputs[0], dtype="<i4")
    if sizes.size != len(layers):
        raise CmsisNNError(f"CMSIS-NN size probe returned {sizes.size} values for {len(layers)} layers")
    return [int(v) for v in sizes]


def _entries(layers: dict) -> dict:
    """One KernelEntry per CMSIS-NN function; each dispatches to its layer's CmsisLayer.emit."""
    state = {"included": False}

    def emit(ctx):
        lay = layers[ctx.op.index]
        if not state["included"]:
            ctx.static('#include "arm_nnfunctions.h" /* CMSIS-NN, from the --cmsis-nn checkout */')
            state["included"] = True
        if lay.decls:
            ctx.static(lay.decl_text())
        scratch = ctx.scratch("void") if ctx.op.kernel.scratch_bytes else "NULL"
        lay.emit(ctx, scratch)

    out = {}
    for lay in layers.values():
        name = ENTRY_PREFIX + lay.function
        out[name] = KernelEntry(name=name, ops=(lay.kind,), template=None, emit=emit, generic=False)
    return out


def build_cmsis_nn_elf(model, core, build_dir: Union[str, os.PathLike], cmsis_nn: Union[str, os.PathLike, None] = None,
                       opt: str = "-O3", name: str = "net", profile: bool = True,
                       cache_dir: Optional[Path] = None) -> CmsisBuild:
    """Build the model as direct CMSIS-NN calls (see the module docstring) into a bench-contract ELF."""
    from . import registry
    from .api import check_name, lower
    from .bench import locate_c_error
    from .emit import emit_library
    from .passes.concat_views import without_views
    from .passes.liveness import kernel_inplace_positions
    from .passes.plan_memory import plan_memory
    from .targets.cortex_m import SUPPORT_DIR
    from .targets.cortex_m.cores import get_core
    from .targets.cortex_m.toolchain import ToolchainError, build_elf

    check_name(name)
    core = get_core(core)
    root = find_cmsis_nn(cmsis_nn)
    build_dir = Path(build_dir)
    g, _ = lower(model, core.name, generic_only=True, name=name, prune=False)
    g = without_views(g)  # TFLM's CONCATENATION copies every input
    layers, fallback = {}, {}
    for op in g.ops:
        if op.alias_of is not None:
            continue
        m = map_layer(g, op, name)
        if isinstance(m, CmsisLayer):
            layers[op.index] = m
        else:
            fallback[op.index] = m
    library = build_library(root, core, opt, cache_dir)
    order = list(layers.values())
    sizes = dict(zip(layers, probe_scratch(order, core, build_dir / "probe", library, root, opt, name)))

    def with_scratch(use_sizes: bool) -> Graph:
        ops = [dataclasses.replace(op, kernel=KernelChoice(ENTRY_PREFIX + layers[op.index].function,
                                                           sizes[op.index] if use_sizes else 0))
               if op.index in layers else op for op in g.ops]
        return plan_memory(g.with_ops(ops), inplace_positions=lambda op: () if op.index in layers
                           else kernel_inplace_positions(op))

    planned = with_scratch(True)
    activations = with_scratch(False).memory_plan.arena_size
    entries = _entries(layers)
    lib = emit_library(planned, name, core,
                       entry_lookup=lambda n: entries[n] if n in entries else registry.entry_by_name(n))
    lib_dir = build_dir / "lib"
    if lib_dir.exists():
        shutil.rmtree(lib_dir)
    lib_dir.mkdir(parents=True)
    for fname, text in lib.files.items():
        (lib_dir / fname).write_text(text)
    srcs = sorted(lib_dir.glob("*.c")) + [SUPPORT_DIR / "bench_harness.c"]
    defines = [f'SPZ_MODEL_HEADER="{name}.h"', f"SPZ_PREFIX={name}", f"SPZ_PREFIX_UPPER={name.upper()}"]
    if profile:
        defines.append("SPZ_PROFILE")
    try:
        elf = build_elf(srcs, [lib_dir, SUPPORT_DIR], core, build_dir / "elf", opt=opt, defines=defines, name=name,
                        extra_cflags=["-isystem", str(root / "Include")], objects=[library])
    except ToolchainError as e:
        raise TargetError(f"cross-compiling the CMSIS-NN build of {name} for {core.name} failed"
                          f"{locate_c_error(lib_dir, str(e))}: {e}") from None
    return CmsisBuild(elf=elf, graph=planned, layers=layers, fallback=fallback, scratch=sizes,
                      activation_arena=activations, library=library, root=root, lib_dir=lib_dir,
                      map_file=build_dir / "elf" / f"{name}.map")


# ---- 4. flash by origin -------------------------------------------------------------------------------------
_IN_SECTION = re.compile(r"^ (\.\S+)?\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$")


def _origin(path: str, prefix: str) -> str:
    if f"{LIB_NAME}(" in path:
        return "cmsis-nn"
    base = Path(path.split("(")[0]).name
    if base == f"{prefix}_weights.o":
        return "weights"
    if base in ("startup.o", "bench_harness.o"):
        return "runtime"
    if base.endswith(".o") and "(" not in path:
        return "generated"
    return "libc"


def flash_by_origin(map_file: Union[str, os.PathLike], prefix: str = "net") -> dict:
    """Flash bytes of a linked ELF by origin, from its GNU ld map: {"cmsis-nn", "weights", "generated",
    "runtime", "libc": bytes, "cmsis-nn objects": {member: bytes}} (.data counts: its image is in flash)."""
    text = Path(map_file).read_text()
    start = text.find("Linker script and memory map")
    out = {"cmsis-nn": 0, "weights": 0, "generated": 0, "runtime": 0, "libc": 0}
    members: dict[str, int] = {}
    out_sec = None
    for line in text[start:].splitlines():
        if line.startswith("."):
            out_sec = line.split()[0]
            continue
        if re.match(r"^ \.\S+$", line):  # an input section name alone on its line: its sizes follow
            continue
        m = _IN_SECTION.match(line)
        if not m:
            continue
        addr, size, path = int(m.group(2), 16), int(m.group(3), 16), m.group(4).strip()
        if size == 0 or path.startswith("linker stubs") or out_sec in (".bss", ".stack", ".heap", ".noinit"):
            continue
        if not (0x08000000 <= addr < 0x08400000 or out_sec == ".data"):
            continue
        origin = _origin(path, prefix)
        out[origin] += size
        if origin == "cmsis-nn":
            member = path[path.index(f"{LIB_NAME}(") + len(LIB_NAME) + 1:-1]
            members[member] = members.get(member, 0) + size
    out["cmsis-nn objects"] = dict(sorted(members.items(), key=lambda kv: -kv[1]))
    return out
