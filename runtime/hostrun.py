"""Host runner: compile a generated library with the host C compiler, load it with ctypes, run it.

How it works
1. `build_host_library(src_dir, prefix)` compiles every .c file of the generated library into a shared object
   with `-std=c99 -Wall -Wextra -Werror` (and `-fsanitize=address,undefined` when asked). A compile failure
   raises HostBuildError with the command and the compiler's first lines.
2. `HostLibrary.run(inputs)` allocates an aligned arena, calls `<prefix>_reset` (a fresh inference), copies each
   input to `<prefix>_input(arena, i)`, calls `<prefix>_run` and copies the outputs from
   `<prefix>_output(arena, i)`. `run_stream(frames)` resets once and runs every frame in the same arena, so the
   state of a stateful model (LSTM) carries from frame to frame, as in TFLite Micro across invoke() calls.
3. A sanitized library cannot be loaded into an uninstrumented Python without the ASan runtime first in the
   process, so `run` executes it in a child Python started with LD_PRELOAD=libasan; any sanitizer report fails
   the run (halt_on_error), and its text is in the raised error.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


class HostBuildError(RuntimeError):
    pass


class HostRunError(RuntimeError):
    pass


def host_cc() -> str:
    return os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or "cc"


def build_host_library(src_dir: Path, prefix: str, out: Optional[Path] = None, sanitize: bool = False,
                       cc: Optional[str] = None, opt: str = "-O1") -> Path:
    src_dir = Path(src_dir)
    cc = cc or host_cc()
    sources = sorted(str(p) for p in src_dir.glob("*.c"))
    out = Path(out) if out else src_dir / (f"lib{prefix}" + ("_san" if sanitize else "") + ".so")
    cmd = [cc, "-std=c99", opt, "-g", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", f"-I{src_dir}"]
    if "clang" not in Path(cc).name:
        cmd.append("-fno-var-tracking")  # gcc's variable tracking is very slow on long unrolled kernels
    if sanitize:
        cmd += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    cmd += sources + ["-o", str(out), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        first = "\n".join((r.stderr or r.stdout).splitlines()[:20])
        raise HostBuildError(f"host compile of {src_dir} failed: {' '.join(cmd)}\n{first}")
    return out


@dataclass
class IOSpec:
    dtype: str
    shape: tuple


class HostLibrary:
    def __init__(self, so_path: Path, prefix: str, arena_size: int, inputs: Sequence[IOSpec],
                 outputs: Sequence[IOSpec], sanitized: bool = False):
        self.so_path = Path(so_path)
        self.prefix = prefix
        self.arena_size = arena_size
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.sanitized = sanitized
        self._lib = None

    def _load(self):
        if self._lib is None:
            lib = ctypes.CDLL(str(self.so_path))
            for fn in ("input", "output"):
                f = getattr(lib, f"{self.prefix}_{fn}")
                f.restype = ctypes.c_void_p
                f.argtypes = [ctypes.c_void_p, ctypes.c_int]
            run = getattr(lib, f"{self.prefix}_run")
            run.restype = ctypes.c_int
            run.argtypes = [ctypes.c_void_p]
            reset = getattr(lib, f"{self.prefix}_reset")
            reset.restype = None
            reset.argtypes = [ctypes.c_void_p]
            self._lib = lib
        return self._lib

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One fresh inference."""
        return self.run_stream([inputs])[0]

    def run_stream(self, frames: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
        """Reset once, then run every frame (a list of inputs) in one arena; the outputs of every frame."""
        if self.sanitized:
            return self._run_child(frames)
        return self._run_here(frames)

    def _run_here(self, frames: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
        lib = self._load()
        raw = (ctypes.c_uint8 * (self.arena_size + 64))()
        base = (ctypes.addressof(raw) + 15) & ~15
        # poison the arena so that reads of unwritten bytes show up as differences
        ctypes.memset(base, 0xA5, self.arena_size)
        getattr(lib, f"{self.prefix}_reset")(base)
        result = []
        for inputs in frames:
            for i, (spec, arr) in enumerate(zip(self.inputs, inputs)):
                a = np.ascontiguousarray(np.asarray(arr, dtype=spec.dtype).reshape(spec.shape))
                ptr = getattr(lib, f"{self.prefix}_input")(base, i)
                ctypes.memmove(ptr, a.ctypes.data, a.nbytes)
            rc = getattr(lib, f"{self.prefix}_run")(base)
            if rc != 0:
                raise HostRunError(f"{self.prefix}_run returned {rc}")
            outs = []
            for i, spec in enumerate(self.outputs):
                ptr = getattr(lib, f"{self.prefix}_output")(base, i)
                n = int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize
                buf = ctypes.string_at(ptr, n)
                outs.append(np.frombuffer(buf, dtype=spec.dtype).reshape(spec.shape).copy())
            result.append(outs)
        return result

    def _run_child(self, frames: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
        asan = subprocess.run([host_cc(), "-print-file-name=libasan.so"], capture_output=True, text=True
                              ).stdout.strip()
        env = dict(os.environ)
        env["LD_PRELOAD"] = asan
        env["ASAN_OPTIONS"] = "detect_leaks=0:halt_on_error=1:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
        with tempfile.TemporaryDirectory() as td:
            req = Path(td) / "req.pkl"
            res = Path(td) / "res.pkl"
            clone = HostLibrary(self.so_path, self.prefix, self.arena_size, self.inputs, self.outputs, False)
            req.write_bytes(pickle.dumps((clone, [[np.asarray(a) for a in inputs] for inputs in frames])))
            r = subprocess.run([sys.executable, "-m", "specializer.runtime.hostrun", str(req), str(res)],
                               env=env, capture_output=True, text=True)
            if r.returncode != 0 or not res.exists():
                text = r.stderr or r.stdout
                start = max(text.find("ERROR: AddressSanitizer"), text.find("runtime error"), 0)
                raise HostRunError(f"sanitized run of {self.so_path.name} failed (exit {r.returncode}):\n"
                                   + text[start:start + 4000])
            return pickle.loads(res.read_bytes())

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_lib"] = None
        return d


def _child_main(req: str, res: str) -> None:
    lib, frames = pickle.loads(Path(req).read_bytes())
    outs = lib._run_here(frames)
    Path(res).write_bytes(pickle.dumps(outs))


if __name__ == "__main__":
    _child_main(sys.argv[1], sys.argv[2])
