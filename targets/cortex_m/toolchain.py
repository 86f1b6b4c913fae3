"""arm-none-eabi-gcc driver: build benchmark ELFs and measure their sections.

How it works:
1. ``ensure_toolchain()`` finds ``arm-none-eabi-gcc`` on PATH (or ``$SPZ_ARM_GCC``) and raises
   ``ToolchainMissing`` with the apt-get command when it is absent.
2. ``build_elf()`` compiles every source (plus ``startup.c`` unless told otherwise) to an object in ``out_dir``
   with the core's flags, ``-ffunction-sections -fdata-sections`` and, for our own sources, ``-Wall -Wextra
   -Werror``; then links with ``cortex_m.ld``, ``-nostartfiles --specs=nosys.specs -Wl,--gc-sections``.
   A compiler or linker failure raises ``ToolchainError`` naming the file, the full command and the first error
   lines; callers that know more (layer, template) catch it and add to the message.
3. ``size_report(elf)`` classifies allocated sections by address (FLASH 0x08000000, RAM 0x20000000) and flags:
   text = executable flash sections (incl. the vector table), rodata = other flash sections, data = RAM
   PROGBITS, bss = RAM NOBITS; flash = text + rodata + data, static_ram = data + bss.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from . import SUPPORT_DIR
from .cores import get_core

__all__ = ["ToolchainError", "ToolchainMissing", "ensure_toolchain", "build_elf", "compile_object",
           "size_report", "FLASH_BASE", "FLASH_SIZE", "RAM_BASE", "RAM_SIZE", "WARN_FLAGS", "COMMON_FLAGS"]

FLASH_BASE, FLASH_SIZE = 0x08000000, 4 << 20
RAM_BASE, RAM_SIZE = 0x20000000, 1 << 20

WARN_FLAGS = ("-Wall", "-Wextra", "-Werror")
COMMON_FLAGS = ("-ffunction-sections", "-fdata-sections", "-fno-common", "-std=c11")
LINK_FLAGS = ("-nostartfiles", "--specs=nosys.specs", "-Wl,--gc-sections")

APT_HINT = "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi"


class ToolchainError(RuntimeError):
    """A compile or link step failed.  Attributes: ``file``, ``command`` (list), ``stderr``."""

    def __init__(self, message, file=None, command=None, stderr=""):
        super().__init__(message)
        self.file = file
        self.command = command
        self.stderr = stderr


class ToolchainMissing(ToolchainError):
    """arm-none-eabi-gcc is not installed."""


def ensure_toolchain() -> Path:
    """Return the path of arm-none-eabi-gcc, or raise ``ToolchainMissing`` with the install command."""
    cand = os.environ.get("SPZ_ARM_GCC") or shutil.which("arm-none-eabi-gcc")
    if not cand or not Path(cand).exists():
        raise ToolchainMissing(f"arm-none-eabi-gcc not found on PATH; install it with: {APT_HINT}")
    return Path(cand)


def _first_errors(stderr: str, n: int = 12) -> str:
    lines = stderr.splitlines()
    errs = [i for i, ln in enumerate(lines) if "error" in ln.lower()]
    start = max(0, errs[0] - 2) if errs else 0
    return "\n".join(lines[start:start + n])


def _run(cmd, file, what):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (f"{what} failed for {file}\n  command: {shlex.join(str(c) for c in cmd)}\n"
               f"{_first_errors(proc.stderr or proc.stdout)}")
        raise ToolchainError(msg, file=str(file), command=[str(c) for c in cmd], stderr=proc.stderr)
    return proc


def compile_object(source, core, out_dir, opt="-O2", include_dirs=(), defines=(), extra_cflags=(),
                   warnings=True) -> Path:
    """Compile one C (or .S) file to ``out_dir/<stem>.o``; return the object path.

    ``defines`` are "NAME" or "NAME=VALUE" strings (no -D).  ``warnings`` adds -Wall -Wextra -Werror.
    """
    gcc = ensure_toolchain()
    core = get_core(core)
    source = Path(source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / (source.stem + ".o")
    cmd = [gcc, *core.cflags(), opt, "-g", *COMMON_FLAGS]
    if warnings:
        cmd += WARN_FLAGS
    cmd += [f"-I{d}" for d in include_dirs] + [f"-I{SUPPORT_DIR}"]
    cmd += [f"-D{d}" for d in defines]
    cmd += list(extra_cflags)
    cmd += ["-c", source, "-o", obj]
    _run(cmd, source, "compile")
    return obj


def build_elf(c_sources, include_dirs, core, out_dir, opt="-O2", defines=(), extra_cflags=(),
              name="app", with_startup=True, link_flags=(), objects=(), linker_script=None) -> Path:
    """Compile ``c_sources`` (+ startup.c) for ``core`` and link ``out_dir/<name>.elf``; return its path.

    Sources may be .c or .S; two sources with the same file stem are rejected (objects would collide).
    ``objects`` are extra prebuilt objects/archives to link; ``linker_script`` replaces cortex_m.ld (e.g. a copy
    with another FLASH origin for QEMU).  Raises ``ToolchainError`` on failure.
    """
    gcc = ensure_toolchain()
    core = get_core(core)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [Path(s) for s in c_sources]
    if with_startup:
        sources = [SUPPORT_DIR / "startup.c"] + sources
    stems = [s.stem for s in sources]
    dup = {s for s in stems if stems.count(s) > 1}
    if dup:
        raise ToolchainError(f"duplicate source file names {sorted(dup)} in build of {name}")
    objs = []
    for src in sources:
        # startup.c is compiled like the baseline's startup (-O2) so reset code is identical across builds.
        objs.append(compile_object(src, core, out_dir / "obj", opt="-O2" if src.name == "startup.c" else opt,
                                   include_dirs=include_dirs, defines=defines, extra_cflags=extra_cflags))
    elf = out_dir / f"{name}.elf"
    cmd = [gcc, *core.cflags(), *LINK_FLAGS, f"-T{linker_script or SUPPORT_DIR / 'cortex_m.ld'}",
           f"-Wl,-Map={out_dir / (name + '.map')}", *objs, *objects, *link_flags, "-lm", "-o", elf]
    _run(cmd, elf, "link")
    return elf


def size_report(elf) -> dict:
    """Section sizes of a linked ELF: dict(text, rodata, data, bss, flash, static_ram) in bytes."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.constants import SH_FLAGS

    text = rodata = data = bss = 0
    with open(elf, "rb") as f:
        ef = ELFFile(f)
        for sec in ef.iter_sections():
            flags = sec["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC or sec["sh_size"] == 0:
                continue
            addr, size = sec["sh_addr"], sec["sh_size"]
            if RAM_BASE <= addr < RAM_BASE + RAM_SIZE:
                if sec["sh_type"] == "SHT_NOBITS":
                    bss += size
                else:
                    data += size
            elif flags & SH_FLAGS.SHF_EXECINSTR or sec.name == ".isr_vector":
                text += size
            else:
                rodata += size
    return dict(text=text, rodata=rodata, data=data, bss=bss, flash=text + rodata + data,
                static_ram=data + bss)
