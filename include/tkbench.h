/* tkbench.h: the C ABI through which a shared library hands tkbench its own kernel variants.
 *
 * A plugin is a shared library (`.so`) that exports one symbol, `tkbench_plugin_v1`, returning the
 * table of the variants it provides. `cargo xtask verify --plugin PATH.so` checks each of them with
 * the same gate as tkbench's own variants (seeded random inputs against a float64 reference, poisoned
 * and guarded outputs, repeated calls, row blocks against the whole call, special values), and
 * `cargo xtask bench --plugin PATH.so` times them beside tkbench's own. Each plugin variant runs in a
 * child process, so that one that crashes, hangs or writes out of bounds is reported as failed and
 * the run goes on.
 *
 * Conventions that hold for every op:
 *   - Every tensor is float32 (token ids uint32), row-major and contiguous unless a stride says
 *     otherwise. Sizes and strides count elements, not bytes.
 *   - The dims describe the call exactly: the input arrays hold exactly the elements the shapes say
 *     (plus, for strided rows, the gaps between rows), and the kernel must read nothing else and
 *     write every element of its output and nothing else. tkbench checks the sizes before the call.
 *   - Outputs never alias inputs.
 *   - A call may be a block of a larger call: threads split a call into blocks of output rows (for
 *     matmul with one row, blocks of columns; for attention with one query, blocks of heads), and each
 *     element of the output must have the same bits whichever block it was computed in. The gate
 *     checks this bit for bit, so a kernel must not, for example, take a different code path for the
 *     last, shorter block in a way that changes rounding.
 *   - A kernel must be a pure function of its inputs: a second call on the same inputs must give the
 *     same bits, and fresh inputs at the same addresses must give fresh results.
 *   - A kernel may be called from several threads at once, on disjoint outputs.
 *   - Special values (NaN, infinities) follow each op's contract below, which is PyTorch's.
 *   - Any size may be 0 where the op allows it; a kernel called with an empty output does nothing.
 *
 * Accuracy: each output is held to a bound derived from the op's float64 reference and the plain
 * float32 computation on the same inputs; `crates/harness/src/ops/<op>.rs` states each op's rule
 * and why (its RULE and RATIONALE).
 *
 * This header is C99 and C++ compatible.
 */
#ifndef TKBENCH_H
#define TKBENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. A plugin returns it in `tkbench_plugin.abi_version`;
 * tkbench refuses a table of any other version. */
#define TKBENCH_ABI_VERSION 1u

/* ---- embedding -------------------------------------------------------------------------------
 * out[t, c] = wte[ids[t], c] + wpe[pos0 + t, c]   (one float32 addition per element)
 *
 * Shapes: ids [tokens], wte [vocab, channels], wpe [positions, channels], out [tokens, channels].
 * Every id is below vocab and pos0 + tokens <= positions (tkbench checks both before the call).
 * Special values: NaN or infinity in a table row reaches the outputs that read it, by IEEE addition.
 * A block of rows is the same call on tokens [t0, t1) with pos0 advanced by t0. */
typedef struct tkbench_embedding_dims {
    size_t tokens;
    size_t channels;
    size_t vocab;
    size_t positions;
    size_t pos0;
} tkbench_embedding_dims;

typedef void (*tkbench_embedding_fn)(const tkbench_embedding_dims *dims, const uint32_t *ids,
                                     const float *wte, const float *wpe, float *out);

/* ---- layernorm -------------------------------------------------------------------------------
 * out[r, c] = (x[r, c] - mean_r) / sqrt(var_r + eps) * gamma[c] + beta[c]
 * with mean_r and the biased variance var_r taken over the row's channels, as PyTorch does.
 *
 * Shapes: x [rows, channels], gamma [channels], beta [channels], out [rows, channels]; eps > 0.
 * Special values: NaN or infinity anywhere in a row makes that whole output row NaN; other rows are
 * unaffected. A constant row has variance 0 and gives beta. */
typedef struct tkbench_layernorm_dims {
    size_t rows;
    size_t channels;
    float eps;
} tkbench_layernorm_dims;

typedef void (*tkbench_layernorm_fn)(const tkbench_layernorm_dims *dims, const float *x,
                                     const float *gamma, const float *beta, float *out);

/* ---- softmax ---------------------------------------------------------------------------------
 * out[r, j] = exp(x[r, j] - max_r) / sum_k exp(x[r, k] - max_r), max_r the row's maximum.
 *
 * Shapes: x [rows, cols], out [rows, cols]; cols may be 0 (empty rows).
 * Special values: a -inf entry gets probability 0 (this is how a mask is applied); a row holding NaN
 * or +inf, or only -inf, gives an all-NaN row; other rows are unaffected. */
