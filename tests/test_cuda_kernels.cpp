// Each CUDA kernel against its CPU reference on random inputs and edge cases (one token,
// experts with no tokens, sizes that are not multiples of the tiles or of 128).
// Tolerances: float32 accumulation in another order, so relative errors of a few 1e-6.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <numeric>

#include "cpu/cpu_backend.h"
#include "cpu/linear.h"
#include "cpu/thread_pool.h"
#include "cuda_test_util.h"
#include "model/greedy.h"
#include "kernels/launch.h"
#include "mla_test_util.h"
#include "r1/number_formats.h"
#include "r1/rope.h"

namespace r1 {
namespace {

using cuda::WeightType;
using cuda::WeightView;

// A random [out, in] weight in one storage format, on the host and on the device.
struct TestWeight {
  TestWeight(const TestWeight&) = delete;  // `linear` points at `tensor`: never copy or move
  DType dtype;
  int out, in;
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  TensorView tensor, scale_tensor;
  Linear linear;  // the CPU reference's view

  TestWeight(DType d, int out_dim, int in_dim, uint32_t seed) : dtype(d), out(out_dim), in(in_dim) {
    std::mt19937 rng(seed);
    const size_t n = size_t(out) * in;
    bytes.resize(n * dtype_size(dtype));
    std::vector<float> values = random_floats(n, seed, 0.05f);
    for (size_t i = 0; i < n; ++i) {
      if (dtype == DType::F32) std::memcpy(&bytes[i * 4], &values[i], 4);
      if (dtype == DType::BF16) {
        uint32_t b;
        std::memcpy(&b, &values[i], 4);
        uint16_t h = uint16_t(b >> 16);
        std::memcpy(&bytes[i * 2], &h, 2);
      }
      if (dtype == DType::F8_E4M3) {
        uint8_t code = uint8_t(rng() & 0xFF);
        if ((code & 0x7F) == 0x7F) code &= 0xFE;  // no NaN codes in weights
        bytes[i] = code;
      }
    }
    tensor.dtype = dtype;
    tensor.shape = {out, in};
    tensor.data = bytes.data();
    tensor.bytes = bytes.size();
    linear.weight = &tensor;
    linear.out = out;
    linear.in = in;
    if (dtype == DType::F8_E4M3) {
      const int rows = (out + 127) / 128, cols = (in + 127) / 128;
      scales = random_floats(size_t(rows) * cols, seed + 1, 1.0f);
      for (auto& s : scales) s = 1e-3f * (1.0f + std::fabs(s));
      scale_tensor.dtype = DType::F32;
      scale_tensor.shape = {rows, cols};
      scale_tensor.data = reinterpret_cast<const uint8_t*>(scales.data());
      scale_tensor.bytes = scales.size() * 4;
      linear.scale_inv = &scale_tensor;
      linear.block = 128;
    }
  }

  WeightType type() const {
    return dtype == DType::F32 ? WeightType::f32 : dtype == DType::BF16 ? WeightType::bf16 : WeightType::e4m3;
  }
};

struct DeviceWeight {
  DeviceVector<uint8_t> bytes;
  DeviceVector<float> scales;
  WeightView view;
  explicit DeviceWeight(const TestWeight& w) : bytes(w.bytes), scales(w.scales.empty() ? std::vector<float>{0} : w.scales) {
    view.data = bytes.get();
    view.scale_inv = w.scales.empty() ? nullptr : scales.get();
    view.type = w.type();
    view.out = w.out;
    view.in = w.in;
    view.block = 128;
  }
};

class CudaKernels : public ::testing::Test {
 protected:
  void SetUp() override { R1_REQUIRE_GPU(); }
  ThreadPool pool_{2};
};

TEST_F(CudaKernels, LinearMatchesCpuForEveryDtypeAndShape) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F8_E4M3})
    // Narrow weights take the split-reduction GEMV; 4200 outputs (132 blocks) the plain one.
    for (auto [out, in] : {std::pair{64, 32}, {200, 333}, {130, 256}, {129, 257}, {4200, 64}})
      for (int rows : {1, 3, 7, 8, 9, 32, 33, 100}) {
        TestWeight w(dtype, out, in, 17 + out + rows);
        std::vector<float> x = random_floats(size_t(rows) * in, 5 + rows);
        std::vector<float> expected(size_t(rows) * out);
        linear(pool_, w.linear, x.data(), rows, expected.data());

        DeviceWeight dw(w);
        DeviceVector<WeightView> views(std::vector<WeightView>{dw.view});
        DeviceVector<float> dx(x), dy(size_t(rows) * out, NAN);
        cuda::grouped_linear(views.get(), dw.view, nullptr, 1, rows, dx.get(), dy.get(), nullptr);
        // Both kernels are covered: the GEMV for few rows when rows are 16-byte aligned.
        EXPECT_EQ(cuda::linear_uses_gemv(dw.view, rows), rows <= cuda::kGemvMaxRows && in % 16 == 0);
        EXPECT_LT(relative_max_error(dy.host(), expected), 2e-6)
            << dtype_name(dtype) << " " << out << "x" << in << " rows " << rows;
      }
}

