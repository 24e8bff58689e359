/* edgec test harness: runs a generated model on a batch of inputs under QEMU.
 *
 * Host protocol (toolchain/emulator.py is the other side), in the emulator's working dir:
 *   edgec_input.bin   N * EDGEC_INPUT_BYTES bytes (int8, or float32 for a model with float
 *                     I/O), N = file size / EDGEC_INPUT_BYTES
 *   edgec_output.bin  written: N * EDGEC_OUTPUT_BYTES bytes
 * Console lines, all starting with "EDGEC ":
 *   EDGEC hello <input_bytes> <output_bytes> <num_layers> <profile 0|1> <stack_reserved>
 *   EDGEC calib <instructions> <ticks> <instructions per tick x 1000>
 *   EDGEC run <i> <instructions> <stack_bytes> <ticks>   one inference
 *   EDGEC layers <i> <instructions> ...     profile builds: instructions per layer
 *   EDGEC error <what> <i> <status>         then exit with a non-zero code
 *   EDGEC done <N>
 * Exit code: enum edgec_exit (0 = all inferences ran and returned 0).
 */
#include <stdint.h>

#include "edgec_harness.h"
#include "edgec_model.h"

#define INPUT_FILE "edgec_input.bin"
#define OUTPUT_FILE "edgec_output.bin"
#define SH_MODE_RB 1
#define SH_MODE_WB 5

/* Calibration loop: SUBS + BNE per iteration, i.e. 2 instructions. */
#if defined(__thumb2__)
#define SUBS_ONE "subs %0, %0, #1"
#else /* Thumb-1 inline asm is in divided syntax, where SUB sets the flags */
#define SUBS_ONE "sub %0, #1"
#endif
#define CALIB_ITERATIONS 1000000u

/* The input and output are read and written in place in the arena (the generated API's
 * zero-copy slots): no RAM beyond the model's own. */
#define INPUT_BYTES ((uint32_t)(EDGEC_INPUT_SIZE * sizeof(edgec_input_t)))
#define OUTPUT_BYTES ((uint32_t)(EDGEC_OUTPUT_SIZE * sizeof(edgec_output_t)))

#ifdef EDGEC_PROFILE
static uint64_t layer_ticks[EDGEC_NUM_LAYERS + 1];

void edgec_profile_hook(int layer)
{
    if (layer >= 0 && layer <= (int)EDGEC_NUM_LAYERS) {
        layer_ticks[layer] = edgec_ticks();
    }
}
#define PROFILE_ON 1u
#else
#define PROFILE_ON 0u
#endif

/* Instructions per SysTick tick, x1000, measured by calibrate(). */
static uint64_t insns_per_tick_milli = 1000u;

static uint64_t to_instructions(uint64_t ticks)
{
    return (ticks * insns_per_tick_milli + 500u) / 1000u;
}

/* Time a loop of known length. Under -icount the ratio is exact up to the few instructions
 * of the timer reads (and ~5 per SysTick wrap), so a ratio within 1% of an integer is
 * snapped to it (5 at -icount shift=3 on the 25 MHz MPS2 clock). */
static void calibrate(void)
{
    uint32_t n = CALIB_ITERATIONS;
    uint64_t t0 = edgec_ticks();
    __asm__ volatile("1:\n\t" SUBS_ONE "\n\tbne 1b" : "+r"(n) : : "cc");
    uint64_t ticks = edgec_ticks() - t0;
    uint64_t insns = 2u * (uint64_t)CALIB_ITERATIONS;
    if (ticks == 0u) {
        ticks = 1u;
    }
    uint64_t milli = (insns * 1000u + ticks / 2u) / ticks;
    uint64_t nearest = (milli + 500u) / 1000u * 1000u;
    uint64_t off = milli > nearest ? milli - nearest : nearest - milli;
    insns_per_tick_milli = (nearest > 0u && off * 100u < nearest) ? nearest : milli;
    edgec_puts("EDGEC calib ");
    edgec_putu(insns);
    edgec_puts(" ");
    edgec_putu(ticks);
    edgec_puts(" ");
    edgec_putu(insns_per_tick_milli);
    edgec_putnl();
}

