"""Cycle-counting Cortex-M simulator for benchmark ELFs (DESIGN.md section 3, COST_MODEL.md).

How it works:
1. Load: pyelftools reads the segments (written at their VMA and, when different, their LMA), section sizes and
   the contract symbols.  unicorn is opened in Thumb mode with the core's CPU model selected explicitly
   (``ctl_set_cpu_model``; with UC_MODE_MCLASS unicorn 2.1 would always emulate a Cortex-M33).  FLASH, RAM, the
   System Control Space page (CPACR writes) and a one-page "return trap" are mapped.
2. Pre-scan: a capstone linear sweep of the executable sections finds IT-conditional instructions and SDIV/UDIV;
   one code hook per such address (the hook only fires when an IT condition passes) adds the dynamic part.
3. Run: ``spz_system_init`` (our startup) or the ELF's init arrays, then ``bench_setup`` (costed separately as
   setup_*), write the inputs, paint free RAM between the end of static data and the stack pointer, call
   ``bench_invoke`` with LR = the trap address, read outputs and the painted-stack high-water mark.
4. Costing: one UC_HOOK_BLOCK callback per executed block does a dict lookup and two counter updates; each new
   (address, size) block is decoded once with capstone and costed by the core's cost model (``cost_m4``,
   ``cost_m3``, ``cost_m0``, ``cost_m7``).  Totals = sum(count * static) + taken * taken_extra + hook extras
   (+ the M7 misprediction estimate).
5. Profiling: if the ELF has ``spz_profile_mark``, a code hook on it snapshots the totals and reads r0; cycles
   between two marks go to the earlier mark's id, the rest to "overhead".
Faults (undefined instruction, unmapped access, reaching ``spz_hardfault_spin``, an instruction the core lacks)
raise ``SimError`` whose message starts with "HardFault".
"""
from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass, field, asdict
from pathlib import Path

import numpy as np
from elftools.elf.elffile import ELFFile
from elftools.elf.constants import SH_FLAGS
from unicorn import (Uc, UcError, UC_ARCH_ARM, UC_MODE_THUMB, UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_MEM_WRITE,
                     UC_PROT_ALL)
from unicorn import arm_const as A

from ..cores import get_core
from .isa import CLASSES, Decoder, illegal_for, prescan
from .cost_base import NCLS
from .cost_m0 import M0PlusCost
from .cost_m3 import M3Cost
from .cost_m4 import M4Cost
from .cost_m7 import M7Cost

__all__ = ["Simulator", "SimResult", "SimError", "LayerRecord", "COST_MODELS"]

FLASH_BASE, FLASH_SIZE = 0x08000000, 4 << 20
RAM_BASE, RAM_SIZE = 0x20000000, 1 << 20
SCS_BASE, SCS_SIZE = 0xE000E000, 0x1000
TRAP = 0x0E000000           # return address of every call the simulator makes (mapped, never executed)
PAINT = 0xA5
COST_MODELS = {"m4": M4Cost, "m3": M3Cost, "m0plus": M0PlusCost, "m7": M7Cost}
_REGS = [getattr(A, f"UC_ARM_REG_R{i}") for i in range(13)] + [A.UC_ARM_REG_SP, A.UC_ARM_REG_LR, A.UC_ARM_REG_PC]


class SimError(RuntimeError):
    """The simulated program faulted, ran away, or the ELF breaks the contract."""


@dataclass
class LayerRecord:
    """Cycles/instructions between ``spz_profile_mark(id)`` and the next mark (id "overhead" outside layers)."""
    id: object
    cycles: int
    instructions: int
    calls: int = 1