typedef struct tkbench_softmax_dims {
    size_t rows;
    size_t cols;
} tkbench_softmax_dims;

typedef void (*tkbench_softmax_fn)(const tkbench_softmax_dims *dims, const float *x, float *out);

/* ---- attention -------------------------------------------------------------------------------
 * Causal multi-head attention. For every query head h and query i:
 *   out_i,h = softmax_j(scale * q_i,h . k_j,g) . v_j,g  over the keys j = 0 ..= pos0 + i,
 * where g = h / (heads / kv_heads) is the key/value head that query head h reads: kv_heads = heads is
 * multi-head attention (GPT-2), kv_heads < heads grouped-query attention (Llama; each key/value head
 * serves heads / kv_heads consecutive query heads), kv_heads = 1 multi-query attention.
 *
 * Shapes, with C = heads * head_size, CKV = kv_heads * head_size and S = pos0 + queries keys:
 *   q [queries, C] and out [queries, C], rows `stride` floats apart (stride >= C);
 *   v [S, CKV], rows `kv_stride` floats apart (kv_stride >= CKV);
 *   k as v when key_layout = TKBENCH_KEYS_IN_ROWS, or, when key_layout = TKBENCH_KEYS_IN_BLOCKS, in
 *   blocks of TKBENCH_KEY_BLOCK keys stored channel by channel: channel c of key j at
 *   (j / 16) * 16 * kv_stride + c * 16 + j % 16. The last block is whole; its slots past key S - 1
 *   may hold anything, NaN included, and must not affect any output.
 * Query i sits at position pos0 + i: pos0 = 0 is a prefill, pos0 > 0 with one query a decode step
 * against a KV cache. A block of heads is a call with fewer heads whose q, k, v and out point at the
 * block's first head (strides unchanged); blocks split only whole groups of heads.
 * Special values: NaN or infinity in anything an output depends on (its q row in that head, or the k
 * and v rows it sees in its key/value head) makes that output NaN; other outputs are unaffected. */
#define TKBENCH_KEY_BLOCK 16u

enum tkbench_key_layout {
    TKBENCH_KEYS_IN_ROWS = 0,
    TKBENCH_KEYS_IN_BLOCKS = 1
};

typedef struct tkbench_attention_dims {
    size_t queries;
    size_t pos0;
    size_t heads;
    size_t kv_heads;
    size_t head_size;
    float scale;
    size_t stride;
    size_t kv_stride;
    uint32_t key_layout; /* an enum tkbench_key_layout */
} tkbench_attention_dims;

typedef void (*tkbench_attention_fn)(const tkbench_attention_dims *dims, const float *q,
                                     const float *k, const float *v, float *out);

/* ---- matmul ----------------------------------------------------------------------------------
 * c = a . b + bias: c[i, j] = sum_p a[i, p] * b[p, j] + bias[j] (bias NULL means no bias).
 *
 * Shapes: a [m, k], b [k, n] with rows `ldb` floats apart (ldb >= n), bias [n] or NULL, c [m, n].
 * k may be 0 (c is then the bias, or zeros). A block of columns is a call with a smaller n whose b
 * and bias point at the block's first column (ldb unchanged): each element of c must have the same
 * bits wherever a block starts.
 * Special values: NaN or infinity in a row of a or a column of b reaches the outputs that read it,
 * by IEEE arithmetic: no kernel may skip a zero multiplier. */
typedef struct tkbench_matmul_dims {
    size_t m;
    size_t k;
    size_t n;
    size_t ldb;
} tkbench_matmul_dims;

typedef void (*tkbench_matmul_fn)(const tkbench_matmul_dims *dims, const float *a, const float *b,
                                  const float *bias, float *c);

/* ---- gelu ------------------------------------------------------------------------------------
 * out[i] = 0.5 * x[i] * (1 + tanh(sqrt(2 / pi) * (x[i] + 0.044715 * x[i]^3))), GPT-2's tanh form.
 *
 * Shapes: x [len], out [len].
 * Special values: NaN gives NaN, +inf gives +inf, -inf gives NaN (-inf * 0), as PyTorch. */
typedef struct tkbench_gelu_dims {
    size_t len;
} tkbench_gelu_dims;

typedef void (*tkbench_gelu_fn)(const tkbench_gelu_dims *dims, const float *x, float *out);

