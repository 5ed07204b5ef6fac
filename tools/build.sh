#!/usr/bin/env bash
# Installs what is missing (Debian packages), then configures and builds r1 into build/.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libfmt-dev libcli11-dev nlohmann-json3-dev libgtest-dev libpcre2-dev libedit-dev ccache
  libopenmpi-dev openmpi-bin)  # Open MPI: the mpirun bootstrap, built with CUDA + NCCL (src/dist/mpi_bootstrap.cpp)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# CUDA parts build when nvcc is found; the toolkit is usually not on PATH.
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
