// Forward steps replayed as CUDA graphs. A decode step of R1 is ~90 small kernel launches; as
// one graph launch the GPU runs them back to back instead of waiting on the host for each.
// A step is identified by a key holding every host-side value its launches depend on (token
// count, split counts, table widths, ...); its inputs live in fixed device buffers that the
// backend fills before the step. The first step with a key runs eagerly (it sizes the buffers),
// the second is captured, later ones replay. Any new device allocation drops every graph,
// since graphs hold buffer addresses.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <set>
#include <vector>

namespace r1::cuda {

class StepGraphs {
 public:
  explicit StepGraphs(cudaStream_t stream);
  ~StepGraphs();
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // Starts a step; an empty key runs it eagerly. Afterwards replaying() says whether the backend's ops must do nothing
  // (the graph launched by end() does their work); otherwise they launch as usual, possibly
  // into a capture.
  void begin(const std::vector<int>& key);
  bool replaying() const { return mode_ == Mode::replay; }
  // Ends the step's GPU work: finishes a capture and launches it, or launches the replay.
  void end();
  void clear();  // forget every graph (the buffers or the cache layout changed)

 private:
  enum class Mode { eager, capture, replay };
  void abandon_capture();

  cudaStream_t stream_;
  bool enabled_;  // R1_CUDA_GRAPHS=0 turns graphs off (to compare, or to debug a kernel)
  Mode mode_ = Mode::eager;
  std::vector<int> key_;
  cudaGraphExec_t current_ = nullptr;
  uint64_t generation_ = 0;
  std::map<std::vector<int>, cudaGraphExec_t> graphs_;
  std::set<std::vector<int>> seen_;
};

}  // namespace r1::cuda
