/* Minimal Arm semihosting helpers (no libc) for running benchmark ELFs under QEMU -semihosting.
 *
 * How it works:
 * 1. spz_semihost_call(op, arg) issues `bkpt 0xAB` with r0 = operation, r1 = argument (Arm semihosting ABI).
 * 2. spz_semihost_dump(tag, p, n) prints "tag <hex bytes>\n" with SYS_WRITE0 (0x04).
 * 3. spz_semihost_exit(code) reports ADP_Stopped_ApplicationExit with SYS_EXIT (0x18; on AArch32 r1 holds the
 *    reason code itself) when code == 0, ADP_Stopped_RunTimeErrorUnknown otherwise; QEMU exits with 0 / 1.
 */
#ifndef SPZ_SEMIHOST_H
#define SPZ_SEMIHOST_H

#include <stdint.h>

static inline uint32_t spz_semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static inline void spz_semihost_dump(const char *tag, const uint8_t *p, uint32_t n)
{
    static char line[64];
    static const char hex[] = "0123456789abcdef";
    uint32_t k = 0;
    while (*tag && k < 16u) {
        line[k++] = *tag++;
    }
    line[k++] = ' ';
    for (uint32_t i = 0; i < n; i++) {
        line[k++] = hex[p[i] >> 4];
        line[k++] = hex[p[i] & 15u];
        if (k >= sizeof line - 3u) {
            line[k] = 0;
            (void)spz_semihost_call(0x04u, line);
            k = 0;
        }
    }
    line[k++] = '\n';
    line[k] = 0;
    (void)spz_semihost_call(0x04u, line);
}

static inline void spz_semihost_exit(uint32_t code)
{
    uint32_t reason = code == 0u ? 0x20026u /* ApplicationExit */ : 0x20023u /* RunTimeErrorUnknown */;
    (void)spz_semihost_call(0x18u, (const void *)(uintptr_t)reason);
    for (;;) {
    }
}

#endif /* SPZ_SEMIHOST_H */
