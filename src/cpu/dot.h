// The float32 dot product every CPU reference path uses.
#pragma once

namespace r1 {

inline float dot(const float* a, const float* b, int n) {
  // Eight independent partial sums let the compiler vectorize without reassociating.
  float acc[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  for (; i < n; ++i) acc[0] += a[i] * b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace r1
