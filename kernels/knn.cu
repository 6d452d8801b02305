// Brute-force k nearest neighbours on the GPU: the kernels behind fastdensity/knn/_knn_cuda.py
// (`knn_distances`, the same op as fastdensity.knn._knn_cpu.knn_distances).
//
// Two kernels:
//  * knn_topk_tiles<T>: each warp owns QPW = 4 queries; a block of W warps streams training points
//    through shared memory in tiles of TILE = 128 points (and chunks of DC = 32 dimensions, so any
//    d works). Each lane holds a 4 x 4 register tile (4 queries x 4 points) of dot products: one
//    shared load feeds 4 FMAs. The screen value s = |x|^2 - 2 q.x (|q|^2 dropped: it does not change
//    a query's ranking) is computed on centred data scaled by a power of two (|coordinates| <= 1)
//    so that the matrix form loses little to cancellation. A point enters a query's candidate
//    buffer (shared memory, order fixed by warp ballots: no atomics) when s <= the query's current
//    k-th screen value; a full buffer is sorted (bitonic, descending) and bitonic-merged with the
//    sorted list, which keeps the best K2 = next_pow2(max(k, 32)) entries. grid.y splits the
//    training set so that few queries still fill the chip; each split writes its k best indices.
//  * knn_merge_exact<T>: one block per query recomputes the exact squared distance of every
//    candidate of every split (in double, the same operations as the CPU's exact_sq_dist: four
//    partial sums, no FMA contraction), sorts by (distance, index) and writes the k best: sqrt in
//    double, rounded to the output type. For a neighbour found by both engines the distance is
//    therefore bit-identical to the CPU's.
//
// Accuracy contract: the returned distances are exact (as above) for the returned indices, sorted
// ascending, ties by the smaller index. The *set* is decided by the screen, whose error is at most
// about (d + 4) u (|q| + R)^2 in scaled units (u = 2^-24 for float, 2^-53 for double; R the largest
// scaled norm, <= sqrt(d)); points whose squared distances lie within that of the k-th neighbour's
// may be exchanged with it. k is limited to MAX_K = 1024 (the sorted list lives in shared memory).
//
// Floors (H100 SXM, float32): the screen is d FMAs per pair; 4 FMAs per shared load keeps shared
// memory (32 lanes x 4 B per clock per SM) level with the FP32 pipes (128 FMA per clock per SM):
// 132 SMs x 1.75 GHz x 128 / d = 3.7e12 / (d / 8) pairs/s, i.e. ~1.8e12 pairs/s at d = 16 before
// selection (a compare and a ballot per pair). torch cdist + topk writes and re-reads the m x n
// matrix: >= 8 bytes per pair at 3.35 TB/s, <= 4.2e11 pairs/s. NOT YET RUN on a GPU (checked in the host
// emulation of tests/cuda_host_emulation.py only).
#include "common.cuh"

namespace fastdensity {
namespace knn {

// Enumerators, not constexpr variables: an uninstantiated file must compile without
// "declared but never referenced" warnings (CI compiles every .cu as is).
enum Geometry : int {
    QPW = 4,                 // queries per warp
    RPL = 4,                 // training points per lane per tile
    TILE = 32 * RPL,         // training points per tile
    TILE_STRIDE = TILE + 1,  // padded row of the transposed tile (conflict-free stores)
    DC = 32,                 // dimensions per shared-memory chunk
};

template <typename T> __device__ __forceinline__ T pos_inf() { return -numeric<T>::neg_inf(); }

// (key, index) pairs compare lexicographically; index -1 (an empty slot) sorts after every index.
template <typename K>
__device__ __forceinline__ bool before(K ka, int ia, K kb, int ib) {
    return ka < kb || (ka == kb && static_cast<unsigned>(ia) < static_cast<unsigned>(ib));
}

template <typename K>
__device__ __forceinline__ void compare_swap(K* key, int* idx, int lo, int hi, bool ascending) {
    const K ka = key[lo], kb = key[hi];
    const int ia = idx[lo], ib = idx[hi];
    const bool swap = ascending ? before(kb, ib, ka, ia) : before(ka, ia, kb, ib);
    if (swap) {
        key[lo] = kb;
        key[hi] = ka;
        idx[lo] = ib;
        idx[hi] = ia;
    }
}

// Bitonic sort of n (a power of two) pairs in shared memory by the `workers` threads numbered
// `me`; `sync` is the matching barrier (warp or block). Ascending unless `descending`.
template <typename K, typename Sync>
__device__ void bitonic_sort(K* key, int* idx, int n, bool descending, int me, int workers, Sync sync) {
    for (int size = 2; size <= n; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int t = me; t < (n >> 1); t += workers) {
                const int lo = ((t & ~(stride - 1)) << 1) | (t & (stride - 1));
                const bool up = ((lo & size) == 0) != descending;
                compare_swap(key, idx, lo, lo + stride, up);
            }
            sync();
        }
    }
}

