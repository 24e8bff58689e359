/* A stand-in for a generated model, for the harness/build/emulator tests: four "layers"
 * whose weights add +3, -1, +2, -3 to every byte, so output[i] = input[i] + 1 (wrapping),
 * each with a busy loop of FAKE_LOOP_ITERATIONS SUBS+BNE pairs (2 instructions each) so the
 * instruction count is known. Returns 3 when the first two input bytes are both -128. */
#ifndef EDGEC_MODEL_H
#define EDGEC_MODEL_H

#include <stdint.h>

typedef int8_t edgec_input_t;
typedef int8_t edgec_output_t;
#define EDGEC_INPUT_SIZE 16
#define EDGEC_INPUT_BYTES 16
#define EDGEC_OUTPUT_SIZE 16
#define EDGEC_OUTPUT_BYTES 16
#define EDGEC_ARENA_SIZE 32
#define EDGEC_NUM_LAYERS 4
#ifndef FAKE_LOOP_ITERATIONS /* tests override it: 0 makes the loop run 2^32 times */
#define FAKE_LOOP_ITERATIONS 5000u
#endif

#ifndef EDGEC_LAYER_HOOK
#define EDGEC_LAYER_HOOK(i)
#endif

int edgec_model_run(const int8_t *input, int8_t *output);
int8_t *edgec_model_input_buffer(void);
int8_t *edgec_model_output_buffer(void);

#endif /* EDGEC_MODEL_H */
