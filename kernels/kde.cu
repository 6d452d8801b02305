// Exact kernel sums on the GPU: the CUDA twin of fastdensity/kde/_kde_cpu.py (op ``kde_logsum``).
//
// For every query q_i (rows of ``queries``, already whitened to unit bandwidth) and training points
// x_j (columns of ``train_t``, shape (d, n)):
//
//     log Σ_j w_j · k(‖q_i − x_j‖ · s_j)
//
// with k a unit-scale kernel profile (fastdensity/kde/_kernels.py), weights w_j and optional
// per-point inverse scales s_j (adaptive bandwidths, passed squared: ``inv_scale2``).
// The launcher is fastdensity/kde/_kde_cuda.py; it lists every template instantiation it uses in
// KDE_NAME_EXPRESSIONS, which tests/kde/test_kde_cuda_compile.py compiles with nvcc.
//
// Layout of the work
//   * One thread per query (its coordinates in registers), BLOCK queries per block; training points
//     in tiles of TILE through shared memory, stored dimension-major so that the tile load is
//     coalesced and the reads are warp-wide broadcasts. blockIdx.y splits the training points
//     when there are too few queries to fill the chip; each (split, query) writes a partial that
//     kde_logsum_finish_* merges in split order, so results do not depend on the launch geometry
//     beyond rounding and never on scheduling (no atomics).
//   * d is a template parameter D in {1,2,3,4,6,8,12,16} (the launcher picks the smallest D >= d;
//     dimensions d..D-1 are read as zeros, which adds exactly 0 to the distances) or D = 0 for any
//     d: dimensions in chunks of DCHUNK through shared memory, distances of TILE_G points in
//     registers.
//
// Numerics
//   * gaussian and exponential ("log kernels"): a running minimum per query of
//         u_j = c·r_j² · s_j² − log2 w_j    (gaussian, c = log2(e)/2, folded into the coordinates)
//         u_j = log2(e)·r_j · s_j − log2 w_j (exponential)
//     so the sum is 2^(−m) Σ_j 2^(m − u_j) with every term ≤ 1: one pass, no underflow, a query far
//     from all data gets its finite log density. The minimum is updated once per CHUNK points
//     (registers), so the inner loop is one ex2 per pair. The launcher stores p_j = −log2 w_j ≥ 0
//     (weights scaled by their maximum; +inf for zero weights) in ``point_param``.
//   * compact kernels: a plain sum Σ w_j k(r_j) with w_j = exp(log w_j − max log w) ≤ 1 in
//     ``point_param``, as on the CPU; a query whose sum is at or below ``tiny`` but not 0 is
//     recomputed in float64 log space by kde_logsum_slow (the CPU's slow path, same rules). A sum
//     of exactly 0 is −inf (outside the support of every training point).
//   * float inputs: float arithmetic within a tile, double across tiles and splits; double inputs
//     run in double throughout. A query with a NaN coordinate gives NaN.
//
// Floors (H100 SXM, float32, 132 SMs at ~1.75 GHz): the SFU ex2 rate is 16/clk/SM ≈ 3.7e12/s and
// the FP32 rate 128/clk/SM ≈ 2.96e13 instr/s. The gaussian inner loop costs per pair one MUFU.EX2
// and 2d + 3 FP32 instructions (d subtractions, d FMAs, min, subtract, add; counted in the PTX of
// kde_logsum_gaussian<float, D, false>, the sum starting at p_j), so the floor
// is max(1/3.7e12, (2d+3)/2.96e13) s per pair: ≈ 3.7e12 pairs/s for d ≤ 2, 2.1e12 at d = 4,
// 1.6e12 at d = 8, 0.85e12 at d = 16 (FP32-bound from d ≈ 3). The 2e12 target at d ≤ 16 is
// therefore reachable only for d ≤ 4 with this direct form; larger d would need the distances as
// a matrix product (tensor cores), whose TF32 rounding of ‖q‖² + ‖x‖² − 2 q·x the tested accuracy
// does not allow at small bandwidths. Memory traffic is negligible (O((m + n)·d) per split).
// Resources (nvcc 13.0, sm_90, -ftz=true): kde_logsum_gaussian<float, D, false> 56–72 registers,
// no spills; some double and cosine/linear/exponential variants spill 8–68 bytes around library
// calls (cospi, sqrt, exp2), which only the double and compact paths pay.
// Unverified on hardware at the time of writing (no GPU in the session that wrote it); executed on
// CPU threads by tests/kde/test_kde_cuda_emulation.py.