void check_grouped(const std::vector<int>& offsets, int rows_bound, int out, int in, ThreadPool& pool) {
  const int groups = int(offsets.size()) - 1;
  std::deque<TestWeight> weights;  // TestWeight points into itself: it must not move
  std::vector<std::unique_ptr<DeviceWeight>> device;
  std::vector<WeightView> views;
  for (int g = 0; g < groups; ++g) {
    weights.emplace_back(DType::F8_E4M3, out, in, 100 + g);
    device.push_back(std::make_unique<DeviceWeight>(weights.back()));
    views.push_back(device.back()->view);
  }
  const int rows = offsets.back();
  std::vector<float> x = random_floats(size_t(rows) * in, 9);
  std::vector<float> expected(size_t(rows) * out);
  for (int g = 0; g < groups; ++g)
    linear(pool, weights[g].linear, x.data() + size_t(offsets[g]) * in, offsets[g + 1] - offsets[g],
           expected.data() + size_t(offsets[g]) * out);
  DeviceVector<WeightView> dviews(views);
  DeviceVector<int> doffsets(offsets);
  DeviceVector<float> dx(x), dy(size_t(rows) * out, NAN);
  cuda::grouped_linear(dviews.get(), views[0], doffsets.get(), groups, rows_bound, dx.get(), dy.get(), nullptr);
  EXPECT_LT(relative_max_error(dy.host(), expected), 2e-6) << "rows bound " << rows_bound;
}

TEST_F(CudaKernels, GroupedLinearSkipsEmptyGroups) {
  check_grouped({0, 3, 3, 40, 40, 41}, 37, 72, 200, pool_);  // groups 1 and 3 empty; tiled kernel
  check_grouped({0, 3, 3, 5, 5, 6}, 3, 72, 256, pool_);      // the same through the GEMV
  check_grouped({0, 20, 20, 21}, 20, 72, 256, pool_);        // GEMV in passes of 8 rows
}

