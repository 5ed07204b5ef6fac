// The Communicator over NCCL: one rank per GPU, buffers in device memory. Ranks are processes
// (started by mpirun, the unique id passed by MPI: mpi_bootstrap.h) or threads of one process
// (one per GPU, the id passed in memory). Built only when CUDA and NCCL are found.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "dist/communicator.h"

namespace r1 {

// A fresh ncclUniqueId as its 128 raw bytes; made by rank 0 and handed to every rank.
std::string new_nccl_unique_id();

// Rank `rank` of `world` on CUDA device `device`. Each collective is enqueued on the
// communicator's own stream and waited for; when it does not finish within `timeout`, or NCCL
// reports an error, the communicator is aborted (ncclCommAbort) and the call throws r1::Error
// instead of hanging.
std::unique_ptr<Communicator> make_nccl_communicator(int rank, int world, const std::string& unique_id, int device,
                                                     std::chrono::milliseconds timeout = std::chrono::minutes(2));

}  // namespace r1
