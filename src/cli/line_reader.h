// Reads the chat's input lines: with line editing and history (libedit) when stdin is a
// terminal, plain lines otherwise (pipes, files, tests).
#pragma once

#include <optional>
#include <string>

namespace r1 {

class LineReader {
 public:
  LineReader();
  bool interactive() const { return interactive_; }
  // The next line without its newline; nullopt at end of input.
  std::optional<std::string> read(const std::string& prompt);

 private:
  bool interactive_;
};

}  // namespace r1
