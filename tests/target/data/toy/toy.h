/* A hand-made stand-in for a generated network library ("toy"): 3 fake layers. */
#ifndef TOY_H
#define TOY_H
#include <stdint.h>
#define TOY_ARENA_SIZE 256
#define TOY_ARENA_ALIGN 8
#define TOY_NUM_INPUTS 2
#define TOY_NUM_OUTPUTS 2
#define TOY_INPUT0_SIZE 64
#define TOY_INPUT1_SIZE 8
#define TOY_OUTPUT0_SIZE 4
#define TOY_OUTPUT1_SIZE 8
#define TOY_INPUT_SIZES {TOY_INPUT0_SIZE, TOY_INPUT1_SIZE}
#define TOY_OUTPUT_SIZES {TOY_OUTPUT0_SIZE, TOY_OUTPUT1_SIZE}
int8_t *toy_input(uint8_t *arena, int index);
int8_t *toy_output(uint8_t *arena, int index);
int toy_run(uint8_t *arena);
#endif
