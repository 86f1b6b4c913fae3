"""Thumb instruction classifier shared by every cost model.

How it works:
1. ``Decoder.decode_block(code, address)`` disassembles a basic block with capstone (detail on) and turns every
   instruction into an ``Insn``: a coarse ``kind`` (what the cost tables key on), the cycle ``cls`` it is reported
   under (the class names of baselines.json), register sets normalised to small integers (r0..r15 = 0..15, s<n> =
   32+n, d<n> = the two S halves), memory address registers, the number of transferred registers, and flags for
   IT-conditional execution, conditional branches and PC writes.
2. IT blocks are tracked inside the block: an ``it``/``ite``/... instruction makes the next 1..4 instructions
   ``it_cond``.  Conditional ``b``/``cbz``/``cbnz`` are *not* marked ``it_cond``; the cost models cost them by the
   fall-through rule instead.
3. ``prescan(code, base)`` is a fast linear sweep (capstone "lite" mode) over executable sections that finds the
   addresses needing per-execution code hooks: IT-conditional instructions and SDIV/UDIV (with operand registers).
4. ``illegal_for(core, insn)`` tells whether an instruction is missing from a core (DSP on M0+/M3, FP without an
   FPU, double precision without FPv5-D, any 32-bit Thumb-2 on M0+) -- unicorn's M3 model executes DSP
   instructions, so the simulator checks decoded blocks itself.
5. ``dsp`` marks every DSP-extension instruction (what M0+/M3 lack); ``simd`` marks the subset the M7 model keeps
   out of the second issue slot ("DSP/SIMD ops only in the first slot"): the packed and saturating arithmetic
   (QADD8, SADD16, SHSUB8, USAD8, SEL, SSAT16, QADD, ...).  DSP multiplies (SMLAD, SMLABB, SMUAD, ...) are governed
   by the multiplier rule and the DSP extends and PKH (SXTB16, SXTAB16, PKHBT, ...) by the shifter rule, like MUL/MLA
   and SXTB; they may be second.  The baselines' M7 figures need this reading: with SMLAD and SXTB16 kept out of
   the second slot, CMSIS-NN code costs up to 12% more than the reference counted (cost_m7.py, test_cost_m7.py).
"""
from __future__ import annotations

import re

import capstone
from capstone import arm as csarm

__all__ = ["Insn", "Decoder", "CLASSES", "prescan", "illegal_for", "PC", "LR", "SP"]

CLASSES = ("alu", "mul", "div", "load", "store", "load_store_multiple", "branch", "fpu", "fpu_load_store")
CLS = {c: i for i, c in enumerate(CLASSES)}
SP, LR, PC = 13, 14, 15
_CC_AL = csarm.ARM_CC_AL
_OP_REG, _OP_MEM = csarm.ARM_OP_REG, csarm.ARM_OP_MEM

_CORE_REGS = {f"r{i}": i for i in range(16)}
_CORE_REGS.update({"sb": 9, "sl": 10, "fp": 11, "ip": 12, "sp": 13, "lr": 14, "pc": 15})

_MUL_PREFIXES = ("smul", "smla", "smls", "smmu", "smml", "smua", "smus", "umul", "umla", "umaal")
_LOADS = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrt", "ldrbt", "ldrht", "ldrsbt", "ldrsht",
          "ldrex", "ldrexb", "ldrexh", "lda", "ldab", "ldah", "ldaex", "ldaexb", "ldaexh"}
_STORES = {"str", "strb", "strh", "strt", "strbt", "strht", "stl", "stlb", "stlh"}
_STREX = {"strex", "strexb", "strexh", "stlex", "stlexb", "stlexh"}
_FP_MAC = {"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"}
_FP_ARITH = {"vadd", "vsub", "vmul", "vnmul", "vdiv", "vsqrt"} | _FP_MAC
_FP_DIV = {"vdiv", "vsqrt"}
# ``shifter``: the instruction itself is a shift, extend, bit-field or PKH (the M7 model pairs at most one); an ALU
# op with a shifted register operand (``orr r0, r0, r1, lsl #1``) is not one (COST_MODEL.md, conformance pack).
_SHIFTER = {"lsl", "lsr", "asr", "ror", "rrx", "sxtb", "sxth", "uxtb", "uxth", "sxtab", "sxtah", "uxtab",
            "uxtah", "sxtb16", "uxtb16", "sxtab16", "uxtab16", "bfi", "bfc", "ubfx", "sbfx", "pkhbt", "pkhtb"}
