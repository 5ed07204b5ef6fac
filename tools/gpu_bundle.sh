#!/usr/bin/env bash
# Packs what a GPU run needs from build/ into .gpu/ (ignored by git) for the device tool, which
# carries at most 64 MiB (untrack models/r1-demo while calling it; the bundle holds it compressed): the GPU test binaries with their CTest files, r1, the benchmarks, and
# the shared libraries the machine lacks. On the device: bash .gpu/run_gpu.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu && mkdir -p .gpu/build/tests .gpu/lib
mkdir -p .gpu/build/bench && cp build/bench/bench_kernels build/bench/bench_decode .gpu/build/bench/ && cp build/r1 build/libr1cuda.so build/CTestTestfile.cmake .gpu/build/
cp build/tests/CTestTestfile.cmake build/tests/test_cuda_* build/tests/test_nccl .gpu/build/tests/
# CTest includes every test file it lists; keep the CPU ones' definitions so it can parse them.
cp build/tests/*_include.cmake build/tests/*_tests.cmake .gpu/build/tests/ 2>/dev/null || true
cp -L /lib/x86_64-linux-gnu/libfmt.so.9 .gpu/lib/
strip .gpu/build/r1 .gpu/build/bench/* $(ls .gpu/build/tests/test_cuda_* .gpu/build/tests/test_nccl | grep -v cmake)  # the carry limit counts every byte
# The binaries name this checkout's absolute path (test data, CTest files, the library's
# rpath): on the device the same path is made to point at the copy it runs in.
source_dir=$(pwd)
cat > .gpu/run_gpu.sh <<INNER
# Runs on the device machine from the repository root: source .gpu/run_gpu.sh
set -uo pipefail
mkdir -p "$(dirname "$source_dir")" && ln -sfn "\$PWD" "$source_dir" && rm -rf build && ln -sfn .gpu/build build
[ -f models/r1-demo/config.json ] || python3 -c "import tarfile; tarfile.open('.gpu/r1-demo.tar.xz').extractall('models')"
export LD_LIBRARY_PATH="\$PWD/.gpu/lib:/usr/local/cuda/lib64:\${LD_LIBRARY_PATH:-}"
INNER
# The demo model (92 MB, over the carry limit) compresses to a few MB: its unused vocabulary rows are zero.
XZ_OPT='-6 -T0' tar -C models -cJf .gpu/r1-demo.tar.xz r1-demo
du -sh .gpu
