"""`specializer bench --against cmsis-nn`: the direct CMSIS-NN build and the per-layer comparison.

- The comparison itself is validated: the CMSIS-NN-direct build of a shared model, at -O3 for the Cortex-M4 (the
  flags of the baselines), lands within 5% of TFLM + CMSIS-NN in ../shared/baselines (same kernels; TFLM adds its
  interpreter) and is bit-exact with the model's reference output (KWS by default, every model with --runslow).
  The same M4 ELF costed with the M7 model lands within 5% of the baselines' M7 figure (their M4 ELFs costed with
  the reference's M7 model): the check of our M7 model on CMSIS-NN code, which the conformance pack does not cover.
- Randomized writer-built chains (conv with SAME/VALID/folded PAD padding, strides, dilations, groups, depthwise
  multipliers, batches, pools, ADD/MUL, broadcasting ADD and CONCATENATION on our kernels, FC, SOFTMAX): every
  layer's CMSIS-NN output equals ours and the final output equals tflite-micro's.
- The CLI: table, JSON (`against`, `speedup_vs_cmsis_nn`) and PNG; errors are one line with exit status 2 and name
  the layer (a fault injected into one CMSIS-NN layer; MVE code on cortex-m55 that the simulator cannot run; no
  CMSIS-NN checkout).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from specializer import ops
from specializer.tflite_writer import ModelBuilder
from spz_testutil import REPO, SHARED, model_names, model_path, reference, requires_models

CMSIS_NN = SHARED / "third_party" / "CMSIS-NN"
BASELINES = SHARED / "baselines" / "baselines.json"
requires_cmsis_nn = pytest.mark.skipif(not (CMSIS_NN / "Include" / "arm_nnfunctions.h").exists(),
                                       reason=f"CMSIS-NN not found at {CMSIS_NN}")
DEFAULT_MODELS = ("mlperf_kws_dscnn",)


@pytest.fixture(scope="session")
def cmsis_cache():
    """The compiled CMSIS-NN archives, kept between runs in the checkout's (ignored) build/ folder, not in the
    user's ~/.cache; xdist workers share it (build_library locks, so it is compiled once per core and level)."""
    p = REPO / "build" / "cmsis-nn-cache"
    p.mkdir(parents=True, exist_ok=True)
    return p


def _baseline(name: str, core: str = "m4"):
    """TFLM + CMSIS-NN at -O3 on `core` ("m4", or "m7": the baselines' M4-built ELF costed with the M7 model)."""
    if not BASELINES.exists():
        return None
    res = json.loads(BASELINES.read_text())["results"].get(name)
    return res["tflm_cmsisnn"][core] if res else None


@pytest.fixture(scope="session")
def direct_m4_elf(build_dir, cmsis_cache):
    """direct_m4_elf(name) -> the CMSIS-NN-direct build of a shared model for the Cortex-M4 at -O3 (the baselines'
    flags), built once per session (per xdist worker)."""
    from specializer.cmsis_nn import build_cmsis_nn_elf
    built = {}

    def get(name):
        if name not in built:
            built[name] = build_cmsis_nn_elf(model_path(name), "cortex-m4", build_dir / f"direct_{name}",
                                             cmsis_nn=CMSIS_NN, opt="-O3", cache_dir=cmsis_cache)
        return built[name]

    return get


MODEL_PARAMS = [pytest.param(n, marks=() if n in DEFAULT_MODELS else pytest.mark.slow)
                for n in (model_names() or list(DEFAULT_MODELS))]


