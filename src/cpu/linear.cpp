#include "cpu/linear.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "r1/number_formats.h"

namespace r1 {

namespace {

simd::WeightType weight_type(const TensorView& t) {
  switch (t.dtype) {
    case DType::F32: return simd::WeightType::f32;
    case DType::BF16: return simd::WeightType::bf16;
    case DType::F16: return simd::WeightType::f16;
    case DType::F8_E4M3: return simd::WeightType::fp8;
    default: fail("{}: tensor '{}' of dtype {} is not a weight type", t.file, t.name, dtype_name(t.dtype));
  }
}

}  // namespace

simd::Rows rows_of(const Linear& w) {
  const int64_t stride = w.weight->shape.back();  // columns of the stored weight (w may be a view)
  const uint8_t* first = w.weight->data + (int64_t(w.row0) * stride + w.col0) * int64_t(dtype_size(w.weight->dtype));
  simd::Rows r{weight_type(*w.weight), first, nullptr, w.out, w.in, w.block, 0, stride, w.row0, w.col0};
  r.panels = w.weight->panels;
  if (r.panels && !simd::can_pack(r))
    fail("internal: a view of '{}', which is packed in panels for the fast kernels", w.weight->name);
  if (r.type == simd::WeightType::fp8) {
    r.scales = reinterpret_cast<const float*>(w.scale_inv->data);
    r.scale_cols = int((stride + w.block - 1) / w.block);
  }
  return r;
}

namespace {

// The SIMD kernels step through FP8 blocks in whole vectors: blocks that are not a multiple of
// 16 columns (never seen in checkpoints) go through the portable kernels.
bool simd_can_run(const simd::Rows& r) {
  return r.type != simd::WeightType::fp8 || r.block % simd::kMaxLanes == 0;
}

const simd::Kernels& kernels_for(const simd::Rows& r, const simd::Kernels& wanted) {
  // A model's weights are packed by a fast-numerics CPU backend; an exact one on the same loaded
  // model (tests) would read them as rows.
  if (r.panels) fail("internal: weights packed in panels for the fast kernels handed to the exact ones");
  return simd_can_run(r) ? wanted : *simd::kernels_for(simd::Isa::portable);
}

// The calling thread's scratch for the exact kernels, grown to fit rows of `in` values.
float* thread_scratch(int in) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < simd::scratch_floats(in)) scratch.resize(simd::scratch_floats(in));
  return scratch.data();
}

// The calling thread's scratch for the fast kernels, likewise.
uint16_t* fast_scratch(int in) {
  thread_local std::vector<uint16_t> scratch;
  if (scratch.size() < simd::bf16_scratch_values(in)) scratch.resize(simd::bf16_scratch_values(in));
  return scratch.data();
}

}  // namespace

void decode_floats(const TensorView& t, int64_t first, int n, float* out) {
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(out, reinterpret_cast<const float*>(t.data) + first, size_t(n) * 4);
      return;
    case DType::BF16: {
      const uint16_t* src = reinterpret_cast<const uint16_t*>(t.data) + first;
      for (int i = 0; i < n; ++i) out[i] = bf16_to_float(src[i]);
      return;
    }
    case DType::F16: {
      const uint16_t* src = reinterpret_cast<const uint16_t*>(t.data) + first;
      for (int i = 0; i < n; ++i) out[i] = f16_to_float(src[i]);
      return;
    }
    default:
      fail("{}: tensor '{}' of dtype {} cannot be read as floats", t.file, t.name, dtype_name(t.dtype));
  }
}

void decode_row(const Linear& w, int row, float* out) {
  const simd::Rows r = rows_of(w);
  kernels_for(r, simd::best_kernels()).decode_row(r, row, out);
}

void linear(ThreadPool& pool, const Linear& w, const float* x, int tokens, float* y,
            const simd::Kernels& kernels) {
  const simd::Rows r = rows_of(w);
  const simd::Kernels& k = kernels_for(r, kernels);
  pool.parallel_for(w.out, [&](int begin, int end, int) { k.rows(r, x, tokens, begin, end, y, thread_scratch(w.in)); });
}

void linear_here(const Linear& w, const float* x, int tokens, float* y) { rows_here(rows_of(w), x, tokens, y); }

void rows_here(const simd::Rows& r, const float* x, int tokens, float* y) {
  kernels_for(r, simd::best_kernels()).rows(r, x, tokens, 0, r.out, y, thread_scratch(r.in));
}

void columns_here(const Linear& w, const float* x, int tokens, float* y) { columns_here(rows_of(w), x, tokens, y); }

void columns_here(const simd::Rows& r, const float* x, int tokens, float* y) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < simd::column_scratch_floats(r, tokens)) scratch.resize(simd::column_scratch_floats(r, tokens));
  kernels_for(r, simd::best_kernels()).columns(r, x, tokens, y, scratch.data());
}

void linear_fast_here(const simd::Rows& w, const float* x, int tokens, float* y, const simd::Bf16Kernels& kernels,
                      bool split) {
  if (split ? !w.panels : !simd::bf16_can_run(w)) fail("internal: linear_fast_here on weights the fast kernels do not take");
  (split ? kernels.split_rows : kernels.rows)(w, x, tokens, 0, w.out, y, fast_scratch(w.in));
}