// Ascending bitonic merge of n pairs whose first half is ascending and second half descending.
template <typename K, typename Sync>
__device__ void bitonic_merge(K* key, int* idx, int n, int me, int workers, Sync sync) {
    for (int stride = n >> 1; stride > 0; stride >>= 1) {
        for (int t = me; t < (n >> 1); t += workers) {
            const int lo = ((t & ~(stride - 1)) << 1) | (t & (stride - 1));
            compare_swap(key, idx, lo, lo + stride, true);
        }
        sync();
    }
}

struct WarpSync {
    __device__ void operator()() const { __syncwarp(); }
};
struct BlockSync {
    __device__ void operator()() const { __syncthreads(); }
};

// Merge a query's candidate buffer (key[k2 .. k2 + count)) into its sorted list (key[0 .. k2)),
// keeping the best k2 in key[0 .. k2), sorted. Returns the new threshold: the k-th key.
template <typename T>
__device__ __noinline__ T flush_candidates(T* key, int* idx, int k2, int count, int k, int lane) {
    __syncwarp();
    for (int e = count + lane; e < k2; e += 32) {
        key[k2 + e] = pos_inf<T>();
        idx[k2 + e] = -1;
    }
    __syncwarp();
    bitonic_sort(key + k2, idx + k2, k2, true, lane, 32, WarpSync());
    bitonic_merge(key, idx, 2 * k2, lane, 32, WarpSync());
    return key[k - 1];
}

// Σ_c (x_c − q_c)² in double exactly as fastdensity.knn._topk.exact_sq_dist: four partial sums
// (dimension c into sum c mod 4), combined as (s0 + s1) + (s2 + s3), no FMA contraction.
template <typename T>
__device__ double exact_sq_dist(const T* __restrict__ x, const T* __restrict__ q, int d) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int c = 0;
    for (; c + 4 <= d; c += 4) {
        double a = __dsub_rn(static_cast<double>(x[c]), static_cast<double>(q[c]));
        s0 = __dadd_rn(s0, __dmul_rn(a, a));
        a = __dsub_rn(static_cast<double>(x[c + 1]), static_cast<double>(q[c + 1]));
        s1 = __dadd_rn(s1, __dmul_rn(a, a));
        a = __dsub_rn(static_cast<double>(x[c + 2]), static_cast<double>(q[c + 2]));
        s2 = __dadd_rn(s2, __dmul_rn(a, a));
        a = __dsub_rn(static_cast<double>(x[c + 3]), static_cast<double>(q[c + 3]));
        s3 = __dadd_rn(s3, __dmul_rn(a, a));
    }
    if (c < d) {
        const double a = __dsub_rn(static_cast<double>(x[c]), static_cast<double>(q[c]));
        s0 = __dadd_rn(s0, __dmul_rn(a, a));
    }
    if (c + 1 < d) {
        const double a = __dsub_rn(static_cast<double>(x[c + 1]), static_cast<double>(q[c + 1]));
        s1 = __dadd_rn(s1, __dmul_rn(a, a));
    }
    if (c + 2 < d) {
        const double a = __dsub_rn(static_cast<double>(x[c + 2]), static_cast<double>(q[c + 2]));
        s2 = __dadd_rn(s2, __dmul_rn(a, a));
    }
    return __dadd_rn(__dadd_rn(s0, s1), __dadd_rn(s2, s3));
}

}  // namespace knn
}  // namespace fastdensity

