"""Target back-ends of specializer (package ``specializer.targets``).

1. ``cortex_m`` is the only target family: core descriptions, the arm-none-eabi-gcc driver,
   the startup code / linker script / benchmark harness, and the cycle-counting simulator.
"""
