/* Minimal DESIGN.md section 3 wrapper around the hand-written micro-benchmarks in micro.S:
 * bench_invoke is the assembly routine itself; bench_setup points the I/O pointers at a small buffer
 * whose first word points at itself (for the dependent-load chain). */
#include <stdint.h>

uint32_t micro_buf[16] __attribute__((aligned(8)));
int8_t *bench_input_ptr;
uint32_t bench_input_len;
int8_t *bench_output_ptr;
uint32_t bench_output_len;

void bench_setup(void);

void bench_setup(void)
{
    micro_buf[0] = (uint32_t)(uintptr_t)&micro_buf[0];
    bench_input_ptr = (int8_t *)&micro_buf[4];
    bench_input_len = 4;
    bench_output_ptr = (int8_t *)&micro_buf[8];
    bench_output_len = 4;
}
