#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/error.h"
#include "io/json_file.h"

namespace r1 {

namespace {

// splitmix64's finalizer: turns (seed, stream) pairs into well-separated generator seeds.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool more_likely(const Candidate& a, const Candidate& b) {
  return a.probability > b.probability || (a.probability == b.probability && a.id < b.id);
}

// Unnormalized softmax(logits / temperature): the most likely token gets exactly 1.
std::vector<Candidate> scaled_probabilities(std::span<const float> logits, float temperature) {
  const float top = max_logit(logits);
  std::vector<Candidate> c(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {int(i), std::exp((logits[i] - top) / temperature)};
  return c;
}

// Sorts c so that its first `count` entries are the most likely, in order; c[sorted..] may be
// unsorted on entry (c[..sorted] already is). Returns the new sorted length.
size_t sort_prefix(std::vector<Candidate>& c, size_t sorted, size_t count) {
  count = std::min(count, c.size());
  if (count > sorted) std::partial_sort(c.begin() + sorted, c.begin() + count, c.end(), more_likely);
  return std::max(sorted, count);
}

// Length of the smallest most-likely prefix of c holding `top_p` of its mass, sorting only as
// far as needed (the nucleus is usually a few dozen tokens of a 129k vocabulary).
size_t nucleus_size(std::vector<Candidate>& c, float top_p) {
  double total = 0;
  for (const Candidate& x : c) total += x.probability;
  const double target = top_p * total;
  double mass = 0;
  size_t sorted = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    if (i == sorted) sorted = sort_prefix(c, sorted, std::max<size_t>(64, 4 * sorted));
    mass += c[i].probability;
    if (mass >= target) return i + 1;
  }
  return c.size();  // rounding left the target a hair out of reach: keep everything
}

}  // namespace

void validate(const SamplingParams& p) {
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature))
    fail("temperature must be a finite number >= 0 (got {})", p.temperature);
  if (p.top_k < 0) fail("top_k must be >= 0 (got {}; 0 keeps every token)", p.top_k);
  if (!(p.top_p > 0 && p.top_p <= 1)) fail("top_p must be in (0, 1] (got {})", p.top_p);
  if (!(p.min_p >= 0 && p.min_p <= 1)) fail("min_p must be in [0, 1] (got {})", p.min_p);
}

SamplingParams sampling_defaults(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "generation_config.json").string();
  const nlohmann::json j = read_json_object_if_present(path);
  SamplingParams p;
  if (j.is_null()) return p;
  auto read = [&](const char* name, auto& field) {
    if (!j.contains(name) || j[name].is_null()) return;
    if (!j[name].is_number()) fail("{}: \"{}\" must be a number", path, name);
    field = j[name].get<std::remove_reference_t<decltype(field)>>();
  };
  read("temperature", p.temperature);
  read("top_p", p.top_p);
  read("top_k", p.top_k);
  read("min_p", p.min_p);
  if (j.contains("do_sample") && j["do_sample"].is_boolean() && !j["do_sample"].get<bool>()) p.temperature = 0;
  try {
    validate(p);
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
  return p;
}

std::vector<Candidate> truncated_distribution(std::span<const float> logits, const SamplingParams& p) {
  if (!(p.temperature > 0)) fail("truncated_distribution needs temperature > 0 (0 is greedy)");
  std::vector<Candidate> c = scaled_probabilities(logits, p.temperature);
  if (p.top_k > 0 && size_t(p.top_k) < c.size()) {
    std::nth_element(c.begin(), c.begin() + p.top_k, c.end(), more_likely);
    c.resize(p.top_k);
  }
  if (p.top_p < 1) c.resize(nucleus_size(c, p.top_p));
  // min-p against the top probability, which scaled_probabilities made exactly 1.
  std::erase_if(c, [&](const Candidate& x) { return x.probability < p.min_p; });
  std::sort(c.begin(), c.end(), more_likely);
  double total = 0;
  for (const Candidate& x : c) total += x.probability;
  for (Candidate& x : c) x.probability = float(x.probability / total);
  return c;
}


Sampler::Sampler(const SamplingParams& params, uint64_t stream) : params_(params), rng_(mix(params.seed ^ mix(stream))) {
  validate(params_);
}

double Sampler::uniform() { return double(rng_() >> 11) * 0x1.0p-53; }

int Sampler::sample(std::span<const float> logits) {
  if (params_.temperature == 0) return greedy_token(logits);
  const bool truncated = params_.top_k > 0 || params_.top_p < 1 || params_.min_p > 0;
  // Without truncation, draw straight from the softmax in id order: no sort of the vocabulary.
  const std::vector<Candidate> c =
      truncated ? truncated_distribution(logits, params_) : scaled_probabilities(logits, params_.temperature);
  double total = 0;
  for (const Candidate& x : c) total += x.probability;
  const double target = uniform() * total;
  double mass = 0;
  for (const Candidate& x : c) {
    mass += x.probability;
    if (target < mass) return x.id;
  }
  // Rounding put the target at the very end: the last token that has any probability.
  for (auto it = c.rbegin(); it != c.rend(); ++it)
    if (it->probability > 0) return it->id;
  return c.front().id;
}

}  // namespace r1