// Screen + per-split top-k. blockDim.x = 32 W; grid = (ceil(m / (4 W)), n_splits). Split s covers
// training points [s * split_len, min(n, (s + 1) * split_len)); split_len is a multiple of TILE.
// Dynamic shared memory (bytes, mirrored by _knn_cuda._topk_smem_bytes):
//   sizeof(T) * (DC * TILE_STRIDE + W * DC * QPW + W * QPW * 2 * k2) + 4 * W * QPW * 2 * k2.
// part_idx (n_splits, m, k): each split's k best indices per query by screen value (-1: none).
template <typename T>
__global__ void knn_topk_tiles(const T* __restrict__ qs, const T* __restrict__ xs, const T* __restrict__ xx,
                               int m, int n, int d, int k, int k2, int split_len, int exclude_self,
                               int* __restrict__ part_idx) {
    using namespace fastdensity::knn;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int n_warps = blockDim.x >> 5;
    const int q0 = (blockIdx.x * n_warps + warp) * QPW;
    const int split = blockIdx.y;
    const int j_begin = split * split_len;
    const int j_end = min(n, j_begin + split_len);

    T* xt = reinterpret_cast<T*>(smem_raw);                     // [DC][TILE_STRIDE]
    T* qt = xt + DC * TILE_STRIDE + warp * DC * QPW;             // this warp's [DC][QPW]
    const int list_len = 2 * k2;                                 // sorted list, then buffer
    T* keys = xt + DC * TILE_STRIDE + n_warps * DC * QPW + warp * QPW * list_len;
    int* ids = reinterpret_cast<int*>(xt + DC * TILE_STRIDE + n_warps * DC * QPW + n_warps * QPW * list_len)
               + warp * QPW * list_len;

    for (int e = lane; e < QPW * list_len; e += 32) {
        keys[e] = pos_inf<T>();
        ids[e] = -1;
    }
    T thr[QPW];
    int count[QPW];
#pragma unroll
    for (int qi = 0; qi < QPW; ++qi) {
        thr[qi] = pos_inf<T>();
        count[qi] = 0;
    }
    __syncwarp();

    for (int j0 = j_begin; j0 < j_end; j0 += TILE) {
        T acc[QPW][RPL];
#pragma unroll
        for (int qi = 0; qi < QPW; ++qi)
#pragma unroll
            for (int r = 0; r < RPL; ++r) acc[qi][r] = T(0);

        for (int d0 = 0; d0 < d; d0 += DC) {
            const int dc = min(DC, d - d0);
            __syncthreads();  // every warp is done with the previous chunk
            // Element e = p dc + c of the tile (point p, dimension c): consecutive threads read
            // consecutive dimensions of a point. (p, c) is stepped without a division per element.
            const int step_p = blockDim.x / dc;
            const int step_c = blockDim.x - step_p * dc;
            int tp = threadIdx.x / dc;
            int tc = threadIdx.x - tp * dc;
            for (int e = threadIdx.x; e < TILE * dc; e += blockDim.x) {
                const int j = j0 + tp;
                xt[tc * TILE_STRIDE + tp] = j < j_end ? xs[static_cast<size_t>(j) * d + d0 + tc] : T(0);
                tp += step_p;
                tc += step_c;
                if (tc >= dc) {
                    tc -= dc;
                    ++tp;
                }
            }
            for (int e = lane; e < QPW * dc; e += 32) {
                const int qi = e / dc;
                const int c = e - qi * dc;
                const int q = q0 + qi;
                qt[c * QPW + qi] = q < m ? qs[static_cast<size_t>(q) * d + d0 + c] : T(0);
            }
            __syncthreads();
            for (int c = 0; c < dc; ++c) {
                T qv[QPW];
#pragma unroll
                for (int qi = 0; qi < QPW; ++qi) qv[qi] = qt[c * QPW + qi];
#pragma unroll
                for (int r = 0; r < RPL; ++r) {
                    const T xv = xt[c * TILE_STRIDE + lane + 32 * r];
#pragma unroll
                    for (int qi = 0; qi < QPW; ++qi) acc[qi][r] = fma(qv[qi], xv, acc[qi][r]);
                }
            }
        }

#pragma unroll
        for (int r = 0; r < RPL; ++r) {
            const int j = j0 + lane + 32 * r;
            const bool valid = j < j_end;
            const T xxj = valid ? xx[j] : T(0);
#pragma unroll
            for (int qi = 0; qi < QPW; ++qi) {
                const int q = q0 + qi;
                const T s = fma(T(-2), acc[qi][r], xxj);
                const bool cand = valid && q < m && !(exclude_self && j == q) && s <= thr[qi];
                const unsigned mask = __ballot_sync(0xffffffffu, cand);
                if (mask == 0u) continue;  // warp-uniform
                const int added = __popc(mask);
                T* key = keys + qi * list_len;
                int* id = ids + qi * list_len;
                if (count[qi] + added > k2) {  // warp-uniform: make room first
                    thr[qi] = flush_candidates(key, id, k2, count[qi], k, lane);
                    count[qi] = 0;
                }
                if (cand) {
                    const int pos = k2 + count[qi] + __popc(mask & ((1u << lane) - 1u));
                    key[pos] = s;
                    id[pos] = j;
                }
                count[qi] += added;
            }
        }
    }

#pragma unroll
    for (int qi = 0; qi < QPW; ++qi) {
        T* key = keys + qi * list_len;
        int* id = ids + qi * list_len;
        if (count[qi] > 0) flush_candidates(key, id, k2, count[qi], k, lane);
        __syncwarp();
        const int q = q0 + qi;
        if (q < m) {
            int* out = part_idx + (static_cast<size_t>(split) * m + q) * k;
            for (int t = lane; t < k; t += 32) out[t] = id[t];
        }
    }
}

