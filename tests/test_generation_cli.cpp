// r1 run, r1 chat and r1 bench end to end on a random tiny model with R1's vocabulary (made
// once per test run by `r1 gen-model --preset tiny --vocab 129280`) and R1's tokenizer. The
// model writes gibberish: the tests check the mechanics (streams, JSON, stop reasons,
// determinism, resume, errors), not the quality.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cpu/cpu_backend.h"
#include "pty_session.h"
#include "run_command.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kTokenizer = std::string(R1_TEST_DATA) + "/tokenizer/deepseek-r1";

class GenerationCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("r1_generation_cli_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const CommandResult r = run_command(std::string(R1_BINARY) + " gen-model --preset tiny --vocab 129280 --layers 2 --out " +
                                        (dir_ / "model").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // `r1 SUBCOMMAND` with the test model, tokenizer and 2 threads, then `args`.
  static std::string r1(const std::string& subcommand, const std::string& args) {
    return std::string(R1_BINARY) + " " + subcommand + " --model " + (dir_ / "model").string() + " --tokenizer " +
           kTokenizer + " --threads 2 " + args;
  }
  static std::string path(const std::string& name) { return (dir_ / name).string(); }
  static std::string read_file(const std::string& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static void write_file(const std::string& p, const std::string& text) { std::ofstream(p) << text; }

  static fs::path dir_;
};
fs::path GenerationCli::dir_;

TEST_F(GenerationCli, RunJsonHasTheDocumentedSchemaAndIsReproducible) {
  const std::string command = r1("run", "-p 'What is 2+2?' --json --max-tokens 6 --seed 5 2>/dev/null");
  const CommandResult a = run_command(command), b = run_command(command);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const json j = json::parse(a.output);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 5u) << j.dump();
  EXPECT_TRUE(j.at("reasoning").is_string());
  EXPECT_TRUE(j.at("content").is_string());
  const std::string finish = j.at("finish_reason").get<std::string>();
  EXPECT_TRUE(finish == "length" || finish == "stop") << finish;
  EXPECT_GT(j.at("usage").at("prompt_tokens").get<int>(), 5);
  const int completion = j.at("usage").at("completion_tokens").get<int>();
  EXPECT_GE(completion, 1);
  EXPECT_LE(completion, 6);
  EXPECT_GT(j.at("timings").at("ttft_ms").get<double>(), 0);
  EXPECT_GE(j.at("timings").at("decode_tok_s").get<double>(), 0);
  // R1's template opens <think>: a random model never closes it, so all text is reasoning.
  EXPECT_FALSE(j.at("reasoning").get<std::string>().empty());
  const json k = json::parse(b.output);
  EXPECT_EQ(j.at("reasoning"), k.at("reasoning")) << "same seed, same text";
  EXPECT_EQ(j.at("usage"), k.at("usage"));
}

// Without --json the answer goes to stdout and the reasoning to stderr; stdin gives the prompt.
TEST_F(GenerationCli, RunStreamsReasoningToStderrAndAnswerToStdout) {
  const CommandResult as_json = run_command("echo 'Hello there' | " + r1("run", "--json --max-tokens 5 --temperature 0 2>/dev/null"));
  ASSERT_EQ(as_json.exit_code, 0) << as_json.output;
  const json j = json::parse(as_json.output);
  const CommandResult out = run_command("echo 'Hello there' | " + r1("run", "--max-tokens 5 --temperature 0 2>/dev/null"));
  const CommandResult err = run_command("echo 'Hello there' | " + r1("run", "--max-tokens 5 --temperature 0 2>&1 >/dev/null"));
  ASSERT_EQ(out.exit_code, 0);
  EXPECT_EQ(out.output, j["content"].get<std::string>() + "\n");
  EXPECT_EQ(err.output.substr(0, j["reasoning"].get<std::string>().size()), j["reasoning"].get<std::string>());
  const CommandResult hidden = run_command("echo 'Hello there' | " + r1("run", "--max-tokens 5 --temperature 0 --hide-thinking 2>&1"));
  EXPECT_EQ(hidden.output, j["content"].get<std::string>() + "\n");
}

TEST_F(GenerationCli, RunFailsClearlyOnBadInput) {
  const CommandResult too_long = run_command(r1("run", "-p 'a long question about many things' --context 8"));
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_NE(too_long.output.find("the context holds 8"), std::string::npos) << too_long.output;
  const CommandResult unknown = run_command(r1("run", "-p hi --bogus-flag"));
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("--bogus-flag"), std::string::npos) << unknown.output;
  const CommandResult empty = run_command("printf '' | " + r1("run", ""));
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.output.find("no prompt"), std::string::npos) << empty.output;
}

