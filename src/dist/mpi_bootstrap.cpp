#include "dist/mpi_bootstrap.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>

#include "common/error.h"
#include "dist/nccl_communicator.h"

namespace r1 {

MpiBootstrap::MpiBootstrap(int& argc, char**& argv) {
  if (MPI_Init(&argc, &argv) != MPI_SUCCESS) fail("MPI_Init failed (is this started by mpirun?)");
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &world_);
  // The processes sharing this machine's memory: their order picks each one's GPU.
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &local_rank_);
  MPI_Comm_free(&local);
  char name[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  MPI_Get_processor_name(name, &length);
  host_.assign(name, size_t(length));
}

MpiBootstrap::~MpiBootstrap() { MPI_Finalize(); }

std::string MpiBootstrap::share_nccl_unique_id() {
  std::string id = rank_ == 0 ? new_nccl_unique_id() : std::string();
  int size = int(id.size());
  MPI_Bcast(&size, 1, MPI_INT, 0, MPI_COMM_WORLD);
  id.resize(size_t(size));
  MPI_Bcast(id.data(), size, MPI_BYTE, 0, MPI_COMM_WORLD);
  return id;
}

void MpiBootstrap::fail_all(const std::string& message) {
  std::fprintf(stderr, "r1: error: rank %d on %s: %s\n", rank_, host_.c_str(), message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);  // mpirun ends the other ranks and reports which one failed
  std::abort();
}

}  // namespace r1