void check_routing(const RoutingParams& p, int tokens, bool with_bias, uint32_t seed) {
  const int n = p.n_routed_experts, k = p.num_experts_per_tok;
  std::vector<float> logits = random_floats(size_t(tokens) * n, seed, 2.0f);
  std::vector<float> bias = with_bias ? random_floats(size_t(n), seed + 1, 0.1f) : std::vector<float>{};
  std::vector<int> ids(size_t(tokens) * k);
  std::vector<float> weights(size_t(tokens) * k), scratch(2 * size_t(n));
  for (int t = 0; t < tokens; ++t)
    route_token(p, logits.data() + size_t(t) * n, with_bias ? bias.data() : nullptr, scratch.data(),
                ids.data() + size_t(t) * k, weights.data() + size_t(t) * k);

  DeviceVector<float> dlogits(logits), dbias(with_bias ? bias : std::vector<float>{0});
  DeviceVector<int> dints(size_t(tokens) * k * 2 + 2 * n + 1, -1);
  DeviceVector<float> dweights(size_t(tokens) * k);
  cuda::MoeRouting r;
  r.expert_ids = dints.get();
  r.copy_rows = r.expert_ids + tokens * k;
  r.expert_offsets = r.copy_rows + tokens * k;
  r.expert_counts = r.expert_offsets + n + 1;
  r.expert_weights = dweights.get();
  cuda::moe_route(p, dlogits.get(), with_bias ? dbias.get() : nullptr, tokens, r, nullptr);
  std::vector<int> ints = dints.host();
  std::vector<float> got_weights = dweights.host();
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(ints[i], ids[i]) << "copy " << i;
    EXPECT_NEAR(got_weights[i], weights[i], 1e-6f * std::fabs(weights[i]) + 1e-7f);
  }
  // The permutation: expert e's copies occupy exactly rows [offsets[e], offsets[e+1]).
  const int* copy_rows = ints.data() + tokens * k;
  const int* offsets = copy_rows + tokens * k;
  EXPECT_EQ(offsets[0], 0);
  EXPECT_EQ(offsets[n], tokens * k);
  std::vector<int> seen(size_t(tokens) * k, 0);
  for (int i = 0; i < tokens * k; ++i) {
    const int e = ids[i], row = copy_rows[i];
    ASSERT_GE(row, offsets[e]);
    ASSERT_LT(row, offsets[e + 1]);
    ++seen[row];
  }
  for (int s : seen) EXPECT_EQ(s, 1);
}

TEST_F(CudaKernels, RoutingMatchesSharedRules) {
  const RoutingParams r1_like{256, 8, 8, 4, TopkMethod::noaux_tc, ScoringFunc::sigmoid, true, 2.5f};
  const RoutingParams v2_group{160, 6, 8, 3, TopkMethod::group_limited_greedy, ScoringFunc::softmax, false, 16.0f};
  const RoutingParams v2_lite{64, 6, 1, 1, TopkMethod::greedy, ScoringFunc::softmax, false, 1.0f};
  for (int tokens : {1, 37, 300}) {
    check_routing(r1_like, tokens, true, 1 + tokens);
    check_routing(v2_group, tokens, false, 2 + tokens);
    check_routing(v2_lite, tokens, false, 3 + tokens);
  }
}

TEST_F(CudaKernels, GatherAndCombine) {
  const int tokens = 9, top_k = 3, dim = 130;
  std::vector<int> copy_rows(tokens * top_k);
  for (int i = 0; i < tokens * top_k; ++i) copy_rows[i] = (i * 7) % (tokens * top_k);  // a permutation
  std::vector<float> x = random_floats(size_t(tokens) * dim, 3), weights = random_floats(size_t(tokens) * top_k, 4);
  std::vector<float> expert_out = random_floats(size_t(tokens) * top_k * dim, 5), base = random_floats(size_t(tokens) * dim, 6);
  DeviceVector<int> drows(copy_rows);
  DeviceVector<float> dx(x), dw(weights), dexp(expert_out), dperm(size_t(tokens) * top_k * dim, NAN), dout(base);
  cuda::MoeRouting r{};
  r.copy_rows = drows.get();
  r.expert_weights = dw.get();
  cuda::moe_gather(dx.get(), tokens, top_k, dim, r, dperm.get(), nullptr);
  cuda::moe_combine(dexp.get(), tokens, top_k, dim, r, true, dout.get(), nullptr);
  std::vector<float> perm = dperm.host(), out = dout.host();
  for (int i = 0; i < tokens * top_k; ++i)
    for (int d = 0; d < dim; ++d) ASSERT_EQ(perm[size_t(copy_rows[i]) * dim + d], x[size_t(i / top_k) * dim + d]);
  for (int t = 0; t < tokens; ++t)
    for (int d = 0; d < dim; ++d) {
      double v = base[size_t(t) * dim + d];
      for (int k = 0; k < top_k; ++k)
        v += double(weights[t * top_k + k]) * expert_out[size_t(copy_rows[t * top_k + k]) * dim + d];
      EXPECT_NEAR(out[size_t(t) * dim + d], v, 1e-5);
    }
}