#include "common.cuh"

namespace fastdensity {
namespace kde {

// Enumerators rather than constexpr variables: the source is also compiled without any template
// instantiated (tests/test_packaging.py), where an unused variable is a warning.
// Kernel codes: the numbers of KERNEL_CODES in fastdensity/kde/_kernels.py (checked by
// tests/kde/test_kernel_codes.py).
enum : int { GAUSSIAN = 0, TOPHAT = 1, EPANECHNIKOV = 2, EXPONENTIAL = 3, LINEAR = 4, COSINE = 5, BIWEIGHT = 6,
             TRIWEIGHT = 7 };

enum : int {
    BLOCK = 128,      // queries per block (one per thread); the launcher uses the same value
    TILE = 128,       // training points per shared-memory tile (specialised D)
    TILE_G = 32,      // training points per tile for the generic-d kernel (registers)
    DCHUNK = 16,      // dimensions per shared-memory pass in the generic-d kernel
    CHUNK = 16,       // points per running-minimum update
    SLOW_BLOCK = 128,
};

template <int KERNEL>
struct is_log_kernel {
    static constexpr bool value = KERNEL == GAUSSIAN || KERNEL == EXPONENTIAL;
};

__device__ __forceinline__ float sqrt_t(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_t(double x) { return sqrt(x); }
__device__ __forceinline__ float cospi_t(float x) { return cospif(x); }
__device__ __forceinline__ double cospi_t(double x) { return cospi(x); }
__device__ __forceinline__ float min_t(float a, float b) { return fminf(a, b); }
__device__ __forceinline__ double min_t(double a, double b) { return fmin(a, b); }

// k(r) from r² for a compact kernel (the CPU's _profile; cospi keeps full relative accuracy as
// cos(π r / 2) goes to 0 at the edge of the support).
template <int KERNEL, typename T>
__device__ __forceinline__ T compact_profile(T r2) {
    const T one = T(1);
    const T zero = T(0);
    if constexpr (KERNEL == TOPHAT) {
        return r2 < one ? one : zero;
    } else if constexpr (KERNEL == EPANECHNIKOV) {
        const T v = one - r2;
        return v > zero ? v : zero;
    } else if constexpr (KERNEL == BIWEIGHT) {
        const T v = one - r2;
        return v > zero ? v * v : zero;
    } else if constexpr (KERNEL == TRIWEIGHT) {
        const T v = one - r2;
        return v > zero ? v * v * v : zero;
    } else if constexpr (KERNEL == LINEAR) {
        const T v = one - sqrt_t(r2);
        return v > zero ? v : zero;
    } else {  // COSINE
        const T r = sqrt_t(r2);
        return r < one ? cospi_t(T(0.5) * r) : zero;
    }
}

// The per-query state: running minimum m (log kernels only), the current tile's sum in the working
// type and the sum of finished tiles in double, both relative to 2^(-m) for log kernels.
template <typename T>
struct Accumulator {
    T m;
    T s;
    double total;
    __device__ Accumulator() : m(positive_inf<T>()), s(T(0)), total(0.0) {}

    __device__ __forceinline__ void end_tile() {
        total += static_cast<double>(s);
        s = T(0);
    }
};

// Add CH points whose squared (pre-scaled) distances are in r2[]: p[] and s2[] are the points'
// parameters (shared memory), see the file comment. P_IN_R2: the caller started the distance sums
// at p_j (gaussian without adaptive scales: u_j = p_j + Σ_k (x_jk − q_k)², one add less per pair).
template <typename T, int KERNEL, bool ADAPTIVE, bool P_IN_R2, int CH>
__device__ __forceinline__ void add_points(const T (&r2)[CH], const T* p, const T* s2, Accumulator<T>& acc) {
    static_assert(!P_IN_R2 || (KERNEL == GAUSSIAN && !ADAPTIVE), "p_j can only be folded into plain gaussian sums");
    if constexpr (is_log_kernel<KERNEL>::value) {
        T u[CH];
        T cmin = positive_inf<T>();
#pragma unroll
        for (int j = 0; j < CH; ++j) {
            T a = ADAPTIVE ? r2[j] * s2[j] : r2[j];
            if constexpr (KERNEL == EXPONENTIAL) a = sqrt_t(a);
            u[j] = P_IN_R2 ? a : a + p[j];
            cmin = min_t(cmin, u[j]);
        }
        if (cmin < acc.m) {
            // Rare after the first chunks: rescale what was summed so far to the new minimum.
            const T f = fast_exp2(cmin - acc.m);
            acc.s *= f;
            acc.total *= static_cast<double>(f);
            acc.m = cmin;
        }
        if (acc.m < positive_inf<T>()) {
            const T m = acc.m;
            T s = T(0);
#pragma unroll
            for (int j = 0; j < CH; ++j) s += fast_exp2(m - u[j]);
            acc.s += s;
        }
    } else {
        T s = T(0);
#pragma unroll
        for (int j = 0; j < CH; ++j) {
            const T a = ADAPTIVE ? r2[j] * s2[j] : r2[j];
            s += p[j] * compact_profile<KERNEL>(a);
        }
        acc.s += s;
    }
}

// Fill one tile's point parameters; points past n get a zero contribution (p = +inf for log
// kernels, weight 0 for compact ones).
template <typename T, int KERNEL, bool ADAPTIVE>
__device__ __forceinline__ void load_params(T* s_p, T* s_s2, const T* __restrict__ point_param,
                                            const T* __restrict__ inv_scale2, long long j, long long j_end,
                                            int slot) {
    const bool inside = j < j_end;
    s_p[slot] = inside ? point_param[j] : (is_log_kernel<KERNEL>::value ? positive_inf<T>() : T(0));
    if constexpr (ADAPTIVE) s_s2[slot] = inside ? inv_scale2[j] : T(1);
}

// Leave-one-out (the queries are the training points): point i's distance to itself becomes +inf,
// which every profile maps to a zero term. A per-chunk test first, so the common case costs one
// comparison per CHUNK pairs; the unrolled selects keep r2[] in registers.
template <typename T, int CH>
__device__ __forceinline__ void drop_self(T (&r2)[CH], long long first, long long i) {
    if (i >= first && i < first + CH) {
#pragma unroll
        for (int j = 0; j < CH; ++j) {
            if (first + j == i) r2[j] = positive_inf<T>();
        }
    }
}

template <typename T>
__device__ __forceinline__ void write_partial(const Accumulator<T>& acc, bool nan_query, long long i, long long m,
                                              double* __restrict__ part_m, double* __restrict__ part_s) {
    const long long at = static_cast<long long>(blockIdx.y) * m + i;
    part_m[at] = static_cast<double>(acc.m);
    part_s[at] = nan_query ? __longlong_as_double(0x7ff8000000000000LL) : acc.total;
}

// Specialised d (1 <= d <= D <= 16): the query lives in registers.
template <typename T, int KERNEL, int D, bool ADAPTIVE>
__device__ __forceinline__ void logsum_fixed_d(const T* __restrict__ queries, const T* __restrict__ train_t,
                                               const T* __restrict__ point_param, const T* __restrict__ inv_scale2,
                                               long long m, long long n, int d, long long split_len,
                                               T coord_scale, int exclude_self, double* __restrict__ part_m,
                                               double* __restrict__ part_s) {
    __shared__ __align__(16) T s_x[D][TILE];
    __shared__ __align__(16) T s_p[TILE];
    __shared__ __align__(16) T s_s2[ADAPTIVE ? TILE : 1];
    constexpr bool FOLD = KERNEL == GAUSSIAN && !ADAPTIVE;

    const long long i = static_cast<long long>(blockIdx.x) * BLOCK + threadIdx.x;
    const bool active = i < m;
    T q[D];
    bool nan_query = false;
#pragma unroll
    for (int k = 0; k < D; ++k) {
        const T v = (active && k < d) ? queries[i * d + k] : T(0);
        nan_query |= (v != v);
        q[k] = v * coord_scale;
    }

    const long long j_begin = static_cast<long long>(blockIdx.y) * split_len;
    const long long j_end = min(n, j_begin + split_len);
    Accumulator<T> acc;
    for (long long j0 = j_begin; j0 < j_end; j0 += TILE) {
        __syncthreads();  // the previous tile is no longer read
        for (int t = threadIdx.x; t < TILE; t += BLOCK) {
            const long long j = j0 + t;
#pragma unroll
            for (int k = 0; k < D; ++k) {
                s_x[k][t] = (j < j_end && k < d) ? train_t[k * n + j] * coord_scale : T(0);
            }
            load_params<T, KERNEL, ADAPTIVE>(s_p, s_s2, point_param, inv_scale2, j, j_end, t);
        }
        __syncthreads();
#pragma unroll 1
        for (int c = 0; c < TILE; c += CHUNK) {
            T r2[CHUNK];
#pragma unroll
            for (int j = 0; j < CHUNK; ++j) r2[j] = FOLD ? s_p[c + j] : T(0);
#pragma unroll
            for (int k = 0; k < D; ++k) {
#pragma unroll
                for (int j = 0; j < CHUNK; ++j) {
                    const T a = s_x[k][c + j] - q[k];
                    r2[j] = fma(a, a, r2[j]);
                }
            }
            if (exclude_self) drop_self(r2, j0 + c, i);
            add_points<T, KERNEL, ADAPTIVE, FOLD, CHUNK>(r2, s_p + c, ADAPTIVE ? s_s2 + c : s_s2, acc);
        }
        acc.end_tile();
    }
    if (active) write_partial(acc, nan_query, i, m, part_m, part_s);
}

// Any d: dimensions in chunks of DCHUNK through shared memory, TILE_G distances in registers.
template <typename T, int KERNEL, bool ADAPTIVE>
__device__ __forceinline__ void logsum_any_d(const T* __restrict__ queries, const T* __restrict__ train_t,
                                             const T* __restrict__ point_param, const T* __restrict__ inv_scale2,
                                             long long m, long long n, int d, long long split_len,
                                             T coord_scale, int exclude_self, double* __restrict__ part_m,
                                             double* __restrict__ part_s) {
    __shared__ __align__(16) T s_x[DCHUNK][TILE_G];
    __shared__ __align__(16) T s_p[TILE_G];
    __shared__ __align__(16) T s_s2[ADAPTIVE ? TILE_G : 1];

    const long long i = static_cast<long long>(blockIdx.x) * BLOCK + threadIdx.x;
    const bool active = i < m;
    const T* q_row = queries + (active ? i : 0) * d;
    bool nan_query = false;
    if (active) {
        for (int k = 0; k < d; ++k) nan_query |= (q_row[k] != q_row[k]);
    }

    const long long j_begin = static_cast<long long>(blockIdx.y) * split_len;
    const long long j_end = min(n, j_begin + split_len);
    Accumulator<T> acc;
    for (long long j0 = j_begin; j0 < j_end; j0 += TILE_G) {
        T r2[TILE_G];
#pragma unroll
        for (int j = 0; j < TILE_G; ++j) r2[j] = T(0);
        for (int k0 = 0; k0 < d; k0 += DCHUNK) {
            __syncthreads();
            for (int e = threadIdx.x; e < DCHUNK * TILE_G; e += BLOCK) {
                const int k = e / TILE_G;
                const int t = e % TILE_G;
                const long long j = j0 + t;
                s_x[k][t] = (j < j_end && k0 + k < d) ? train_t[(k0 + k) * n + j] * coord_scale : T(0);
            }
            if (k0 == 0 && threadIdx.x < TILE_G) {
                load_params<T, KERNEL, ADAPTIVE>(s_p, s_s2, point_param, inv_scale2, j0 + threadIdx.x, j_end,
                                                 threadIdx.x);
            }
            __syncthreads();
            T q[DCHUNK];
#pragma unroll
            for (int k = 0; k < DCHUNK; ++k) q[k] = (active && k0 + k < d) ? q_row[k0 + k] * coord_scale : T(0);
#pragma unroll
            for (int k = 0; k < DCHUNK; ++k) {
#pragma unroll
                for (int j = 0; j < TILE_G; ++j) {
                    const T a = s_x[k][j] - q[k];
                    r2[j] = fma(a, a, r2[j]);
                }
            }
        }
        if (exclude_self) drop_self(r2, j0, i);
        // s_p / s_s2 were written before the last barrier and are rewritten only after the next one.
        add_points<T, KERNEL, ADAPTIVE, false, TILE_G>(r2, s_p, s_s2, acc);
        acc.end_tile();
    }
    if (active) write_partial(acc, nan_query, i, m, part_m, part_s);
}

template <typename T, int KERNEL, int D, bool ADAPTIVE>
__device__ __forceinline__ void logsum(const T* __restrict__ queries, const T* __restrict__ train_t,
                                       const T* __restrict__ point_param, const T* __restrict__ inv_scale2,
                                       long long m, long long n, int d, long long split_len, T coord_scale,
                                       int exclude_self, double* __restrict__ part_m, double* __restrict__ part_s) {
    static_assert(D == 0 || (D >= 1 && D <= 16), "D is 0 (any d) or 1..16");
    if constexpr (D == 0) {
        logsum_any_d<T, KERNEL, ADAPTIVE>(queries, train_t, point_param, inv_scale2, m, n, d, split_len,
                                          coord_scale, exclude_self, part_m, part_s);
    } else {
        logsum_fixed_d<T, KERNEL, D, ADAPTIVE>(queries, train_t, point_param, inv_scale2, m, n, d, split_len,
                                               coord_scale, exclude_self, part_m, part_s);
    }
}

// log k(r) from r² in double (the CPU's _log_profile).
template <int KERNEL>
__device__ __forceinline__ double log_profile(double r2) {
    const double inf = -numeric<double>::neg_inf();
    if constexpr (KERNEL == GAUSSIAN) return -0.5 * r2;
    if constexpr (KERNEL == EXPONENTIAL) return -sqrt(r2);
    if (r2 >= 1.0) return -inf;
    if constexpr (KERNEL == TOPHAT) return 0.0;
    if constexpr (KERNEL == EPANECHNIKOV) return log1p(-r2);
    if constexpr (KERNEL == BIWEIGHT) return 2.0 * log1p(-r2);
    if constexpr (KERNEL == TRIWEIGHT) return 3.0 * log1p(-r2);
    if constexpr (KERNEL == LINEAR) return log1p(-sqrt(r2));
    return log(cospi(0.5 * sqrt(r2)));
}

}  // namespace kde
}  // namespace fastdensity

// ------------------------------------------------------------------------------------ kernels
// One __global__ template per kernel profile, named as in DESIGN.md: kde_logsum_<kernel><T, D, ADAPTIVE>.
// Arguments (all kernels): queries (m, d) row-major, train_t (d, n), point_param (n,), inv_scale2
// (n,; read only when ADAPTIVE), m, n, d, split_len (training points per blockIdx.y, a multiple of
// the tile), coord_scale, exclude_self (1: query i is training point i and is left out of its own
// sum, for leave-one-out), then the partials part_m, part_s of shape (gridDim.y, m).
#define FASTDENSITY_KDE_LOGSUM(NAME, CODE)                                                                    \
    template <typename T, int D, bool ADAPTIVE>                                                               \
    __global__ void __launch_bounds__(fastdensity::kde::BLOCK)                                                \
        NAME(const T* __restrict__ queries, const T* __restrict__ train_t, const T* __restrict__ point_param, \
             const T* __restrict__ inv_scale2, long long m, long long n, int d, long long split_len,          \
             T coord_scale, int exclude_self, double* __restrict__ part_m, double* __restrict__ part_s) {    \
        fastdensity::kde::logsum<T, CODE, D, ADAPTIVE>(queries, train_t, point_param, inv_scale2, m, n, d,    \
                                                       split_len, coord_scale, exclude_self, part_m, part_s); \
    }

FASTDENSITY_KDE_LOGSUM(kde_logsum_gaussian, fastdensity::kde::GAUSSIAN)
FASTDENSITY_KDE_LOGSUM(kde_logsum_tophat, fastdensity::kde::TOPHAT)
FASTDENSITY_KDE_LOGSUM(kde_logsum_epanechnikov, fastdensity::kde::EPANECHNIKOV)
FASTDENSITY_KDE_LOGSUM(kde_logsum_exponential, fastdensity::kde::EXPONENTIAL)
FASTDENSITY_KDE_LOGSUM(kde_logsum_linear, fastdensity::kde::LINEAR)
FASTDENSITY_KDE_LOGSUM(kde_logsum_cosine, fastdensity::kde::COSINE)
FASTDENSITY_KDE_LOGSUM(kde_logsum_biweight, fastdensity::kde::BIWEIGHT)
FASTDENSITY_KDE_LOGSUM(kde_logsum_triweight, fastdensity::kde::TRIWEIGHT)
#undef FASTDENSITY_KDE_LOGSUM

// Merge the partials of the log kernels in split order: out_i = ln 2 · (log2 Σ_k S_k 2^(M − m_k) − M)
// + shift with M = min_k m_k; −inf when no point contributed; NaN for a NaN query.
extern "C" __global__ void kde_logsum_finish_log(const double* __restrict__ part_m, const double* __restrict__ part_s,
                                                 long long m, int splits, double shift, double* __restrict__ out) {
    const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= m) return;
    const double inf = -fastdensity::numeric<double>::neg_inf();
    double best = inf;
    bool nan_query = false;
    for (int k = 0; k < splits; ++k) {
        best = fmin(best, part_m[k * m + i]);
        nan_query |= isnan(part_s[k * m + i]);
    }
    if (nan_query) {
        out[i] = __longlong_as_double(0x7ff8000000000000LL);
        return;
    }
    if (!(best < inf)) {
        out[i] = -inf;
        return;
    }
    double total = 0.0;
    for (int k = 0; k < splits; ++k) {
        const double mk = part_m[k * m + i];
        if (mk < inf) total += part_s[k * m + i] * exp2(best - mk);
    }
    out[i] = (log2(total) - best) * 0.69314718055994530942 + shift;
}

