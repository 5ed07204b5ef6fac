// Fresh arithmetic problems of the demo model's three families (tools/demo_task.py): a + b and
// a - b up to 999, a times b with a <= 99 and b <= 9, as the JSONL that `r1 bench --dataset`
// reads; the share a bench results file got right; and the committed demo model's path and the
// cosine its fidelity tests compare logits with.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "run_command.h"

namespace r1 {

inline const std::filesystem::path kDemoModel =
    std::filesystem::path(R1_TEST_DATA) / ".." / ".." / "models" / "r1-demo";

inline double cosine(const float* a, const float* b, int n) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < n; ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

inline void write_demo_problems(const std::string& path, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::ofstream data(path);
  for (int i = 0; i < count; ++i) {
    int a = pick(0, 999), b = pick(0, 999), answer;
    std::string op;
    if (i % 3 == 0) op = "+", answer = a + b;
    if (i % 3 == 1) b = pick(0, a), op = "-", answer = a - b;
    if (i % 3 == 2) a = pick(0, 99), b = pick(0, 9), op = "times", answer = a * b;
    data << nlohmann::json{{"problem", fmt::format("What is {} {} {}?", a, op, b)}, {"answer", std::to_string(answer)}}
         << "\n";
  }
}

struct BenchScore {
  int correct = 0, total = 0;
};

inline BenchScore read_bench_results(const std::string& path) {
  BenchScore s;
  std::ifstream results(path);
  for (std::string line; std::getline(results, line); ++s.total)
    s.correct += nlohmann::json::parse(line).at("correct").get<bool>();
  return s;
}

// Greedy `r1 bench` over a problems file with `flags` (model, device, numerics); its score, or
// total -1 (the output printed) when the command fails.
inline BenchScore bench_problems(const std::string& flags, const std::string& problems, const std::string& out,
                                 int batch) {
  const CommandResult r = run_command(fmt::format("{} bench {} --dataset {} --temperature 0 --batch {} "
                                                  "--max-tokens 300 --out {} 2>&1",
                                                  R1_BINARY, flags, problems, batch, out));
  if (r.exit_code != 0) {
    std::printf("%s\n", r.output.c_str());
    return {0, -1};
  }
  const BenchScore s = read_bench_results(out);
  std::printf("  %s: %d/%d correct\n", flags.c_str(), s.correct, s.total);
  return s;
}

}  // namespace r1