// The greedy choice on the device against greedy_token: ties to the lowest id (rows with the
// maximum repeated, or at the end), a NaN row and an all -inf row reported.
TEST_F(CudaKernels, ArgmaxMatchesGreedyToken) {
  const int rows = 6, vocab = 129280;
  std::vector<float> logits = random_floats(size_t(rows) * vocab, 60);
  logits[size_t(1) * vocab + 77] = logits[size_t(1) * vocab + 90000] = 50.0f;  // tie: 77 wins
  logits[size_t(2) * vocab + vocab - 1] = 60.0f;                               // the last id
  for (int i = 0; i < vocab; ++i) logits[size_t(3) * vocab + i] = 1.0f;          // all equal: id 0
  logits[size_t(4) * vocab + 5] = NAN;
  std::fill_n(logits.begin() + size_t(5) * vocab, vocab, -INFINITY);
  DeviceVector<float> dl(logits);
  DeviceVector<int> ids(rows, 12345);
  cuda::argmax_rows(dl.get(), rows, vocab, ids.get(), nullptr);
  const std::vector<int> got = ids.host();
  for (int r = 0; r < 4; ++r) EXPECT_EQ(got[r], greedy_token({logits.data() + size_t(r) * vocab, size_t(vocab)})) << r;
  EXPECT_EQ(got[1], 77);
  EXPECT_EQ(got[2], vocab - 1);
  EXPECT_EQ(got[3], 0);
  EXPECT_EQ(got[4], cuda::kArgmaxNan);
  EXPECT_EQ(got[5], cuda::kArgmaxAllNegativeInfinity);
}

TEST_F(CudaKernels, RmsnormRopeSiluMatchCpu) {
  const int rows = 5, dim = 300;
  std::vector<float> x = random_floats(size_t(rows) * dim, 1), w = random_floats(dim, 2);
  std::vector<float> expected(x.size());
  for (int r = 0; r < rows; ++r) {
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
    for (int i = 0; i < dim; ++i) expected[r * dim + i] = float(x[r * dim + i] / std::sqrt(ss / dim + 1e-6) * w[i]);
  }
  DeviceVector<float> dx(x), dw(w), dout(x.size(), NAN);
  cuda::rmsnorm(dx.get(), dim, dw.get(), rows, dim, 1e-6f, dout.get(), dim, nullptr);
  EXPECT_LT(relative_max_error(dout.host(), expected), 1e-6);

  // Fused residual add: h = x - d, then h += d restores x (to rounding) and norms it.
  std::vector<float> d = random_floats(x.size(), 3), h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = x[i] - d[i];
  std::vector<float> h_expected(x.size());
  for (size_t i = 0; i < x.size(); ++i) h_expected[i] = h[i] + d[i];
  DeviceVector<float> dh(h), dd(d), dout2(x.size(), NAN);
  cuda::add_rmsnorm(dh.get(), dd.get(), dw.get(), rows, dim, 1e-6f, dout2.get(), nullptr);
  EXPECT_EQ(dh.host(), h_expected);  // float32 add, the same on both sides
  EXPECT_LT(relative_max_error(dout2.host(), expected), 1e-5);

  // RoPE on the last 16 of 48 values of each of 3 heads, positions 0, 5, 4000.
  RopeParams rp;
  rp.rope_dim = 16;
  rp.yarn = true;
  rp.factor = 40;
  std::vector<float> freq;
  for (int i = 0; i < 8; ++i) freq.push_back(rope_frequency(rp, i));
  const std::vector<int> positions = {0, 5, 4000};
  std::vector<float> q = random_floats(3 * 3 * 48, 7), q_expected = q;
  for (int t = 0; t < 3; ++t)
    for (int h = 0; h < 3; ++h) apply_rope(q_expected.data() + t * 144 + h * 48 + 32, freq.data(), 16, positions[t], 1.0f);
  DeviceVector<float> dq(q), dfreq(freq);
  DeviceVector<int> dpos(positions);
  cuda::rope_inplace(dq.get(), 3, 3, 144, 48, 32, dpos.get(), dfreq.get(), 16, 1.0f, nullptr);
  EXPECT_LT(relative_max_error(dq.host(), q_expected), 1e-6);

  std::vector<float> g = random_floats(1000, 8), u = random_floats(1000, 9), su(1000);
  for (int i = 0; i < 1000; ++i) su[i] = float(g[i] / (1 + std::exp(-double(g[i]))) * u[i]);
  DeviceVector<float> dg(g), du(u), dsu(1000, NAN);
  cuda::silu_mul(dg.get(), du.get(), dsu.get(), 1000, nullptr);
  EXPECT_LT(relative_max_error(dsu.host(), su), 1e-6);
}