@requires_models
@requires_cmsis_nn
@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_direct_build_matches_tflm_cmsis_nn_baseline(name, direct_m4_elf):
    from specializer.targets.cortex_m.sim import Simulator

    base = _baseline(name)
    if base is None:
        pytest.skip(f"no TFLM + CMSIS-NN baseline for {name}")
    base = base["cycles"]
    b = direct_m4_elf(name)
    ins, outs = reference(name)
    r = Simulator(b.elf, core="cortex-m4").run([np.ascontiguousarray(x).tobytes() for x in ins])
    for got, want in zip(r.outputs, outs):
        assert got == np.ascontiguousarray(want).tobytes(), f"{name}: CMSIS-NN build differs from the reference"
    ratio = r.cycles / base
    assert abs(ratio - 1) < 0.05, f"{name}: CMSIS-NN direct {r.cycles:,} cycles vs TFLM + CMSIS-NN {base:,} ({ratio:.3f})"
    assert b.layers, "no layer went to CMSIS-NN"


@requires_models
@requires_cmsis_nn
@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_direct_m4_elf_on_m7_matches_tflm_cmsis_nn_baseline(name, direct_m4_elf):
    """The M7 model against the reference's on CMSIS-NN code (which the conformance pack does not cover): the
    baselines' M7 figures are their M4-built ELFs costed with the M7 model, so the M4-built direct ELF costed with
    ours must land within 5% (same kernels; TFLM adds its interpreter).  Measured: 0.99-1.00 on eight models, 0.955
    on mlperf_ad_fc_autoencoder (its one vec_mat_mult loop costs 2 cycles/iteration less than the reference's,
    cause not found).  For the default model the per-class split must agree too (within 5%): cycles_by_class
    shares a pair's cycles between its two instructions as the reference does."""
    from specializer.targets.cortex_m.sim import Simulator

    base = _baseline(name, "m7")
    if base is None:
        pytest.skip(f"no TFLM + CMSIS-NN M7 baseline for {name}")
    ins, _ = reference(name)
    r = Simulator(direct_m4_elf(name).elf, core="cortex-m7").run([np.ascontiguousarray(x).tobytes() for x in ins])
    ratio = r.cycles / base["cycles"]
    assert abs(ratio - 1) < 0.05, \
        f"{name}: M4 ELF on M7 {r.cycles:,} cycles vs TFLM + CMSIS-NN on M7 {base['cycles']:,} ({ratio:.3f})"
    if name in DEFAULT_MODELS:
        for cls in ("alu", "mul", "load", "store", "branch"):
            got, want = r.cycles_by_class.get(cls, 0), base["cycles_by_class"][cls]
            assert abs(got / want - 1) < 0.05, f"{name} {cls}: {got:,} cycles vs {want:,} ({got / want:.3f})"


# ---- randomized chains built with the project's writer --------------------------------------------------------
def _zp(rng):
    return int(rng.choice([-128, 127, 0])) if rng.random() < 0.3 else int(rng.integers(-128, 128))


