"""`make demo`: the main job end to end on the bundled demo model.

How it works
1. Builds the demo keyword-spotting model with the project's own TFLite writer (`zoo.demo_kws`) into
   build/demo/demo_kws.tflite.
2. Compiles it to build/demo/out/ (kws.h, kws.c, kws_weights.c, spz_runtime.h) and prints the inspection report.
3. Builds the library for the host with ASan/UBSan and checks it bit for bit against TensorFlow Lite Micro on
   20 random inputs.
4. If arm-none-eabi-gcc is installed, cross-compiles for the Cortex-M4 and prints the simulator's per-layer
   cycles, RAM and flash.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    import specializer
    from specializer import zoo
    from specializer.oracle import diff_outputs, run_tflm

    root = Path("build/demo")
    root.mkdir(parents=True, exist_ok=True)
    model = root / "demo_kws.tflite"
    model.write_bytes(zoo.demo_kws())
    print(f"== 1. demo model written by specializer's TFLite writer: {model} ({model.stat().st_size} bytes)")

    out = root / "out"
    if out.exists():
        shutil.rmtree(out)
    print(f"\n== 2. specializer compile {model} --name kws -o {out}")
    res = specializer.compile(model, name="kws", out_dir=out)
    for f in res.files:
        print(f"   {f} ({f.stat().st_size} bytes)")
    print(f"   arena: {res.arena_size} bytes (KWS_ARENA_SIZE); {res.library.layers} layers, "
          f"{res.library.functions} kernel functions")
    print()
    print(specializer.inspect_model(model))

    print("== 3. host build (gcc, -fsanitize=address,undefined) vs TensorFlow Lite Micro, 20 random inputs")
    lib = res.host_library(sanitize=True, build_dir=root)
    rng = np.random.default_rng(0)
    data = model.read_bytes()
    bad = []
    for case in range(20):
        x = rng.integers(-128, 128, size=res.inputs[0].shape).astype(np.int8)
        ref = run_tflm(data, [x])
        got = lib.run([x])
        bad += diff_outputs(ref, got, case)
        if case == 0:
            print(f"   input 0 -> kws output {got[0].reshape(-1).tolist()}")
            print(f"              TFLM output {ref[0].reshape(-1).tolist()}")
    print("   bit-exact on 20/20 inputs" if not bad else f"   NOT bit-exact: {bad[0]}")

    if shutil.which("arm-none-eabi-gcc"):
        from specializer.bench import bench_model, format_report

        print("\n== 4. specializer bench (Cortex-M4, cycle-approximate simulator)")
        rep = bench_model(model, "cortex-m4", build_dir=root / "m4", label="demo_kws")
        print(format_report(rep))
    else:
        print("\n== 4. skipped: arm-none-eabi-gcc not installed (make toolchain)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