// Absorbed MLA attention against a float64 loop over the same cache, several sequences,
// context lengths 1 and longer than a warp's stride, R1's latent width; the cache paged with
// pages out of order and contexts spanning many pages (and a partial last page).
TEST_F(CudaKernels, MlaAttentionMatchesReference) {
  const cuda::MlaShape s{3, 16, 64, 24, 512};
  const int width = s.kv_lora_rank + s.qk_rope, qk = s.qk_nope + s.qk_rope, page_size = 64;
  const std::vector<int> lengths = {1, 700, 33};
  std::vector<std::vector<float>> caches;
  for (size_t i = 0; i < lengths.size(); ++i) caches.push_back(random_floats(size_t(lengths[i]) * width, 20 + i));
  const PagedTestCache paged(caches, width, page_size);
  // Tokens: last position of each sequence, plus a middle position of the long one.
  const std::vector<int> sequences = {0, 1, 2, 1}, positions = {0, 699, 32, 350};
  const int tokens = 4;
  std::vector<float> q_latent = random_floats(size_t(tokens) * s.heads * s.kv_lora_rank, 30, 0.05f);
  std::vector<float> q = random_floats(size_t(tokens) * s.heads * qk, 31, 0.2f);
  const float scale = 0.1f;
  const std::vector<float> expected = mla_attention_reference(s, q_latent, q, caches, sequences, positions, scale).out;
  DeviceVector<float> drows(paged.rows);
  DeviceVector<int> dtable(paged.page_table);
  const cuda::PagedCache cache{drows.get(), dtable.get(), paged.max_pages, page_size};
  DeviceVector<float> dql(q_latent), dq(q);
  DeviceVector<int> dpos(positions), dseq(sequences);
  // One split, several (some empty for the short sequences), and what the heuristic picks.
  for (int splits : {1, 4, 64, cuda::mla_attention_splits(tokens, s.heads, 700, 132)}) {
    DeviceVector<float> dout(expected.size(), NAN);
    DeviceVector<float> workspace(std::max<size_t>(1, cuda::mla_attention_workspace(s, tokens, splits)), NAN);
    cuda::mla_attention(s, dql.get(), dq.get(), dpos.get(), dseq.get(), cache, scale, tokens, splits,
                        workspace.get(), dout.get(), nullptr);
    EXPECT_LT(relative_max_error(dout.host(), expected), 1e-5) << splits << " splits";
  }
}


