#include "cpu/linear.h"

#include <cstring>
#include <vector>

#include "common/error.h"
#include "r1/number_formats.h"

namespace r1 {

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
  if (w.weight->dtype != DType::F8_E4M3) {
    decode_floats(*w.weight, int64_t(row) * w.in, w.in, out);
    return;
  }
  const uint8_t* codes = w.weight->data + int64_t(row) * w.in;
  const int scale_cols = (w.in + w.block - 1) / w.block;
  const float* scales = reinterpret_cast<const float*>(w.scale_inv->data) + (row / w.block) * scale_cols;
  for (int b = 0; b < scale_cols; ++b) {
    const int begin = b * w.block, end = std::min(w.in, begin + w.block);
    const float scale = scales[b];
    for (int j = begin; j < end; ++j) out[j] = e4m3_to_float(codes[j]) * scale;
  }
}

float dot(const float* a, const float* b, int n) {
  // Eight independent partial sums let the compiler vectorize without reassociating.
  float acc[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  for (; i < n; ++i) acc[0] += a[i] * b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

void linear(ThreadPool& pool, const Linear& w, const float* x, int tokens, float* y) {
  pool.parallel_for(w.out, [&](int begin, int end, int) {
    thread_local std::vector<float> row;
    row.resize(size_t(w.in));
    for (int o = begin; o < end; ++o) {
      const float* wrow = row.data();
      if (w.weight->dtype == DType::F32)
        wrow = reinterpret_cast<const float*>(w.weight->data) + int64_t(o) * w.in;
      else
        decode_row(w, o, row.data());
      for (int t = 0; t < tokens; ++t) y[int64_t(t) * w.out + o] = dot(x + int64_t(t) * w.in, wrow, w.in);
    }
  });
}

}  // namespace r1
