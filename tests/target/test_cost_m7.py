"""Hand-counted Cortex-M7 blocks: the rules of COST_MODEL.md ("Cortex-M7 -- rough approximation", numbered
algorithm) as the conformance pack showed the reference applies them.  No toolchain needed: the blocks are
decoded from their Thumb encodings (halfwords as objdump prints them)."""
import pytest

from specializer.targets.cortex_m.sim.cost_m7 import M7Cost
from specializer.targets.cortex_m.sim.isa import Decoder

ENC = {
    "ldrsb r4, [r2, #1]!": "f912 4f01",
    "ldrsb r4, [r2, #1]": "f992 4001",
    "cmp r7, r2": "4297",
    "lsl r0, r1, #2": "ea4f 0081",
    "orr r3, r3, r5, lsl #1": "ea43 0345",
    "ubfx r3, r5, #0, #4": "f3c5 0303",
    "adds r0, #1": "3001",
    "bx lr": "4770",
    "mul r0, r1, r2": "fb01 f002",
    "mla r0, r1, r2, r0": "fb01 0002",
    "mla r0, r0, r2, r3": "fb00 3002",
    "vmla s0, s1, s2": "ee00 0a81",
    "vadd s3, s3, s1": "ee71 1aa0",
}


def _cycles(*asm):
    # halfwords are little-endian; the first halfword of a 32-bit instruction comes first
    code = b"".join(b"".join(bytes.fromhex(h)[::-1] for h in ENC[a].split()) for a in asm)
    insns = Decoder().decode_block(code, 0x1000)
    assert len(insns) == len(asm)
    return M7Cost().block(insns).static


CASES = [
    # independent load + compare pair: 1
    (("ldrsb r4, [r2, #1]", "cmp r7, r2"), 1),
    # a writeback base is a load result: no pair, and CMP stalls +1 -> 1 + 2
    (("ldrsb r4, [r2, #1]!", "cmp r7, r2"), 3),
    # an ALU op with a shifted register operand is not a shifter op: pairs with a shift -> 1
    (("lsl r0, r1, #2", "orr r3, r3, r5, lsl #1"), 1),
    # two shifter ops (shift, bit-field) do not pair -> 2
    (("lsl r0, r1, #2", "ubfx r3, r5, #0, #4"), 2),
    # an indirect branch never pairs: 1 + (1 + 2)
    (("adds r0, #1", "bx lr"), 4),
    # a MAC reading a multiply result only as its accumulator does not stall: 1 + 1
    (("mul r0, r1, r2", "mla r0, r1, r2, r0"), 2),
    # ... as a multiplicand it does: 1 + (1 + 1)
    (("mul r0, r1, r2", "mla r0, r0, r2, r3"), 3),
    # VMLA chain through the accumulator: no FP stall -> 1 + 1
    (("vmla s0, s1, s2", "vmla s0, s1, s2"), 2),
    # VADD reading the previous VADD result: +2 -> 1 + (1 + 2)
    (("vadd s3, s3, s1", "vadd s3, s3, s1"), 4),
]


@pytest.mark.parametrize("asm,cycles", CASES, ids=[" ; ".join(a) for a, _ in CASES])
def test_m7_block(asm, cycles):
    assert _cycles(*asm) == cycles


def test_mispredictions_per_site():
    cycles, info = M7Cost().finish({0: [100, 99], 1: [10, 3], 2: [1, 1]})
    assert info["m7_mispredicted_branches"] == 1 + 3 + 0
    assert cycles == 4 * 4
