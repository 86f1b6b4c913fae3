"""Fixtures for target tests: skip cleanly without arm-none-eabi-gcc; build helpers for small ELFs."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


def _have_gcc():
    return shutil.which("arm-none-eabi-gcc") is not None


NO_GCC = "arm-none-eabi-gcc not installed (sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    """Scratch directory for ELF builds; every test that builds skips here when the toolchain is missing."""
    if not _have_gcc():
        pytest.skip(NO_GCC)
    return tmp_path_factory.mktemp("target_build")


@pytest.fixture(scope="session")
def build_micro(build_dir):
    """build_micro(case, core='m4') -> ELF of data/micro.S with -DCASE_<case>=1 plus data/micro_main.c."""
    from specializer.targets.cortex_m.toolchain import build_elf
    cache = {}

    def build(case, core="m4"):
        key = (case, core)
        if key not in cache:
            cache[key] = build_elf([DATA / "micro.S", DATA / "micro_main.c"], [DATA], core,
                                   build_dir / f"micro_{case}_{core}", defines=[f"CASE_{case}=1"] + (["WANT_DP"] if case == "dp" else []), name=case)
        return cache[key]

    return build