// stdin and stdout are pipes: plain labels, no escape codes; /stats counts the answers.
TEST_F(GenerationCli, ChatWorksWithoutATerminal) {
  const CommandResult r = run_command("printf 'Hi\\n/stats\\n/think off\\nAgain\\n/exit\\nnever read\\n' | " +
                                      r1("chat", "--max-tokens 4 --temperature 0"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find('\x1b'), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("[thinking]"), r.output.rfind("[thinking]")) << "shown once, hidden after /think off";
  EXPECT_NE(r.output.find("[thinking]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("answers 1,"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("generated"), std::string::npos) << r.output;
}

// The chat in a terminal: type a prompt, see the dimmed reasoning stream and the stats line,
// then /exit ends the program with status 0.
TEST_F(GenerationCli, ChatInATerminalStreamsDimmedReasoningAndExits) {
  PtySession chat(r1("chat", "--max-tokens 5 --temperature 0"));
  ASSERT_TRUE(chat.started());
  ASSERT_NE(chat.wait_for("> ").find("> "), std::string::npos) << chat.wait_for("");
  chat.type("Tell me a story\r");
  const std::string& seen = chat.wait_for("tok/s");
  EXPECT_NE(seen.find("\x1b[2m[thinking]"), std::string::npos) << seen;
  EXPECT_NE(seen.find("prompt tokens, 5 generated"), std::string::npos) << seen;
  chat.wait_for("> ", seen.find("tok/s"));
  chat.type("/exit\r");
  EXPECT_EQ(chat.exit_status(), 0);
}

// Ctrl-C during a long answer stops it, and the chat returns to its prompt.
TEST_F(GenerationCli, ChatCtrlCStopsTheAnswerAndKeepsChatting) {
  PtySession chat(r1("chat", "--max-tokens 100000 --temperature 0"));
  ASSERT_TRUE(chat.started());
  chat.wait_for("> ");
  chat.type("Write a long essay\r");
  ASSERT_NE(chat.wait_for("[thinking]").find("[thinking]"), std::string::npos) << chat.wait_for("");
  chat.type("\x03");  // the terminal turns it into SIGINT
  const std::string& seen = chat.wait_for("cancelled]");
  EXPECT_NE(seen.find("[stopped]"), std::string::npos) << seen;
  const size_t stop = seen.find("cancelled]");
  ASSERT_NE(stop, std::string::npos) << seen;
  EXPECT_NE(chat.wait_for("> ", stop).find("> ", stop), std::string::npos) << "back at the prompt";
  chat.type("/exit\r");
  EXPECT_EQ(chat.exit_status(), 0);
}

TEST_F(GenerationCli, BenchResumesWithoutRedoingFinishedSamples) {
  const std::string data = path("three.jsonl"), out = path("results.jsonl");
  write_file(data,
             "{\"id\": \"a\", \"problem\": \"1+1?\", \"answer\": \"2\"}\n"
             "{\"id\": \"b\", \"problem\": \"2+2?\", \"answer\": 4}\n"
             "{\"problem\": \"3+3?\", \"answer\": \"6\"}\n");
  const std::string common = "--dataset " + data + " --out " + out + " --max-tokens 3 --samples 2 --batch 3";
  const CommandResult first = run_command(r1("bench", common + " --limit 2"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string after_first = read_file(out);
  EXPECT_EQ(std::count(after_first.begin(), after_first.end(), '\n'), 4) << after_first;

  const CommandResult again = run_command(r1("bench", common));  // no --resume: refuses, keeps the file
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("--resume"), std::string::npos) << again.output;
  EXPECT_EQ(read_file(out), after_first);

  const CommandResult resumed = run_command(r1("bench", common + " --resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const std::string after_resume = read_file(out);
  EXPECT_EQ(after_resume.substr(0, after_first.size()), after_first) << "finished lines kept as they were";
  std::istringstream lines(after_resume.substr(after_first.size()));
  std::string line;
  int added = 0;
  while (std::getline(lines, line)) {
    const json j = json::parse(line);
    EXPECT_EQ(j.at("id"), "3") << "only the problem not done before (its line number as id)";
    for (const char* key : {"sample", "extracted", "correct", "tokens", "seconds"}) EXPECT_TRUE(j.contains(key)) << key;
    ++added;
  }
  EXPECT_EQ(added, 2);
  EXPECT_NE(resumed.output.find("6 graded"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("accuracy"), std::string::npos);
}

TEST_F(GenerationCli, BenchStopsOnBadDatasets) {
  const CommandResult missing = run_command(r1("bench", "--dataset " + path("nope.jsonl")));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nope.jsonl: cannot open"), std::string::npos) << missing.output;

  const std::string bad = path("bad.jsonl"), out = path("bad_results.jsonl");
  write_file(bad, "{\"problem\": \"1+1?\", \"answer\": \"2\"}\n{\"problem\": \"oops\"\n");
  const CommandResult malformed = run_command(r1("bench", "--dataset " + bad + " --out " + out));
  EXPECT_EQ(malformed.exit_code, 1);
  EXPECT_NE(malformed.output.find("bad.jsonl:2:"), std::string::npos) << malformed.output;
  EXPECT_FALSE(fs::exists(out)) << "nothing started, nothing written";
}

TEST_F(GenerationCli, SyntheticBenchPrintsSpeedsAsJson) {
  const CommandResult r = run_command(r1("bench", "--synthetic --prompt-len 16 --gen-len 4 --batch 2 --json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = json::parse(r.output);
  EXPECT_EQ(j.at("batch"), 2);
  EXPECT_GT(j.at("prefill_tok_s").get<double>(), 0);
  EXPECT_GT(j.at("decode_tok_s").get<double>(), 0);
  EXPECT_GT(j.at("ttft_ms").get<double>(), 0);
  // The warm-up round's figures beside the measured round's.
  EXPECT_GT(j.at("cold_prefill_tok_s").get<double>(), 0);
  EXPECT_GT(j.at("cold_ttft_ms").get<double>(), 0);
  // The ceilings are measured in the same run (CPU): memory bandwidth and the FMA peak, and the
  // fractions are the figures over them.
  const double bandwidth = j.at("measured_bandwidth_gb_s").get<double>(), peak = j.at("peak_gflop_s").get<double>();
  EXPECT_GT(bandwidth, 0);
  EXPECT_GT(peak, 0);
  // Probed before and after the run, the better kept (a core taken away during one probe would
  // make a weak yardstick); the second is 0 only where there was no room for it.
  const auto probes = j.at("bandwidth_probes_gb_s").get<std::vector<double>>();
  ASSERT_EQ(probes.size(), 2u);
  EXPECT_GT(probes[0], 0);
  EXPECT_DOUBLE_EQ(bandwidth, std::max(probes[0], probes[1]));
  EXPECT_NEAR(j.at("bandwidth_fraction").get<double>(), j.at("effective_gb_s").get<double>() / bandwidth, 0.002);
  EXPECT_NEAR(j.at("prefill_peak_fraction").get<double>(), j.at("prefill_gflop_s").get<double>() / peak, 0.002);
  // --numerics auto (the default) names the mode it picked: fast where the CPU has AVX512-BF16.
  EXPECT_EQ(j.at("numerics"), fast_numerics_available() ? "fast" : "exact");
  EXPECT_EQ(j.at("peak"), fast_numerics_available() ? "bf16_dot" : "f32_fma");
}

// --profile times every op: each layer's attention once per forward call, in the prefill call
// (the prompts) and in each decode step; it is refused where no forward pass is timed.
TEST_F(GenerationCli, SyntheticBenchProfilesTheOps) {
  const CommandResult r = run_command(r1("bench", "--synthetic --prompt-len 16 --gen-len 4 --batch 2 --json --profile"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = json::parse(r.output);
  const int layers = json::parse(read_file(path("model/config.json"))).at("num_hidden_layers");
  std::map<std::string, json> lines;
  for (const json& line : j.at("profile")) lines[line.at("phase").get<std::string>() + " " + line.at("op").get<std::string>()] = line;
  ASSERT_TRUE(lines.count("prefill attention") && lines.count("decode attention")) << j.dump();
  EXPECT_EQ(lines["decode attention"].at("calls").get<int>() % layers, 0);
  EXPECT_EQ(lines["decode attention"].at("tokens").get<int>(), 2 * lines["decode attention"].at("calls").get<int>());
  EXPECT_GT(lines["decode lm_head"].at("seconds").get<double>(), 0);

  const CommandResult refused = run_command(r1("bench", "--profile --dataset " + path("any.jsonl")));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find("--profile: only with --synthetic"), std::string::npos) << refused.output;
}

}  // namespace
}  // namespace r1
