// Gaussian mixture kernels: the fused E-step and the scoring passes behind
// fastdensity/mixture/_mixture_cuda.py (same ops as fastdensity/mixture/_mixture_cpu.py).
//
// gmm_pass<T, FAMILY, MODE>: a block of BR threads (BR = blockDim.x, a multiple of 32) walks
// `tiles_per_block` consecutive tiles of BR rows. Per tile:
//   load    the tile of X, transposed into shared memory xs[d][BR + 1] (coalesced reads; the
//           padded stride keeps both access patterns below free of bank conflicts), and weights;
//   phase 1 one thread per row: every component's log-density from the Cholesky factor of its
//           precision (full: y = (x − μ_c) U_c; tied: z = (x − s) U once, then z − (μ_c − s) U;
//           diag/spherical: (x − μ_c) ∘ p_c), cst_c − ½‖y‖² (cst_c = log π_c + log|U_c| −
//           d/2 log 2π, from the launcher); then (MODE_NORM, MODE_ESTEP) the log-sum-exp
//           normaliser and (MODE_ESTEP) the responsibilities times the weight, into rs[K][BR + 1];
//   phase 2 (MODE_ESTEP) one thread per statistic entry: its sum over the tile's rows in a fixed
//           order, in T, added to the block's own float64 partial (no atomics).
// gmm_reduce_partials sums the blocks' partials in block order (float64). The results therefore
// depend only on (n, d, K, T, BR, tiles_per_block), which the launcher derives from the shapes
// and the device's shared-memory limit, never on scheduling.
//
// Statistics (about the current means, as in the CPU engine; r_ic includes the sample weight):
//   entries [0, K)              R_c   = Σ_i r_ic
//   entries [K, K + K d)        Sx_ci = Σ_i r_ic (x_ii − μ_ci)
//   then full:  K × P entries   Sxx_cij = Σ_i r_ic (x_i − μ_c)_i (x_i − μ_c)_j   (i ≥ j; P = d(d+1)/2,
//                                the (i, j) of entry p in tri_i[p], tri_j[p])
//        tied:  P entries       Σ_i w_i (x − s)_i (x − s)_j                     (i ≥ j)
//        diag:  K × d entries   Σ_i r_ic (x_ii − μ_ci)²                          (spherical too)
//
// Floors (H100 SXM, float32, full covariances): phase 1 is K d(d+1)/2 FMAs per row, phase 2 about
// 3 K d(d+1)/2 operations per row; at 67 TFLOP/s (33.5e12 FMA/s) and d = 16, K = 8: ~2.2e3
// operations per row, about 1.5e10 rows/s, far above the bytes floor (d·4 bytes per row at
// 3.35 TB/s: 5e10 rows/s) — compute-bound, by the phase-2 sums. UNVERIFIED on a GPU so far.
#include "common.cuh"

namespace fastdensity {
namespace mixture {

enum Family : int { FULL = 0, TIED = 1, DIAG = 2 };        // spherical runs as DIAG
enum Mode : int { LOG_PROB = 0, NORM = 1, ESTEP = 2 };

// Rows of scratch per tile: the centred (full) or transformed (tied) row; diag needs none.
template <int FAMILY> __device__ __forceinline__ int scratch_rows(int d) { return FAMILY == DIAG ? 0 : d; }

// cst − ½ ‖(x − μ_c) U_c‖² for the row held in column b of xs (stride S); ds is this row's
// scratch column (written and read by this thread only).
template <typename T, int FAMILY>
__device__ __forceinline__ T component_log_prob(int c, const T* __restrict__ xs, T* __restrict__ ds, int S, int b,
                                                int d, const T* __restrict__ means, const T* __restrict__ U,
                                                const T* __restrict__ muU, const double* __restrict__ cst) {
    T q = T(0);
    if (FAMILY == FULL) {
        const T* mu = means + static_cast<size_t>(c) * d;
        const T* Uc = U + static_cast<size_t>(c) * d * d;
        for (int i = 0; i < d; ++i) ds[i * S + b] = xs[i * S + b] - mu[i];
        for (int j = 0; j < d; ++j) {
            T y = T(0);
            for (int i = 0; i <= j; ++i) y = fma(ds[i * S + b], Uc[i * d + j], y);
            q = fma(y, y, q);
        }
    } else if (FAMILY == TIED) {
        const T* mu = muU + static_cast<size_t>(c) * d;  // (μ_c − s) U; ds holds (x − s) U
        for (int j = 0; j < d; ++j) {
            const T y = ds[j * S + b] - mu[j];
            q = fma(y, y, q);
        }
    } else {
        const T* mu = means + static_cast<size_t>(c) * d;
        const T* p = U + static_cast<size_t>(c) * d;
        for (int i = 0; i < d; ++i) {
            const T y = (xs[i * S + b] - mu[i]) * p[i];
            q = fma(y, y, q);
        }
    }
    return static_cast<T>(cst[c]) - T(0.5) * q;
}

}  // namespace mixture
}  // namespace fastdensity

