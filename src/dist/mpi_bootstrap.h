// `mpirun -np N r1 …` across machines: MPI starts the processes, tells each its rank, passes
// NCCL's unique id from rank 0 to the others, and ends the whole job when one rank fails.
// Nothing else goes through MPI (the collectives are NCCL's). Built only with MPI and NCCL.
#pragma once

#include <string>

namespace r1 {

class MpiBootstrap {
 public:
  MpiBootstrap(int& argc, char**& argv);  // MPI_Init
  ~MpiBootstrap();                        // MPI_Finalize
  MpiBootstrap(const MpiBootstrap&) = delete;
  MpiBootstrap& operator=(const MpiBootstrap&) = delete;

  int rank() const { return rank_; }
  int world() const { return world_; }
  int local_rank() const { return local_rank_; }  // rank among the processes of this machine: its GPU
  const std::string& host() const { return host_; }

  // Rank 0 makes NCCL's unique id; every rank returns the same bytes.
  std::string share_nccl_unique_id();
  // Prints "r1: error: rank R on HOST: message" and ends every rank of the job (MPI_Abort), so
  // that no rank waits forever in a collective with a dead peer.
  [[noreturn]] void fail_all(const std::string& message);

 private:
  int rank_ = 0, world_ = 1, local_rank_ = 0;
  std::string host_;
};

}  // namespace r1
