// When a sequence stops generating, and why: the finish_reason of `r1 run --json` and bench.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace r1 {

enum class FinishReason { none, stop, length, context, cancelled };

// "stop", "length", "context", "cancelled" (and "none" for a sequence still running).
std::string_view finish_reason_name(FinishReason reason);

struct StopRules {
  std::vector<int> eos_ids;  // any of these ends the answer ("stop"); the token is not shown
  int max_tokens = 0;        // generated tokens allowed ("length"); 0 = up to the context
  int context_length = 0;    // positions the model holds, prompt included ("context"); 0 = none
};

// End-of-sequence ids: generation_config.json's eos_token_id (an int or a list) when present,
// else config.json's; empty when neither names one.
std::vector<int> eos_token_ids(const std::string& model_dir);

// A prompt must leave room for at least one generated token; otherwise an error saying so.
void check_prompt_fits(int prompt_tokens, int context_length);

// Whether a sequence stops after emitting `token`, its `generated`-th token, now holding
// `positions` positions (prompt + generated). An EOS outranks the limits reached with it.
FinishReason finish_reason(const StopRules& rules, int token, int generated, int positions);

}  // namespace r1
