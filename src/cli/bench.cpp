// r1 bench: accuracy on an AIME / MATH-500 style dataset (pass@1 averaged over --samples),
// with batched generation, a live progress bar, incremental results and --resume; or, with
// --synthetic, pure prefill/decode speed on made-up tokens.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/session.h"
#include "common/error.h"
#include "cpu/bandwidth.h"
#include "engine/backend_factory.h"
#include "io/large_pages.h"
#include "model/config.h"
#include "model/decode_bytes.h"
#include "eval/dataset.h"
#include "eval/grade.h"

namespace r1 {

namespace {

// DeepSeek's recommended instruction for math problems (R1 model card).
constexpr const char* kPromptSuffix = "Please reason step by step, and put your final answer within \\boxed{}.";

struct BenchOptions {
  ModelFlags model;
  std::string dataset, out;
  int samples = 1, limit = 0, batch = 4;
  bool resume = false, synthetic = false, json = false;
  int prompt_len = 128, gen_len = 128;
};

struct Tally {
  int done = 0, correct = 0;
  long tokens = 0;
  double ttft_s = 0;
  int timed = 0;  // samples generated in this run (resumed ones carry no timings)
};

void print_progress(const Tally& t, int total, double decode_tok_s) {
  if (!isatty(STDERR_FILENO)) return;
  constexpr int kWidth = 30;
  const int filled = total > 0 ? t.done * kWidth / total : kWidth;
  fmt::print(stderr, "\r[{}{}] {}/{}  accuracy {:.1f}%  {:.1f} tok/s ", std::string(filled, '#'),
             std::string(kWidth - filled, '.'), t.done, total, t.done ? 100.0 * t.correct / t.done : 0.0,
             decode_tok_s);
}

void print_summary(const Tally& t, const EngineStats& stats, int problems, int samples) {
  fmt::print("problems        {}\n", problems);
  fmt::print("samples         {} per problem, {} graded\n", samples, t.done);
  fmt::print("accuracy        {:.2f}%  ({}/{}, pass@1 averaged over samples)\n",
             t.done ? 100.0 * t.correct / t.done : 0.0, t.correct, t.done);
  fmt::print("mean tokens     {:.1f}\n", t.done ? double(t.tokens) / t.done : 0.0);
  fmt::print("decode          {:.1f} tok/s\n", stats.decode_tok_s());
  fmt::print("prefill         {:.1f} tok/s\n", stats.prefill_tok_s());
  fmt::print("TTFT            {:.0f} ms (mean)\n", t.timed ? t.ttft_s / t.timed * 1e3 : 0.0);
}

int run_dataset(const BenchOptions& o) {
  std::vector<Problem> problems = load_dataset(o.dataset);
  if (o.limit > 0 && int(problems.size()) > o.limit) problems.resize(size_t(o.limit));
  if (!o.out.empty() && !o.resume && std::filesystem::exists(o.out) && std::filesystem::file_size(o.out) > 0)
    fail("--out {}: the file exists; add --resume to continue it or remove it", o.out);
  const std::vector<SampleResult> previous = o.resume && !o.out.empty() ? load_results(o.out) : std::vector<SampleResult>{};
  std::set<std::pair<std::string, int>> finished;
  Tally tally;
  for (const SampleResult& r : previous)
    if (finished.insert({r.id, r.sample}).second) {
      ++tally.done;
      tally.correct += r.correct;
      tally.tokens += r.tokens;
    }
  std::optional<ResultsWriter> writer;
  if (!o.out.empty()) writer.emplace(o.out, /*append=*/o.resume);

  Session session(o.model, /*need_tokenizer=*/true);
  Engine engine = session.make_engine(o.batch);
  const int total = int(problems.size()) * o.samples;
  for (const Problem& p : problems)
    for (int k = 0; k < o.samples; ++k) {
      if (finished.count({p.id, k})) continue;
      Request request;
      try {
        request.prompt = session.encode_chat({{"user", p.problem + "\n" + kPromptSuffix, {}}});
      } catch (const Error& e) {
        fail("problem {}: {}", p.id, e.what());
      }
      request.sampling = session.sampling();
      request.sampler_stream = uint64_t(k);
      request.max_tokens = session.max_tokens();
      request.started_in_thinking = session.prompt_opens_thinking();
      request.on_finish = [&, id = p.id, answer = p.answer, k](const Generation& g) {
        const Grade grade = grade_response(g.content.empty() ? g.reasoning : g.content, answer);
        const SampleResult r{id, k, grade.extracted, grade.correct, g.completion_tokens, g.ttft_s + g.decode_s,
                             std::string(finish_reason_name(g.finish))};
        if (writer) writer->write(r);
        ++tally.done;
        tally.correct += r.correct;
        tally.tokens += r.tokens;
        tally.ttft_s += g.ttft_s;
        ++tally.timed;
      };
      engine.submit(std::move(request));
    }
  auto last_draw = std::chrono::steady_clock::now();
  print_progress(tally, total, 0);
  while (engine.step()) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_draw > std::chrono::milliseconds(200)) {
      print_progress(tally, total, engine.stats().decode_tok_s());
      last_draw = now;
    }
  }
  print_progress(tally, total, engine.stats().decode_tok_s());
  if (isatty(STDERR_FILENO)) fmt::print(stderr, "\n");
  print_summary(tally, engine.stats(), int(problems.size()), o.samples);
  return 0;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Seconds to read the checkpoint's safetensors files once, start to end (from the page cache
// where they still are, else from the disk): what a load could at best take.
double read_files_once_s(const std::string& dir) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<char> buffer(size_t(16) << 20);
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".safetensors") continue;
    FILE* f = std::fopen(entry.path().c_str(), "rb");
    if (!f) fail("{}: cannot open", entry.path().string());
    while (std::fread(buffer.data(), 1, buffer.size(), f) == buffer.size()) {}
    std::fclose(f);
  }
  return seconds_since(start);
}

