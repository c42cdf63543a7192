/* softmax.c: an example tkbench plugin (include/tkbench.h) with two softmax variants, one correct
 * and one deliberately wrong, so that the gate can be seen passing the one and failing the other.
 *
 * Build: cc -O2 -shared -fPIC -I../../include softmax.c -o libsoftmax_plugin.so
 * Check: cargo xtask --plugin examples/c-plugin/libsoftmax_plugin.so opcheck --op softmax
 */
#include <math.h>
#include <stddef.h>

#include "tkbench.h"

/* The contract's special rows: a NaN or +inf anywhere, or nothing above -inf, gives an all-NaN row. */
static int special_row(const float *x, size_t n, float *max_out) {
    float max = -INFINITY;
    int special = 0;
    for (size_t j = 0; j < n; j++) {
        if (isnan(x[j]) || x[j] == INFINITY) special = 1;
        if (x[j] > max) max = x[j];
    }
    *max_out = max;
    return special || (n > 0 && max == -INFINITY);
}

/* Correct: the max subtracted before exp, the sum in double, one division per element. */
static void softmax_two_pass(const tkbench_softmax_dims *dims, const float *x, float *out) {
    size_t n = dims->cols;
    for (size_t r = 0; r < dims->rows; r++) {
        const float *row = x + r * n;
        float *o = out + r * n;
        float max;
        if (special_row(row, n, &max)) {
            for (size_t j = 0; j < n; j++) o[j] = NAN;
            continue;
        }
        double sum = 0.0;
        for (size_t j = 0; j < n; j++) sum += exp((double)row[j] - (double)max);
        for (size_t j = 0; j < n; j++) o[j] = (float)(exp((double)row[j] - (double)max) / sum);
    }
}

/* Wrong: the max is not subtracted, so exp overflows on large logits and the row turns to NaN. On
 * inputs of ordinary size it is within bound: only inputs past exp's range show the bug. */
static void softmax_unshifted(const tkbench_softmax_dims *dims, const float *x, float *out) {
    size_t n = dims->cols;
    for (size_t r = 0; r < dims->rows; r++) {
        const float *row = x + r * n;
        float *o = out + r * n;
        float max;
        if (special_row(row, n, &max)) {
            for (size_t j = 0; j < n; j++) o[j] = NAN;
            continue;
        }
        float sum = 0.0f;
        for (size_t j = 0; j < n; j++) sum += expf(row[j]);
        for (size_t j = 0; j < n; j++) o[j] = expf(row[j]) / sum;
    }
}

static const tkbench_variant VARIANTS[] = {
    {.op = "softmax", .name = "c-two-pass", .kernel = {.softmax = softmax_two_pass}, .isa = NULL},
    {.op = "softmax", .name = "c-unshifted", .kernel = {.softmax = softmax_unshifted}, .isa = NULL},
};

static const tkbench_plugin PLUGIN = {
    .abi_version = TKBENCH_ABI_VERSION,
    .count = sizeof VARIANTS / sizeof VARIANTS[0],
    .variants = VARIANTS,
};

const tkbench_plugin *tkbench_plugin_v1(void) { return &PLUGIN; }
