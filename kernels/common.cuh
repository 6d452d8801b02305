// Shared device helpers for fastdensity's CUDA kernels (kde.cu, knn.cu, mixture.cu).
// Loaded by CuPy RawModule from the installed package (fastdensity/kernels/); every .cu file is
// compiled with `#line 1 "<file>"` prepended so that errors point at the source.
#pragma once

// NVRTC (CuPy's default compiler) predefines __CUDACC_RTC__ and has the device built-ins without
// headers; cuda_runtime.h is only for nvcc (the compile checks in the tests).
#ifndef __CUDACC_RTC__
#include <cuda_runtime.h>
#endif

namespace fastdensity {

// Numeric limits usable from templates without <limits> (NVRTC has no standard library).
template <typename T> struct numeric;
template <> struct numeric<float> {
    __device__ static constexpr float neg_inf() { return -__int_as_float(0x7f800000); }
    __device__ static constexpr float tiny() { return 1e-30f; }
};
template <> struct numeric<double> {
    __device__ static constexpr double neg_inf() { return -__longlong_as_double(0x7ff0000000000000LL); }
    __device__ static constexpr double tiny() { return 1e-280; }
};

__device__ __forceinline__ float fast_exp(float x) { return __expf(x); }
__device__ __forceinline__ double fast_exp(double x) { return exp(x); }
__device__ __forceinline__ float fast_log(float x) { return __logf(x); }
__device__ __forceinline__ double fast_log(double x) { return log(x); }

// 2^x. float: one special-function-unit instruction (ex2.approx.ftz, relative error ~2^-22,
// 2^x for x <= -126 flushes to +0, 2^-inf = +0); double: the accurate library exp2. Kernels that
// need exp(y) pre-scale y by log2(e) once (see kde.cu) so that the inner loop is a single ex2.
#ifdef FASTDENSITY_HOST_EMULATION
// tests/kde/test_kde_cuda_emulation.py runs the kernels on CPU threads (no PTX there).
__device__ __forceinline__ float fast_exp2(float x) { return exp2f(x); }
#else
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
#endif
__device__ __forceinline__ double fast_exp2(double x) { return exp2(x); }

// +inf of the working type (for running minima that start "empty").
template <typename T> __device__ __forceinline__ T positive_inf() { return -numeric<T>::neg_inf(); }

// A running log-sum-exp: max and sum of exp(value - max), merged in a fixed order.
template <typename T>
struct LogSumExp {
    T max_value;
    T scaled_sum;

    __device__ LogSumExp() : max_value(numeric<T>::neg_inf()), scaled_sum(T(0)) {}

    __device__ void add(T value) {
        if (value == numeric<T>::neg_inf()) return;
        if (value > max_value) {
            scaled_sum = scaled_sum * fast_exp(max_value - value) + T(1);
            max_value = value;
        } else {
            scaled_sum += fast_exp(value - max_value);
        }
    }

    __device__ void merge(const LogSumExp& other) {
        if (other.max_value == numeric<T>::neg_inf()) return;
        if (other.max_value > max_value) {
            scaled_sum = scaled_sum * fast_exp(max_value - other.max_value) + other.scaled_sum;
            max_value = other.max_value;
        } else {
            scaled_sum += other.scaled_sum * fast_exp(other.max_value - max_value);
        }
    }

    __device__ T result() const {
        return max_value == numeric<T>::neg_inf() ? max_value : max_value + fast_log(scaled_sum);
    }
};

// Squared euclidean distance between a query held in registers/shared memory and a training row.
template <typename T>
__device__ __forceinline__ T squared_distance(const T* __restrict__ a, const T* __restrict__ b, int d) {
    T s = T(0);
    for (int k = 0; k < d; ++k) {
        const T diff = a[k] - b[k];
        s = fma(diff, diff, s);
    }
    return s;
}

}  // namespace fastdensity