constexpr size_t kProbeBytes = size_t(2) << 30;

// The op times of the measured round: the tallies less the warm-up's.
TimedBackend::Tallies since(TimedBackend::Tallies now, const TimedBackend::Tallies& before) {
  for (size_t phase = 0; phase < now.size(); ++phase)
    for (size_t op = 0; op < now[phase].size(); ++op) {
      now[phase][op].seconds -= before[phase][op].seconds;
      now[phase][op].calls -= before[phase][op].calls;
      now[phase][op].tokens -= before[phase][op].tokens;
    }
  return now;
}

// Made-up prompts (ids spread over the vocabulary), no stop token, exactly gen_len tokens each.
int run_synthetic(const BenchOptions& o) {
  // The machine's ceilings, measured first, while the memory is free for the probe's large
  // pages (after the model's, they may be left only 4 KiB pages, and the probe would read
  // slower than the weights it is the yardstick for). The arithmetic ceiling is that of the
  // numerics in use: float32 FMAs (exact), BF16 dot products (fast).
  // They are measured again after the run and the better of the two kept: on a shared machine a
  // core taken away during one probe would halve it, and the fractions over it would be inflated
  // (seen: an FMA peak of 219 instead of 445 GFLOP/s, a decode "above" the bandwidth).
  double bandwidth_gb_s = 0, peak_gflop_s = 0, bandwidth_after_gb_s = 0;
  load_config(o.model.model);  // a wrong --model or --numerics is said at once, not after the probes
  const bool fast = parse_numerics(o.model.numerics, o.model.device) == Numerics::fast;
  const bool probe = o.model.device == "cpu";
  std::optional<ThreadPool> probe_pool;
  auto measure_peak = [&] { return fast ? measure_bf16_peak_gflop_s(*probe_pool) : measure_fma_peak_gflop_s(*probe_pool); };
  if (probe) {
    probe_pool.emplace(o.model.threads);
    bandwidth_gb_s = measure_read_bandwidth_gb_s(*probe_pool, kProbeBytes);
    peak_gflop_s = measure_peak();
  }
  const auto load_start = std::chrono::steady_clock::now();
  Session session(o.model, /*need_tokenizer=*/false);
  const double load_s = seconds_since(load_start);
  const int vocab = session.config().vocab_size;
  // Rounds of the same batch of prompts, each on an engine of its own: the first a warm-up that
  // stops at the first token (the first prompt of a process pays one-time costs: buffers and
  // scratch touched for the first time; in fast numerics 2-5% of a 512-token prefill here),
  // then the measured one. The warm-up's prefill and TTFT are reported as the cold figures.
  const auto submit_prompts = [&](Engine& engine, int max_tokens, double* ttft_s) {
    for (int s = 0; s < o.batch; ++s) {
      Request request;
      for (int p = 0; p < o.prompt_len; ++p) request.prompt.push_back(int((s * 7919L + p * 104729L + 3) % vocab));
      request.sampling.temperature = 0;
      request.max_tokens = max_tokens;
      request.on_finish = [&o, ttft_s](const Generation& g) { *ttft_s += g.ttft_s / o.batch; };
      engine.submit(std::move(request));
    }
    engine.run();
  };
  double cold_ttft_s = 0, ttft_s = 0, cold_prefill_tok_s = 0;
  {
    Engine warm_up = session.make_engine(o.batch);
    submit_prompts(warm_up, 1, &cold_ttft_s);
    cold_prefill_tok_s = warm_up.stats().prefill_tok_s();
  }
  const TimedBackend* timed = session.timed_backend();
  const TimedBackend::Tallies warm_up_tallies = timed ? timed->tallies() : TimedBackend::Tallies{};
  Engine engine = session.make_engine(o.batch);
  submit_prompts(engine, o.gen_len, &ttft_s);
  if (probe) {
    peak_gflop_s = std::max(peak_gflop_s, measure_peak());
    // Beside the model the probe may find only small pages (then it reads slower: the better of
    // the two stands), or no room at all: then the first probe stands alone rather than risk
    // the out-of-memory killer at the end of a long run.
    if (available_memory_bytes() >= 2 * kProbeBytes) {
      try {
        bandwidth_after_gb_s = measure_read_bandwidth_gb_s(*probe_pool, kProbeBytes);
      } catch (const Error&) {  // its memory could not be mapped: the first probe stands alone
      }
    }
  }
  const double bandwidth_before_gb_s = bandwidth_gb_s;
  bandwidth_gb_s = std::max(bandwidth_gb_s, bandwidth_after_gb_s);
  const EngineStats& st = engine.stats();
  const double decode_tok_s = st.decode_tok_s();
  // Bytes one decode step reads (the latent cache in float32, BF16 in fast numerics; contexts
  // average the middle of decode), divided by the machine's read bandwidth measured now, in the
  // same run, on the CPU.
  const double step_bytes = decode_bytes_per_step(session.config(), session.model().weights, o.batch,
                                                  o.prompt_len + o.gen_len / 2.0, fast ? 2 : 4);
  const double effective_gb_s = step_bytes * decode_tok_s / o.batch / 1e9;
  const double read_s = read_files_once_s(o.model.model);
  const double prefill_gflop_s = st.prefill_tok_s() / o.prompt_len / 1e9 *
                                 prompt_flops(session.config(), session.model().weights, o.prompt_len,
                                              engine.options().prefill_chunk, session.backend().expands_prompt_chunks());
  const double fraction = bandwidth_gb_s > 0 ? effective_gb_s / bandwidth_gb_s : 0.0;
  if (o.json) {
    auto two_decimals = [](double x) { return std::round(x * 100) / 100; };
    nlohmann::json j = {{"numerics", fast ? "fast" : "exact"}, {"prompt_len", o.prompt_len}, {"gen_len", o.gen_len}, {"batch", o.batch},
                        {"prefill_tok_s", two_decimals(st.prefill_tok_s())},
                        {"cold_prefill_tok_s", two_decimals(cold_prefill_tok_s)}, {"cold_ttft_ms", two_decimals(cold_ttft_s * 1e3)},
                        {"decode_tok_s", two_decimals(decode_tok_s)}, {"ttft_ms", two_decimals(ttft_s * 1e3)},
                        {"ms_per_step", two_decimals(decode_tok_s > 0 ? o.batch * 1e3 / decode_tok_s : 0.0)},
                        {"bytes_per_token", int64_t(std::llround(step_bytes / o.batch))},
                        {"effective_gb_s", two_decimals(effective_gb_s)},
                        {"prefill_gflop_s", two_decimals(prefill_gflop_s)}, {"load_s", two_decimals(load_s)},
                        {"read_files_s", two_decimals(read_s)}};
    if (bandwidth_gb_s > 0) {
      j["measured_bandwidth_gb_s"] = two_decimals(bandwidth_gb_s);
      j["bandwidth_probes_gb_s"] = {two_decimals(bandwidth_before_gb_s), two_decimals(bandwidth_after_gb_s)};
      j["bandwidth_fraction"] = std::round(fraction * 1000) / 1000;
      j["peak_gflop_s"] = two_decimals(peak_gflop_s);
      j["peak"] = fast ? "bf16_dot" : "f32_fma";
      j["prefill_peak_fraction"] = std::round(prefill_gflop_s / peak_gflop_s * 1000) / 1000;
    }
    if (timed) j["profile"] = op_times_json(since(timed->tallies(), warm_up_tallies));
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("batch {} × ({} prompt + {} generated tokens)\n", o.batch, o.prompt_len, o.gen_len);
  fmt::print("prefill         {:.1f} tok/s\n", st.prefill_tok_s());
  fmt::print("decode          {:.1f} tok/s ({:.2f} ms per step)\n", decode_tok_s,
             decode_tok_s > 0 ? o.batch * 1e3 / decode_tok_s : 0.0);
  fmt::print("TTFT            {:.0f} ms (mean)\n", ttft_s * 1e3);
  fmt::print("first round     prefill {:.1f} tok/s, TTFT {:.0f} ms (a warm-up, not in the figures)\n", cold_prefill_tok_s,
             cold_ttft_s * 1e3);
  fmt::print("load            {:.2f} s (reading the files once: {:.2f} s)\n", load_s, read_s);
  fmt::print("bytes/token     {:.3f} GB, {:.1f} GB/s effective\n", step_bytes / o.batch / 1e9, effective_gb_s);
  if (bandwidth_gb_s > 0)
    fmt::print("bandwidth       {:.1f} GB/s measured (probes before/after the run: {:.1f}/{:.1f}), {:.1f}% used\n",
               bandwidth_gb_s, bandwidth_before_gb_s, bandwidth_after_gb_s, fraction * 100);
  if (peak_gflop_s > 0)
    fmt::print("prefill FLOPs   {:.1f} GFLOP/s of {:.1f} measured {} peak ({:.1f}%)\n", prefill_gflop_s, peak_gflop_s,
               fast ? "BF16 dot-product" : "FMA", prefill_gflop_s / peak_gflop_s * 100);
  if (timed) fmt::print("\n{}", format_op_times(since(timed->tallies(), warm_up_tallies)));
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "accuracy on a JSONL dataset (AIME, MATH-500), or --synthetic speed");
  cmd->add_option("--dataset", o->dataset, "JSONL with \"problem\" and \"answer\" (e.g. data/bench/aime2024.jsonl)");
  cmd->add_option("--samples", o->samples, "samples per problem (pass@1 averaged over them)")->check(CLI::PositiveNumber);
  cmd->add_option("--limit", o->limit, "only the first N problems")->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", o->batch, "sequences generated together")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--out", o->out, "results JSONL, one line per graded sample, written as they finish");
  cmd->add_flag("--resume", o->resume, "continue --out: skip the samples it already holds");
  cmd->add_flag("--synthetic", o->synthetic, "speed only: made-up prompts, no tokenizer, no grading");
  cmd->add_option("--prompt-len", o->prompt_len, "--synthetic prompt tokens")->check(CLI::PositiveNumber);
  cmd->add_option("--gen-len", o->gen_len, "--synthetic generated tokens")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", o->json, "--synthetic: print the figures as one JSON object");
  cmd->add_flag("--profile", o->model.profile, "--synthetic: time every op of the forward pass (a table, or \"profile\" in the JSON)");
  add_model_flags(cmd, o->model);
  add_sampling_flags(cmd, o->model);
  return [o] {
    if (o->synthetic) return run_synthetic(*o);
    if (o->dataset.empty()) fail("bench: give --dataset FILE.jsonl (or --synthetic)");
    if (o->model.profile) fail("--profile: only with --synthetic");
    if (o->resume && o->out.empty()) fail("--resume needs --out FILE");
    return run_dataset(*o);
  };
}

}  // namespace r1
