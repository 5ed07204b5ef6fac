// The core of MLA attention in the absorbed form for one token: scores of a block of heads'
// absorbed queries against the cached rows (latent c_j, then roped k_pe), the softmax, and the
// weighted sums of the latents: float32 here (exact numerics), BF16 in fast numerics
// (simd::Bf16Kernels::mla_attend).
#pragma once

#include <cstdint>

namespace r1 {

// Heads one call takes at most: R1's 128 heads are two calls a token, so a batch-1 decode step
// still gives each of two threads one.
constexpr int kMlaCoreHeads = 64;

struct MlaCoreShape {
  int heads;       // <= kMlaCoreHeads
  int len;         // cached rows attended to: positions 0 .. len - 1
  int cache_dim;   // a cached row: latent_dim latent values, then the roped key
  int latent_dim;
  float scale;     // softmax scale
};

// o[h][c] = Σ_j p[h][j] · rows[j][c] (c < latent_dim), p[h] = softmax_j(scale · q[h] · rows[j])
// over the full cache_dim. q: [heads][cache_dim]; o: [heads][latent_dim].
// Each score is one chain of FMAs over the row in order, each weighted sum one chain over j in
// order, each softmax sum one chain over j: a head's outputs do not depend on the other heads of
// the call, on how heads are grouped into calls, or on the batch (batch invariance, bit for bit).
void mla_attend(const MlaCoreShape& shape, const float* q, const float* const* rows, float* o);

// The same in plain loops with double sums: the reference for the tests.
void mla_attend_reference(const MlaCoreShape& shape, const float* q, const float* const* rows, float* o);

// Fast numerics' core (simd::Bf16Kernels::mla_attend) in plain loops: rows BF16, the queries and
// the normalized softmax weights rounded to BF16, sums in double. The portable fast kernels' and
// the tests' reference.
void mla_attend_bf16_reference(const MlaCoreShape& shape, const float* q, const uint16_t* const* rows, float* o);

}  // namespace r1
