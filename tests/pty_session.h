// A command running in a pseudo-terminal, as a person at a terminal would run it (chat tests).
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace r1 {

// Reads from the pty until `marker` appears or 60 s pass, appending to `seen`.
inline void read_until(int fd, const std::string& marker, std::string& seen) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (seen.find(marker) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, size_t(n));
  }
}

// A command running in a pseudo-terminal, as a person at a terminal would run it.
class PtySession {
 public:
  explicit PtySession(const std::string& command) {
    pid_ = forkpty(&master_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), nullptr);
      _exit(127);
    }
  }
  ~PtySession() {
    if (master_ >= 0) close(master_);
  }
  bool started() const { return pid_ > 0; }
  void type(const std::string& keys) { ASSERT_EQ(write(master_, keys.data(), keys.size()), ssize_t(keys.size())); }
  // Everything read so far once `marker` has appeared in what follows position `from`.
  const std::string& wait_for(const std::string& marker, size_t from = 0) {
    std::string tail = seen_.substr(from);
    const size_t before = seen_.size();
    read_until(master_, marker, tail);
    seen_ += tail.substr(before - from);
    return seen_;
  }
  // The exit status once the program has ended (draining its output meanwhile); -1 if it hangs.
  int exit_status() {
    int status = 0;
    for (int i = 0; i < 300 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::string drain;
      read_until(master_, "\n", drain);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  std::string seen_;
};

}  // namespace r1