_DSP_ALU_PREFIXES = ("qadd", "qsub", "qdadd", "qdsub", "qasx", "qsax", "sadd", "ssub", "sasx", "ssax",
                     "shadd", "shsub", "shasx", "shsax", "uadd", "usub", "uasx", "usax", "uhadd", "uhsub",
                     "uhasx", "uhsax", "uqadd", "uqsub", "uqasx", "uqsax", "usad", "sel", "pkh", "ssat16",
                     "usat16", "sxtab16", "uxtab16", "sxtb16", "uxtb16", "sxta", "uxta")
_DSP_MUL = ("smla", "smls", "smua", "smus", "smmu", "smml", "smul", "umaal")  # except SMULL/SMLAL (v7-M)
_V6M_32BIT = {"bl", "dmb", "dsb", "isb", "mrs", "msr"}
_IT_RE = re.compile(r"^it[te]{0,3}$")


class Insn:
    """One decoded instruction (plain attributes, see module comment)."""

    __slots__ = ("address", "size", "name", "mnemonic", "op_str", "kind", "cls", "nregs", "it_cond",
                 "cond_branch", "writes_pc", "reads", "writes", "addr_regs", "load_dests", "fp_arith",
                 "fp_double", "mac_srcs", "shifter", "dsp", "simd", "is_fp", "indirect")

    def __repr__(self):
        return f"<{self.address:#x} {self.mnemonic} {self.op_str} kind={self.kind}>"


