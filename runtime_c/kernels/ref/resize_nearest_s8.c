/*
 * resize_nearest_s8.c - int8 nearest-neighbour resize of NHWC images (reference kernel).
 *
 * Same result as TFLite's RESIZE_NEAREST_NEIGHBOR (reference_ops::ResizeNearestNeighbor in
 * tensorflow/lite/kernels/internal/reference/resize_nearest_neighbor.h). TFLite picks the
 * source row/column of each output row/column with float arithmetic (GetNearestNeighbor,
 * with align_corners / half_pixel_centers); edgec's lowering evaluates exactly that on the
 * host and passes the two index tables, so no float runs here. Input and output share
 * their quantization: each output pixel is a copy of one input pixel.
 */
#include "edgec_kernels.h"

#include <stddef.h>
#include <string.h>

edgec_status edgec_resize_nearest_s8(const edgec_resize_nearest_params *p, const int8_t *in,
                                     int8_t *out)
{
    int32_t batch, y, x;
    const size_t depth = p != NULL && p->output.c > 0 ? (size_t)p->output.c : 0u;

    if (p == NULL || in == NULL || out == NULL || p->y_index == NULL || p->x_index == NULL ||
        p->input.n != p->output.n || p->input.c != p->output.c) {
        return EDGEC_ERR_ARG;
    }
    for (y = 0; y < p->output.h; ++y) {
        if (p->y_index[y] < 0 || p->y_index[y] >= p->input.h) {
            return EDGEC_ERR_ARG;
        }
    }
    for (x = 0; x < p->output.w; ++x) {
        if (p->x_index[x] < 0 || p->x_index[x] >= p->input.w) {
            return EDGEC_ERR_ARG;
        }
    }
    for (batch = 0; batch < p->output.n; ++batch) {
        const int8_t *image = in + batch * p->input.h * p->input.w * p->input.c;
        for (y = 0; y < p->output.h; ++y) {
            const int8_t *row = image + p->y_index[y] * p->input.w * p->input.c;
            for (x = 0; x < p->output.w; ++x) {
                memcpy(out, row + p->x_index[x] * p->input.c, depth);
                out += depth;
            }
        }
    }
    return EDGEC_OK;
}
