"""Arm Cortex-M target (package ``specializer.targets.cortex_m``).

How it works:
1. ``cores``      -- one frozen ``Core`` per supported CPU (compiler flags, features, cost model, unicorn model).
2. ``toolchain``  -- drives arm-none-eabi-gcc: compile startup.c + sources, link with cortex_m.ld, size report.
3. ``startup.c`` / ``cortex_m.ld`` / ``bench_harness.c`` / ``spz_profile.h`` -- C support files, located with
   ``support_file(name)``.
4. ``sim``        -- unicorn + capstone simulator implementing the ELF contract of DESIGN.md section 3 and the
   cycle rules of COST_MODEL.md.
"""
from pathlib import Path

SUPPORT_DIR = Path(__file__).resolve().parent


def support_file(name: str) -> Path:
    """Absolute path of a C support file shipped with this package (e.g. ``"bench_harness.c"``)."""
    p = SUPPORT_DIR / name
    if not p.exists():
        raise FileNotFoundError(p)
    return p