class Decoder:
    """Decodes Thumb code into ``Insn`` lists; caches capstone register-id normalisation."""

    def __init__(self):
        md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
        md.detail = True
        self.md = md
        self._regs = {}

    def _reg(self, rid):
        r = self._regs.get(rid)
        if r is None:
            name = self.md.reg_name(rid) or ""
            if name in _CORE_REGS:
                r = (_CORE_REGS[name],)
            elif name[:1] == "s" and name[1:].isdigit():
                r = (32 + int(name[1:]),)
            elif name[:1] == "d" and name[1:].isdigit():
                n = int(name[1:])
                r = (32 + 2 * n, 33 + 2 * n)
            elif name[:1] == "q" and name[1:].isdigit():
                n = int(name[1:])
                r = tuple(32 + 4 * n + k for k in range(4))
            else:  # apsr/cpsr/fpscr/itstate: flags are not modelled as dependencies
                r = ()
            self._regs[rid] = r
        return r

    def _regset(self, ids):
        out = set()
        for rid in ids:
            out.update(self._reg(rid))
        return frozenset(out)

    def decode_block(self, code: bytes, address: int) -> list:
        """Decode ``code`` at ``address`` into a list of ``Insn`` (stops at the first undecodable halfword)."""
        out = []
        it_left = 0
        for ci in self.md.disasm(code, address):
            ins = self._classify(ci)
            if ins.kind == "it":
                it_left = len(ci.mnemonic.split(".")[0]) - 1
            elif it_left:
                it_left -= 1
                if ins.kind not in ("b_cond", "cbz"):
                    ins.it_cond = True
                if ins.kind == "b":
                    ins.kind, ins.cond_branch = "b_cond", True
            out.append(ins)
        return out

    def _classify(self, ci) -> Insn:
        ins = Insn()
        name = ci.insn_name() or ci.mnemonic.split(".")[0]
        if name.startswith("fconst"):   # capstone's internal name for VMOV immediate
            name = "vmov"
        ins.address, ins.size, ins.name = ci.address, ci.size, name
        ins.mnemonic, ins.op_str = ci.mnemonic, ci.op_str
        r_ids, w_ids = ci.regs_access()
        reads, writes = self._regset(r_ids), self._regset(w_ids)
        ops = ci.operands
        ins.reads, ins.writes = reads, writes
        ins.addr_regs = frozenset()
        ins.load_dests = frozenset()
        ins.nregs = 1
        ins.it_cond = ins.cond_branch = ins.fp_arith = ins.fp_double = ins.shifter = ins.dsp = ins.simd = False
        ins.is_fp = ins.indirect = False
        ins.mac_srcs = frozenset()
        ins.writes_pc = PC in writes
        cond = ci.cc != _CC_AL and ci.cc != 0
        for op in ops:
            if op.type == _OP_MEM:
                regs = []
                if op.mem.base:
                    regs += self._reg(op.mem.base)
                if op.mem.index:
                    regs += self._reg(op.mem.index)
                ins.addr_regs = frozenset(regs)
        reg_ops = [self._reg(op.reg) for op in ops if op.type == _OP_REG]

        kind, cls = "alu", "alu"
        if name in ("b",):
            kind, cls = ("b_cond" if cond else "b"), "branch"
            ins.cond_branch = cond
        elif name in ("cbz", "cbnz"):
            kind, cls = "cbz", "branch"
            ins.cond_branch = True
        elif name in ("bl",):
            kind, cls = "bl", "branch"
        elif name in ("bx", "blx"):
            kind, cls = ("blx" if name == "blx" and ops and ops[0].type != _OP_REG else "bx"), "branch"
            ins.indirect = kind == "bx"
        elif name in ("tbb", "tbh"):
            kind, cls = "tb", "branch"
            ins.indirect = True
        elif _IT_RE.match(name) or name == "it":
            kind = "it"
        elif name in ("sdiv", "udiv"):
            kind, cls = "div", "div"
        elif name in ("mul", "mla", "mls") or name.startswith(_MUL_PREFIXES):
            kind, cls = "mul", "mul"
            if name in ("smull", "umull"):
                kind = "mull"
            elif name in ("smlal", "umlal", "umaal"):
                kind = "mlal"
            elif name in ("mla", "mls"):
                kind = "mla"
            if name.startswith(_DSP_MUL) and name not in ("smull", "smlal"):
                ins.dsp = True
            # integer MACs: the multiplicand registers (the rest of what they read is the accumulator)
            if name in ("smlal", "umlal", "umaal") or name.startswith(("smlal", "smlsl")):
                ins.mac_srcs = frozenset(r for ro in reg_ops[2:4] for r in ro)
            elif name in ("mla", "mls") or name.startswith(("smla", "smls", "smmla", "smmls")):
                ins.mac_srcs = frozenset(r for ro in reg_ops[1:3] for r in ro)
        elif name in _LOADS:
            kind, cls = "load", "load"
            ins.load_dests = frozenset(reg_ops[0]) if reg_ops else writes
            if ins.writes_pc:
                kind = "load_pc"
        elif name in _STORES:
            kind, cls = "store", "store"
        elif name in _STREX:
            kind, cls = "strex", "store"
            ins.load_dests = frozenset(reg_ops[0]) if reg_ops else frozenset()
        elif name in ("ldrd", "strd", "ldaexd", "ldrexd", "strexd", "stlexd"):
            kind, cls = ("ldrd" if name.startswith("ld") else "strd"), ("load" if name.startswith("ld") else "store")
        elif name.startswith(("ldm", "stm", "pop", "push")):
            kind = "ldm" if name.startswith(("ldm", "pop")) else "stm"
            cls = "load_store_multiple"
            n = len(reg_ops) - (0 if name in ("push", "pop") else 1)
            ins.nregs = max(n, 1)
        elif name.startswith(("vldm", "vstm", "vpush", "vpop")):
            kind, cls = "vldm", "fpu_load_store"
            n = len(reg_ops) - (0 if name in ("vpush", "vpop") else 1)
            dbl = any(len(r) == 2 for r in reg_ops[-1:])
            ins.nregs = max(n, 1) * (2 if dbl else 1)
            ins.is_fp = True
        elif name in ("vldr", "vstr"):
            dbl = bool(reg_ops) and len(reg_ops[0]) == 2
            kind, cls = ("vldr64" if dbl else "vldr32"), "fpu_load_store"
            ins.fp_double = dbl
            ins.is_fp = True
            if name == "vldr":
                ins.load_dests = writes
        elif name[:1] == "v":
            ins.is_fp = True
            cls = "fpu"
            ins.fp_double = ".f64" in ci.mnemonic
            if name in _FP_MAC:
                kind = "fp_mac"
                ins.mac_srcs = frozenset(r for ro in reg_ops[1:3] for r in ro)
            elif name in _FP_DIV:
                kind = "fp_div"
            elif name == "vmov" and (len(reg_ops) >= 3 or (len(reg_ops) == 2 and any(len(r) == 2 for r in reg_ops)
                                                           and any(r[0] < 16 for r in reg_ops))):
                kind = "fp_mov2"
            else:
                kind = "fp"
            ins.fp_arith = name in _FP_ARITH or name.startswith("vcvt")
        elif name == "isb":
            kind = "isb"
        elif name in ("msr", "cpsie", "cpsid"):
            kind = "msr"
        else:
            kind, cls = "alu", "alu"
            if name in _SHIFTER:
                ins.shifter = True
            if name.startswith(_DSP_ALU_PREFIXES) or name in ("ssat16", "usat16"):
                ins.dsp = True
                if name.startswith(("pkh", "sxt", "uxt")):
                    ins.shifter = True
            if name in ("ssat", "usat", "qadd", "qsub", "qdadd", "qdsub"):
                ins.dsp = name not in ("ssat", "usat")
            ins.simd = ins.dsp and not ins.shifter     # packed/saturating arithmetic, not the extends or PKH
            if ins.writes_pc:
                kind = "alu_pc"
                ins.indirect = True
        if kind in ("ldm", "load_pc"):
            ins.indirect = ins.writes_pc
        ins.kind, ins.cls = kind, CLS[cls]
        return ins


