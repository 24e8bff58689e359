#include "edgec_model.h"

static const int8_t weights[EDGEC_NUM_LAYERS][EDGEC_INPUT_SIZE]
    __attribute__((section(".rodata.edgec_weights"))) = {
        {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
        {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
        {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2},
        {-3, -3, -3, -3, -3, -3, -3, -3, -3, -3, -3, -3, -3, -3, -3, -3},
};

static int8_t arena[EDGEC_ARENA_SIZE];
static int8_t io_input[EDGEC_INPUT_SIZE];
static int8_t io_output[EDGEC_OUTPUT_SIZE];

edgec_input_t *edgec_model_input_buffer(void)
{
    return io_input;
}

edgec_output_t *edgec_model_output_buffer(void)
{
    return io_output;
}

static volatile float fpu_probe = 1.0f; /* a float op per layer: faults if the FPU is off */

static void busy(void)
{
#ifdef FAKE_STACK_HOG /* tests: a local array larger than the reserved stack */
    volatile int8_t hog[FAKE_STACK_HOG];
    hog[0] = 1;
    hog[FAKE_STACK_HOG - 1] = hog[0];
#endif
    uint32_t n = FAKE_LOOP_ITERATIONS;
    __asm__ volatile("1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
    fpu_probe = fpu_probe * 1.5f;
}

static void add_layer(const int8_t *x, const int8_t *w, int8_t *y)
{
    for (int i = 0; i < EDGEC_INPUT_SIZE; i++) {
        y[i] = (int8_t)(uint8_t)((uint8_t)x[i] + (uint8_t)w[i]);
    }
    busy();
}

int edgec_model_run(const int8_t *input, int8_t *output)
{
    int8_t *a = &arena[0];
    int8_t *b = &arena[EDGEC_INPUT_SIZE];
    if (input[0] == -128 && input[1] == -128) {
        return 3;
    }
    EDGEC_LAYER_HOOK(0);
    add_layer(input, weights[0], a);
    EDGEC_LAYER_HOOK(1);
    add_layer(a, weights[1], b);
    EDGEC_LAYER_HOOK(2);
    add_layer(b, weights[2], a);
    EDGEC_LAYER_HOOK(3);
    add_layer(a, weights[3], output);
    EDGEC_LAYER_HOOK(EDGEC_NUM_LAYERS);
    return 0;
}
