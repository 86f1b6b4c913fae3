"""Cortex-M core descriptions.

How it works:
1. One frozen ``Core`` per supported CPU holds everything other layers need to know about it: the gcc
   ``-mcpu``/``-mfpu``/``-mfloat-abi`` flags, the feature set the kernel registry matches on
   (``dsp``, ``fpu_sp``, ``fpu_dp``, ``mve``), the name of the simulator cost model, and the unicorn CPU model.
2. ``get_core(name)`` accepts the full name ("cortex-m4"), the short name ("m4") and a few spellings
   ("cortex-m0+", "m0plus"); anything else raises ``UnknownTarget`` listing the known names.

Simulation notes:
* unicorn 2.1.x has models for M0, M3, M4, M7 and M33 (no M0+, no M55).  Cortex-M0+ runs on unicorn's Cortex-M0
  model (same ARMv6-M instruction set); Cortex-M55 runs on the Cortex-M33 functional model with the Cortex-M4 cost
  table, so MVE (Helium) instructions cannot be executed by the simulator (they fault as undefined).
* Cortex-M33 uses the Cortex-M4 cost table (no public cycle table of its own).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Core", "UnknownTarget", "get_core", "CORES", "core_names"]


class UnknownTarget(ValueError):
    """Raised by ``get_core`` for a name that is not a known Cortex-M core."""


@dataclass(frozen=True)
class Core:
    """A Cortex-M CPU as the compiler, the kernel registry and the simulator see it.

    name        canonical name, e.g. "cortex-m4"
    cpu_flag    gcc ``-mcpu=`` value
    fpu_flags   extra gcc flags selecting the FPU (empty tuple when there is none)
    float_abi   gcc ``-mfloat-abi=`` value ("soft" or "hard")
    features    subset of {"dsp", "fpu_sp", "fpu_dp", "mve"}
    cost_model  simulator cost-model family: "m0plus", "m3", "m4" or "m7"
    unicorn_cpu name of the unicorn ``UC_CPU_ARM_*`` constant the simulator selects explicitly
    """

    name: str
    cpu_flag: str
    fpu_flags: tuple
    float_abi: str
    features: frozenset
    cost_model: str
    unicorn_cpu: str

    @property
    def short_name(self) -> str:
        """"m4" for "cortex-m4"."""
        return self.name.replace("cortex-", "")

    @property
    def has_fpu(self) -> bool:
        return "fpu_sp" in self.features

    def cflags(self) -> list:
        """gcc flags selecting this core (``-mcpu``, ``-mthumb``, FPU, float ABI)."""
        return [f"-mcpu={self.cpu_flag}", "-mthumb", *self.fpu_flags, f"-mfloat-abi={self.float_abi}"]


_CORES = (
    Core("cortex-m0plus", "cortex-m0plus", (), "soft", frozenset(), "m0plus", "UC_CPU_ARM_CORTEX_M0"),
    Core("cortex-m3", "cortex-m3", (), "soft", frozenset(), "m3", "UC_CPU_ARM_CORTEX_M3"),
    Core("cortex-m4", "cortex-m4", ("-mfpu=fpv4-sp-d16",), "hard", frozenset({"dsp", "fpu_sp"}), "m4",
         "UC_CPU_ARM_CORTEX_M4"),
    Core("cortex-m7", "cortex-m7", ("-mfpu=fpv5-d16",), "hard", frozenset({"dsp", "fpu_sp", "fpu_dp"}), "m7",
         "UC_CPU_ARM_CORTEX_M7"),
    # The common M33 configuration (DSP extension + single-precision FPv5).
    Core("cortex-m33", "cortex-m33", ("-mfpu=fpv5-sp-d16",), "hard", frozenset({"dsp", "fpu_sp"}), "m4",
         "UC_CPU_ARM_CORTEX_M33"),
    # gcc's cortex-m55 default includes MVE with FP; unicorn has no M55: simulated with the M33 model.
    Core("cortex-m55", "cortex-m55", (), "hard", frozenset({"dsp", "fpu_sp", "fpu_dp", "mve"}), "m4",
         "UC_CPU_ARM_CORTEX_M33"),
)

CORES = {c.name: c for c in _CORES}

_ALIASES = {}
for _c in _CORES:
    _ALIASES[_c.name] = _c
    _ALIASES[_c.short_name] = _c
_ALIASES.update({"cortex-m0+": CORES["cortex-m0plus"], "m0+": CORES["cortex-m0plus"],
                 "cortex-m0": CORES["cortex-m0plus"], "m0": CORES["cortex-m0plus"]})


def core_names() -> list:
    """Canonical names of all known cores."""
    return list(CORES)


def get_core(name) -> Core:
    """Return the ``Core`` for ``name`` ("cortex-m4", "m4", "M4" ...); a ``Core`` is returned unchanged.

    Raises ``UnknownTarget`` (a ``ValueError``) naming every known core otherwise.
    """
    if isinstance(name, Core):
        return name
    key = str(name).strip().lower()
    core = _ALIASES.get(key)
    if core is None:
        known = ", ".join(f"{c.name} ({c.short_name})" for c in _CORES)
        raise UnknownTarget(f"unknown Cortex-M target {name!r}; known targets: {known}")
    return core
