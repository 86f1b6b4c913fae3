/* Hand-counted micro-benchmarks; each CASE defines bench_invoke.  r0 is loaded with &micro_buf by
 * MOVW/MOVT (1 + 1 cycles, not loads) where memory is needed.  Expected cycle sums are in test_cost_m4.py. */
    .syntax unified
    .thumb
#ifdef WANT_DP
    .fpu fpv5-d16
#endif
    .text
    .global bench_invoke
    .type bench_invoke, %function
    .thumb_func
    .align 2
bench_invoke:
#define BUF movw r0, #:lower16:micro_buf ; movt r0, #:upper16:micro_buf

#if CASE_smlad
    smlad r0, r1, r2, r0
    smlad r0, r1, r2, r0
    smlad r0, r1, r2, r0
    smlad r0, r1, r2, r0
    smlad r0, r1, r2, r0
    smlad r0, r1, r2, r0
    smlad r0, r1, r2, r0
    smlad r0, r1, r2, r0
    bx lr
#elif CASE_ldr_indep
    BUF
    ldr r1, [r0]
    ldr r2, [r0, #4]
    ldr r3, [r0, #8]
    ldr r12, [r0, #12]
    bx lr
#elif CASE_ldr_dep
    BUF
    ldr r0, [r0]
    ldr r0, [r0]
    bx lr
#elif CASE_ldr_str
    BUF
    ldr r1, [r0]
    str r1, [r0, #32]
    str r1, [r0, #36]
    str r1, [r0, #40]
    bx lr
#elif CASE_loop
    movs r0, #10
1:  subs r0, r0, #1
    bne 1b
    bx lr
#elif CASE_ldm
    push {r4-r7, lr}
    BUF
    ldm r0, {r1, r2, r3}
    stm r0, {r1, r2, r3}
    pop {r4-r7, pc}
#elif CASE_sdiv
    movw r0, #1000
    movs r1, #7
    sdiv r2, r0, r1
    udiv r3, r1, r0
    mvn r0, #0
    sdiv r2, r0, r1
    bx lr
#elif CASE_it
    BUF
    movs r3, #0
    cmp r3, #0
    ite eq
    ldreq r1, [r0]
    ldrne r2, [r0, #4]
    bx lr
#elif CASE_it_pc
    movs r3, #1
    cmp r3, #0
    it eq
    bxeq lr
    cmp r3, #1
    it eq
    bxeq lr
    nop
#elif CASE_fpu
    vmov.f32 s0, #1.0
    vmov.f32 s1, #2.0
    vadd.f32 s2, s0, s1
    vmul.f32 s3, s2, s1
    vmla.f32 s4, s3, s1
    vadd.f32 s5, s0, s1
    vmla.f32 s5, s0, s1
    BUF
    vldr s6, [r0]
    vdiv.f32 s7, s0, s1
    bx lr
#elif CASE_dp
    vadd.f64 d0, d1, d2
    bx lr
#elif CASE_dsp_m0
    .cpu cortex-m4
    smlad r0, r1, r2, r0
    bx lr
#else
#error "unknown CASE"
#endif
    .size bench_invoke, . - bench_invoke
