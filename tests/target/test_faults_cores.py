"""Core models: DSP runs on M4, double precision faults on M4, ARMv6-M/ARMv7-M reject what they lack;
core table lookups."""
import pytest

from specializer.targets.cortex_m.cores import UnknownTarget, get_core, core_names
from specializer.targets.cortex_m.sim import Simulator, SimError


def test_dsp_executes_on_m4(build_micro):
    res = Simulator(build_micro("smlad"), core="m4").run()
    assert res.instructions == 9


def test_double_precision_faults_on_m4(build_micro):
    with pytest.raises(SimError, match="HardFault"):
        Simulator(build_micro("dp"), core="m4").run()


def test_double_precision_runs_on_m7(build_micro):
    res = Simulator(build_micro("dp", core="m7"), core="m7").run()
    assert res.instructions == 2


def test_dsp_faults_on_m0plus(build_micro):
    with pytest.raises(SimError, match="HardFault"):
        Simulator(build_micro("dsp_m0", core="m0plus"), core="m0plus").run()


def test_dsp_rejected_on_m3(build_micro):
    """unicorn's M3 model executes SMLAD; the simulator's decode-time check reports it."""
    with pytest.raises(SimError, match="not implemented by cortex-m3"):
        Simulator(build_micro("dsp_m0", core="m3"), core="m3").run()


def test_m7_dual_issue_is_faster(build_micro):
    m4 = Simulator(build_micro("ldr_indep"), core="m4").run()
    m7 = Simulator(build_micro("ldr_indep"), core="m7").run()
    assert m7.instructions == m4.instructions and m7.cycles < m4.cycles


def test_m0plus_table(build_micro):
    # MOVS 1; 10 x SUBS 1; BNE taken 9 x 2, not taken 1; BX LR 2 (Cortex-M0+ TRM table 3-1)
    res = Simulator(build_micro("loop", core="m0plus"), core="m0plus").run()
    assert res.cycles == 1 + 10 + 9 * 2 + 1 + 2


def test_m3_long_multiply_and_mla():
    from specializer.targets.cortex_m.sim.cost_m3 import M3Cost
    from specializer.targets.cortex_m.sim.isa import Decoder
    # mla r0, r1, r2, r0 ; smull r0, r1, r2, r3 ; smlal r0, r1, r2, r3
    code = bytes.fromhex("01fb0200") + bytes.fromhex("82fb0301") + bytes.fromhex("c2fb0301")
    insns = Decoder().decode_block(code, 0x1000)
    assert [i.name for i in insns] == ["mla", "smull", "smlal"]
    assert M3Cost().block(insns).static == 2 + 4 + 5


def test_divide_formula():
    from specializer.targets.cortex_m.sim.cost_base import divide_cycles
    assert divide_cycles(0, 5, True) == 2
    assert divide_cycles(5, 0, True) == 2
    assert divide_cycles(7, 7, False) == 3                 # q = 1 bit
    assert divide_cycles(0xFFFFFFFF, 1, False) == 12        # q = 32 bits
    assert divide_cycles(-1000 & 0xFFFFFFFF, 7, True) == 5  # |n| = 1000: q = 8


@pytest.mark.parametrize("name,canon", [("m4", "cortex-m4"), ("cortex-m4", "cortex-m4"), ("M7", "cortex-m7"),
                                        ("cortex-m0+", "cortex-m0plus"), ("m33", "cortex-m33"),
                                        ("m55", "cortex-m55"), ("m3", "cortex-m3")])
def test_get_core_aliases(name, canon):
    assert get_core(name).name == canon


def test_unknown_target_lists_names():
    with pytest.raises(UnknownTarget) as ei:
        get_core("cortex-a53")
    assert isinstance(ei.value, ValueError)
    for n in core_names():
        assert n in str(ei.value)


def test_core_features():
    assert get_core("m4").features == {"dsp", "fpu_sp"}
    assert "fpu_dp" in get_core("m7").features
    assert not get_core("m0plus").features and not get_core("m3").features
    assert "mve" in get_core("m55").features
    assert get_core("m4").cflags() == ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]


def test_max_instructions_enforced(build_micro):
    with pytest.raises(SimError, match="max_instructions"):
        Simulator(build_micro("loop"), core="m4").run(max_instructions=5)
