// Lets the small math headers compile both as plain C++ (CPU backend, tests) and as CUDA.
#pragma once

#if defined(__CUDACC__)
#define R1_HD __host__ __device__ __forceinline__
#else
#define R1_HD inline
#endif
