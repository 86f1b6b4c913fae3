"""Independent check against QEMU (mps2-an386 = Cortex-M4, -icount shift=0, semihosting).

The toy library is built a second time with -DSPZ_SEMIHOSTING (bench_harness.c adds a main() that fills the
inputs with a fixed pattern, runs one inference and prints the outputs) and FLASH moved to 0x0 (where the MPS2
board boots).  QEMU runs it with one instruction per translation block and an exec trace; the number of trace
lines from bench_invoke's entry until control is back in main is the executed instruction count, which must
equal the simulator's.  Outputs must match byte for byte.
"""
import re
from pathlib import Path
import shutil
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from specializer.targets.cortex_m import support_file
from specializer.targets.cortex_m.sim import Simulator
from specializer.targets.cortex_m.toolchain import build_elf

DATA = Path(__file__).resolve().parent / "data"

QEMU = shutil.which("qemu-system-arm")
pytestmark = pytest.mark.skipif(QEMU is None, reason="qemu-system-arm not installed (apt-get install qemu-system-arm)")

TOY = DATA / "toy"
DEFS = ['SPZ_MODEL_HEADER="toy.h"', "SPZ_PREFIX=toy", "SPZ_PREFIX_UPPER=TOY"]


def _pattern(i, n):
    return bytes(((j * 7 + i * 13 + 1) & 0xFF) for j in range(n))


def _symbols(elf):
    with open(elf, "rb") as f:
        st = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: (s["st_value"] & ~1, s["st_size"]) for s in st.iter_symbols() if s.name}


def test_qemu_matches_outputs_and_instruction_count(build_dir, tmp_path):
    ld = tmp_path / "qemu.ld"
    ld.write_text(support_file("cortex_m.ld").read_text().replace("ORIGIN = 0x08000000", "ORIGIN = 0x00000000"))
    srcs = [TOY / "toy.c", support_file("bench_harness.c")]
    semi = build_elf(srcs, [TOY], "m4", build_dir / "toy_semi", defines=DEFS + ["SPZ_SEMIHOSTING"],
                     name="toy_semi", linker_script=ld)
    plain = build_elf(srcs, [TOY], "m4", build_dir / "toy_plain", defines=DEFS, name="toy_plain")

    log, console = tmp_path / "exec.log", tmp_path / "semihosting.txt"
    proc = subprocess.run([QEMU, "-M", "mps2-an386", "-nographic", "-chardev", f"file,id=sh0,path={console}",
                           "-semihosting-config", "enable=on,target=native,chardev=sh0", "-icount", "shift=0",
                           "-singlestep", "-d", "exec,nochain", "-D", str(log), "-kernel", str(semi)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    blobs, cur = [], None
    for line in console.read_text().splitlines():
        if line.startswith("output "):
            cur = line.split()[1] if len(line.split()) > 1 else ""
            blobs.append(cur)
        elif re.fullmatch(r"[0-9a-f]+", line.strip()) and blobs:
            blobs[-1] += line.strip()
    qemu_outputs = [bytes.fromhex(b) for b in blobs]

    res = Simulator(plain, core="m4").run([_pattern(0, 64), _pattern(1, 8)])
    assert res.outputs == qemu_outputs

    syms = _symbols(semi)
    invoke = syms["bench_invoke"][0]
    main_lo, main_size = syms["main"]
    pcs = [int(m.group(1), 16) for m in re.finditer(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/", log.read_text(),
                                                      re.M)]
    start = pcs.index(invoke)
    end = next(i for i in range(start, len(pcs)) if main_lo <= pcs[i] < main_lo + main_size)
    assert end - start == res.instructions