/* ---- rmsnorm ---------------------------------------------------------------------------------
 * out[r, c] = x[r, c] / sqrt(mean_c(x[r, c]^2) + eps) * gamma[c]   (no mean subtracted, no shift)
 *
 * Shapes: x [rows, channels], gamma [channels], out [rows, channels]; eps > 0.
 * Special values: NaN anywhere in a row makes the whole output row NaN; +-inf in a row makes its mean
 * square infinite and its scale 0, so that element's output is NaN (inf * 0) and the row's finite
 * elements give +-0. Other rows are unaffected. A row of zeros gives zeros. */
typedef struct tkbench_rmsnorm_dims {
    size_t rows;
    size_t channels;
    float eps;
} tkbench_rmsnorm_dims;

typedef void (*tkbench_rmsnorm_fn)(const tkbench_rmsnorm_dims *dims, const float *x,
                                   const float *gamma, float *out);

/* ---- rope ------------------------------------------------------------------------------------
 * Rotary position embedding, rotate-half convention (Hugging Face's Llama): within each head of a
 * row, channel i < head_size / 2 pairs with channel i + head_size / 2, and the pair (a, b) of the row
 * at position p = pos0 + t becomes
 *   (a * cos[p, i] - b * sin[p, i],  b * cos[p, i] + a * sin[p, i]).
 * The tables are the caller's: the kernel must use them and not compute its own angles (the gate
 * draws random angles).
 *
 * Shapes: x [rows, heads * head_size], out [rows, heads * head_size], cos and sin
 * [positions, head_size / 2] with positions >= pos0 + rows; head_size is even.
 * Special values, as the formula in IEEE arithmetic: NaN in a or b makes both outputs of the pair
 * NaN; an infinite a or b gives an infinite output, or NaN where it meets a sine or cosine of 0 or an
 * opposite infinity. A block of rows is the same call on rows [t0, t1) with pos0 advanced by t0. */
typedef struct tkbench_rope_dims {
    size_t rows;
    size_t pos0;
    size_t heads;
    size_t head_size;
    size_t positions;
} tkbench_rope_dims;

typedef void (*tkbench_rope_fn)(const tkbench_rope_dims *dims, const float *x, const float *cos,
                                const float *sin, float *out);

/* ---- swiglu ----------------------------------------------------------------------------------
 * out[r, i] = silu(x[r, i]) * x[r, width + i], silu(g) = g / (1 + exp(-g)): each row of x holds the
 * gate projection's `width` outputs and then the up projection's `width`.
 *
 * Shapes: x [rows, 2 * width], out [rows, width].
 * Special values, as the formula in IEEE arithmetic: a NaN gate or up gives NaN; a gate of +inf gives
 * up * inf (NaN where up is 0); a gate of -inf gives NaN (-inf / inf); a large negative gate gives
 * +-0. */
typedef struct tkbench_swiglu_dims {
    size_t rows;
    size_t width;
} tkbench_swiglu_dims;

typedef void (*tkbench_swiglu_fn)(const tkbench_swiglu_dims *dims, const float *x, float *out);

/* ---- the plugin table ------------------------------------------------------------------------ */

/* The entry point of one variant; the member used is the one of the variant's op. */
typedef union tkbench_kernel {
    tkbench_embedding_fn embedding;
    tkbench_layernorm_fn layernorm;
    tkbench_softmax_fn softmax;
    tkbench_attention_fn attention;
    tkbench_matmul_fn matmul;
    tkbench_gelu_fn gelu;
    tkbench_rmsnorm_fn rmsnorm;
    tkbench_rope_fn rope;
    tkbench_swiglu_fn swiglu;
} tkbench_kernel;

/* One variant. */
typedef struct tkbench_variant {
    /* The op: "embedding", "layernorm", "softmax", "attention", "matmul", "gelu", "rmsnorm", "rope"
     * or "swiglu". */
    const char *op;
    /* The variant's name, unique within its op among the plugin's and tkbench's own variants: ASCII
     * letters, digits, '-' and '_'. */
    const char *name;
    /* Its entry point; never NULL. */
    tkbench_kernel kernel;
    /* The instruction set it needs, or NULL for none: "avx2" (with FMA), "avx512" (AVX-512 F, BW,
     * CD, DQ and VL) or "neon". On a CPU without it the variant is listed as skipped, not run. */
    const char *isa;
} tkbench_variant;

/* What `tkbench_plugin_v1` returns. The table and its strings must stay valid while the library is
 * loaded (static storage is the usual way). */
typedef struct tkbench_plugin {
    /* TKBENCH_ABI_VERSION. */
    uint32_t abi_version;
    /* Entries in `variants`. */
    size_t count;
    const tkbench_variant *variants;
} tkbench_plugin;

/* The one symbol a plugin exports. It is called once, after the library is loaded. */
const tkbench_plugin *tkbench_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* TKBENCH_H */
