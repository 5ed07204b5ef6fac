#include "cpu/transposed_uk.h"

#include <cstring>

#include "cpu/linear.h"

namespace r1 {

namespace {
// The FP8 block size of the transposed copy: the largest divisor of kv_b's block (at least 16,
// what the SIMD kernels step through) such that each transposed block lies inside one block of
// kv_b, so one scale still covers it. 0 when none does (then the copy is float32).
int transposed_block(const Linear& kv_b, int nope, int v_dim, int latent) {
  for (int b = kv_b.block; b >= 16 && b % 16 == 0; b /= 2)
    if (kv_b.block % b == 0 && kv_b.row0 % b == 0 && (nope + v_dim) % b == 0 && latent % b == 0 && kv_b.col0 % b == 0)
      return b;
  return 0;
}
// dst[c · stride] = src[c] for c < n, elements of kBytes bytes.
template <int kBytes>
void transpose_column(const uint8_t* src, int n, int stride, uint8_t* dst) {
  for (int c = 0; c < n; ++c) std::memcpy(dst + int64_t(c) * stride * kBytes, src + int64_t(c) * kBytes, kBytes);
}

}  // namespace

TransposedUk::TransposedUk(const Linear& kv_b, int heads, int nope, int v_dim, int latent) : latent_(latent) {
  const TensorView& stored = *kv_b.weight;
  const int64_t stored_cols = stored.shape.back(), rows = int64_t(heads) * latent;
  const int block = stored.dtype == DType::F8_E4M3 ? transposed_block(kv_b, nope, v_dim, latent) : 0;
  // kv_b's own element type, or float32 for FP8 whose blocks do not transpose.
  const bool as_floats = stored.dtype == DType::F8_E4M3 && block == 0;
  const size_t bytes = as_floats ? 4 : dtype_size(stored.dtype);
  weight_.name = stored.name + " (W_UK transposed)";
  data_ = LargePages(size_t(rows) * nope * bytes, weight_.name);
  weight_.file = stored.file;
  weight_.dtype = as_floats ? DType::F32 : stored.dtype;
  weight_.shape = {rows, nope};
  weight_.data = data_.data();
  weight_.bytes = size_t(rows) * nope * bytes;
  linear_ = {&weight_, nullptr, int(rows), nope, block, 0, 0};

  std::vector<float> decoded(as_floats ? size_t(latent) : 0);
  for (int h = 0; h < heads; ++h)
    for (int d = 0; d < nope; ++d) {
      const int64_t row = int64_t(h) * (nope + v_dim) + d;  // in the view
      if (as_floats) decode_row(kv_b, int(row), decoded.data());
      const uint8_t* src = as_floats ? reinterpret_cast<const uint8_t*>(decoded.data())
                                     : stored.data + ((kv_b.row0 + row) * stored_cols + kv_b.col0) * int64_t(bytes);
      uint8_t* dst = data_.data() + (int64_t(h) * latent * nope + d) * bytes;  // column d of the head's rows
      switch (bytes) {  // element copies of a size known here (R1: 0.5 G of them at load)
        case 1: transpose_column<1>(src, latent, nope, dst); break;
        case 2: transpose_column<2>(src, latent, nope, dst); break;
        default: transpose_column<4>(src, latent, nope, dst); break;
      }
    }
  if (block == 0) return;

  // Transposed block (i, j) covers head rows c of block i and columns d of block j: kv_b's block
  // of row row0 + h · (nope + v_dim) + d and column col0 + c.
  const int64_t scale_rows = rows / block, scale_cols = (nope + block - 1) / block;
  const int64_t stored_scale_cols = kv_b.scale_inv->shape.back();
  const float* stored_scales = reinterpret_cast<const float*>(kv_b.scale_inv->data);
  scales_.resize(size_t(scale_rows * scale_cols));
  for (int64_t i = 0; i < scale_rows; ++i)
    for (int64_t j = 0; j < scale_cols; ++j) {
      const int64_t h = i * block / latent, c = i * block % latent, d = j * block;
      const int64_t stored_row = kv_b.row0 + h * (nope + v_dim) + d, stored_col = kv_b.col0 + c;
      scales_[size_t(i * scale_cols + j)] =
          stored_scales[(stored_row / kv_b.block) * stored_scale_cols + stored_col / kv_b.block];
    }
  scale_inv_.name = stored.name + " scales (W_UK transposed)";
  scale_inv_.file = stored.file;
  scale_inv_.dtype = DType::F32;
  scale_inv_.shape = {scale_rows, scale_cols};
  scale_inv_.data = reinterpret_cast<const uint8_t*>(scales_.data());
  scale_inv_.bytes = scales_.size() * 4;
  linear_.scale_inv = &scale_inv_;
}

}  // namespace r1