void linear_fast(ThreadPool& pool, const Linear& w, const float* x, int tokens, float* y,
                 const simd::Bf16Kernels& kernels) {
  const simd::Rows r = rows_of(w);
  if (!simd::bf16_can_run(r)) return linear(pool, w, x, tokens, y);
  const int unit = r.panels ? simd::kPanelWidth : 1;  // a thread's rows: whole panels
  pool.parallel_for(w.out / unit, [&](int begin, int end, int) {
    kernels.rows(r, x, tokens, begin * unit, end * unit, y, fast_scratch(w.in));
  });
}

bool pack_for_fast_kernels(ThreadPool& pool, const Linear& w, const simd::Bf16Kernels& kernels) {
  simd::Rows r = rows_of(w);
  if (r.panels) return true;
  // Whole tensors only: a rank's shard of a tensor leaves the rest to other ranks, as rows.
  const bool whole = w.out == w.weight->shape.front() && w.in == w.weight->shape.back();
  if (!w.weight->private_copy || !whole || !simd::can_pack(r)) return false;
  pool.parallel_for(r.out / simd::kPanelWidth, [&](int begin, int end, int) { kernels.pack(r, begin, end); });
  w.weight->panels = true;
  return true;
}

size_t copied_scales(const simd::Rows& w) {
  if (w.type != simd::WeightType::fp8) return 0;
  return size_t((w.in + w.block - 1) / w.block) * size_t((w.out + w.block - 1) / w.block);
}

simd::Rows copy_rows(const simd::Rows& w, bool transpose, uint8_t* bytes, float* scales) {
  const bool fp8 = w.type == simd::WeightType::fp8;
  if (!fp8 && w.type != simd::WeightType::bf16) return {};
  if (fp8 && (w.col0 % w.block != 0 || (w.row0 % w.block != 0 && w.row0 % w.block + w.out > w.block))) return {};
  const int element = fp8 ? 1 : 2;
  const int64_t stride = w.stride ? w.stride : w.in;
  const uint8_t* from = static_cast<const uint8_t*>(w.data);
  for (int r = 0; r < w.out; ++r)
    if (transpose)
      for (int c = 0; c < w.in; ++c)
        std::memcpy(bytes + (int64_t(c) * w.out + r) * element, from + (r * stride + c) * element, size_t(element));
    else
      std::memcpy(bytes + int64_t(r) * w.in * element, from + r * stride * element, size_t(w.in) * element);
  simd::Rows copy{w.type, bytes, nullptr, transpose ? w.in : w.out, transpose ? w.out : w.in, w.block, 0};
  if (fp8) {
    // W's scale block of the copy's row block rb and column block cb: r's blocks start where W's
    // rows' do, or all of r lies in W's block of row0.
    const int row_blocks = (w.out + w.block - 1) / w.block, col_blocks = (w.in + w.block - 1) / w.block;
    copy.scale_cols = transpose ? row_blocks : col_blocks;
    for (int rb = 0; rb < row_blocks; ++rb)
      for (int cb = 0; cb < col_blocks; ++cb)
        scales[transpose ? cb * row_blocks + rb : rb * col_blocks + cb] =
            w.scales[int64_t((w.row0 + rb * w.block) / w.block) * w.scale_cols + w.col0 / w.block + cb];
    copy.scales = scales;
  }
  return copy;
}

void linear_many(ThreadPool& pool, std::span<const LinearJob> jobs, const simd::Bf16Kernels* fast) {
  struct Prepared {
    simd::Rows rows;
    bool fast, split;
    double row_cost, first_cost;  // of one row; of the jobs before this one
  };
  thread_local std::vector<Prepared> kept;  // no allocation once decode is warm
  std::vector<Prepared>& prepared = kept;   // the caller's, in the workers too (not theirs)
  prepared.clear();
  double total = 0;
  for (const LinearJob& job : jobs) {
    const simd::Rows r = rows_of(*job.w);
    const bool on_fast = fast && (job.split ? r.panels : simd::bf16_can_run(r));
    // Past a few tokens (bound by arithmetic, not by reading the weights) the fast kernels take
    // about half the time of the exact ones: a fast job beside an exact one would otherwise
    // leave one thread the slow rows. Split activations cost twice the fast arithmetic: as exact.
    const double row_cost = double(job.tokens) * r.in * (on_fast && !job.split && job.tokens >= 8 ? 0.5 : 1.0);
    prepared.push_back({r, on_fast, job.split, row_cost, total});
    total += row_cost * r.out;
  }
  // Thread p takes the rows whose cost starts in [total · p / parts, total · (p + 1) / parts).
  const int parts = pool.size();
  pool.parallel_for(parts, [&](int part_begin, int part_end, int) {
    const double from = total * part_begin / parts, to = total * part_end / parts;
    for (size_t j = 0; j < jobs.size(); ++j) {
      const Prepared& p = prepared[j];
      if (p.row_cost == 0) continue;
      const int unit = p.rows.panels ? simd::kPanelWidth : 1;  // whole panels
      const auto row_at = [&](double cost) {
        const double rows = std::ceil((cost - p.first_cost) / p.row_cost / unit) * unit;
        return int(std::clamp(rows, 0.0, double(p.rows.out)));
      };
      const int begin = row_at(from), end = row_at(to);
      if (begin >= end) continue;
      const LinearJob& job = jobs[j];
      if (p.fast)
        (p.split ? fast->split_rows : fast->rows)(p.rows, job.x, job.tokens, begin, end, job.y, fast_scratch(p.rows.in));
      else
        kernels_for(p.rows, simd::best_kernels()).rows(p.rows, job.x, job.tokens, begin, end, job.y, thread_scratch(p.rows.in));
    }
  });
}

}  // namespace r1
