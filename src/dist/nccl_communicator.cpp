// NCCL collectives with a deadline: the communicator is created non-blocking, so that every
// wait can be a polling loop that gives up (and aborts the communicator) instead of hanging
// on a dead or stuck peer, the usual NCCL failure.
#include "dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <thread>

#include "common/error.h"

namespace r1 {

namespace {

using Clock = std::chrono::steady_clock;

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("{}: {}", what, cudaGetErrorString(e));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(int rank, int world, const std::string& unique_id, int device, std::chrono::milliseconds timeout)
      : rank_(rank), world_(world), device_(device), timeout_(timeout) {
    if (unique_id.size() != sizeof(ncclUniqueId))
      fail("NCCL unique id of {} bytes, expected {}", unique_id.size(), sizeof(ncclUniqueId));
    ncclUniqueId id;
    std::memcpy(&id, unique_id.data(), sizeof id);
    cuda_check(cudaSetDevice(device_), "cudaSetDevice");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // calls return at once; wait() polls with a deadline
    check(ncclCommInitRankConfig(&comm_, world_, id, rank_, &config), "ncclCommInitRank");
    wait_ready("ncclCommInitRank");
  }

  ~NcclCommunicator() override {
    if (comm_) ncclCommAbort(comm_);  // destroy would wait for peers that may be gone
    if (token_) cudaFree(token_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int world() const override { return world_; }

  void all_reduce_sum(float* data, size_t count) override {
    start("ncclAllReduce");
    check(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
    finish("ncclAllReduce");
  }

  void all_gather(const float* send, size_t count, float* recv) override {
    start("ncclAllGather");
    check(ncclAllGather(send, recv, count, ncclFloat32, comm_, stream_), "ncclAllGather");
    finish("ncclAllGather");
  }

  void broadcast(float* data, size_t count, int root) override {
    start("ncclBroadcast");
    check(ncclBroadcast(data, data, count, ncclFloat32, root, comm_, stream_), "ncclBroadcast");
    finish("ncclBroadcast");
  }

  void barrier() override {  // NCCL has none: an all-reduce of one float in device memory
    if (!token_) cuda_check(cudaMalloc(&token_, sizeof(float)), "cudaMalloc");
    all_reduce_sum(token_, 1);
  }

  void abort(const std::string&) override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

 private:
  void start(const char* what) {
    if (!comm_) fail("rank {}: {} on an NCCL communicator aborted after an earlier failure", rank_, what);
    cuda_check(cudaSetDevice(device_), "cudaSetDevice");
  }

  void check(ncclResult_t r, const char* what) {
    if (r == ncclSuccess || r == ncclInProgress) return;
    const std::string message = ncclGetErrorString(r);
    abort(message);
    fail("rank {}: {} failed: {}", rank_, what, message);
  }

  // Waits for a non-blocking call (init) to complete.
  void wait_ready(const char* what) {
    const auto deadline = Clock::now() + timeout_;
    ncclResult_t state = ncclInProgress;
    while (ncclCommGetAsyncError(comm_, &state) == ncclSuccess && state == ncclInProgress) {
      if (Clock::now() > deadline) timed_out(what);
      std::this_thread::yield();
    }
    check(state, what);
  }

  // Waits for the collective just enqueued on the stream.
  void finish(const char* what) {
    wait_ready(what);  // the enqueue itself may be in progress on a non-blocking communicator
    const auto deadline = Clock::now() + timeout_;
    for (;;) {
      const cudaError_t e = cudaStreamQuery(stream_);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) cuda_check(e, what);
      ncclResult_t state = ncclSuccess;
      ncclCommGetAsyncError(comm_, &state);
      check(state, what);
      if (Clock::now() > deadline) timed_out(what);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  [[noreturn]] void timed_out(const char* what) {
    abort("timeout");
    fail("rank {}: {} did not complete within {:.1f} s: a rank hung or died (NCCL communicator aborted)", rank_, what,
         timeout_.count() / 1000.0);
  }

  const int rank_, world_, device_;
  const std::chrono::milliseconds timeout_;
  cudaStream_t stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
  float* token_ = nullptr;
};

}  // namespace

std::string new_nccl_unique_id() {
  ncclUniqueId id;
  const ncclResult_t r = ncclGetUniqueId(&id);
  if (r != ncclSuccess) fail("ncclGetUniqueId: {}", ncclGetErrorString(r));
  return std::string(reinterpret_cast<const char*>(&id), sizeof id);
}

std::unique_ptr<Communicator> make_nccl_communicator(int rank, int world, const std::string& unique_id, int device,
                                                     std::chrono::milliseconds timeout) {
  return std::make_unique<NcclCommunicator>(rank, world, unique_id, device, timeout);
}

}  // namespace r1