@dataclass
class SimResult:
    """Result of one ``Simulator.run``; cycles/instructions/cycles_by_class cover ``bench_invoke`` only."""
    core: str
    cost_model: str
    cycles: int
    instructions: int
    cycles_by_class: dict
    outputs: list
    stack_peak_bytes: int
    setup_cycles: int
    setup_instructions: int
    setup_stack_peak_bytes: int
    layers: list
    text: int
    rodata: int
    data: int
    bss: int
    flash: int
    static_ram: int
    ram_total: int
    arena_used: int | None
    emulation_seconds: float
    wall_seconds: float
    sim_instructions_per_second: float
    warnings: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def output(self) -> bytes:
        """Bytes of output 0."""
        return self.outputs[0] if self.outputs else b""

    @property
    def cpi(self) -> float:
        return self.cycles / self.instructions if self.instructions else 0.0

    def to_dict(self) -> dict:
        """JSON-ready report (outputs as hex strings), keys named like baselines.json where they exist."""
        d = asdict(self)
        d["outputs"] = [o.hex() for o in self.outputs]
        d["cpi"] = round(self.cpi, 4)
        d["static_ram_bytes"] = self.static_ram
        d["flash_bytes"] = self.flash
        d["arena_used_bytes"] = self.arena_used
        d.update(self.extra)
        del d["extra"]
        return d


