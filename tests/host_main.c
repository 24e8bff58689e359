/*
 * host_main.c - runs a generated edgec model on the host for the kernel tests.
 *
 * usage: host_main INPUT_FILE OUTPUT_FILE
 * INPUT_FILE holds k * EDGEC_INPUT_BYTES bytes (k samples); OUTPUT_FILE receives
 * k * EDGEC_OUTPUT_BYTES bytes (int8 values, or float32 for a model with float I/O). Odd samples are written straight into the arena's input
 * slot (edgec_model_input_buffer) to exercise the copy-free path.
 */
#include "edgec_model.h"

#include <stdio.h>
#include <string.h>

static edgec_input_t input_buf[EDGEC_INPUT_SIZE];
static edgec_output_t output_buf[EDGEC_OUTPUT_SIZE];

int main(int argc, char **argv)
{
    FILE *in;
    FILE *out;
    long sample = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT_FILE OUTPUT_FILE\n", argv[0]);
        return 2;
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        fprintf(stderr, "cannot open files\n");
        return 2;
    }
    for (;;) {
        const edgec_input_t *src = input_buf;
        int status;
        size_t got = fread(input_buf, 1, sizeof input_buf, in);
        if (got == 0) {
            break;
        }
        if (got != sizeof input_buf) {
            fprintf(stderr, "truncated input sample %ld\n", sample);
            return 2;
        }
        if (sample % 2 == 1) {
            memcpy(edgec_model_input_buffer(), input_buf, sizeof input_buf);
            src = edgec_model_input_buffer();
        }
        status = edgec_model_run(src, output_buf);
        if (status != 0) {
            fprintf(stderr, "edgec_model_run failed at layer %d (sample %ld)\n", status, sample);
            return 3;
        }
        if (memcmp(output_buf, edgec_model_output_buffer(), sizeof output_buf) != 0) {
            fprintf(stderr, "output copy differs from the arena slot\n");
            return 4;
        }
        if (fwrite(output_buf, 1, sizeof output_buf, out) != sizeof output_buf) {
            return 2;
        }
        ++sample;
    }
    fclose(in);
    fclose(out);
    return 0;
}
