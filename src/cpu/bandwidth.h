// The machine's memory read bandwidth, measured the way decode reads weights: every thread
// of the pool streams its own contiguous part of a large buffer with the widest vector loads
// and several accumulators (a scalar or single-accumulator loop would measure its latency).
#pragma once

#include <cstddef>

#include "cpu/thread_pool.h"

namespace r1 {

// GB/s (1e9 bytes) of the best of `tries` passes over `bytes` (≥ 2 GiB so caches do not count).
double measure_read_bandwidth_gb_s(ThreadPool& pool, size_t bytes = size_t(2) << 30, int tries = 5);

// GFLOP/s of float32 FMAs on every thread of the pool with the widest vectors this CPU runs,
// registers only (the arithmetic ceiling of the exact kernels); the best of `tries`.
double measure_fma_peak_gflop_s(ThreadPool& pool, int tries = 5);

// GFLOP/s of AVX512-BF16 dot products likewise (the ceiling of the fast kernels); 0 where the
// CPU lacks them.
double measure_bf16_peak_gflop_s(ThreadPool& pool, int tries = 5);

}  // namespace r1