// Exact re-ranking: one block per query; candidates part_idx (n_parts, m, k) (-1 = none). p2 is a
// power of two >= n_parts * k; dynamic shared memory: 12 * p2 bytes (double keys, int indices).
// out_dist (m, k) in the output type, out_idx (m, k) int64.
template <typename T, typename OutT>
__global__ void knn_merge_exact(const T* __restrict__ queries, const T* __restrict__ train,
                                const int* __restrict__ part_idx, int m, int d, int k, int n_parts, int p2,
                                OutT* __restrict__ out_dist, long long* __restrict__ out_idx) {
    using namespace fastdensity::knn;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    double* key = reinterpret_cast<double*>(smem_raw);
    int* idx = reinterpret_cast<int*>(key + p2);
    const int q = blockIdx.x;
    const T* qrow = queries + static_cast<size_t>(q) * d;
    const int total = n_parts * k;
    for (int t = threadIdx.x; t < p2; t += blockDim.x) {
        int j = -1;
        if (t < total) {
            const int part = t / k;
            j = part_idx[(static_cast<size_t>(part) * m + q) * k + (t - part * k)];
        }
        idx[t] = j;
        key[t] = j >= 0 ? exact_sq_dist(train + static_cast<size_t>(j) * d, qrow, d) : pos_inf<double>();
    }
    __syncthreads();
    bitonic_sort(key, idx, p2, false, static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), BlockSync());
    for (int t = threadIdx.x; t < k; t += blockDim.x) {
        out_dist[static_cast<size_t>(q) * k + t] = static_cast<OutT>(__dsqrt_rn(key[t]));
        out_idx[static_cast<size_t>(q) * k + t] = static_cast<long long>(idx[t]);
    }
}
