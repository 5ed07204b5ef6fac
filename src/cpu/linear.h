// Float32 matrix products against checkpoint weights as stored (F32/F16/BF16/FP8 block-scaled),
// through the row kernels of src/cpu/simd: each weight byte is read once per call, whatever
// the number of tokens.
#pragma once

#include <span>
#include <vector>

#include "cpu/simd/bf16_kernels.h"
#include "cpu/simd/kernels.h"
#include "cpu/dot.h"
#include "cpu/thread_pool.h"
#include "io/safetensors.h"
#include "model/weights.h"

namespace r1 {

// n consecutive values of a float-typed tensor (F32, F16, BF16) as float32.
void decode_floats(const TensorView& t, int64_t first, int n, float* out);
// Row `row` of W (length w.in) as float32, applying the FP8 block scales.
void decode_row(const Linear& w, int row, float* out);


// y[t][o] = Σ_i x[t][i] · W[o][i] for t < tokens; x [tokens, w.in], y [tokens, w.out].
// `kernels` picks the instruction set (tests force each one; the portable set is the reference).
void linear(ThreadPool& pool, const Linear& w, const float* x, int tokens, float* y,
            const simd::Kernels& kernels = simd::best_kernels());

// The same product on the calling thread alone, for callers that split the work their own way
// (attention: by heads); rows_here takes any rows the kernels do (attention's float32 keys).
void linear_here(const Linear& w, const float* x, int tokens, float* y);
void rows_here(const simd::Rows& w, const float* x, int tokens, float* y);
// y[t][c] = Σ_r x[t][r] · W[r][c] for t < tokens (x [tokens, w.out], y [tokens, w.in]): the
// weight's rows as the summed index, on the calling thread (attention: W_UK absorbing a head's
// queries, read in place in kv_b; the expanded form's values weighted by the softmax).
void columns_here(const Linear& w, const float* x, int tokens, float* y);
void columns_here(const simd::Rows& w, const float* x, int tokens, float* y);

// The same product in fast numerics (src/cpu/simd/bf16_kernels.h): activations rounded to BF16,
// BF16 dot products. Weights the fast kernels do not take (F32, F16) go through `linear`.
void linear_fast(ThreadPool& pool, const Linear& w, const float* x, int tokens, float* y,
                 const simd::Bf16Kernels& kernels);
// Packs w's bytes in panels for the fast kernels (kernels.pack), on all threads, when they
// are this process's copy and a whole matrix the panels take; returns whether w is packed. After
// that only the fast kernels may read w: the exact ones fail on it.
bool pack_for_fast_kernels(ThreadPool& pool, const Linear& w, const simd::Bf16Kernels& kernels);

// A copy of W into `bytes` (w.out · w.in elements) and `scales` (copied_scales(w) floats),
// row-major, with its own scale blocks: as it is (a view's rows made a whole matrix the panels
// take: W_UV), or transposed, row c of the copy W's column c, so that a row product on it is W's
// column product y[t][c] = Σ_r x[t][r] · W[r][c] (W_UK absorbing queries). FP8 and BF16 only; an
// FP8 view's columns must start on a scale block and its rows too, or all lie in one (each block
// of the copy then has one scale). Returns the copy's rows, or rows with data == nullptr
// (nothing written) where it cannot.
simd::Rows copy_rows(const simd::Rows& w, bool transpose, uint8_t* bytes, float* scales);
size_t copied_scales(const simd::Rows& w);  // 0 for BF16
// The Rows of a Linear (a view into its stored tensor), as the kernels take them.
simd::Rows rows_of(const Linear& w);
// linear_fast on the calling thread alone, on rows the fast kernels take; split: activations
// kept to ~16 bits (Bf16Kernels::split_rows, panels only).
void linear_fast_here(const simd::Rows& w, const float* x, int tokens, float* y, const simd::Bf16Kernels& kernels,
                      bool split = false);

// One product of a batch run by linear_many.
struct LinearJob {
  const Linear* w;
  const float* x;  // [tokens, w->in]
  int tokens;
  float* y;        // [tokens, w->out]
  // Float32-grade activations even when linear_many is given the fast kernels: split in BF16 hi
  // and lo on weights in panels (Bf16Kernels::split_rows), else the exact kernels.
  bool split = false;
};
// Every job's product, the rows of all of them split over the pool as one list by their cost
// (rows × tokens × columns), each thread streaming whole runs of matrices: one dispatch where a
// dispatch per product would leave each too short to split well (a decode step's experts: 27
// products of 15 MB, each thread's half cold at its start and waiting at its end). fast: the
// fast kernels (nullptr: exact), for the weights they take (as linear_fast).
void linear_many(ThreadPool& pool, std::span<const LinearJob> jobs, const simd::Bf16Kernels* fast);
}  // namespace r1