// Dynamic shared memory (mirrored by _mixture_cuda.smem_bytes): sizeof(T) * (BR + 1) *
// (d + scratch_rows + K + 1). partial (gridDim.x, E) must be zero on entry (MODE_ESTEP).
template <typename T, int FAMILY, int MODE>
__global__ void gmm_pass(const T* __restrict__ X, const T* __restrict__ w, int has_w, int n, int d, int K,
                         const T* __restrict__ means, const T* __restrict__ U, const T* __restrict__ shift,
                         const T* __restrict__ muU, const double* __restrict__ cst,
                         const int* __restrict__ tri_i, const int* __restrict__ tri_j, int tiles_per_block,
                         double* __restrict__ lpn, double* __restrict__ lp_out, double* __restrict__ partial) {
    using namespace fastdensity;
    using namespace fastdensity::mixture;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    const int BR = blockDim.x;
    const int S = BR + 1;
    const int b = threadIdx.x;
    T* xs = reinterpret_cast<T*>(smem_raw);  // [d][S]
    T* ds = xs + d * S;                       // [scratch_rows][S]
    T* rs = ds + scratch_rows<FAMILY>(d) * S;  // [K][S]
    T* ws = rs + K * S;                       // [S]
    const int P = d * (d + 1) / 2;
    const int E = K + K * d + (FAMILY == FULL ? K * P : FAMILY == TIED ? P : K * d);

    for (int t = 0; t < tiles_per_block; ++t) {
        const long long row0 = (static_cast<long long>(blockIdx.x) * tiles_per_block + t) * BR;
        if (row0 >= n) break;  // block-uniform
        const int nb = static_cast<int>(min(static_cast<long long>(BR), n - row0));
        __syncthreads();  // the previous tile is finished with
        const T* tile = X + row0 * d;
        for (int e = b; e < BR * d; e += BR) {
            const int r = e / d;
            const int i = e - r * d;
            xs[i * S + r] = r < nb ? tile[e] : T(0);
        }
        ws[b] = b < nb ? (has_w ? w[row0 + b] : T(1)) : T(0);
        __syncthreads();

        if (b < nb) {
            if (FAMILY == TIED) {  // z = (x − s) U, in place from the last column down
                for (int i = 0; i < d; ++i) ds[i * S + b] = xs[i * S + b] - shift[i];
                for (int j = d - 1; j >= 0; --j) {
                    T z = T(0);
                    for (int i = 0; i <= j; ++i) z = fma(ds[i * S + b], U[i * d + j], z);
                    ds[j * S + b] = z;
                }
            }
            T mx = numeric<T>::neg_inf();
            for (int c = 0; c < K; ++c) {
                const T lp = component_log_prob<T, FAMILY>(c, xs, ds, S, b, d, means, U, muU, cst);
                rs[c * S + b] = lp;
                mx = lp > mx ? lp : mx;
                if (MODE == LOG_PROB) lp_out[(row0 + b) * K + c] = static_cast<double>(lp);
            }
            if (MODE != LOG_PROB) {
                T sum = T(0);
                for (int c = 0; c < K; ++c) {
                    const T e = fast_exp(rs[c * S + b] - mx);
                    rs[c * S + b] = e;
                    sum += e;
                }
                lpn[row0 + b] = static_cast<double>(mx) + log(static_cast<double>(sum));
                if (MODE == ESTEP) {
                    const T scale = ws[b] / sum;
                    for (int c = 0; c < K; ++c) rs[c * S + b] *= scale;
                }
            }
        } else if (MODE == ESTEP) {
            for (int c = 0; c < K; ++c) rs[c * S + b] = T(0);
        }
        if (MODE != ESTEP) continue;
        __syncthreads();

        double* out = partial + static_cast<size_t>(blockIdx.x) * E;
        for (int e = b; e < E; e += BR) {
            T acc = T(0);
            if (e < K) {
                const T* r = rs + e * S;
                for (int bb = 0; bb < nb; ++bb) acc += r[bb];
            } else if (e < K + K * d) {
                const int c = (e - K) / d;
                const int i = (e - K) - c * d;
                const T m = means[c * d + i];
                const T* r = rs + c * S;
                const T* x = xs + i * S;
                for (int bb = 0; bb < nb; ++bb) acc = fma(r[bb], x[bb] - m, acc);
            } else {
                const int e3 = e - K - K * d;
                if (FAMILY == DIAG) {
                    const int c = e3 / d;
                    const int i = e3 - c * d;
                    const T m = means[c * d + i];
                    const T* r = rs + c * S;
                    const T* x = xs + i * S;
                    for (int bb = 0; bb < nb; ++bb) {
                        const T v = x[bb] - m;
                        acc = fma(r[bb] * v, v, acc);
                    }
                } else {
                    const int c = FAMILY == FULL ? e3 / P : 0;
                    const int p = e3 - c * P;
                    const int i = tri_i[p];
                    const int j = tri_j[p];
                    const T mi = FAMILY == FULL ? means[c * d + i] : shift[i];
                    const T mj = FAMILY == FULL ? means[c * d + j] : shift[j];
                    const T* r = FAMILY == FULL ? rs + c * S : ws;
                    const T* xi = xs + i * S;
                    const T* xj = xs + j * S;
                    for (int bb = 0; bb < nb; ++bb) acc = fma(r[bb] * (xi[bb] - mi), xj[bb] - mj, acc);
                }
            }
            out[e] += static_cast<double>(acc);
        }
    }
}

// out[e] = Σ_g partial[g, e] for g = 0, 1, … in order (float64): the fixed-order reduction.
__global__ void gmm_reduce_partials(const double* __restrict__ partial, int n_blocks, int E,
                                    double* __restrict__ out) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= E) return;
    double s = 0.0;
    for (int g = 0; g < n_blocks; ++g) s += partial[static_cast<size_t>(g) * E + e];
    out[e] = s;
}
