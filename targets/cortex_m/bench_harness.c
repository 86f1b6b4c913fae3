/* Generic benchmark harness: wraps a specializer-generated network library in the ELF contract of
 * DESIGN.md section 3 (bench_setup / bench_invoke / bench_input_ptr / ... symbols).
 *
 * Compile contract (all three macros are required):
 *   -DSPZ_MODEL_HEADER='"kws.h"'   the generated header, found through -I <out dir>
 *   -DSPZ_PREFIX=kws               lower-case network name: functions kws_input/kws_output/kws_run
 *   -DSPZ_PREFIX_UPPER=KWS         upper-case network name: macros KWS_ARENA_SIZE, KWS_INPUT0_SIZE, ...
 *   -DSPZ_PROFILE                  optional; the generated code then calls spz_profile_mark() (spz_profile.h)
 *   -DSPZ_SEMIHOSTING              optional; adds a main() for QEMU (-semihosting) that fills the inputs with a
 *                                  fixed pattern, runs one inference, prints the outputs as hex and exits.
 * Compile together with startup.c, the generated .c files and -I <dir of this file> (for spz_profile.h).
 *
 * How it works:
 * 1. The arena is a static, aligned array of exactly NET_ARENA_SIZE bytes (so .bss includes it).
 * 2. bench_setup() points bench_input_ptr/bench_output_ptr (input 0 / output 0) and the arrays
 *    bench_input_ptrs[]/bench_input_lens[]/bench_num_inputs (and the output twins) at the arena.
 * 3. bench_invoke() runs exactly one inference; its return status is kept in bench_status.
 * Any number of inputs and outputs (the header's <NAME>_INPUT_SIZES / _OUTPUT_SIZES initializers).
 */
#include <stdint.h>
#include <stddef.h>

#include "spz_profile.h"

#if !defined(SPZ_MODEL_HEADER) || !defined(SPZ_PREFIX) || !defined(SPZ_PREFIX_UPPER)
#error "compile with -DSPZ_MODEL_HEADER='\"net.h\"' -DSPZ_PREFIX=net -DSPZ_PREFIX_UPPER=NET"
#endif

#include SPZ_MODEL_HEADER

#define SPZ_CAT_(a, b) a##b
#define SPZ_CAT(a, b) SPZ_CAT_(a, b)
#define SPZ_FN(suffix) SPZ_CAT(SPZ_PREFIX, suffix)
#define SPZ_DEF(suffix) SPZ_CAT(SPZ_PREFIX_UPPER, suffix)

#define SPZ_NUM_IN SPZ_DEF(_NUM_INPUTS)
#define SPZ_NUM_OUT SPZ_DEF(_NUM_OUTPUTS)

#if SPZ_NUM_IN < 1 || SPZ_NUM_OUT < 1
#error "bench_harness.c needs at least one input and one output"
#endif

static uint8_t g_arena[SPZ_DEF(_ARENA_SIZE)] __attribute__((aligned(SPZ_DEF(_ARENA_ALIGN))));

int8_t *bench_input_ptr;
uint32_t bench_input_len;
int8_t *bench_output_ptr;
uint32_t bench_output_len;
uint32_t bench_arena_used = SPZ_DEF(_ARENA_SIZE);
int32_t bench_status;

uint32_t bench_num_inputs = SPZ_NUM_IN;
uint32_t bench_num_outputs = SPZ_NUM_OUT;
int8_t *bench_input_ptrs[SPZ_NUM_IN];
int8_t *bench_output_ptrs[SPZ_NUM_OUT];

const uint32_t bench_input_lens[SPZ_NUM_IN] = SPZ_DEF(_INPUT_SIZES);
const uint32_t bench_output_lens[SPZ_NUM_OUT] = SPZ_DEF(_OUTPUT_SIZES);

void bench_setup(void);
void bench_invoke(void);

/* The profiling hook: an empty, never-inlined function whose address the simulator hooks. */
__attribute__((noinline, used)) void spz_profile_mark(uint32_t id)
{
    __asm__ volatile("" : : "r"(id) : "memory");
}

__attribute__((noinline)) void bench_setup(void)
{
    for (int i = 0; i < SPZ_NUM_IN; i++) {
        bench_input_ptrs[i] = (int8_t *)(void *)SPZ_FN(_input)(g_arena, i);
    }
    for (int i = 0; i < SPZ_NUM_OUT; i++) {
        bench_output_ptrs[i] = (int8_t *)(void *)SPZ_FN(_output)(g_arena, i);
    }
    bench_input_ptr = bench_input_ptrs[0];
    bench_input_len = bench_input_lens[0];
    bench_output_ptr = bench_output_ptrs[0];
    bench_output_len = bench_output_lens[0];
}

__attribute__((noinline)) void bench_invoke(void)
{
#if SPZ_DEF(_HAS_STATE)
    /* every invoke is one fresh inference, as the reference pairs were made (state cleared first) */
    SPZ_FN(_reset)(g_arena);
#endif
    bench_status = SPZ_FN(_run)(g_arena);
}

#ifdef SPZ_SEMIHOSTING
#include "spz_semihost.h"

int main(void)
{
    bench_setup();
    for (uint32_t i = 0; i < bench_num_inputs; i++) {
        for (uint32_t j = 0; j < bench_input_lens[i]; j++) {
            bench_input_ptrs[i][j] = (int8_t)(uint8_t)(j * 7u + i * 13u + 1u);
        }
    }
    bench_invoke();
    spz_semihost_dump("status", (const uint8_t *)&bench_status, sizeof bench_status);
    for (uint32_t i = 0; i < bench_num_outputs; i++) {
        spz_semihost_dump("output", (const uint8_t *)bench_output_ptrs[i], bench_output_lens[i]);
    }
    spz_semihost_exit(0);
    return 0;
}
#endif
