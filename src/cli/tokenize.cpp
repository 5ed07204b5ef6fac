// r1 tokenize: text to token ids and back, for scripts and for checking the tokenizer.
//   stdin text                    -> [ids]          (default)
//   JSONL {"text": ...} per line  -> {"ids": [...]}  (--batch)
//   JSONL {"ids": [...]} per line -> {"text": ...}   (--decode)
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace r1 {

namespace {

using json = nlohmann::json;

struct TokenizeOptions {
  std::string tokenizer;
  bool batch = false;
  bool decode = false;
};

void print_ids(const std::vector<int>& ids, const char* before, const char* after) {
  fmt::print("{}[{}]{}", before, fmt::join(ids, ","), after);
}

json parse_line(const std::string& line, size_t number, const char* field) {
  json row;
  try {
    row = json::parse(line);
  } catch (const json::exception& e) {
    fail("stdin line {}: invalid JSON: {}", number, e.what());
  }
  if (!row.is_object() || !row.contains(field)) fail("stdin line {}: expected an object with \"{}\"", number, field);
  return row;
}

std::vector<int> parse_ids(const json& ids, size_t number, const Tokenizer& tokenizer) {
  if (!ids.is_array()) fail("stdin line {}: \"ids\" must be an array of token ids", number);
  std::vector<int> out;
  for (const json& id : ids) {
    const int64_t value = id.is_number_integer() ? id.get<int64_t>() : -1;
    if (value < 0 || value > INT32_MAX || !tokenizer.contains(int(value)))
      fail("stdin line {}: {} is not a token id of this tokenizer (0..{})", number, id.dump(),
           tokenizer.vocab_size() - 1);
    out.push_back(int(value));
  }
  return out;
}

// One JSONL record per input line; blank lines are skipped.
void run_lines(const TokenizeOptions& o, const Tokenizer& tokenizer) {
  std::string line;
  for (size_t number = 1; std::getline(std::cin, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json row = parse_line(line, number, o.decode ? "ids" : "text");
    if (o.decode) {
      const std::string text = tokenizer.decode(parse_ids(row["ids"], number, tokenizer));
      // Ill-formed UTF-8 (ids that end mid-character) is shown as U+FFFD: JSON holds only text.
      fmt::print("{}\n", json{{"text", text}}.dump(-1, ' ', false, json::error_handler_t::replace));
    } else {
      const json& text = row["text"];
      if (!text.is_string()) fail("stdin line {}: \"text\" must be a string", number);
      print_ids(tokenizer.encode(text.get<std::string>()), "{\"ids\":", "}\n");
    }
  }
}

int run_tokenize(const TokenizeOptions& o) {
  const Tokenizer tokenizer(o.tokenizer);
  if (o.batch || o.decode) {
    run_lines(o, tokenizer);
  } else {
    const std::string text(std::istreambuf_iterator<char>(std::cin), {});
    print_ids(tokenizer.encode(text), "", "\n");
  }
  return 0;
}

}  // namespace

Command add_tokenize_command(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "text on stdin to token ids (or JSONL batches, or ids back to text)");
  cmd->add_option("--tokenizer", options->tokenizer, "directory holding tokenizer.json")->required();
  cmd->add_flag("--batch", options->batch, "JSONL {\"text\"} lines in, JSONL {\"ids\"} lines out");
  cmd->add_flag("--decode", options->decode, "JSONL {\"ids\"} lines in, JSONL {\"text\"} lines out");
  return [options] { return run_tokenize(*options); };
}

}  // namespace r1
