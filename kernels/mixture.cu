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
//   phase 2 (MODE_ESTEP) one thread per work item — an entry of R, Sx (and diag's second moments),
//           or a 4 x 4 register tile of a second-moment matrix — summing over the tile's rows in
//           a fixed order, in T, added to the block's own float64 partial (no atomics).
// gmm_reduce_partials sums the blocks' partials in block order (float64). The results therefore
// depend only on (n, d, K, T, BR, tiles_per_block), which the launcher derives from the shapes
// and the device's shared-memory limit, never on scheduling.
//
// Statistics (about the current means, as in the CPU engine; r_ic includes the sample weight):
//   entries [0, K)              R_c   = Σ_i r_ic
//   entries [K, K + K d)        Sx_ci = Σ_i r_ic (x_ii − μ_ci)
//   then full:  K × P entries   Sxx_cij = Σ_i r_ic (x_i − μ_c)_i (x_i − μ_c)_j   (i ≥ j; P = d(d+1)/2,
//                                entry i (i + 1) / 2 + j: the lower triangle row by row)
//        tied:  P entries       Σ_i w_i (x − s)_i (x − s)_j                     (i ≥ j)
//        diag:  K × d entries   Σ_i r_ic (x_ii − μ_ci)²                          (spherical too)
//
// Floors (H100 SXM, float32, full covariances, d = 16, K = 8): about K d² FMAs per row (d(d+1)/2
// for each log-density, as many for each second-moment matrix) = 2.2e3; at 33.5e12 FMA/s (67
// TFLOP/s) that is 1.5e10 rows/s, 0.07 ms per EM iteration at n = 1e6, far above the bytes floor
// (4 d bytes per row at 3.35 TB/s: 5e10 rows/s): compute-bound. This code issues about 3
// instructions per FMA in phase 1 (a shared and a uniform load each) and about 2.8 in phase 2
// (4 x 4 register tiles: per row 9 shared loads, 16 subtractions for the hi/lo centring and 4
// multiplies per 16 FMAs), so expect ~3x the floor, ~0.2 ms per
// iteration at n = 1e6. NOT YET RUN on a GPU (checked in the host
// emulation of tests/cuda_host_emulation.py only).
#include "common.cuh"

namespace fastdensity {
namespace mixture {

enum Family : int { FULL = 0, TIED = 1, DIAG = 2 };        // spherical runs as DIAG
enum Mode : int { LOG_PROB = 0, NORM = 1, ESTEP = 2 };

// Rows of scratch per tile: the centred (full) or transformed (tied) row; diag needs none.
template <int FAMILY> __device__ __forceinline__ int scratch_rows(int d) { return FAMILY == DIAG ? 0 : d; }

// x − μ with μ = hi + lo (the launcher splits each float64 mean into two T values): x − hi is
// exact when x is near μ (Sterbenz), so float32 data far from the origin (|μ| ≫ σ) keep their
// digits instead of losing log2(|μ|/σ) bits to the rounding of μ. For double, lo = 0.
template <typename T> __device__ __forceinline__ T centred(T x, T hi, T lo) { return (x - hi) - lo; }

// cst − ½ ‖(x − μ_c) U_c‖² for the row held in column b of xs (stride S); ds is this row's
// scratch column (written and read by this thread only).
template <typename T, int FAMILY>
__device__ __forceinline__ T component_log_prob(int c, const T* __restrict__ xs, T* __restrict__ ds, int S, int b,
                                                int d, const T* __restrict__ means, const T* __restrict__ means_lo,
                                                const T* __restrict__ U, const T* __restrict__ muU,
                                                const double* __restrict__ cst) {
    T q = T(0);
    if (FAMILY == FULL) {
        const T* mu = means + static_cast<size_t>(c) * d;
        const T* ml = means_lo + static_cast<size_t>(c) * d;
        const T* Uc = U + static_cast<size_t>(c) * d * d;
        for (int i = 0; i < d; ++i) ds[i * S + b] = centred(xs[i * S + b], mu[i], ml[i]);
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
        const T* ml = means_lo + static_cast<size_t>(c) * d;
        const T* p = U + static_cast<size_t>(c) * d;
        for (int i = 0; i < d; ++i) {
            const T y = centred(xs[i * S + b], mu[i], ml[i]) * p[i];
            q = fma(y, y, q);
        }
    }
    return static_cast<T>(cst[c]) - T(0.5) * q;
}

// Number of 4 x 4 tiles (I >= J) covering the lower triangle of a d x d matrix.
__device__ __forceinline__ int tile_pairs(int d) {
    const int nt = (d + 3) / 4;
    return nt * (nt + 1) / 2;
}

// Phase 2, one entry: R_c (item < K), Sx_ci (item < K + K d) or, for DIAG, Σ r (x_i − μ_ci)²; its
// sum over the nb rows of the tile in row order, in T.
template <typename T, int FAMILY>
__device__ __forceinline__ T entry_sum(int item, int K, int d, int nb, int S, const T* __restrict__ xs,
                                       const T* __restrict__ rs, const T* __restrict__ means,
                                       const T* __restrict__ means_lo) {
    T acc = T(0);
    if (item < K) {
        const T* r = rs + item * S;
        for (int b = 0; b < nb; ++b) acc += r[b];
        return acc;
    }
    const int e = item - K < K * d ? item - K : item - K - K * d;
    const bool second = item - K >= K * d;  // DIAG's Σ r (x − μ)²
    const int c = e / d;
    const int i = e - c * d;
    const T m = means[c * d + i];
    const T ml = means_lo[c * d + i];
    const T* r = rs + c * S;
    const T* x = xs + i * S;
    for (int b = 0; b < nb; ++b) {
        const T v = centred(x[b], m, ml);
        acc = second ? fma(r[b] * v, v, acc) : fma(r[b], v, acc);
    }
    return acc;
}

// Phase 2, one 4 x 4 tile (I, J), I >= J, of Σ_b r_b (x_b − m)(x_b − m)ᵀ (tile pair number tp in
// row order: (0,0), (1,0), (1,1), (2,0) …): 16 sums from 9 shared loads per row instead of 48.
// Adds the entries i >= j (i, j < d) into out[i (i + 1) / 2 + j].
template <typename T, int FAMILY>
__device__ __forceinline__ void tile_sums(int c, int tp, int d, int nb, int S, const T* __restrict__ xs,
                                          const T* __restrict__ r, const T* __restrict__ m,
                                          const T* __restrict__ m_lo, double* out) {
    int I = 0;
    while ((I + 1) * (I + 2) / 2 <= tp) ++I;
    const int J = tp - I * (I + 1) / 2;
    const T* xi[4];
    const T* xj[4];
    T mi[4], mj[4], li[4], lj[4];
#pragma unroll
    for (int a = 0; a < 4; ++a) {
        const int i = min(4 * I + a, d - 1);  // clamped: rows past d are computed and dropped
        const int j = min(4 * J + a, d - 1);
        xi[a] = xs + i * S;
        xj[a] = xs + j * S;
        mi[a] = m[i];
        mj[a] = m[j];
        li[a] = m_lo[i];
        lj[a] = m_lo[j];
    }
    T acc[4][4];
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[a][e] = T(0);
    for (int b = 0; b < nb; ++b) {
        const T rb = r[b];
        T u[4], v[4];
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            u[a] = rb * centred(xi[a][b], mi[a], li[a]);
            v[a] = centred(xj[a][b], mj[a], lj[a]);
        }
#pragma unroll
        for (int a = 0; a < 4; ++a)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[a][e] = fma(u[a], v[e], acc[a][e]);
    }
#pragma unroll
    for (int a = 0; a < 4; ++a) {
        const int i = 4 * I + a;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int j = 4 * J + e;
            if (i < d && j <= i) out[i * (i + 1) / 2 + j] += static_cast<double>(acc[a][e]);
        }
    }
}

}  // namespace mixture
}  // namespace fastdensity