def illegal_for(core, ins: Insn) -> bool:
    """True if ``ins`` does not exist on ``core`` (a ``Core``): the simulator reports it as a UsageFault."""
    feats = core.features
    if ins.is_fp and "fpu_sp" not in feats:
        return True
    if ins.fp_double and ins.kind not in ("vldr64", "vldm", "fp_mov2") and "fpu_dp" not in feats:
        return True
    if ins.dsp and "dsp" not in feats:
        return True
    if core.cost_model == "m0plus" and ins.size == 4 and ins.name not in _V6M_32BIT:
        return True
    return False


def _reg_index(name):
    return _CORE_REGS.get(name.strip())


def prescan(code: bytes, base: int):
    """Linear sweep of an executable region.

    Returns ``(it_addrs, div_ops)``: the addresses of IT-conditional instructions other than branches, and
    ``{address: (signed, rn, rm)}`` for SDIV/UDIV (register numbers 0..15).  Data in code can desynchronise the
    sweep; false positives are harmless (hooks are keyed on addresses the block decoder also classifies).
    """
    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    md.skipdata = True
    it_addrs, div_ops = set(), {}
    it_left = 0
    for addr, size, mnem, op_str in md.disasm_lite(code, base):
        m = mnem.split(".")[0]
        if _IT_RE.match(m):
            it_left = len(m) - 1
            continue
        if it_left:
            it_left -= 1
            if not (m.startswith("b") and m[1:] in _COND_SUFFIXES) and not m.startswith("cb"):
                it_addrs.add(addr)
        if m in ("sdiv", "udiv") or m[:4] in ("sdiv", "udiv"):
            regs = [_reg_index(x) for x in op_str.split(",")]
            if len(regs) == 2:
                regs = [regs[0]] + regs
            if len(regs) == 3 and None not in regs:
                div_ops[addr] = (m.startswith("s"), regs[1], regs[2])
    return it_addrs, div_ops


_COND_SUFFIXES = {"eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le",
                  "al"}