// Merge the partials of the compact kernels (the CPU's _finish): log(total) + shift when total >
// tiny, −inf when total is exactly 0, else NaN, which asks the launcher for kde_logsum_slow.
// zero_is_exact = 0 when some positive weight was flushed to 0 or a denormal in the working type
// (a total of 0 may then hide that point): a total of 0 is recomputed too.
extern "C" __global__ void kde_logsum_finish_sum(const double* __restrict__ part_s, long long m, int splits,
                                                 double shift, double tiny, int zero_is_exact,
                                                 double* __restrict__ out) {
    const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= m) return;
    double total = 0.0;
    for (int k = 0; k < splits; ++k) total += part_s[k * m + i];
    if (total > tiny) {
        out[i] = log(total) + shift;
    } else if (total == 0.0 && zero_is_exact) {
        out[i] = fastdensity::numeric<double>::neg_inf();
    } else {
        out[i] = __longlong_as_double(0x7ff8000000000000LL);
    }
}

// The slow, exact path for the queries listed in ``rows``: log Σ_j exp(log w_j + log k(r_j)) in
// double with a running maximum (the CPU's _logsum_slow), one block per query; each thread takes
// a strided share of the points and the block merges in a fixed tree order (deterministic).
// ``log_weights`` are the unshifted float64 log weights; ``inv_scale2`` is read when adaptive != 0;
// exclude_self != 0 leaves training point i out of query i's sum.
template <typename T, int KERNEL>
__global__ void __launch_bounds__(fastdensity::kde::SLOW_BLOCK)
    kde_logsum_slow(const T* __restrict__ queries, const T* __restrict__ train_t,
                    const double* __restrict__ log_weights, const T* __restrict__ inv_scale2, int adaptive,
                    int exclude_self, long long n, int d, const long long* __restrict__ rows, long long n_rows,
                    double* __restrict__ out) {
    using fastdensity::LogSumExp;
    constexpr int B = fastdensity::kde::SLOW_BLOCK;
    __shared__ double s_max[B];
    __shared__ double s_sum[B];
    const double neg_inf = fastdensity::numeric<double>::neg_inf();
    for (long long r = blockIdx.x; r < n_rows; r += gridDim.x) {
        const long long i = rows[r];
        const T* q = queries + i * d;
        LogSumExp<double> acc;
        for (long long j = threadIdx.x; j < n; j += B) {
            if (exclude_self && j == i) continue;
            double r2 = 0.0;
            for (int k = 0; k < d; ++k) {
                const double a = static_cast<double>(train_t[k * n + j]) - static_cast<double>(q[k]);
                r2 = fma(a, a, r2);
            }
            if (adaptive) r2 *= static_cast<double>(inv_scale2[j]);
            acc.add(log_weights[j] + fastdensity::kde::log_profile<KERNEL>(r2));
        }
        s_max[threadIdx.x] = acc.max_value;
        s_sum[threadIdx.x] = acc.scaled_sum;
        __syncthreads();
        for (int width = B / 2; width > 0; width /= 2) {
            if (threadIdx.x < width) {
                LogSumExp<double> a;
                a.max_value = s_max[threadIdx.x];
                a.scaled_sum = s_sum[threadIdx.x];
                LogSumExp<double> b;
                b.max_value = s_max[threadIdx.x + width];
                b.scaled_sum = s_sum[threadIdx.x + width];
                a.merge(b);
                s_max[threadIdx.x] = a.max_value;
                s_sum[threadIdx.x] = a.scaled_sum;
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            bool nan_query = false;
            for (int k = 0; k < d; ++k) nan_query |= (q[k] != q[k]);
            const double best = s_max[0];
            out[i] = nan_query ? __longlong_as_double(0x7ff8000000000000LL)
                               : (best == neg_inf ? neg_inf : best + log(s_sum[0]));
        }
        __syncthreads();  // s_max / s_sum are reused by the next row
    }
}