static int fail(const char *what, uint32_t index, int status, int code)
{
    edgec_puts("EDGEC error ");
    edgec_puts(what);
    edgec_puts(" ");
    edgec_putu(index);
    edgec_puts(" ");
    edgec_putu((uint32_t)status);
    edgec_putnl();
    return code;
}

int main(void)
{
    edgec_puts("EDGEC hello ");
    edgec_putu(INPUT_BYTES);
    edgec_puts(" ");
    edgec_putu(OUTPUT_BYTES);
    edgec_puts(" ");
    edgec_putu(EDGEC_NUM_LAYERS);
    edgec_puts(" ");
    edgec_putu(PROFILE_ON);
    edgec_puts(" ");
    edgec_putu(edgec_stack_reserved());
    edgec_putnl();
    calibrate();

    int in = edgec_sh_open(INPUT_FILE, SH_MODE_RB);
    if (in < 0) {
        return fail("open-input", 0u, in, EDGEC_EXIT_IO_ERROR);
    }
    long in_bytes = edgec_sh_flen(in);
    if (in_bytes < 0 || (unsigned long)in_bytes % INPUT_BYTES != 0u) {
        return fail("input-size", 0u, (int)in_bytes, EDGEC_EXIT_IO_ERROR);
    }
    uint32_t count = (uint32_t)((unsigned long)in_bytes / INPUT_BYTES);
    edgec_input_t *input_buf = edgec_model_input_buffer();
    edgec_output_t *output_buf = edgec_model_output_buffer();
    int out = edgec_sh_open(OUTPUT_FILE, SH_MODE_WB);
    if (out < 0) {
        return fail("open-output", 0u, out, EDGEC_EXIT_IO_ERROR);
    }

    for (uint32_t i = 0; i < count; i++) {
        if (edgec_sh_read(in, input_buf, INPUT_BYTES) != INPUT_BYTES) {
            return fail("read", i, 0, EDGEC_EXIT_IO_ERROR);
        }
#ifdef EDGEC_PROFILE
        for (uint32_t l = 0; l <= (uint32_t)EDGEC_NUM_LAYERS; l++) {
            layer_ticks[l] = 0u;
        }
#endif
        edgec_stack_paint();
        uint64_t t0 = edgec_ticks();
        int status = edgec_model_run(input_buf, output_buf);
        uint64_t t1 = edgec_ticks();
        uint32_t stack = edgec_stack_used();
        if (status != 0) {
            return fail("model", i, status, EDGEC_EXIT_MODEL_ERROR);
        }
        if (edgec_sh_write(out, output_buf, OUTPUT_BYTES) != OUTPUT_BYTES) {
            return fail("write", i, 0, EDGEC_EXIT_IO_ERROR);
        }
        edgec_puts("EDGEC run ");
        edgec_putu(i);
        edgec_puts(" ");
        edgec_putu(to_instructions(t1 - t0));
        edgec_puts(" ");
        edgec_putu(stack);
        edgec_puts(" ");
        edgec_putu(t1 - t0);
        edgec_putnl();
#ifdef EDGEC_PROFILE
        edgec_puts("EDGEC layers ");
        edgec_putu(i);
        for (uint32_t l = 0; l < (uint32_t)EDGEC_NUM_LAYERS; l++) {
            edgec_puts(" ");
            edgec_putu(to_instructions(layer_ticks[l + 1u] - layer_ticks[l]));
        }
        edgec_putnl();
#endif
    }
    edgec_sh_close(in);
    edgec_sh_close(out);
    edgec_puts("EDGEC done ");
    edgec_putu(count);
    edgec_putnl();
    return EDGEC_EXIT_OK;
}
