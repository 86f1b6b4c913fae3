"""The ELF contract (DESIGN.md section 3) end to end: harness + a hand-made two-input/two-output library."""
import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from specializer.targets.cortex_m import support_file
from specializer.targets.cortex_m.sim import Simulator, SimError
from specializer.targets.cortex_m.toolchain import ToolchainError, build_elf, size_report

DATA = Path(__file__).resolve().parent / "data"

TOY = DATA / "toy"
DEFS = ['SPZ_MODEL_HEADER="toy.h"', "SPZ_PREFIX=toy", "SPZ_PREFIX_UPPER=TOY"]


def build_toy(build_dir, core="m4", profile=False, **kw):
    name = f"toy_{core}_{int(profile)}"
    return build_elf([TOY / "toy.c", support_file("bench_harness.c")], [TOY], core, build_dir / name,
                     defines=DEFS + (["SPZ_PROFILE"] if profile else []), name=name, **kw)


def expected(in0, in1):
    s = int(np.frombuffer(in0, np.int8).astype(np.int32).sum())
    x = 0
    for b in in0:
        x ^= b
    out0 = (s & 0xFFFF).to_bytes(2, "little") + bytes([x, 0x5A])
    out1 = bytes(((np.frombuffer(in1, np.int8).astype(np.int16) + 1) & 0xFF).astype(np.uint8))
    return out0, out1


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(1)
    return rng.integers(-128, 128, 64, dtype=np.int8).tobytes(), rng.integers(-128, 128, 8, dtype=np.int8).tobytes()


@pytest.mark.parametrize("core", ["m4", "m7", "m3", "m0plus", "m33"])
def test_toy_outputs_all_cores(build_dir, inputs, core):
    res = Simulator(build_toy(build_dir, core), core=core).run(list(inputs))
    assert res.outputs == list(expected(*inputs))
    assert res.output == res.outputs[0]
    assert res.cycles > res.instructions * 0.5 > 0
    assert 64 <= res.stack_peak_bytes <= 256          # layer2's 64-byte local array + frames
    assert res.arena_used == 256
    assert res.static_ram >= 256 and res.ram_total == res.static_ram + res.stack_peak_bytes
    assert res.flash == res.text + res.rodata + res.data
    assert res.extra["bench_status"] == 0
    assert res.warnings == []
    assert sum(res.cycles_by_class.values()) == res.cycles


def test_sizes_match_toolchain_report(build_dir):
    elf = build_toy(build_dir)
    res = Simulator(elf).run()
    rep = size_report(elf)
    assert {k: getattr(res, k) for k in rep} == rep


def test_single_input_contract_fallback(build_dir, inputs):
    """Input 0 alone via bytes; input 1 keeps the arena's zero bytes."""
    res = Simulator(build_toy(build_dir)).run(inputs[0])
    assert res.outputs[0] == expected(inputs[0], bytes(8))[0]


def test_wrong_input_length_is_an_error(build_dir):
    with pytest.raises(SimError, match="expects 64"):
        Simulator(build_toy(build_dir)).run(b"\x00" * 3)


def test_profile_marks_attribute_layers(build_dir, inputs):
    plain = Simulator(build_toy(build_dir)).run(list(inputs))
    res = Simulator(build_toy(build_dir, profile=True)).run(list(inputs))
    assert res.outputs == plain.outputs
    ids = [r.id for r in res.layers]
    assert ids == [0, 1, 2, "overhead"]
    assert sum(r.cycles for r in res.layers) == res.cycles
    assert sum(r.instructions for r in res.layers) == res.instructions
    by = {r.id: r for r in res.layers}
    # each of layers 0/1 walks 64 bytes: at least 64 loads (2 or 1 cycles) + 64 ALU ops
    assert by[0].cycles > 128 and by[1].cycles > 128 and by[2].cycles > 64
    assert by["overhead"].cycles < min(by[0].cycles, by[1].cycles)
    assert not plain.layers


def test_cli_json(build_dir, inputs, tmp_path):
    elf = build_toy(build_dir, profile=True)
    (tmp_path / "in0.bin").write_bytes(inputs[0])
    (tmp_path / "in1.bin").write_bytes(inputs[1])
    out = subprocess.run([sys.executable, "-m", "specializer.targets.cortex_m.sim", "run", str(elf),
                          "--input", str(tmp_path / "in0.bin"), "--input", str(tmp_path / "in1.bin"),
                          "--core", "m4", "--json", "--output", str(tmp_path / "out.bin")],
                         capture_output=True, text=True, check=True)
    rep = json.loads(out.stdout)
    assert rep["outputs"][0] == expected(*inputs)[0].hex()
    assert (tmp_path / "out.bin").read_bytes() == expected(*inputs)[0]
    assert rep["cycles"] > 0 and rep["layers"][0]["id"] == 0
    assert set(rep["cycles_by_class"]) <= {"alu", "mul", "div", "load", "store", "load_store_multiple", "branch",
                                          "fpu", "fpu_load_store"}


def test_compile_error_names_file_and_command(build_dir, tmp_path):
    bad = tmp_path / "bad_layer.c"
    bad.write_text("int f(void) { int unused; return 0; }\n")
    with pytest.raises(ToolchainError) as ei:
        build_elf([bad], [], "m4", build_dir / "bad")
    msg = str(ei.value)
    assert "bad_layer.c" in msg and "arm-none-eabi-gcc" in msg and "-Werror" in msg and "unused" in msg


def test_missing_contract_symbol(build_dir, tmp_path):
    src = tmp_path / "nomain.c"
    src.write_text("void bench_setup(void); void bench_setup(void) {}\n")
    elf = build_elf([src], [], "m4", build_dir / "nocontract")
    with pytest.raises(SimError, match="bench_invoke"):
        Simulator(elf)
