// Tokenizer speed: tokenizer.json load time, and single-thread encode throughput on English
// prose. Not a test; run by hand and copy the figures into docs/PERFORMANCE.md.
//
//   build/bench/bench_tokenizer --tokenizer DIR [--text FILE]... [--mb N] [--loads N]
//
// The default text is the license texts of /usr/share/common-licenses (English prose present
// on every Debian system, ~250 KB), repeated to --mb megabytes. The first pass over the text
// is timed apart: it runs with an empty word cache.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string read_texts(std::vector<std::string> files) {
  if (files.empty()) {
    std::set<fs::path> unique;  // several names link to the same license
    for (const auto& entry : fs::directory_iterator("/usr/share/common-licenses"))
      if (fs::is_regular_file(entry.path())) unique.insert(fs::canonical(entry.path()));
    for (const fs::path& p : unique) files.push_back(p.string());
  }
  std::string text;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) r1::fail("{}: cannot open", f);
    std::stringstream s;
    s << in.rdbuf();
    text += s.str() + "\n";
  }
  return text;
}

void bench_load(const std::string& dir, int loads) {
  std::vector<double> ms;
  for (int i = 0; i < loads; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const r1::Tokenizer t(dir);
    ms.push_back(1e3 * seconds_since(start));
  }
  std::sort(ms.begin(), ms.end());
  fmt::print("load {}/tokenizer.json: median {:.1f} ms, best {:.1f} ms ({} loads)\n", dir, ms[ms.size() / 2], ms[0],
             loads);
}

void bench_encode(const std::string& dir, const std::string& corpus, double mb) {
  const r1::Tokenizer t(dir);
  auto start = std::chrono::steady_clock::now();
  size_t tokens = t.encode(corpus).size();
  double s = seconds_since(start);
  fmt::print("encode, first pass (empty word cache): {:.2f} MB in {:.3f} s = {:.1f} MB/s, {} tokens\n",
             corpus.size() / 1e6, s, corpus.size() / 1e6 / s, tokens);

  std::string text;
  while (text.size() < mb * 1e6) text += corpus;
  start = std::chrono::steady_clock::now();
  tokens = t.encode(text).size();
  s = seconds_since(start);
  fmt::print("encode, {:.1f} MB of prose: {:.3f} s = {:.1f} MB/s, {:.2f} M tokens/s ({:.2f} bytes/token)\n",
             text.size() / 1e6, s, text.size() / 1e6 / s, tokens / 1e6 / s, double(text.size()) / tokens);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tokenizer benchmark: tokenizer.json load time and encode throughput (one thread)"};
  std::string dir;
  std::vector<std::string> texts;
  double mb = 16;
  int loads = 7;
  app.add_option("--tokenizer", dir, "directory holding tokenizer.json")->required();
  app.add_option("--text", texts, "English prose files (default: /usr/share/common-licenses/*)");
  app.add_option("--mb", mb, "megabytes of text to encode")->check(CLI::PositiveNumber);
  app.add_option("--loads", loads, "number of timed loads")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    bench_load(dir, loads);
    bench_encode(dir, read_texts(texts), mb);
  } catch (const r1::Error& e) {
    fmt::print(stderr, "bench_tokenizer: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
