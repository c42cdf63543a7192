/* faulty.c: plugins that break the ABI (include/tkbench.h) one way each, for the tests of
 * `--plugin`. Compiled once per fault with -DFAULT_<NAME>; without a fault it holds kernels that
 * crash or hang when called, which the gate must report as failed and survive.
 */
#include <stddef.h>

#include "tkbench.h"

/* Writes through NULL: killed by SIGSEGV. */
static void softmax_crashes(const tkbench_softmax_dims *dims, const float *x, float *out) {
    (void)x;
    (void)out;
    volatile float *nowhere = NULL;
    for (size_t i = 0; i < dims->rows * dims->cols + 1; i++) nowhere[i] = 1.0f;
}

/* Never returns: stopped by the time limit. */
static void gelu_hangs(const tkbench_gelu_dims *dims, const float *x, float *out) {
    volatile size_t spin = 0;
    for (;;) spin += dims->len + (size_t)(x != out);
}

/* Wrong: it copies x, which the gate fails, but it returns and stays in bounds. */
static void gelu_copies(const tkbench_gelu_dims *dims, const float *x, float *out) {
    for (size_t i = 0; i < dims->len; i++) out[i] = x[i];
}

static const tkbench_variant VARIANTS[] = {
#if defined(FAULT_NULL_FUNCTION)
    {.op = "softmax", .name = "null", .kernel = {.softmax = NULL}, .isa = NULL},
#elif defined(FAULT_UNKNOWN_OP)
    {.op = "convolution", .name = "direct", .kernel = {.softmax = softmax_crashes}, .isa = NULL},
#elif defined(FAULT_DUPLICATE)
    {.op = "gelu", .name = "copies", .kernel = {.gelu = gelu_copies}, .isa = NULL},
    {.op = "gelu", .name = "copies", .kernel = {.gelu = gelu_copies}, .isa = NULL},
#elif defined(FAULT_BUILTIN_NAME)
    {.op = "gelu", .name = "scalar", .kernel = {.gelu = gelu_copies}, .isa = NULL},
#elif defined(FAULT_UNKNOWN_ISA)
    {.op = "gelu", .name = "copies", .kernel = {.gelu = gelu_copies}, .isa = "sse9"},
#else
    {.op = "softmax", .name = "crashes", .kernel = {.softmax = softmax_crashes}, .isa = NULL},
    {.op = "gelu", .name = "hangs", .kernel = {.gelu = gelu_hangs}, .isa = NULL},
    {.op = "gelu", .name = "copies", .kernel = {.gelu = gelu_copies}, .isa = NULL},
#endif
};

static const tkbench_plugin PLUGIN = {
#if defined(FAULT_ABI_VERSION)
    .abi_version = 99,
#else
    .abi_version = TKBENCH_ABI_VERSION,
#endif
    .count = sizeof VARIANTS / sizeof VARIANTS[0],
    .variants = VARIANTS,
};

#if !defined(FAULT_NO_SYMBOL)
const tkbench_plugin *tkbench_plugin_v1(void) { return &PLUGIN; }
#else
const tkbench_plugin *tkbench_plugin_v0(void) { return &PLUGIN; }
#endif
