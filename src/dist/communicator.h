// Collectives between the ranks of one sharded model. Each rank calls the same collectives in
// the same order with the same sizes (lockstep, as NCCL requires). Every call fails with
// r1::Error instead of hanging when another rank has failed or does not arrive in time.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace r1 {

// Thrown by a collective that another rank's failure ended: not a cause, a consequence.
struct RankStopped : Error {
  using Error::Error;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // data[i] = Σ over ranks of data[i]; every rank gets bitwise the same sums (the replicated
  // activations, and so the expert choices, must not drift apart between ranks).
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  // recv[r · count + i] = send of rank r [i]; recv holds world() · count floats.
  virtual void all_gather(const float* send, size_t count, float* recv) = 0;
  virtual void broadcast(float* data, size_t count, int root) = 0;
  virtual void barrier() = 0;
  // Tells every rank that this one failed, so that their pending and later collectives throw
  // with `reason` instead of waiting. Never throws.
  virtual void abort(const std::string& reason) = 0;
};

// N ranks as threads of this process sharing memory: the CPU engine's --ranks, and the tests.
// The group is shared by the N communicators it hands out.
class InProcessGroup;

struct InProcessOptions {
  // How long a rank waits at a collective for the others before giving up. Ranks do the same
  // work between collectives, so waits are short unless a rank hung.
  std::chrono::milliseconds timeout{120000};
};

// The communicators of an N-rank in-process group; communicator r belongs to rank r's thread.
std::vector<std::unique_ptr<Communicator>> make_in_process_group(int world, InProcessOptions options = {});

}  // namespace r1
