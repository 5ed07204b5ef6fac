// The NCCL communicator on this machine's GPUs, one thread per GPU (ctest -L multigpu): the
// collectives give the sums and pieces the in-process communicator gives, and a rank that never
// joins makes the others fail within the timeout. Skips with fewer than two GPUs.
#include <gtest/gtest.h>
#include <cuda_runtime.h>

#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "common/error.h"
#include "dist/nccl_communicator.h"

namespace r1 {
namespace {

int gpu_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

// fn(rank) on one thread per GPU; each thread's error message ("" if none).
std::vector<std::string> per_gpu(int world, const std::function<void(int)>& fn) {
  std::vector<std::string> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        fn(r);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

TEST(Nccl, CollectivesAcrossGpus) {
  const int world = gpu_count();
  if (world < 2) GTEST_SKIP() << "needs 2 or more CUDA GPUs, found " << world;
  const std::string id = new_nccl_unique_id();
  const size_t n = 1000;
  auto errors = per_gpu(world, [&](int r) {
    auto comm = make_nccl_communicator(r, world, id, r);
    std::vector<float> host(n, float(r + 1));
    float *data = nullptr, *gathered = nullptr;
    cudaSetDevice(r);
    cudaMalloc(&data, n * sizeof(float));
    cudaMalloc(&gathered, n * world * sizeof(float));
    cudaMemcpy(data, host.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    comm->all_reduce_sum(data, n);
    cudaMemcpy(host.data(), data, n * sizeof(float), cudaMemcpyDeviceToHost);
    for (float v : host) ASSERT_EQ(v, float(world * (world + 1) / 2));
    comm->all_gather(data, n, gathered);
    comm->barrier();
    cudaFree(data);
    cudaFree(gathered);
  });
  for (const std::string& e : errors) EXPECT_EQ(e, "");
}

TEST(Nccl, AMissingRankTimesOut) {
  const int world = gpu_count();
  if (world < 2) GTEST_SKIP() << "needs 2 or more CUDA GPUs, found " << world;
  const std::string id = new_nccl_unique_id();
  const auto start = std::chrono::steady_clock::now();
  // Rank world-1 never creates its communicator: the others must give up, not hang.
  auto errors = per_gpu(world - 1, [&](int r) { make_nccl_communicator(r, world, id, r, std::chrono::seconds(3)); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
  for (const std::string& e : errors) EXPECT_NE(e.find("did not complete"), std::string::npos) << e;
}

}  // namespace
}  // namespace r1
