// Rotary position embedding as DeepSeek applies it: interleaved pairs (x[2i], x[2i+1]),
// YaRN-adjusted frequencies, and the mscale-adjusted attention softmax scale (DESIGN.md §3).
#pragma once

#include <cmath>

#include "r1/host_device.h"

namespace r1 {

struct RopeParams {
  int rope_dim = 64;              // qk_rope_head_dim
  double theta = 10000.0;         // rope_theta
  bool yarn = false;              // rope_scaling of type yarn with factor > 1
  double factor = 1.0;
  double original_max_position = 4096;
  double beta_fast = 32, beta_slow = 1;
  double mscale = 1, mscale_all_dim = 1;
};

R1_HD double yarn_m(double mscale, double factor) {
  return factor <= 1.0 ? 1.0 : 0.1 * mscale * log(factor) + 1.0;
}

// Rotation frequency of pair i (0 <= i < rope_dim/2).
R1_HD float rope_frequency(const RopeParams& p, int i) {
  const double two_pi = 6.283185307179586;
  double d = p.rope_dim;
  double freq = 1.0 / pow(p.theta, 2.0 * i / d);
  if (!p.yarn) return float(freq);
  auto correction_dim = [&](double rotations) {
    return d * log(p.original_max_position / (rotations * two_pi)) / (2.0 * log(p.theta));
  };
  double low = floor(correction_dim(p.beta_fast));
  double high = ceil(correction_dim(p.beta_slow));
  low = low < 0 ? 0 : low;
  high = high > d - 1 ? d - 1 : high;
  if (high == low) high = low + 0.001;
  double ramp = (i - low) / (high - low);
  ramp = ramp < 0 ? 0 : (ramp > 1 ? 1 : ramp);
  return float(freq / p.factor * ramp + freq * (1.0 - ramp));
}

// Magnitude applied to cos/sin: 1 for every DeepSeek release (mscale == mscale_all_dim).
R1_HD float rope_magnitude(const RopeParams& p) {
  if (!p.yarn) return 1.0f;
  return float(yarn_m(p.mscale, p.factor) / yarn_m(p.mscale_all_dim, p.factor));
}

R1_HD float attention_softmax_scale(const RopeParams& p, int qk_head_dim) {
  double m = p.yarn ? yarn_m(p.mscale_all_dim, p.factor) : 1.0;
  return float(m * m / sqrt(double(qk_head_dim)));
}

// cos and sin of the rotation of a pair at position `pos`, times the magnitude.
R1_HD void rope_cos_sin(float frequency, int pos, float magnitude, float* c, float* s) {
  const float angle = float(pos) * frequency;
  *c = float(cos(double(angle))) * magnitude;
  *s = float(sin(double(angle))) * magnitude;
}

R1_HD void rope_rotate(float* pair, float c, float s) {
  const float a = pair[0], b = pair[1];
  pair[0] = a * c - b * s;
  pair[1] = a * s + b * c;
}

// Rotates pair i, (x[2i], x[2i+1]), in place for position `pos`.
R1_HD void rope_rotate_pair(float* x, int i, float frequency, int pos, float magnitude) {
  float c, s;
  rope_cos_sin(frequency, pos, magnitude, &c, &s);
  rope_rotate(x + 2 * i, c, s);
}

// Rotates x[0 .. rope_dim) in place for position `pos`; frequencies from rope_frequency.
R1_HD void apply_rope(float* x, const float* frequencies, int rope_dim, int pos, float magnitude) {
  for (int i = 0; i < rope_dim / 2; ++i) rope_rotate_pair(x, i, frequencies[i], pos, magnitude);
}

}  // namespace r1
