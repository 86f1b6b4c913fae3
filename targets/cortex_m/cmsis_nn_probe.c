/* Probe harness: asks CMSIS-NN, compiled for the target core, how much scratch memory each layer needs.
 *
 * How it works:
 * 1. specializer.cmsis_nn generates `spz_cmsis_probe_sizes(int32_t *sizes)`, which fills sizes[k] with the
 *    result of layer k's CMSIS-NN `*_get_buffer_size` call, and `spz_cmsis_probe_count`.
 * 2. This file wraps it in the ELF contract of DESIGN.md section 3: no input, bench_invoke() runs the size calls,
 *    the output is the int32 array (little-endian), read back by the simulator.
 * Link with startup.c, the generated file and the CMSIS-NN archive.
 */
#include <stdint.h>

#define SPZ_PROBE_MAX 4096u

extern const uint32_t spz_cmsis_probe_count;
void spz_cmsis_probe_sizes(int32_t *sizes);

static int32_t g_sizes[SPZ_PROBE_MAX];

int8_t *bench_input_ptr;
uint32_t bench_input_len;
int8_t *bench_output_ptr;
uint32_t bench_output_len;
int32_t bench_status;

void bench_setup(void);
void bench_invoke(void);

__attribute__((noinline)) void bench_setup(void)
{
    uint32_t n = spz_cmsis_probe_count < SPZ_PROBE_MAX ? spz_cmsis_probe_count : SPZ_PROBE_MAX;
    bench_input_ptr = (int8_t *)(void *)g_sizes;
    bench_input_len = 0u;
    bench_output_ptr = (int8_t *)(void *)g_sizes;
    bench_output_len = n * (uint32_t)sizeof(int32_t);
    bench_status = spz_cmsis_probe_count <= SPZ_PROBE_MAX ? 0 : 1;
}

__attribute__((noinline)) void bench_invoke(void)
{
    spz_cmsis_probe_sizes(g_sizes);
}