class _Chain:
    """A single-input chain of layers with plausible quantization (outputs neither constant nor saturated)."""

    def __init__(self, rng, shape):
        self.rng, self.mb = rng, ModelBuilder()
        self.s, self.zp = float(0.05 * 10 ** rng.uniform(-1, 1)), _zp(rng)
        self.x = self.mb.input("x", shape, scale=self.s, zero_point=self.zp)
        self.shape = tuple(shape)
        self.n = 0

    def _tensor(self, shape, scale, zp):
        self.n += 1
        return self.mb.tensor(f"t{self.n}", shape, scale=scale, zero_point=zp)

    def _act_quant(self, act, acc_scale):
        if act == "RELU6":
            return 6 / 255, -128
        return acc_scale, (-128 if act == "RELU" else _zp(self.rng))

    def conv(self, k=(3, 3), stride=(1, 1), dil=(1, 1), padding="SAME", cout=None, groups=1, depthwise=False,
             mult=1, pads=None, src=None, keep=True):
        rng, mb = self.rng, self.mb
        x, shape, s_in = (self.x, self.shape, self.s) if src is None else src[:3]
        n, h, w, c = shape
        if pads is not None:  # PAD with the input zero point in front: fold_padding makes it explicit padding
            pt = mb.const(f"pads{self.n}", np.asarray([[0, 0], pads[0], pads[1], [0, 0]], dtype=np.int32))
            zp_in = self.zp if src is None else src[3]
            shape = (n, h + sum(pads[0]), w + sum(pads[1]), c)
            p = self._tensor(shape, s_in, zp_in)
            mb.op("PAD", [x, pt], [p])
            x, (n, h, w, c) = p, shape
        cout = c * mult if depthwise else (cout or int(rng.integers(2, 9)) * groups)
        wshape = (1, k[0], k[1], cout) if depthwise else (cout, k[0], k[1], c // groups)
        taps = k[0] * k[1] * (1 if depthwise else c // groups)
        per_channel = rng.random() < 0.7
        spread = rng.uniform(0, 1.5, cout) if per_channel else np.zeros(1)
        ws = (10 ** (rng.uniform(-3, -2) + spread)).astype(np.float32)
        wq = rng.integers(-127, 128, size=wshape).astype(np.int8)
        wt = mb.const(f"w{self.n}", wq, scale=ws, axis=3 if depthwise else 0)
        bias_s = (s_in * np.broadcast_to(ws, (cout,)).astype(np.float64)).astype(np.float32)
        b = mb.const(f"b{self.n}", (rng.uniform(-50, 50, cout) * np.sqrt(taps)).astype(np.int32), scale=bias_s)
        act = str(rng.choice(["NONE", "RELU", "RELU6"]))
        acc = float(s_in * np.median(ws) * 70 * 73 * np.sqrt(taps) / 40)  # ~40 output steps per std
        s_out, zp_out = self._act_quant(act, acc)
        oh = ops.conv_output_size(h, k[0], stride[0], dil[0], padding)
        ow = ops.conv_output_size(w, k[1], stride[1], dil[1], padding)
        y = self._tensor((n, oh, ow, cout), s_out, zp_out)
        kw = dict(padding=padding, stride_h=stride[0], stride_w=stride[1], dilation_h=dil[0], dilation_w=dil[1],
                  activation=act)
        if depthwise:
            mb.op("DEPTHWISE_CONV_2D", [x, wt, b], [y], ops.DepthwiseConv2D(depth_multiplier=mult, **kw))
        else:
            mb.op("CONV_2D", [x, wt, b], [y], ops.Conv2D(**kw))
        out = (y, (n, oh, ow, cout), s_out, zp_out)
        if keep:
            self.x, self.shape, self.s, self.zp = out
        return out

    def pool(self, kind, k, stride, padding):
        n, h, w, c = self.shape
        oh = ops.conv_output_size(h, k[0], stride[0], 1, padding)
        ow = ops.conv_output_size(w, k[1], stride[1], 1, padding)
        act = str(self.rng.choice(["NONE", "RELU"]))
        y = self._tensor((n, oh, ow, c), self.s, self.zp)
        self.mb.op(kind, [self.x], [y], ops.Pool2D(padding=padding, stride_h=stride[0], stride_w=stride[1],
                                                   filter_h=k[0], filter_w=k[1], activation=act))
        self.x, self.shape = y, (n, oh, ow, c)

    def binary(self, kind, other):
        o, shape, s_o, zp_o = other
        s_out = self.s * s_o * 100 if kind == "MUL" else max(self.s, s_o) * 1.5
        y = self._tensor(self.shape, s_out, _zp(self.rng))
        self.mb.op(kind, [self.x, o], [y], ops.Elementwise(activation=str(self.rng.choice(["NONE", "RELU"]))))
        self.x, self.s, self.zp = y, s_out, self.mb.tensors[y].zero_point[0]

    def build_tail(self, classes=5):
        """Broadcasting ADD and CONCATENATION (our kernels in the CMSIS-NN build), RESHAPE, FC, SOFTMAX."""
        rng, mb = self.rng, self.mb
        n, h, w, c = self.shape
        cst = mb.const(f"k{self.n}", rng.integers(-100, 100, (1, 1, 1, c)).astype(np.int8), scale=self.s,
                       zero_point=0)
        self.binary("ADD", (cst, (1, 1, 1, c), self.s, 0))
        y = self._tensor((n, h, w, 2 * c), self.s, self.zp)
        mb.op("CONCATENATION", [self.x, self.x], [y], ops.Concatenation(axis=3))
        depth = h * w * 2 * c
        r = self._tensor((n, depth), self.s, self.zp)
        mb.op("RESHAPE", [y, mb.const(f"shape{self.n}", np.asarray([n, depth], dtype=np.int32))], [r],
              ops.Reshape(new_shape=(n, depth)))
        ws = np.float32(1.5 / (self.s * 70 * 73 * np.sqrt(depth)))  # logits of std ~1.5: softmax not one-hot
        wq = rng.integers(-127, 128, (classes, depth)).astype(np.int8)
        fw = mb.const(f"fw{self.n}", wq, scale=ws)
        fb = mb.const(f"fb{self.n}", rng.integers(-500, 500, classes).astype(np.int32), scale=np.float32(self.s * ws))
        logits = self._tensor((n, classes), 1.5 / 40, _zp(rng))
        mb.op("FULLY_CONNECTED", [r, fw, fb], [logits], ops.FullyConnected(activation="NONE"))
        prob = self._tensor((n, classes), 1 / 256, -128)
        mb.op("SOFTMAX", [logits], [prob], ops.Softmax(beta=1.0))
        mb.output(prob)
        return mb.build()


def random_chain(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    batch = 2 if rng.random() < 0.3 else 1
    ch = _Chain(rng, (batch, int(rng.integers(9, 15)), int(rng.integers(8, 13)), int(rng.integers(1, 5))))
    ch.conv(k=tuple(int(v) for v in rng.integers(1, 5, 2)), stride=(int(rng.integers(1, 3)),) * 2,
            dil=(int(rng.integers(1, 3)), 1), padding=str(rng.choice(["SAME", "VALID"])), cout=6)
    ch.conv(k=(3, 3), stride=(int(rng.integers(1, 3)), 1), padding="VALID",
            pads=[[int(v) for v in rng.integers(0, 3, 2)], [int(v) for v in rng.integers(0, 3, 2)]])
    ch.conv(k=(3, 3), depthwise=True, mult=int(rng.choice([1, 1, 2])), dil=(int(rng.choice([1, 1, 2])),) * 2)
    if ch.shape[3] % 2 == 0:
        ch.conv(k=(1, 3), groups=2, cout=2 * int(rng.integers(2, 5)))  # grouped convolution
    ch.conv(k=(1, 1), cout=int(rng.integers(4, 10)))  # 1x1, unit stride: CMSIS-NN's 1x1 fast path
    ch.pool("MAX_POOL_2D", (3, 3), (2, 2), "SAME")
    skip = ch.x, ch.shape, ch.s, ch.zp
    ch.binary("ADD", ch.conv(k=(1, 1), cout=ch.shape[3], src=skip, keep=False))
    ch.binary("MUL", ch.conv(k=(3, 3), cout=ch.shape[3], src=(ch.x, ch.shape, ch.s, ch.zp), keep=False))
    ch.pool("AVERAGE_POOL_2D", (2, 2), (1, 1), "SAME")
    return ch.build_tail()


@requires_cmsis_nn
@pytest.mark.parametrize("seed", [pytest.param(s, marks=() if s < 2 else pytest.mark.slow) for s in range(12)])
def test_random_chain_every_layer_agrees(seed, build_dir, cmsis_cache):
    from specializer.against import NO_KERNEL, compare_against_cmsis_nn

    model = random_chain(seed)
    rng = np.random.default_rng(seed + 100)
    from specializer.frontend import load_model

    g = load_model(model)
    x = g.t(g.inputs[0])
    zp = x.quant.zp
    xs = [rng.integers(max(-128, zp - 30), min(127, zp + 30) + 1, size=x.shape).astype(np.int8)]
    rep = compare_against_cmsis_nn(model, "cortex-m4", cmsis_nn=CMSIS_NN, opt="-O3", inputs=xs,
                                   build_dir=build_dir / f"chain{seed}", label=f"chain{seed}", cache_dir=cmsis_cache)
    bad = [f"#{r.index} {r.op} {r.cmsis_function}: {r.num_diff} differ from index {r.first_diff}"
           for r in rep.mismatches]
    assert not bad, "CMSIS-NN layers differ from ours: " + "; ".join(bad)
    assert rep.cmsis_bitexact is not False and rep.ours.bitexact is not False
    assert rep.outputs_agree
    functions = {r.cmsis_function for r in rep.layers}
    assert {"arm_convolve_wrapper_s8", "arm_depthwise_conv_wrapper_s8", "arm_max_pool_s8", "arm_avgpool_s8",
            "arm_elementwise_add_s8", "arm_elementwise_mul_s8", "arm_fully_connected_s8",
            "arm_softmax_s8"} <= functions
    fallback = {r.op for r in rep.layers if r.cmsis_function == NO_KERNEL}
    assert fallback == {"ADD", "CONCATENATION"}  # the broadcasting ADD and the data movement
    assert all(r.bitexact is not None for r in rep.layers if r.cmsis_function != NO_KERNEL), \
        "every CMSIS-NN layer's output is compared with ours"


# ---- the command line -----------------------------------------------------------------------------------------
@requires_models
@requires_cmsis_nn
def test_cli_table_json_png(build_dir, cmsis_cache, tmp_path, capsys, monkeypatch):
    from specializer.cli import main

    monkeypatch.setenv("SPZ_CACHE_DIR", str(cmsis_cache))
    monkeypatch.setenv("CMSIS_NN_PATH", str(CMSIS_NN))  # the default of --cmsis-nn
    model = model_path("mlperf_ad_fc_autoencoder")
    rc = main(["bench", str(model), "--target", "cortex-m4", "--opt=-O3", "--against", "cmsis-nn",
               "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "CMSIS-NN function" in out and "speed-up" in out and out.count("arm_fully_connected_s8") >= 10
    assert "CMSIS-NN: yes" in out and "differing: 0" in out and "CMSIS-NN objects" in out
    rep = json.loads((tmp_path / "r.json").read_text())[0]
    a = rep["against"]
    assert a["name"] == "cmsis-nn" and a["bitexact"] is True and a["cycles"] > 0 and a["ram_total"] > 0
    assert a["flash"] > a["flash_cmsis_nn_objects"] > 0 and a["flash_weights"] > 0
    assert [set(lay) >= {"index", "function", "cycles", "bitexact"} for lay in a["layers"]] == [True] * 10
    assert all(lay["bitexact"] is True and lay["function"] == "arm_fully_connected_s8" for lay in a["layers"])
    ours = [lay for lay in rep["layers"] if lay["op"] != "-"]
    assert len(ours) == 10 and all(lay["speedup_vs_cmsis_nn"] > 0 for lay in ours)
    for lay, cm in zip(ours, a["layers"]):
        assert lay["speedup_vs_cmsis_nn"] == pytest.approx(cm["cycles"] / lay["cycles"], rel=1e-3)
    assert (tmp_path / "r.png").stat().st_size > 1000


@requires_models
@requires_cmsis_nn
def test_fault_in_a_cmsis_nn_layer_names_it(build_dir, cmsis_cache, capsys, monkeypatch):
    """A HardFault in one layer of the CMSIS-NN build: one line on stderr, status 2, the layer named."""
    from specializer import cmsis_nn
    from specializer.cli import main

    orig = cmsis_nn.MAPPERS["FULLY_CONNECTED"]

    def faulting(g, op, sym):
        lay = orig(g, op, sym)
        if op.index == 3:
            emit = lay.emit

            def emit_then_fault(ctx, scratch):
                emit(ctx, scratch)
                ctx.call("((void (*)(void))0x30000001u)(); /* injected: jump to unmapped memory */")
            lay.emit = emit_then_fault
        return lay

    monkeypatch.setitem(cmsis_nn.MAPPERS, "FULLY_CONNECTED", faulting)
    monkeypatch.setenv("SPZ_CACHE_DIR", str(cmsis_cache))
    rc = main(["bench", str(model_path("mlperf_ad_fc_autoencoder")), "--opt=-O3", "--against", "cmsis-nn",
               "--cmsis-nn", str(CMSIS_NN)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len([ln for ln in err if ln.startswith("specializer: error:")]) == 1
    assert "CMSIS-NN build on cortex-m4 in layer #3 FULLY_CONNECTED (cmsis-nn:arm_fully_connected_s8)" in err[-1]
    assert "HardFault" in err[-1]


@requires_models
@requires_cmsis_nn
def test_cortex_m55_is_one_line(build_dir, cmsis_cache, capsys, monkeypatch):
    """MVE (Helium) code cannot run in the simulator: one line naming where it stopped, status 2."""
    from specializer.cli import main

    monkeypatch.setenv("SPZ_CACHE_DIR", str(cmsis_cache))
    rc = main(["bench", str(model_path("mlperf_ad_fc_autoencoder")), "--target", "cortex-m55", "--opt=-O3",
               "--against", "cmsis-nn", "--cmsis-nn", str(CMSIS_NN)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("specializer: error:") and "cortex-m55" in err[-1]
    assert "MVE" in err[-1] and ("layer" in err[-1] or "before the first layer" in err[-1])


@requires_models
def test_no_cmsis_nn_checkout(capsys, monkeypatch, tmp_path):
    from specializer.cli import main

    monkeypatch.delenv("CMSIS_NN_PATH", raising=False)
    assert main(["bench", str(model_path("mlperf_ad_fc_autoencoder")), "--against", "cmsis-nn"]) == 2
    assert "--cmsis-nn PATH or set CMSIS_NN_PATH" in capsys.readouterr().err
    assert main(["bench", str(model_path("mlperf_ad_fc_autoencoder")), "--against", "cmsis-nn",
                 "--cmsis-nn", str(tmp_path)]) == 2
    assert "not a CMSIS-NN checkout" in capsys.readouterr().err


def test_flash_by_origin_reads_a_gnu_ld_map(tmp_path):
    from specializer.cmsis_nn import flash_by_origin

    (tmp_path / "net.map").write_text("\n".join([
        "Discarded input sections", " .text.unused   0x00000000       0x40 /b/obj/net.o", "",
        "Linker script and memory map", "",
        ".text           0x08000040      0x1000",
        " .text.arm_convolve_s8", "                0x08000040      0x200 /c/libcmsis-nn.a(arm_convolve_s8.o)",
        " .text.net_run  0x08000240       0x80 /b/obj/net.o",
        " *fill*         0x080002c0        0x4 ",
        " .text.memcpy   0x080002c4       0x20 /usr/lib/libc.a(lib_a-memcpy.o)",
        ".rodata         0x08001040      0x300",
        " .rodata.net_w0 0x08001040      0x300 /b/obj/net_weights.o",
        ".data           0x20000000        0x8 load address 0x08001340",
        " .data.x        0x20000000        0x8 /b/obj/bench_harness.o",
        ".bss            0x20000008      0x100",
        " .bss.g_arena   0x20000008      0x100 /b/obj/bench_harness.o"]))
    f = flash_by_origin(tmp_path / "net.map")
    assert (f["cmsis-nn"], f["generated"], f["libc"], f["weights"], f["runtime"]) == (0x200, 0x80, 0x20, 0x300, 8)
    assert f["cmsis-nn objects"] == {"arm_convolve_s8.o": 0x200}
