#include "cuda/step_graphs.h"

#include <cstdlib>
#include <cstring>

#include "cuda/device_memory.h"
#include "kernels/cuda_check.h"

namespace r1::cuda {

namespace {
constexpr size_t kMaxGraphs = 64, kMaxSeenKeys = 1024;  // bounds for long runs of varying shapes
}

StepGraphs::StepGraphs(cudaStream_t stream) : stream_(stream) {
  const char* env = std::getenv("R1_CUDA_GRAPHS");
  enabled_ = !(env && std::strcmp(env, "0") == 0);
}

StepGraphs::~StepGraphs() {
  abandon_capture();
  clear();
}

void StepGraphs::clear() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
  seen_.clear();
  current_ = nullptr;
}

// A step that threw while being captured leaves the stream capturing; close it, drop the graph.
void StepGraphs::abandon_capture() {
  if (mode_ != Mode::capture) return;
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(stream_, &graph);
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();
  mode_ = Mode::eager;
}

void StepGraphs::begin(const std::vector<int>& key) {
  abandon_capture();
  mode_ = Mode::eager;
  if (!enabled_ || key.empty()) return;
  if (device_allocation_count() != generation_) {
    clear();
    generation_ = device_allocation_count();
  }
  if (auto it = graphs_.find(key); it != graphs_.end()) {
    current_ = it->second;
    mode_ = Mode::replay;
  } else if (seen_.count(key)) {
    if (graphs_.size() >= kMaxGraphs) clear();
    key_ = key;
    CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    mode_ = Mode::capture;
  } else {
    if (seen_.size() >= kMaxSeenKeys) seen_.clear();
    seen_.insert(key);
  }
}

void StepGraphs::end() {
  if (mode_ == Mode::capture) {
    cudaGraph_t graph = nullptr;
    mode_ = Mode::eager;
    CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    CUDA_CHECK(status);
    graphs_[key_] = current_ = exec;
    CUDA_CHECK(cudaGraphLaunch(current_, stream_));
  } else if (mode_ == Mode::replay) {
    mode_ = Mode::eager;
    CUDA_CHECK(cudaGraphLaunch(current_, stream_));
  }
}

}  // namespace r1::cuda
