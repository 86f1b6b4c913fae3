/* Layer 0: sum of input 0; layer 1: XOR of input 0; layer 2: output 1 = input 1 + 1 (with a deeper stack). */
#include <string.h>
#include "toy.h"
#include "spz_profile.h"

int8_t *toy_input(uint8_t *arena, int index) { return (int8_t *)arena + (index ? 64 : 0); }
int8_t *toy_output(uint8_t *arena, int index) { return (int8_t *)arena + (index ? 96 : 80); }

static __attribute__((noinline)) void layer2(const int8_t *in, int8_t *out)
{
    volatile int8_t tmp[64];
    for (int i = 0; i < 64; i++) {
        tmp[i] = (int8_t)(in[i & 7] + 1);
    }
    for (int i = 0; i < TOY_OUTPUT1_SIZE; i++) {
        out[i] = tmp[i];
    }
}

int toy_run(uint8_t *arena)
{
    const int8_t *in = toy_input(arena, 0);
    int8_t *out = toy_output(arena, 0);
    int32_t s = 0;
    uint8_t x = 0;
    SPZ_PROFILE_MARK(0);
    for (int i = 0; i < TOY_INPUT0_SIZE; i++) {
        s += in[i];
    }
    SPZ_PROFILE_MARK(1);
    for (int i = 0; i < TOY_INPUT0_SIZE; i++) {
        x ^= (uint8_t)in[i];
    }
    SPZ_PROFILE_MARK(2);
    layer2(toy_input(arena, 1), toy_output(arena, 1));
    SPZ_PROFILE_MARK(SPZ_PROFILE_END);
    memcpy(out, &s, 2);
    out[2] = (int8_t)x;
    out[3] = 0x5a;
    return 0;
}