// Appending to the paged cache: each token's row lands in its sequence's page for its
// position (pages out of order, positions across page boundaries), normed and roped as on the
// CPU; rows not appended stay untouched.
TEST_F(CudaKernels, MlaCacheAppendWritesThroughThePageTable) {
  const int latent = 72, rope_dim = 16, width = latent + rope_dim, page_size = 4, max_pages = 3;
  const std::vector<int> page_table = {5, 0, 3, /*sequence 1:*/ 2, 4, 1};
  const std::vector<int> sequences = {0, 0, 1, 1, 0}, positions = {3, 4, 0, 9, 11};
  const int tokens = int(sequences.size());
  const std::vector<float> kv = random_floats(size_t(tokens) * width, 50);
  std::vector<float> norm = random_floats(latent, 51, 0.5f), frequencies(rope_dim / 2);
  for (float& w : norm) w += 1.0f;
  for (int i = 0; i < rope_dim / 2; ++i) frequencies[i] = std::pow(10000.0f, -2.0f * i / rope_dim);
  const float eps = 1e-6f, magnitude = 1.0f;
  std::vector<float> expected(size_t(6) * page_size * width, -7.0f);
  for (int t = 0; t < tokens; ++t) {
    const int page = page_table[sequences[t] * max_pages + positions[t] / page_size];
    float* row = &expected[(size_t(page) * page_size + positions[t] % page_size) * width];
    rmsnorm_row(&kv[size_t(t) * width], norm.data(), latent, eps, row);
    std::copy_n(&kv[size_t(t) * width + latent], rope_dim, row + latent);
    apply_rope(row + latent, frequencies.data(), rope_dim, positions[t], magnitude);
  }
  DeviceVector<float> dkv(kv), dnorm(norm), dfreq(frequencies), drows(expected.size(), -7.0f);
  DeviceVector<int> dtable(page_table), dpos(positions), dseq(sequences);
  cuda::mla_cache_append(dkv.get(), tokens, latent, rope_dim, dnorm.get(), eps, dfreq.get(), magnitude, dpos.get(),
                         dseq.get(), cuda::PagedCache{drows.get(), dtable.get(), max_pages, page_size}, nullptr);
  EXPECT_LT(relative_max_error(drows.host(), expected), 1e-6);
}

// The absorbed projections against decode_row on the CPU: W_UK^T·q_nope and W_UV·o, for the
// chunked kernels (latent 512, R1's head shape, and 96: a partial last group of chunks) and the
// scalar fallback (latent 72), FP8 and BF16.
TEST_F(CudaKernels, MlaAbsorbAndVOutMatchCpu) {
  const cuda::MlaShape shapes[] = {{3, 16, 8, 24, 512}, {3, 16, 8, 24, 72}, {2, 16, 8, 40, 96}, {4, 128, 64, 128, 512}};
  for (DType dtype : {DType::F8_E4M3, DType::BF16})
    for (const cuda::MlaShape& s : shapes) {
      const int latent = s.kv_lora_rank;
      const int tokens = 5, qk = s.qk_nope + s.qk_rope, rows = s.heads * (s.qk_nope + s.v_dim);
      TestWeight kv_b(dtype, rows, latent, 40 + latent);
      std::vector<float> q = random_floats(size_t(tokens) * s.heads * qk, 41);
      std::vector<float> o = random_floats(size_t(tokens) * s.heads * latent, 42);
      std::vector<float> expected_q(size_t(tokens) * s.heads * latent, 0.0f), expected_o(size_t(tokens) * s.heads * s.v_dim);
      std::vector<float> row(latent);
      for (int h = 0; h < s.heads; ++h)
        for (int t = 0; t < tokens; ++t) {
          for (int d = 0; d < s.qk_nope; ++d) {
            decode_row(kv_b.linear, h * (s.qk_nope + s.v_dim) + d, row.data());
            for (int c = 0; c < latent; ++c)
              expected_q[(size_t(t) * s.heads + h) * latent + c] += q[(size_t(t) * s.heads + h) * qk + d] * row[c];
          }
          for (int d = 0; d < s.v_dim; ++d) {
            decode_row(kv_b.linear, h * (s.qk_nope + s.v_dim) + s.qk_nope + d, row.data());
            expected_o[(size_t(t) * s.heads + h) * s.v_dim + d] = dot(row.data(), &o[(size_t(t) * s.heads + h) * latent], latent);
          }
        }
      DeviceWeight dw(kv_b);
      DeviceVector<float> dq(q), dol(o), dql(expected_q.size(), NAN), dout(expected_o.size(), NAN);
      cuda::mla_absorb_q(dw.view, s, dq.get(), tokens, dql.get(), nullptr);
      cuda::mla_v_out(dw.view, s, dol.get(), tokens, dout.get(), nullptr);
      EXPECT_LT(relative_max_error(dql.host(), expected_q), 2e-6) << dtype_name(dtype) << " latent " << latent;
      EXPECT_LT(relative_max_error(dout.host(), expected_o), 2e-6) << dtype_name(dtype) << " latent " << latent;
    }
}

}  // namespace
}  // namespace r1