def _whole_cycles(by) -> dict:
    """{class: cycles} as integers that still add up to the total: a cost model may share a group's cycles
    between classes (the M7 model gives each instruction of a pair half), so a class total can end in .5;
    floors, then the remaining cycles to the largest fractions (ties: class order)."""
    floors = [math.floor(v) for v in by]
    left = round(sum(by) - sum(floors))
    order = sorted(range(len(by)), key=lambda i: (-(by[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return {c: v for c, v in zip(CLASSES, floors) if v}


class _Elf:
    """What the simulator needs from the ELF file."""

    def __init__(self, path):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            ef = ELFFile(f)
            if ef["e_machine"] != "EM_ARM":
                raise SimError(f"{path}: not an ARM ELF ({ef['e_machine']})")
            self.segments = []
            for seg in ef.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]:
                    self.segments.append((seg["p_vaddr"], seg["p_paddr"], seg.data(), seg["p_memsz"]))
            self.exec_ranges = []
            self.sections = {}
            self.sizes = dict(text=0, rodata=0, data=0, bss=0)
            self.ram_static_end = RAM_BASE
            for sec in ef.iter_sections():
                flags, addr, size = sec["sh_flags"], sec["sh_addr"], sec["sh_size"]
                if not flags & SH_FLAGS.SHF_ALLOC or size == 0:
                    continue
                self.sections[sec.name] = (addr, size, sec.data() if sec["sh_type"] != "SHT_NOBITS" else b"")
                if RAM_BASE <= addr < RAM_BASE + RAM_SIZE:
                    self.sizes["bss" if sec["sh_type"] == "SHT_NOBITS" else "data"] += size
                    self.ram_static_end = max(self.ram_static_end, addr + size)
                elif flags & SH_FLAGS.SHF_EXECINSTR or sec.name == ".isr_vector":
                    self.sizes["text"] += size
                else:
                    self.sizes["rodata"] += size
                if flags & SH_FLAGS.SHF_EXECINSTR:
                    self.exec_ranges.append((addr, sec.data()))
            self.symbols = {}
            symtab = ef.get_section_by_name(".symtab")
            if symtab is not None:
                for s in symtab.iter_symbols():
                    if s.name and s["st_shndx"] != "SHN_UNDEF":
                        self.symbols.setdefault(s.name, s["st_value"])
        self.sizes["flash"] = self.sizes["text"] + self.sizes["rodata"] + self.sizes["data"]
        self.sizes["static_ram"] = self.sizes["data"] + self.sizes["bss"]

    def func(self, name):
        a = self.symbols.get(name)
        return None if a is None else a & ~1

    def symbol_at(self, addr):
        best = None
        for n, a in self.symbols.items():
            a &= ~1
            if a <= addr and (best is None or a > best[1]):
                best = (n, a)
        return f"{best[0]}+{addr - best[1]:#x}" if best else f"{addr:#x}"


class Simulator:
    """Simulate a benchmark ELF on one core.  ``core`` accepts any name ``cores.get_core`` does."""

    def __init__(self, elf_path, core="cortex-m4"):
        self.core = get_core(core)
        self.elf = _Elf(elf_path)
        self.model = COST_MODELS[self.core.cost_model]()
        self.decoder = Decoder()
        self.warnings = []
        self._mark_observer = None
        for name in ("bench_setup", "bench_invoke", "bench_input_ptr", "bench_output_ptr"):
            if name not in self.elf.symbols:
                raise SimError(f"{elf_path}: missing contract symbol {name!r} (DESIGN.md section 3)")
        if self.core.name == "cortex-m55":
            self.warnings.append("cortex-m55 simulated with unicorn's Cortex-M33 model and the M4 cost table; "
                                 "MVE instructions are not executable")

    # ------------------------------------------------------------------ setup of one unicorn instance
    def _new_uc(self):
        uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
        uc.ctl_set_cpu_model(getattr(A, self.core.unicorn_cpu))
        uc.mem_map(FLASH_BASE, FLASH_SIZE, UC_PROT_ALL)
        uc.mem_map(RAM_BASE, RAM_SIZE, UC_PROT_ALL)
        uc.mem_map(SCS_BASE, SCS_SIZE, UC_PROT_ALL)
        uc.mem_map(TRAP, 0x1000, UC_PROT_ALL)
        for vaddr, paddr, data, memsz in self.elf.segments:
            for base in {vaddr, paddr}:
                if not (FLASH_BASE <= base < FLASH_BASE + FLASH_SIZE or RAM_BASE <= base < RAM_BASE + RAM_SIZE):
                    raise SimError(f"{self.elf.path}: segment at {base:#x} outside FLASH/RAM of DESIGN.md section 3")
                uc.mem_write(base, data)
        return uc

    def _install_hooks(self, uc):
        cache = {}
        self._cache = cache
        self._blocks = []           # [count, size, cond, fallthrough, taken, BlockCost]
        sentinel = [0, 0, False, 0, 0, None]
        state = [sentinel]          # the previously executed block
        decode = self._decode_block

        # The hot path: keep it to a dict lookup and two list updates (speed goal >= 5 M instructions/s).
        def on_block(uc_, address, size, _ud, cache_get=cache.get, state=state):
            b = cache_get(address)
            if b is None or b[1] != size:
                b = cache_get((address, size)) or decode(uc_, address, size)
            b[0] += 1
            last = state[0]
            if last[2] and address != last[3]:
                last[4] += 1
            state[0] = b

        self._state = state
        self._sentinel = sentinel
        uc.hook_add(UC_HOOK_BLOCK, on_block)

        it_addrs, div_ops = set(), {}
        for base, code in self.elf.exec_ranges:
            a, d = prescan(code, base)
            it_addrs |= a
            div_ops.update(d)
        self._it_hits = dict.fromkeys(it_addrs if self.model.uses_it_hooks else (), 0)
        self._it_extra = {}
        self._div_extra = [0]
        self._div_by_addr = {}
        hits = self._it_hits
        for addr in sorted(self._it_hits):
            def on_it(uc_, address, size, _ud):
                hits[address] += 1
            uc.hook_add(UC_HOOK_CODE, on_it, begin=addr, end=addr)
        div_extra = self._div_extra
        model = self.model
        it_set = it_addrs if self.model.uses_it_hooks else set()
        for addr, (signed, rn, rm) in div_ops.items():
            def on_div(uc_, address, size, _ud, signed=signed, rn=_REGS[rn], rm=_REGS[rm]):
                c = model.divide_cycles(uc_.reg_read(rn), uc_.reg_read(rm), signed)
                div_extra[0] += c - (1 if address in it_set else 0)
            uc.hook_add(UC_HOOK_CODE, on_div, begin=addr, end=addr)
        self._div_addrs = set(div_ops)

        self._fault_addr = self.elf.func("spz_hardfault_spin") or self.elf.func("HardFault_Handler")
        self._faulted = [False]
        if self._fault_addr is not None:
            def on_fault(uc_, address, size, _ud):
                self._faulted[0] = True
                uc_.emu_stop()
            uc.hook_add(UC_HOOK_CODE, on_fault, begin=self._fault_addr, end=self._fault_addr)

        self._marks = []
        mark = self.elf.func("spz_profile_mark")
        if mark is not None:
            def on_mark(uc_, address, size, _ud):
                mid = uc_.reg_read(A.UC_ARM_REG_R0)
                self._marks.append((mid, self._totals()))
                if self._mark_observer is not None:
                    self._mark_observer(mid, lambda addr, n: bytes(uc_.mem_read(addr, n)))
            uc.hook_add(UC_HOOK_CODE, on_mark, begin=mark, end=mark)

    def _decode_block(self, uc, address, size):
        if size == 0:
            size = 4
        code = bytes(uc.mem_read(address, size))
        insns = self.decoder.decode_block(code, address)
        if not insns:
            raise SimError(f"HardFault: undecodable instruction at {address:#x} ({self.elf.symbol_at(address)})")
        for ins in insns:
            if illegal_for(self.core, ins):
                raise SimError(f"HardFault (UsageFault): {ins.mnemonic} {ins.op_str} at {ins.address:#x} "
                               f"({self.elf.symbol_at(ins.address)}) is not implemented by {self.core.name}")
            if ins.it_cond and self.model.uses_it_hooks and ins.address not in self._it_hits:
                self.warnings.append(f"IT-conditional instruction at {ins.address:#x} missed by the pre-scan; "
                                     "its passing executions are costed 1")
            if ins.kind == "div" and ins.address not in self._div_addrs:
                self.warnings.append(f"divide at {ins.address:#x} missed by the pre-scan; costed 0")
        bc = self.model.block(insns)
        self._it_extra.update(bc.it_extra)
        end = insns[-1].address + insns[-1].size
        b = [0, size, bc.cond_branch, end, 0, bc]
        if address in self._cache and self._cache[address][1] != size:
            self._cache[(address, size)] = b     # keep the first one under the plain address
        else:
            self._cache[address] = b
        self._blocks.append(b)
        return b

    # ------------------------------------------------------------------ accounting
    def _totals(self):
        """(cycles, instructions, by_class list) accumulated since the last reset."""
        by = [0] * NCLS
        cycles = instrs = 0
        sites = {}
        for idx, (count, _size, cond, _ft, taken, bc) in enumerate(self._blocks):
            if not count:
                continue
            instrs += count * bc.ninsns
            cycles += count * bc.static
            for i, v in enumerate(bc.by_class):
                if v:
                    by[i] += count * v
            if cond:
                cycles += taken * bc.taken_extra
                by[6] += taken * bc.taken_extra
                s = sites.setdefault(idx, [0, 0])     # one branch site per cached block (COST_MODEL.md M7)
                s[0] += count
                s[1] += taken
        for addr, n in self._it_hits.items():
            if n:
                e = self._it_extra.get(addr)
                if e:
                    cycles += n * e[0]
                    by[e[1]] += n * e[0]
        cycles += self._div_extra[0]
        by[2] += self._div_extra[0]
        extra, info = self.model.finish(sites)
        cycles += extra
        by[6] += extra
        return cycles, instrs, by, info

    def block_counts(self):
        """{block start address: (executions, static cycles)} accumulated so far in the current run (static: without
        taken-branch, IT and divide extras); an observer can difference two calls to see where the cycles between
        two marks went, e.g. per function."""
        out = {}
        for key, b in self._cache.items():
            addr = key if isinstance(key, int) else key[0]
            n, c = out.get(addr, (0, 0))
            out[addr] = (n + b[0], c + b[0] * b[5].static)
        return out

    def executed_blocks(self):
        """(start address, cycles, instructions) of every basic block the last run executed: static cost x
        executions plus taken-branch extras (IT and divide extras left out); profilers attribute them to symbols."""
        for key, (count, _size, cond, _ft, taken, bc) in self._cache.items():
            if count:
                yield (key if isinstance(key, int) else key[0],
                       count * bc.static + (taken * bc.taken_extra if cond else 0), count * bc.ninsns)

    def _reset_counts(self):
        for b in self._blocks:
            b[0] = 0
            b[4] = 0
        for k in self._it_hits:
            self._it_hits[k] = 0
        self._div_extra[0] = 0
        self._state[0] = self._sentinel
        self._marks.clear()

    # ------------------------------------------------------------------ calls into the program
    def _call(self, uc, func_addr, sp, what, max_instructions):
        uc.reg_write(A.UC_ARM_REG_SP, sp)
        uc.reg_write(A.UC_ARM_REG_LR, TRAP | 1)
        self._state[0] = self._sentinel
        try:
            # Runaway watchdog without per-block work: a wall-clock limit of 1 us per allowed instruction.
            uc.emu_start(func_addr | 1, TRAP, timeout=max(1_000_000, max_instructions), count=0)
        except UcError as e:
            pc = uc.reg_read(A.UC_ARM_REG_PC)
            raise SimError(f"HardFault during {what}: {e} at pc={pc:#x} ({self.elf.symbol_at(pc)})") from None
        if self._faulted[0]:
            lr = uc.reg_read(A.UC_ARM_REG_LR)
            raise SimError(f"HardFault during {what}: reached the HardFault handler (lr={lr:#x})")
        pc = uc.reg_read(A.UC_ARM_REG_PC)
        if pc & ~1 != TRAP:
            raise SimError(f"{what} stopped at pc={pc:#x} ({self.elf.symbol_at(pc)}) without returning "
                           f"(time limit for max_instructions={max_instructions} reached: runaway?)")

    def _read_u32(self, uc, name):
        a = self.elf.symbols.get(name)
        return None if a is None else struct.unpack("<I", uc.mem_read(a, 4))[0]

    def _paint(self, uc, lo, hi):
        if hi > lo:
            uc.mem_write(lo, bytes([PAINT]) * (hi - lo))

    def _peak(self, uc, lo, sp):
        if sp <= lo:
            return 0
        mem = np.frombuffer(bytes(uc.mem_read(lo, sp - lo)), dtype=np.uint8)
        changed = np.flatnonzero(mem != PAINT)
        return int(sp - (lo + changed[0])) if changed.size else 0

    # ------------------------------------------------------------------ public API
    def run(self, inputs=b"", max_instructions=2_000_000_000, on_mark=None, on_write=None) -> SimResult:
        """Run one inference.  ``inputs``: bytes for input 0, or a list of bytes (one per input; inputs not given
        keep what bench_setup left).  Each given input must be exactly the length the ELF declares.
        ``max_instructions``: bench_invoke executing more raises SimError; every call also gets a wall-clock
        watchdog of max_instructions microseconds (runaway code raises SimError).
        ``on_mark(id, read)``: optional observer called at every ``spz_profile_mark(id)``; ``read(addr, n)``
        returns n bytes of simulated memory at that moment (e.g. the output of the layer that just ended).
        ``on_write``: optional ``(begin, end, fn)``: ``fn(address, size)`` is called for every store bench_invoke
        makes into [begin, end) (a memory hook on that range only; costing is unaffected)."""
        t_wall = time.perf_counter()
        self._mark_observer = on_mark
        self.warnings = [w for w in self.warnings if w.startswith("cortex-m55")]
        uc = self._new_uc()
        self._install_hooks(uc)
        self._max_insns = max_instructions
        sp0 = struct.unpack("<I", uc.mem_read(FLASH_BASE, 4))[0]
        if not (RAM_BASE < sp0 <= RAM_BASE + RAM_SIZE):
            sp0 = RAM_BASE + RAM_SIZE
        sp0 &= ~7
        static_end = (self.elf.ram_static_end + 7) & ~7

        # C/C++ init
        init = self.elf.func("spz_system_init")
        if init is not None:
            self._call(uc, init, sp0, "spz_system_init", max_instructions)
        else:
            for sec in (".preinit_array", ".init_array"):
                if sec in self.elf.sections:
                    addr, size, data = self.elf.sections[sec]
                    for (fn,) in struct.iter_unpack("<I", data):
                        if fn not in (0, 0xFFFFFFFF):
                            self._call(uc, fn & ~1, sp0, f"{sec} entry {fn:#x}", max_instructions)
        self._reset_counts()

        # bench_setup (not timed)
        self._paint(uc, static_end, sp0)
        self._call(uc, self.elf.func("bench_setup"), sp0, "bench_setup", max_instructions)
        setup_cycles, setup_instrs, _, _ = self._totals()
        setup_peak = self._peak(uc, static_end, sp0)
        self._reset_counts()

        # inputs
        in_ptrs, in_lens = self._io_table(uc, "input")
        if isinstance(inputs, (bytes, bytearray, memoryview)):
            inputs = [bytes(inputs)] if len(inputs) else []
        for i, data in enumerate(inputs):
            if i >= len(in_ptrs):
                raise SimError(f"{len(inputs)} inputs given, the ELF has {len(in_ptrs)}")
            if len(data) != in_lens[i]:
                raise SimError(f"input {i}: {len(data)} bytes given, the ELF expects {in_lens[i]}")
            uc.mem_write(in_ptrs[i], bytes(data))

        # bench_invoke (timed)
        self._paint(uc, static_end, sp0)
        if on_write is not None:  # the inference's stores only (not the C runtime's .bss clearing or setup)
            begin, end, fn = on_write

            def on_store(uc_, _access, address, size, _value, _ud):
                fn(address, size)
            uc.hook_add(UC_HOOK_MEM_WRITE, on_store, begin=begin, end=end - 1)
        t0 = time.perf_counter()
        self._call(uc, self.elf.func("bench_invoke"), sp0, "bench_invoke", max_instructions)
        emu = time.perf_counter() - t0
        cycles, instrs, by, info = self._totals()
        peak = self._peak(uc, static_end, sp0)
        if instrs > max_instructions:
            raise SimError(f"bench_invoke executed {instrs} instructions > max_instructions={max_instructions}")

        out_ptrs, out_lens = self._io_table(uc, "output")
        outputs = [bytes(uc.mem_read(p, n)) for p, n in zip(out_ptrs, out_lens)]
        layers = self._layers(cycles, instrs)
        arena = self._read_u32(uc, "bench_arena_used")
        status = self._read_u32(uc, "bench_status")
        extra = dict(info)
        if status is not None:
            extra["bench_status"] = struct.unpack("<i", struct.pack("<I", status))[0]
            if status:
                self.warnings.append(f"bench_status = {extra['bench_status']} (net_run reported failure)")
        s = self.elf.sizes
        return SimResult(
            core=self.core.name, cost_model=self.model.name, cycles=cycles, instructions=instrs,
            cycles_by_class=_whole_cycles(by),
            outputs=outputs, stack_peak_bytes=peak, setup_cycles=setup_cycles, setup_instructions=setup_instrs,
            setup_stack_peak_bytes=setup_peak, layers=layers, text=s["text"], rodata=s["rodata"], data=s["data"],
            bss=s["bss"], flash=s["flash"], static_ram=s["static_ram"], ram_total=s["static_ram"] + peak,
            arena_used=arena, emulation_seconds=emu, wall_seconds=time.perf_counter() - t_wall,
            sim_instructions_per_second=instrs / emu if emu > 0 else math.inf,
            warnings=list(dict.fromkeys(self.warnings)), extra=extra)

    def _io_table(self, uc, kind):
        """Pointers and lengths of all inputs/outputs (bench_<kind>_ptrs[] if exported, else the single pair)."""
        n = self._read_u32(uc, f"bench_num_{kind}s")
        if n is not None and f"bench_{kind}_ptrs" in self.elf.symbols and f"bench_{kind}_lens" in self.elf.symbols:
            pa, la = self.elf.symbols[f"bench_{kind}_ptrs"], self.elf.symbols[f"bench_{kind}_lens"]
            ptrs = list(struct.unpack(f"<{n}I", uc.mem_read(pa, 4 * n)))
            lens = list(struct.unpack(f"<{n}I", uc.mem_read(la, 4 * n)))
        else:
            ptrs = [self._read_u32(uc, f"bench_{kind}_ptr")]
            lens = [self._read_u32(uc, f"bench_{kind}_len") or 0]
        for p, ln in zip(ptrs, lens):
            if ln and not (RAM_BASE <= p and p + ln <= RAM_BASE + RAM_SIZE):
                raise SimError(f"bench_{kind} buffer {p:#x}+{ln} is not in RAM (was bench_setup run?)")
        return ptrs, lens

    def _layers(self, total_cycles, total_instrs):
        marks = self._marks
        if not marks:
            return []
        recs = {}
        order = []

        def add(key, c, n):
            if key not in recs:
                recs[key] = LayerRecord(key, 0, 0, 0)
                order.append(key)
            r = recs[key]
            r.cycles += c
            r.instructions += n
            r.calls += 1

        prev_id, prev_c, prev_n = "overhead", 0, 0
        for mid, (c, n, _by, _info) in marks:
            add(prev_id, c - prev_c, n - prev_n)
            prev_id = "overhead" if mid == 0xFFFFFFFF else mid
            prev_c, prev_n = c, n
        add(prev_id, total_cycles - prev_c, total_instrs - prev_n)
        out = [recs[k] for k in order if k != "overhead"]
        if "overhead" in recs:
            out.append(recs["overhead"])
        return out
