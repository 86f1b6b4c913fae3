"""Hand-counted Cortex-M4 micro-benchmarks: simulated cycles must equal the TRM arithmetic (COST_MODEL.md).

Every case is bench_invoke itself (data/micro.S), so each sum ends with the final `bx lr` = 1 + P = 3.
MOVW/MOVT loading &micro_buf cost 1 + 1.
"""
import pytest

from specializer.targets.cortex_m.sim import Simulator

BX_LR = 1 + 2          # BX: 1 + P, P = 2
BUF = 1 + 1            # MOVW + MOVT

CASES = {
    # 8 x SMLAD at 1 cycle each (T3-2)
    "smlad": (8 * 1 + BX_LR, 9),
    # LDR 2, then three independent LDRs pipelined at 1 each (3.3.2)
    "ldr_indep": (BUF + 2 + 1 + 1 + 1 + BX_LR, 7),
    # LDR r0,[r0]; LDR r0,[r0]: the second uses the first's result as address -> no pipelining
    "ldr_dep": (BUF + 2 + 2 + BX_LR, 5),
    # LDR 2; STR after LDR pipelines 1; nothing pipelines after a store: STR 2, STR 2
    "ldr_str": (BUF + 2 + 1 + 2 + 2 + BX_LR, 7),
    # MOVS 1; 10 x SUBS 1; BNE taken 9 x (1 + P) + not taken 1
    "loop": (1 + 10 * 1 + 9 * (1 + 2) + 1 + BX_LR, 1 + 10 * 2 + 1),
    # PUSH 5 regs 1+5; LDM 3 regs 1+3; STM 1+3; POP 5 regs incl. PC 1+5+P
    "ldm": ((1 + 5) + BUF + (1 + 3) + (1 + 3) + (1 + 5 + 2), 6),
    # MOVW 1, MOVS 1, SDIV 1000/7: q = 10-3+1 = 8 bits -> 2 + ceil(80/32) = 5; UDIV 7/1000: |n|<|d| -> 2;
    # MVN 1; SDIV -1/7: |n| < |d| -> 2
    "sdiv": (1 + 1 + 5 + 2 + 1 + 2 + BX_LR, 7),
    # MOVS 1, CMP 1, ITE 1, LDREQ executes: 2 (follows ITE, not a load), LDRNE skipped: 1
    "it": (BUF + 1 + 1 + 1 + 2 + 1 + BX_LR, 8),
    # MOVS, CMP, IT, BXEQ skipped (1), CMP, IT, BXEQ taken (1 + P)
    "it_pc": (1 + 1 + 1 + 1 + 1 + 1 + (1 + 2), 7),
    # VMOV imm 1, VMOV imm 1, VADD 1 +1 stall (VMUL reads s2), VMUL 1 +1 stall (VMLA multiplies by s3),
    # VMLA 3, VADD 1 (next VMLA uses s5 only as addend: no stall), VMLA 3, MOVW/MOVT, VLDR.32 2, VDIV 14
    "fpu": (1 + 1 + (1 + 1) + (1 + 1) + 3 + 1 + 3 + BUF + 2 + 14 + BX_LR, 12),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_micro_m4_exact(case, build_micro):
    cycles, instructions = CASES[case]
    res = Simulator(build_micro(case), core="m4").run()
    assert res.instructions == instructions, case
    assert res.cycles == cycles, case
    assert res.warnings == []


def test_cycles_by_class_add_up(build_micro):
    res = Simulator(build_micro("fpu"), core="m4").run()
    assert sum(res.cycles_by_class.values()) == res.cycles
    assert res.cycles_by_class["fpu"] == 1 + 1 + 2 + 2 + 3 + 1 + 3 + 14
    assert res.cycles_by_class["fpu_load_store"] == 2


def test_sdiv_results_and_classes(build_micro):
    res = Simulator(build_micro("sdiv"), core="m4").run()
    assert res.cycles_by_class["div"] == 5 + 2 + 2


def test_loop_branch_class(build_micro):
    res = Simulator(build_micro("loop"), core="m4").run()
    assert res.cycles_by_class["branch"] == 9 * 3 + 1 + BX_LR