// Dynamic shared memory (mirrored by _mixture_cuda.smem_bytes): sizeof(T) * (BR + 1) *
// (d + scratch_rows + K + 1). partial (gridDim.x, E) must be zero on entry (MODE_ESTEP).
// means (2, K, d) and shift (2, d) hold each value as hi then lo (see `centred`).
template <typename T, int FAMILY, int MODE>
__global__ void gmm_pass(const T* __restrict__ X, const T* __restrict__ w, int has_w, int n, int d, int K,
                         const T* __restrict__ means, const T* __restrict__ U, const T* __restrict__ shift,
                         const T* __restrict__ muU, const double* __restrict__ cst,
                         int tiles_per_block,
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
    const T* means_lo = means + K * d;
    const T* shift_lo = shift + d;
    const int P = d * (d + 1) / 2;
    const int E = K + K * d + (FAMILY == FULL ? K * P : FAMILY == TIED ? P : K * d);  // entries
    const int n_tiles = tile_pairs(d);  // 4 x 4 tiles of a lower triangle
    const int n_items = K + K * d + (FAMILY == FULL ? K * n_tiles : FAMILY == TIED ? n_tiles : K * d);

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
                for (int i = 0; i < d; ++i) ds[i * S + b] = centred(xs[i * S + b], shift[i], shift_lo[i]);
                for (int j = d - 1; j >= 0; --j) {
                    T z = T(0);
                    for (int i = 0; i <= j; ++i) z = fma(ds[i * S + b], U[i * d + j], z);
                    ds[j * S + b] = z;
                }
            }
            T mx = numeric<T>::neg_inf();
            for (int c = 0; c < K; ++c) {
                const T lp = component_log_prob<T, FAMILY>(c, xs, ds, S, b, d, means, means_lo, U, muU, cst);
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
        for (int item = b; item < n_items; item += BR) {
            if (item < K + K * d || FAMILY == DIAG) {
                out[item] += static_cast<double>(entry_sum<T, FAMILY>(item, K, d, nb, S, xs, rs, means, means_lo));
            } else {
                const int e3 = item - K - K * d;
                const int c = FAMILY == FULL ? e3 / n_tiles : 0;
                tile_sums<T, FAMILY>(c, e3 - c * n_tiles, d, nb, S, xs, FAMILY == FULL ? rs + c * S : ws,
                                     FAMILY == FULL ? means + c * d : shift,
                                     FAMILY == FULL ? means_lo + c * d : shift_lo, out + K + K * d + c * P);
            }
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
