/* Startup code for specializer Cortex-M benchmark ELFs.
 *
 * How it works:
 * 1. `g_spz_vectors` (section .isr_vector, placed at 0x08000000 by cortex_m.ld) holds the initial stack
 *    pointer (top of RAM) and the reset / fault handlers.
 * 2. `Reset_Handler` calls `spz_system_init` (copy .data, zero .bss, enable the FPU through CPACR when
 *    built with an FPU, run preinit/init arrays), then `main` if the program has one, then parks in
 *    `spz_exit_loop`.  The simulator calls `spz_system_init` directly (it returns), then the benchmark
 *    functions of DESIGN.md section 3.
 * 3. Every fault vector points at `HardFault_Handler`, which spins on the label `spz_hardfault_spin`;
 *    the simulator stops there and reports "HardFault".
 * No heap, no _sbrk.
 */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void (*__preinit_array_start[])(void);
extern void (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void) __attribute__((weak));
void Reset_Handler(void);
void HardFault_Handler(void);
void Default_Handler(void);
void spz_system_init(void);
void spz_exit_loop(void);

/* no-tree-loop-distribute-patterns: keep the copy loops as loops instead of calls to newlib memcpy/memset. */
__attribute__((noinline, used, optimize("no-tree-loop-distribute-patterns"))) void spz_system_init(void)
{
    const uint32_t *src = &_sidata;
    uint32_t *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; dst++) {
        *dst = 0u;
    }
#if defined(__ARM_FP) && !defined(__SOFTFP__)
    /* CPACR: full access to CP10 and CP11 (the FPU). */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (void (**f)(void) = __preinit_array_start; f < __preinit_array_end; f++) {
        (*f)();
    }
    for (void (**f)(void) = __init_array_start; f < __init_array_end; f++) {
        (*f)();
    }
}

__attribute__((noinline, used, noreturn)) void spz_exit_loop(void)
{
    for (;;) {
        __asm__ volatile("" ::: "memory");
    }
}

__attribute__((noreturn, used)) void Reset_Handler(void)
{
    spz_system_init();
    if (main) {
        (void)main();
    }
    spz_exit_loop();
}

__attribute__((naked, noreturn, used)) void HardFault_Handler(void)
{
    __asm__ volatile(
        ".global spz_hardfault_spin\n"
        ".type spz_hardfault_spin, %function\n"
        ".thumb_func\n"
        "spz_hardfault_spin:\n\t"
        "b spz_hardfault_spin\n");
}

__attribute__((used)) void Default_Handler(void)
{
    HardFault_Handler();
}

typedef void (*spz_vector_t)(void);

__attribute__((section(".isr_vector"), used)) const spz_vector_t g_spz_vectors[16] = {
    (spz_vector_t)(uintptr_t)&_estack, /* initial SP */
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler, /* HardFault */
    HardFault_Handler, /* MemManage */
    HardFault_Handler, /* BusFault */
    HardFault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler,   /* SVCall */
    Default_Handler,   /* DebugMonitor */
    0,
    Default_Handler,   /* PendSV */
    Default_Handler,   /* SysTick */
};
