#pragma once
// The one inner loop of every dense kernel (forward, backward, weight gradient, the
// evaluation's Jacobians, z*h and covariance-operator sums): a register tile of 4 rows and
// 4, 8 or 12 columns (any width below 12 on the generic path) of a small matrix product,
//     C(m, e) = sum_k A(m, k) * B(k, e),   m < 4, e < cols.
// A is read by broadcast, so its rows may lie anywhere (four pointers, any step along k);
// B is read `cols` contiguous values per k. Each k loads one row of B (two AVX2 vectors
// for 8 columns) and four values of A for 32 multiply-adds: the former one-row tiles did
// two loads per 8 multiply-adds and were bound by loads, not arithmetic.
#include <cstdint>
#include <type_traits>

#include "util/fixed_point.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {

constexpr int kTileRows = 4;      // M
constexpr int kTileCols = 8;      // N of the column tiling
constexpr int kTileMaxCols = 12;  // N of the widest tile (one node of hid <= 12)

#if defined(__GNUC__) && !defined(__CUDA_ARCH__) && !defined(DUALNET_PORTABLE_TILES)
// Host builds: the fast paths hold the tile in explicit 4-wide vectors (GCC/Clang vector
// extensions; AVX2 registers on x86, pairs of NEON registers on Arm), namespace tile_vec
// below. Written as arrays, GCC kept part of the tile on the stack. DUALNET_PORTABLE_TILES (a
// CMake option) turns them off, so that a CPU build tests the portable code that a GPU runs.
#define DUALNET_TILE_VECTORS 1
#endif

// The portable code (a GPU) keeps a tile, and every array indexed like it, in registers only
// if each index is a compile-time constant after unrolling: nvcc puts an array indexed with a
// runtime value (a loop up to a runtime width) in local memory, the per-thread stack,
// off-chip. So there every loop over a tile's rows or columns runs to a constant bound
// (kTileRows, kTileMaxCols or a template width W) and leaves out the entries past the runtime
// width with a condition, unrolled by DUALNET_UNROLL (for_cols, add_row_sums,
// tile_accumulate). The host's vector builds keep the runtime bounds in those loops: the
// constant-bound form made GCC's code for the kernels around them slower (up to 14% more
// instructions). Either way each output gets the same additions in the same order.
// tests/gpu/check_spills.py fails the CUDA build's check on a stack frame or spill in the
// kernels that run these tiles (docs/gpu.md).
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#define DUALNET_UNROLL _Pragma("unroll")
#else
#define DUALNET_UNROLL
#endif

struct Tile {
  double c[kTileRows][kTileMaxCols];
};

// Row tiles: tiles of `width` over n entries: tile k starts at width*k, except that the
// last one is moved back to end at n, so that every tile is full whenever n >= width. The
// overlapped entries are computed twice with identical results; a kernel that adds (rather
// than stores) a tile skips the first tile_overlap() entries.
KOKKOS_INLINE_FUNCTION int tile_count(int n, int width) { return (n + width - 1) / width; }
KOKKOS_INLINE_FUNCTION int tile_start(int k, int n, int width) {
  return width * k + width <= n || n < width ? width * k : n - width;
}
KOKKOS_INLINE_FUNCTION int tile_overlap(int k, int n, int width) { return width * k - tile_start(k, n, width); }
// Entries of a tile that exist (n < width: the tile is cut).
KOKKOS_INLINE_FUNCTION int tile_width(int n, int width) { return n < width ? n : width; }

// Column tiles over n columns: 8 wide, with a 4-wide last tile when at most 4 columns are
// left (hid = 10 computes 8 + 4 columns, not 8 + 8). `skip` columns at the start of the
// last tile overlap its neighbour. Below 8 columns, one tile of all n.
// `read` is the number of columns the product computes (and reads of B): `width`, except
// in node_col_tile.
struct ColTile {
  int start, width, skip, read;
};
KOKKOS_INLINE_FUNCTION int col_tile_count(int n) { return n < kTileCols ? 1 : tile_count(n, kTileCols); }
KOKKOS_INLINE_FUNCTION ColTile col_tile(int k, int n) {
  if (n < kTileCols) return ColTile{0, n, 0, n};
  if (kTileCols * (k + 1) <= n) return ColTile{kTileCols * k, kTileCols, 0, kTileCols};
  const int left = n - kTileCols * k;  // 1 .. 7
  if (left <= kTileCols / 2) return ColTile{n - kTileCols / 2, kTileCols / 2, kTileCols / 2 - left, kTileCols / 2};
  return ColTile{n - kTileCols, kTileCols, kTileCols - left, kTileCols};
}
// Column tiles over the hid neurons of one node (B: a node's weights, or its dL/dh): for
// 4 <= hid <= 12, one tile that reads hid rounded up to a multiple of 4. The at most 3
// extra columns of every row of B are the node's padding (model/padded_layout.hpp, whose
// stride is where these tiles stop reading); they are computed and dropped. hid = 10 is
// one 12-wide tile instead of an 8- and a 4-wide one.
KOKKOS_INLINE_FUNCTION int node_col_tile_count(int hid) {
  return hid >= 4 && hid <= kTileMaxCols ? 1 : col_tile_count(hid);
}
KOKKOS_INLINE_FUNCTION ColTile node_col_tile(int k, int hid) {
  if (hid >= 4 && hid <= kTileMaxCols) return ColTile{0, hid, 0, (hid + 3) / 4 * 4};
  return col_tile(k, hid);
}

// The rows of one team of a row-blocked kernel: kTileRows consecutive rows, fewer in the
// last block.
inline std::int64_t row_blocks(std::int64_t rows) { return (rows + kTileRows - 1) / kTileRows; }
struct RowBlock {
  std::int64_t first;
  int count;
  KOKKOS_INLINE_FUNCTION RowBlock(std::int64_t block, std::int64_t rows)
      : first(block * kTileRows), count(rows - first < kTileRows ? static_cast<int>(rows - first) : kTileRows) {}
  // Row m of the block; past the end, the last row again (a tile row that is dropped).
  KOKKOS_INLINE_FUNCTION std::int64_t row(int m) const { return first + (m < count ? m : count - 1); }
};

// Where A's column k lies in each row: k * step (StridedK), list[k] * step (ListedK: the
// evaluation reads only the rows behind open ReLU gates), or at[k] (OffsetK: a list of such
// places, multiplied out where the list is made). Where B's row k starts: b + k * step
// (StridedB), or b + at[k] (ListedB).
struct StridedK {
  std::int64_t step;
  KOKKOS_FORCEINLINE_FUNCTION std::int64_t operator()(int k) const { return k * step; }
};
struct ListedK {
  const int* list;
  std::int64_t step;
  KOKKOS_FORCEINLINE_FUNCTION std::int64_t operator()(int k) const { return list[k] * step; }
};
struct OffsetK {
  const std::int64_t* at;
  KOKKOS_FORCEINLINE_FUNCTION std::int64_t operator()(int k) const { return at[k]; }
};
struct StridedB {
  const real* b;
  std::int64_t step;
  KOKKOS_FORCEINLINE_FUNCTION const real* operator()(int k) const { return b + k * step; }
};
struct ListedB {
  const real* b;
  const std::int64_t* at;
  KOKKOS_FORCEINLINE_FUNCTION const real* operator()(int k) const { return b + at[k]; }
};

#ifdef DUALNET_TILE_VECTORS
// The host: every cache line of `rows` rows of n values, `step` apart, requested ahead. For
// rows that large trees put far apart (a new page each, where the hardware prefetchers
// stop), read from L3 or memory: the weight gradient's and the conn sums' inputs.
inline void prefetch_rows(const real* p, std::int64_t step, std::int64_t rows, int n) {
  for (std::int64_t r = 0; r < rows; ++r, p += step) {
    for (int i = 0; i < n; i += 8) __builtin_prefetch(p + i);
    __builtin_prefetch(p + n - 1);
  }
}

// The host: every cache line of `bytes` contiguous bytes requested into L2 ahead, to be
// read and written: sums a kernel adds into in place (the conn sums' totals).
inline void prefetch_span_for_write(const void* p, std::int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (std::int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(c + b, 1, 2);
}
#endif

// f(i) for from <= i < to, to <= W: a loop over the rows or columns of a tile (or another
// array of W entries, a row of sums) whose index is a constant on a GPU.
template <int W, class F>
KOKKOS_FORCEINLINE_FUNCTION void for_cols(int from, int to, const F& f) {
#ifdef DUALNET_TILE_VECTORS
  for (int i = from; i < to; ++i) f(i);
#else
  DUALNET_UNROLL
  for (int i = 0; i < W; ++i)
    if (i >= from && i < to) f(i);
#endif
}

#ifdef DUALNET_TILE_VECTORS
namespace tile_vec {
typedef double v4 __attribute__((vector_size(32)));
// s[e] += sum over k < K of b_at(k)[e] for e < 4 * Vectors, the sums in Vectors registers.
template <int Vectors, class KB>
inline __attribute__((always_inline)) void row_sums(const KB& b_at, int K, real* s) {
  v4 acc[Vectors];
  for (int h = 0; h < Vectors; ++h) __builtin_memcpy(&acc[h], s + 4 * h, sizeof(v4));
  for (int k = 0; k < K; ++k) {
    const real* KOKKOS_RESTRICT y = b_at(k);
    for (int h = 0; h < Vectors; ++h) {
      v4 v;
      __builtin_memcpy(&v, y + 4 * h, sizeof v);
      acc[h] += v;
    }
  }
  for (int h = 0; h < Vectors; ++h) __builtin_memcpy(s + 4 * h, &acc[h], sizeof(v4));
}
}  // namespace tile_vec
#endif

// s[e] += sum over k < K of B(k, e) = b_at(k)[e], for e < n <= W (W: a constant bound, the
// size of s; n == W on the fast paths, a constant there too): one row of a tile product with
// A = 1 (1 * y + s rounds as y + s does), in the same order of additions (the bias gradient;
// the evaluation's z*h sums, where z is 0 or 1).
template <int W, class KB>
KOKKOS_FORCEINLINE_FUNCTION void add_row_sums(const KB& b_at, int K, int n, real* s) {
  static_assert(W > 0, "W bounds the columns (a runtime bound would put s in local memory on a GPU)");
#ifdef DUALNET_TILE_VECTORS
  if (n == W && W % 4 == 0 && W <= 32) {  // the sums in vector registers (written as an array, GCC kept s in memory)
    tile_vec::row_sums<W / 4>(b_at, K, s);
    return;
  }
  if (n != W) {  // the host: a runtime bound for the other widths
    for (int k = 0; k < K; ++k) {
      const real* KOKKOS_RESTRICT y = b_at(k);
      DUALNET_SIMD
      for (int e = 0; e < n; ++e) s[e] += y[e];
    }
    return;
  }
#endif
  for (int k = 0; k < K; ++k) {
    const real* KOKKOS_RESTRICT y = b_at(k);
    DUALNET_SIMD
    DUALNET_UNROLL
    for (int e = 0; e < W; ++e)
#ifdef DUALNET_TILE_VECTORS
      s[e] += y[e];  // n == W
#else
      if (e < n) s[e] += y[e];
#endif
  }
}

#ifdef DUALNET_TILE_VECTORS
namespace tile_vec {
inline v4 load(const real* p) {
  v4 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline v4 relu(v4 v) {
  const v4 zero = {0.0, 0.0, 0.0, 0.0};
  return v > zero ? v : zero;
}
inline void store(const v4& v, double* p) { __builtin_memcpy(p, &v, sizeof v); }

// One k of a tile: c_m[h] += x_m * B(k, 4h .. 4h+3), each x_m in all 4 lanes, for the
// first Rows rows.
template <bool ReluB, int Vectors, int Rows = 4>  // of 4 columns: 1, 2 or 3 for 4, 8 or 12 columns
inline __attribute__((always_inline)) void add_k(v4 (&c0)[3], v4 (&c1)[3], v4 (&c2)[3], v4 (&c3)[3], v4 x0, v4 x1,
                                                 v4 x2, v4 x3, const real* KOKKOS_RESTRICT bk) {
  for (int h = 0; h < Vectors; ++h) {
    v4 y = load(bk + 4 * h);
    if (ReluB) y = relu(y);
    c0[h] += x0 * y;
    if (Rows > 1) c1[h] += x1 * y;
    if (Rows > 2) c2[h] += x2 * y;
    if (Rows > 3) c3[h] += x3 * y;
  }
}

// Fills the caller's tile (one Tile per product, written in place: a Tile returned from one
// of several paths was copied with memcpy).
template <int Vectors>
inline __attribute__((always_inline)) void to_tile(const v4 (&c0)[3], const v4 (&c1)[3], const v4 (&c2)[3],
                                                   const v4 (&c3)[3], Tile& t) {
  for (int h = 0; h < 3; ++h) {
    store(h < Vectors ? c0[h] : v4{}, &t.c[0][4 * h]);
    store(h < Vectors ? c1[h] : v4{}, &t.c[1][4 * h]);
    store(h < Vectors ? c2[h] : v4{}, &t.c[2][4 * h]);
    store(h < Vectors ? c3[h] : v4{}, &t.c[3][4 * h]);
  }
}

inline v4 splat(double x) { return v4{x, x, x, x}; }

// What a product does with its accumulators, straight from the registers. Through a Tile in
// memory, a kernel's epilogue stored the tile and loaded it back: two moves per vector.
template <int Vectors>
struct ToTile {  // the whole Tile (rows and columns not computed: 0)
  Tile& t;
  inline __attribute__((always_inline)) void operator()(const v4 (&c0)[3], const v4 (&c1)[3], const v4 (&c2)[3],
                                                        const v4 (&c3)[3]) const {
    to_tile<Vectors>(c0, c1, c2, c3, t);
  }
};
template <int Vectors, int Rows>
struct StoreRows {  // out[m * step + e] = C(m, e) for m < Rows, e < 4 * Vectors
  real* out;
  std::int64_t step;
  inline __attribute__((always_inline)) void operator()(const v4 (&c0)[3], const v4 (&c1)[3], const v4 (&c2)[3],
                                                        const v4 (&c3)[3]) const {
    // Unrolled by force (a loop over h or rows indexed the accumulators at run time, so they
    // lived on the stack), written out per row as add_k is.
#pragma GCC unroll 3
    for (int h = 0; h < Vectors; ++h) {
      store(c0[h], out + 4 * h);
      if (Rows > 1) store(c1[h], out + step + 4 * h);
      if (Rows > 2) store(c2[h], out + 2 * step + 4 * h);
      if (Rows > 3) store(c3[h], out + 3 * step + 4 * h);
    }
  }
};

// The first N (1 to 4) values of v to p[0 .. N), or from p into the first N lanes (the others
// 0): a node's last vector of hid = 10 holds 2 of its values, and the 2 past them belong to
// the next node, which another thread may be writing.
template <int N>
inline void store_first(const v4& v, real* p) {
  if (N == 4) return store(v, p);
  if (N >= 2) __builtin_memcpy(p, &v, 2 * sizeof(real));
  if (N == 1 || N == 3) p[N - 1] = v[N - 1];
}
// load_first joins two 2-wide halves in registers: written into a zeroed v4 (a 16-byte store
// into a 32-byte stack slot read back whole), every load stalled on store forwarding, a
// third of backward's time.
typedef double v2 __attribute__((vector_size(16)));
template <int N>
inline v4 load_first(const real* p) {
  if (N == 4) return load(p);
  v2 lo = {p[0], 0.0}, hi = {};
  if (N >= 2) __builtin_memcpy(&lo, p, sizeof lo);
  if (N == 3) hi[0] = p[2];
  return __builtin_shufflevector(lo, hi, 0, 1, 2, 3);
}

// f(m, e, C(m, e .. e+3), n) with n (a std::integral_constant) of its values wanted: 4, and
// Last in the last of the Vectors.
template <int Vectors, int Rows, int Last, class F>
struct EachVector {
  const F& f;
  template <int H>
  inline __attribute__((always_inline)) void vector(const v4 (&c0)[3], const v4 (&c1)[3], const v4 (&c2)[3],
                                                    const v4 (&c3)[3]) const {
    const std::integral_constant<int, H + 1 == Vectors ? Last : 4> n;
    f(0, 4 * H, c0[H], n);
    if (Rows > 1) f(1, 4 * H, c1[H], n);
    if (Rows > 2) f(2, 4 * H, c2[H], n);
    if (Rows > 3) f(3, 4 * H, c3[H], n);
  }
  inline __attribute__((always_inline)) void operator()(const v4 (&c0)[3], const v4 (&c1)[3], const v4 (&c2)[3],
                                                        const v4 (&c3)[3]) const {
    vector<0>(c0, c1, c2, c3);
    if (Vectors > 1) vector<(Vectors > 1 ? 1 : 0)>(c0, c1, c2, c3);
    if (Vectors > 2) vector<(Vectors > 2 ? 2 : 0)>(c0, c1, c2, c3);
  }
};

// Rows < 4: only the first Rows rows of the tile are computed (the others are 0).
template <bool ReluA, bool ReluB, int Vectors, int Rows = 4, class KA, class KB, class Sink>
inline __attribute__((always_inline)) void product(const real* KOKKOS_RESTRICT a0, const real* KOKKOS_RESTRICT a1,
                                                   const real* KOKKOS_RESTRICT a2, const real* KOKKOS_RESTRICT a3,
                                                   const KA& a_at, const KB& b_at, int K, const Sink& sink) {
  v4 c0[3] = {}, c1[3] = {}, c2[3] = {}, c3[3] = {};
  for (int k = 0; k < K; ++k) {
    const std::int64_t ka = a_at(k);
    double x0 = a0[ka], x1 = a1[ka], x2 = a2[ka], x3 = a3[ka];
    if (ReluA) {
      x0 = kmath::relu(x0);
      x1 = kmath::relu(x1);
      x2 = kmath::relu(x2);
      x3 = kmath::relu(x3);
    }
    add_k<ReluB, Vectors, Rows>(c0, c1, c2, c3, splat(x0), splat(x1), splat(x2), splat(x3), b_at(k));
  }
  sink(c0, c1, c2, c3);
}

// f(std::integral_constant<int, R>{}) with R = rows (1 to 4; more counts as 4): a tile's
// row count as a template argument, so that its last tile computes only the rows it has.
template <class F>
inline __attribute__((always_inline)) void with_rows(int rows, const F& f) {
  if (rows >= 4)
    f(std::integral_constant<int, 4>{});
  else if (rows == 3)
    f(std::integral_constant<int, 3>{});
  else if (rows == 2)
    f(std::integral_constant<int, 2>{});
  else
    f(std::integral_constant<int, 1>{});
}

// f(v, r) with v = cols / 4 vectors and r = rows (with_rows) as std::integral_constant, for
// the fast widths cols = 4, 8, 12; false (calling nothing) for the others.
template <class F>
inline __attribute__((always_inline)) bool with_shape(int rows, int cols, const F& f) {
  if (cols != 4 && cols != 8 && cols != 12) return false;
  with_rows(
      rows, [&](auto r) __attribute__((always_inline)) {
        if (cols == 12)
          f(std::integral_constant<int, 3>{}, r);
        else if (cols == 8)
          f(std::integral_constant<int, 2>{}, r);
        else
          f(std::integral_constant<int, 1>{}, r);
      });
  return true;
}

// A's rows at a constant step in memory, A(m, k) = a[a_at(k) + m * row_step] (row_step 1:
// adjacent): one pointer per k for all rows, so no row pointer lives across the loop (four
// of them were spilled to the stack and reloaded every k). Rows < 4: only the first Rows rows
// (a node with fewer inputs left, the last block of rows), the others 0.
template <int Vectors, int Rows, class KA, class KB, class Sink>
inline __attribute__((always_inline)) void product_rows_step(const real* KOKKOS_RESTRICT a, std::int64_t row_step,
                                                             const KA& a_at, const KB& b_at, int K, const Sink& sink) {
  v4 c0[3] = {}, c1[3] = {}, c2[3] = {}, c3[3] = {};
  for (int k = 0; k < K; ++k) {
    const real* KOKKOS_RESTRICT x = a + a_at(k);
    const real* KOKKOS_RESTRICT bk = b_at(k);
    v4 y[3];
    for (int h = 0; h < Vectors; ++h) y[h] = load(bk + 4 * h);
    // One row at a time, each x broadcast from memory: 12 sums, the row of B and one x fill
    // AVX2's 16 registers (four x at once spilled a sum, and B was loaded once per product).
    v4 xm = splat(x[0]);
    for (int h = 0; h < Vectors; ++h) c0[h] += xm * y[h];
    if (Rows > 1) {
      xm = splat(x[row_step]);
      for (int h = 0; h < Vectors; ++h) c1[h] += xm * y[h];
    }
    if (Rows > 2) {
      xm = splat(x[2 * row_step]);
      for (int h = 0; h < Vectors; ++h) c2[h] += xm * y[h];
    }
    if (Rows > 3) {
      xm = splat(x[3 * row_step]);
      for (int h = 0; h < Vectors; ++h) c3[h] += xm * y[h];
    }
  }
  sink(c0, c1, c2, c3);
}

// to_fixed (util/fixed_point.hpp) of 4 values, each |v| * f.scale < 2^51: then adding
// 1.5 * 2^52 rounds to an integer (ties to even, like to_fixed) whose bits are the low bits
// of the sum, so the conversion is one add and one integer subtract per 4 values (AVX2 has
// no double-to-int64 conversion).
typedef long long i4 __attribute__((vector_size(32)));
inline i4 to_fixed4(v4 v, FixedPoint f) {
  const double magic = 6755399441055744.0;  // 1.5 * 2^52
  const v4 magic4 = {magic, magic, magic, magic};
  i4 magic_bits, q;
  __builtin_memcpy(&magic_bits, &magic4, sizeof magic_bits);
  // scale is a power of two: v * scale is exact, so a fused multiply-add rounds the same.
  const v4 y = v * f.scale + magic;
  __builtin_memcpy(&q, &y, sizeof q);
  return q - magic_bits;
}
// |v| lane by lane (the sign bits cleared).
inline v4 magnitude(v4 v) {
  i4 bits;
  __builtin_memcpy(&bits, &v, sizeof bits);
  bits &= 0x7fffffffffffffffLL;
  __builtin_memcpy(&v, &bits, sizeof v);
  return v;
}
// A comparison's 4 lanes as bits 0..3 (lane j true: bit j set). On x86 one movemask of the
// lanes' sign bits (_mm256_movemask_pd); GCC's own reduction of the lanes, on CPUs with
// AVX-512, moved them through mask and general registers one by one.
inline int lane_bits(i4 mask) {
#ifdef __AVX__
  v4 m;
  __builtin_memcpy(&m, &mask, sizeof m);
  return __builtin_ia32_movmskpd256(m);
#else
  return static_cast<int>((mask[0] & 1) | (mask[1] & 2) | (mask[2] & 4) | (mask[3] & 8));
#endif
}
// Whether every value whose magnitude() went into `sum` is within to_fixed4's range: a sum
// of magnitudes, rounding included, is at least the largest of them, so below the bound
// every one is; NaN and infinities fail. (One add per 4 values instead of two compares and
// an AND per vector.) A tile that fails for a large sum alone takes its caller's exact path:
// the same integers, slower.
inline bool fits_fixed4(v4 sum, FixedPoint f) {
  const double bound = 2251799813685248.0 / f.scale;  // 2^51 / scale
  return lane_bits(sum < bound) == 0xF;
}

// acc += to_fixed(tile) when every value is within to_fixed4's range; returns false, adding
// nothing, otherwise.
inline bool add_fixed(const Tile& t, std::int64_t acc[kTileRows][kTileMaxCols], FixedPoint f) {
  v4 sum = {};
  for (int m = 0; m < kTileRows; ++m)
    for (int h = 0; h < kTileMaxCols / 4; ++h) sum += magnitude(load(&t.c[m][4 * h]));
  if (!fits_fixed4(sum, f)) return false;
  for (int m = 0; m < kTileRows; ++m)
    for (int h = 0; h < kTileMaxCols / 4; ++h) {
      i4 a;
      __builtin_memcpy(&a, &acc[m][4 * h], sizeof a);
      a += to_fixed4(load(&t.c[m][4 * h]), f);
      __builtin_memcpy(&acc[m][4 * h], &a, sizeof a);
    }
  return true;
}

// f, made opaque to the optimiser here: for the rare paths beside a product (a value that
// does not fit, a width without vectors), GCC otherwise kept f's constants in registers
// across the product's loop and moved two of its accumulators to the stack.
inline FixedPoint opaque(FixedPoint f) {
  __asm__ volatile("" : "+m"(f));
  return f;
}

// A product's accumulators added to integer sums from the registers: acc[m * step + e] +=
// to_fixed4(C(m, e)) for m < Rows, e < 4 * Vectors when every one of them fits; otherwise
// nothing is added and the tile goes to *spill (rows and columns not computed: 0) for the
// caller's Tile path (add_fixed, add_fixed_rows) to deal with.
template <int Vectors, int Rows>
struct AddFixed {
  std::int64_t* acc;
  std::int64_t step;
  FixedPoint f;
  Tile* spill;
  bool* spilled;
  inline __attribute__((always_inline)) void operator()(const v4 (&c0)[3], const v4 (&c1)[3], const v4 (&c2)[3],
                                                        const v4 (&c3)[3]) const {
    const v4* rows[4] = {c0, c1, c2, c3};
    v4 sum = {};
#pragma GCC unroll 4
    for (int m = 0; m < Rows; ++m)
#pragma GCC unroll 3
      for (int h = 0; h < Vectors; ++h) sum += magnitude(rows[m][h]);
    if (!fits_fixed4(sum, f)) {
      to_tile<Vectors>(c0, c1, c2, c3, *spill);
      *spilled = true;
      return;
    }
#pragma GCC unroll 4
    for (int m = 0; m < Rows; ++m)
#pragma GCC unroll 3
      for (int h = 0; h < Vectors; ++h) {
        i4 a;
        __builtin_memcpy(&a, acc + m * step + 4 * h, sizeof a);
        a += to_fixed4(rows[m][h], f);
        __builtin_memcpy(acc + m * step + 4 * h, &a, sizeof a);
      }
  }
};

}  // namespace tile_vec
#endif

// t += A * B over the first cols <= W columns, with constant bounds (registers, not local
// memory, on a GPU); cols == W on the fast paths. W = 0 (the host's vector builds only): the
// runtime bound cols.
template <bool ReluA, bool ReluB, int W, class KA, class KB>
KOKKOS_FORCEINLINE_FUNCTION void tile_accumulate(Tile& t, const real* const a[kTileRows], const KA& a_at,
                                                 const KB& b_at, int K, int cols) {
  const int n = W > 0 ? W : cols;
  for (int k = 0; k < K; ++k) {
    const real* KOKKOS_RESTRICT bk = b_at(k);
    const std::int64_t ka = a_at(k);
    double x[kTileRows];
    DUALNET_UNROLL
    for (int m = 0; m < kTileRows; ++m) x[m] = ReluA ? kmath::relu(a[m][ka]) : a[m][ka];
    DUALNET_SIMD
    DUALNET_UNROLL
    for (int e = 0; e < n; ++e) {
      if (W > 0 && e >= cols) continue;
      const double y = ReluB ? kmath::relu(bk[e]) : bk[e];
      DUALNET_UNROLL
      for (int m = 0; m < kTileRows; ++m) t.c[m][e] += x[m] * y;
    }
  }
}

// A(m, k) = a[m][a_at(k)], B(k, e) = b_at(k)[e]; ReluA/ReluB pass A or B through
// max(0, .) first (the inputs of a node are the ReLU of its children's pre-activations).
// cols = 4, 8 and 12 are the fast paths; other cols < 12 read only B(k, e < cols). Columns
// e >= cols are 0. Rows of A that do not exist should repeat a valid pointer; the caller
// drops them.
template <bool ReluA, bool ReluB, class KA, class KB>
KOKKOS_FORCEINLINE_FUNCTION Tile tile_product_at(const real* const a[kTileRows], const KA& a_at, const KB& b_at, int K,
                                                 int cols) {
  Tile t;
#ifdef DUALNET_TILE_VECTORS
  if (cols == 12) {
    tile_vec::product<ReluA, ReluB, 3>(a[0], a[1], a[2], a[3], a_at, b_at, K, tile_vec::ToTile<3>{t});
    return t;
  }
  if (cols == 8) {
    tile_vec::product<ReluA, ReluB, 2>(a[0], a[1], a[2], a[3], a_at, b_at, K, tile_vec::ToTile<2>{t});
    return t;
  }
  if (cols == 4) {
    tile_vec::product<ReluA, ReluB, 1>(a[0], a[1], a[2], a[3], a_at, b_at, K, tile_vec::ToTile<1>{t});
    return t;
  }
#endif
  DUALNET_UNROLL
  for (int m = 0; m < kTileRows; ++m) {
    DUALNET_UNROLL
    for (int e = 0; e < kTileMaxCols; ++e) t.c[m][e] = 0.0;
  }
  if (cols == 12)
    tile_accumulate<ReluA, ReluB, 12>(t, a, a_at, b_at, K, 12);
  else if (cols == 8)
    tile_accumulate<ReluA, ReluB, 8>(t, a, a_at, b_at, K, 8);
  else if (cols == 4)
    tile_accumulate<ReluA, ReluB, 4>(t, a, a_at, b_at, K, 4);
  else  // the other widths (hid < 4): the first cols of 12 columns (the host: a runtime bound)
#ifdef DUALNET_TILE_VECTORS
    tile_accumulate<ReluA, ReluB, 0>(t, a, a_at, b_at, K, cols);
#else
    tile_accumulate<ReluA, ReluB, kTileMaxCols>(t, a, a_at, b_at, K, cols);
#endif
  return t;
}

// Rows m < rows (1 to 4) of tile_product_at: the host's vector builds compute only those
// (the tile's other rows are undefined); the portable path computes all four, as rows of A
// past `rows` repeat a valid pointer. Each row's sums are those of tile_product_at.
template <bool ReluA, bool ReluB, class KA, class KB>
KOKKOS_FORCEINLINE_FUNCTION Tile tile_product_rows_at(const real* const a[kTileRows], int rows, const KA& a_at,
                                                      const KB& b_at, int K, int cols) {
#ifdef DUALNET_TILE_VECTORS
  if (rows < kTileRows && (cols == 4 || cols == 8 || cols == 12)) {
    Tile t;
    tile_vec::with_rows(
        rows, [&](auto r) __attribute__((always_inline)) {
          constexpr int R = decltype(r)::value;
          if (cols == 12)
            tile_vec::product<ReluA, ReluB, 3, R>(a[0], a[1], a[2], a[3], a_at, b_at, K, tile_vec::ToTile<3>{t});
          else if (cols == 8)
            tile_vec::product<ReluA, ReluB, 2, R>(a[0], a[1], a[2], a[3], a_at, b_at, K, tile_vec::ToTile<2>{t});
          else
            tile_vec::product<ReluA, ReluB, 1, R>(a[0], a[1], a[2], a[3], a_at, b_at, K, tile_vec::ToTile<1>{t});
        });
    return t;
  }
#else
  (void)rows;
#endif
  return tile_product_at<ReluA, ReluB>(a, a_at, b_at, K, cols);
}

// a_rows[m] = a + m * row_step for m < rows; past `rows` the last row again (a's entries
// there may not exist; those tile rows are dropped).
KOKKOS_FORCEINLINE_FUNCTION void rows_at_step(const real* a, std::int64_t row_step, int rows,
                                              const real* a_rows[kTileRows]) {
  DUALNET_UNROLL
  for (int m = 0; m < kTileRows; ++m) a_rows[m] = a + (m < rows ? m : rows - 1) * row_step;
}

// A(m, k) = a[a_at(k) + m * row_step]: the rows of A at a constant step in memory (the rows
// of a block in forward and backward; row_step 1: adjacent, the inputs of a node in the
// weight gradient and the conn sums). Rows m >= rows are not needed (a node fed by two
// leaves has two inputs, the last block of rows may be short): the host's vector builds
// leave them out (0 in the tile), the portable path computes copies of the last row. Each
// row's sums are those of tile_product_at with a[m] = a + m * row_step.
template <class KA, class KB>
KOKKOS_FORCEINLINE_FUNCTION Tile tile_product_rows_step(const real* a, std::int64_t row_step, int rows, const KA& a_at,
                                                        const KB& b_at, int K, int cols) {
#ifdef DUALNET_TILE_VECTORS
  if (cols == 4 || cols == 8 || cols == 12) {
    Tile t;
    tile_vec::with_rows(
        rows, [&](auto r) __attribute__((always_inline)) {
          constexpr int R = decltype(r)::value;
          if (cols == 12)
            tile_vec::product_rows_step<3, R>(a, row_step, a_at, b_at, K, tile_vec::ToTile<3>{t});
          else if (cols == 8)
            tile_vec::product_rows_step<2, R>(a, row_step, a_at, b_at, K, tile_vec::ToTile<2>{t});
          else
            tile_vec::product_rows_step<1, R>(a, row_step, a_at, b_at, K, tile_vec::ToTile<1>{t});
        });
    return t;
  }
#endif
  const real* a_rows[kTileRows];
  rows_at_step(a, row_step, rows, a_rows);
  return tile_product_at<false, false>(a_rows, a_at, b_at, K, cols);
}

#ifdef DUALNET_TILE_VECTORS
namespace tile_vec {
// The product of tile_product_rows_step handed to an epilogue straight from its registers:
// f(m, e, v, n) with v = C(m, e .. e+3), of which the first n (1 to 4, a constant of the
// call: store_first<n>) are within `width` columns, for rows m < rows (forward's bias and
// ReLU, backward's gate: each value as tile_store would pass it; a Tile on the stack and a
// scalar callback cost ~2 instructions a value). False, calling nothing, for a width without
// a vector path (cols not 4, 8 or 12, or width not within the last vector of cols).
template <class KA, class KB, class F>
inline __attribute__((always_inline)) bool product_rows_step_each(const real* a, std::int64_t row_step, int rows,
                                                                  const KA& a_at, const KB& b_at, int K, int cols,
                                                                  int width, const F& f) {
  const int last = width - (cols - 4);
  if (last < 1 || last > 4) return false;
  return with_shape(
      rows, cols, [&](auto v, auto r) __attribute__((always_inline)) {
        constexpr int V = decltype(v)::value, R = decltype(r)::value;
        with_rows(  // a count of 1 to 4 as a constant, as for the rows
            last, [&](auto l) __attribute__((always_inline)) {
              product_rows_step<V, R>(a, row_step, a_at, b_at, K, EachVector<V, R, decltype(l)::value, F>{f});
            });
      });
}

// The product of tile_product_rows_step added to integer sums from its registers (AddFixed:
// acc[m * step + e], m < rows, e < cols). False when it was not: *spill then holds the tile
// (a value that does not fit, or cols not 4, 8 or 12) for the caller's Tile path.
template <class KA, class KB>
inline __attribute__((always_inline)) bool product_add_fixed(const real* a, std::int64_t row_step, int rows,
                                                             const KA& a_at, const KB& b_at, int K, int cols,
                                                             std::int64_t* acc, std::int64_t step, FixedPoint f,
                                                             Tile* spill) {
  bool spilled = false;
  if (!with_shape(
          rows, cols, [&](auto v, auto r) __attribute__((always_inline)) {
            constexpr int V = decltype(v)::value, R = decltype(r)::value;
            product_rows_step<V, R>(a, row_step, a_at, b_at, K, AddFixed<V, R>{acc, step, f, spill, &spilled});
          })) {
    *spill = tile_product_rows_step(a, row_step, rows, a_at, b_at, K, cols);
    return false;
  }
  return !spilled;
}
}  // namespace tile_vec
#endif

// Hands rows m < rows, columns e < cols of a tile to f(m, e, value). The widths 4, 8 and 12
// loop over constant bounds, so the compiler keeps the tile in vector registers and stores
// it with vector instructions (a runtime bound spilled it to the stack).
template <int W, class F>
KOKKOS_FORCEINLINE_FUNCTION void tile_store_row(const Tile& t, int m, const F& f) {
  DUALNET_SIMD
  DUALNET_UNROLL
  for (int e = 0; e < W; ++e) f(m, e, t.c[m][e]);
}
template <class F>
KOKKOS_INLINE_FUNCTION void tile_store(const Tile& t, int rows, int cols, const F& f) {
  DUALNET_UNROLL
  for (int m = 0; m < kTileRows; ++m) {
    if (m >= rows) break;
    if (cols == 12)
      tile_store_row<12>(t, m, f);
    else if (cols == 10)  // one node of hid 10 (the reference): a runtime bound stored element by element
      tile_store_row<10>(t, m, f);
    else if (cols == 8)
      tile_store_row<8>(t, m, f);
    else if (cols == 4)
      tile_store_row<4>(t, m, f);
    else
      for_cols<kTileMaxCols>(0, cols, [&](int e) { f(m, e, t.c[m][e]); });
  }
}

// out[m * step + e] = t.c[m][e] for m < rows, e < cols: a plain copy of the tile, in whole
// vectors on the host (a copy through tile_store's scalar callback went through the stack in
// halves of vectors, which the store-to-load forwarding does not serve).
#ifdef DUALNET_TILE_VECTORS
namespace tile_vec {
template <int Vectors>  // constant: a runtime count of vectors became a memcpy call per row
inline void copy_rows(const Tile& t, int rows, real* out, std::int64_t step) {
  for (int m = 0; m < rows; ++m)
    for (int h = 0; h < Vectors; ++h) store(load(&t.c[m][4 * h]), out + m * step + 4 * h);
}
}  // namespace tile_vec
#endif
KOKKOS_INLINE_FUNCTION void tile_copy_rows(const Tile& t, int rows, int cols, real* out, std::int64_t step) {
#ifdef DUALNET_TILE_VECTORS
  if (cols == 12) return tile_vec::copy_rows<3>(t, rows, out, step);
  if (cols == 8) return tile_vec::copy_rows<2>(t, rows, out, step);
  if (cols == 4) return tile_vec::copy_rows<1>(t, rows, out, step);
#endif
  for_cols<kTileRows>(0, rows,
                      [&](int m) { for_cols<kTileMaxCols>(0, cols, [&](int e) { out[m * step + e] = t.c[m][e]; }); });
}

// tile_copy_rows(tile_product_rows_at(a, rows, a_at, b_at, K, cols), rows, cols, out, step):
// the host's vector path stores the product's registers straight to out.
template <bool ReluA, bool ReluB, class KA, class KB>
KOKKOS_FORCEINLINE_FUNCTION void tile_product_rows_at_copy(const real* const a[kTileRows], int rows, const KA& a_at,
                                                           const KB& b_at, int K, int cols, real* out,
                                                           std::int64_t step) {
#ifdef DUALNET_TILE_VECTORS
  if (tile_vec::with_shape(
          rows, cols, [&](auto v, auto r) __attribute__((always_inline)) {
            constexpr int V = decltype(v)::value, R = decltype(r)::value;
            tile_vec::product<ReluA, ReluB, V, R>(a[0], a[1], a[2], a[3], a_at, b_at, K,
                                                  tile_vec::StoreRows<V, R>{out, step});
          }))
    return;
#endif
  tile_copy_rows(tile_product_rows_at<ReluA, ReluB>(a, rows, a_at, b_at, K, cols), rows, cols, out, step);
}

// acc(m, e) += to_fixed(t.c[m][e], overflow, f) for the tile's first `cols` columns. The
// host's vector path first takes the whole tile without copying it, padding columns included
// (their sums land in acc columns past `cols`, which callers never read); when some value does
// not fit, the columns past `cols` (computed from padding, or unused and 0) are set to 0 in a
// copy, so they neither add nor reach the overflow check. The integers of the columns below
// `cols` are the same on every path.
KOKKOS_INLINE_FUNCTION void add_fixed(const Tile& tile, int cols, std::int64_t acc[kTileRows][kTileMaxCols],
                                      bool* overflow, FixedPoint f) {
#ifdef DUALNET_TILE_VECTORS
  if (tile_vec::add_fixed(tile, acc, f)) return;
#endif
  Tile t = tile;
  DUALNET_UNROLL
  for (int m = 0; m < kTileRows; ++m) for_cols<kTileMaxCols>(cols, kTileMaxCols, [&](int e) { t.c[m][e] = 0.0; });
#ifdef DUALNET_TILE_VECTORS
  if (tile_vec::add_fixed(t, acc, f)) return;
#endif
  DUALNET_UNROLL
  for (int m = 0; m < kTileRows; ++m) {
    DUALNET_UNROLL
    for (int e = 0; e < kTileMaxCols; ++e) acc[m][e] += to_fixed(t.c[m][e], overflow, f);
  }
}

// acc(m, e) += to_fixed(C(m, e)) for e < cols of the product C(m, e) = sum over k < K of
// a0[k * a_step + m] * b[k * b_step + e], m < rows (rows past it: 0 on the host's vector path,
// copies of the last row on the portable one; the caller drops them), read columns of B:
// add_fixed of that tile, the same integers. The portable path (a GPU)
// computes C in pieces of 4 columns, each over all of k, and adds each piece before the next:
// a whole 4 x 12 tile of doubles beside the caller's 4 x 12 integer sums needs more than a
// GPU thread's 255 registers (the weight gradient spilled). Every C(m, e) still sums the same
// products in the same order; columns past cols add nothing, as in add_fixed.
KOKKOS_FORCEINLINE_FUNCTION void tile_product_add_fixed(const real* a0, int rows, std::int64_t a_step, const real* b,
                                                        std::int64_t b_step, int K, int read, int cols,
                                                        std::int64_t acc[kTileRows][kTileMaxCols], bool* overflow,
                                                        FixedPoint f) {
#ifdef DUALNET_TILE_VECTORS
  Tile spill;
  if (!tile_vec::product_add_fixed(a0, 1, rows, StridedK{a_step}, StridedB{b, b_step}, K, read, &acc[0][0],
                                   kTileMaxCols, f, &spill))
    add_fixed(spill, cols, acc, overflow, f);
#else
  const real* a[kTileRows];
  rows_at_step(a0, 1, rows, a);
  constexpr int kPiece = 4;
  DUALNET_UNROLL
  for (int p = 0; p < kTileMaxCols / kPiece; ++p) {
    const int first = kPiece * p;
    if (first >= read) break;
    Tile t;  // its first kPiece columns: C(m, first + e)
    DUALNET_UNROLL
    for (int m = 0; m < kTileRows; ++m) {
      DUALNET_UNROLL
      for (int e = 0; e < kPiece; ++e) t.c[m][e] = 0.0;
    }
    const StridedB piece{b + first, b_step};
    if (read - first >= kPiece)
      tile_accumulate<false, false, kPiece>(t, a, StridedK{a_step}, piece, K, kPiece);
    else  // read < 4 (hid < 4)
      tile_accumulate<false, false, kPiece>(t, a, StridedK{a_step}, piece, K, read - first);
    DUALNET_UNROLL
    for (int m = 0; m < kTileRows; ++m) {
      DUALNET_UNROLL
      for (int e = 0; e < kPiece; ++e) acc[m][first + e] += to_fixed(first + e < cols ? t.c[m][e] : 0.0, overflow, f);
    }
  }
#endif
}

// acc[m * step + e] += to_fixed(t.c[m][e], overflow, f) for m < rows, from <= e < to: a
// tile joins exact integer sums kept in rows (the evaluation's covariance-operator sums).
// The host's vector path (whole rows of 4, 8 or 12 columns, one range check for the tile)
// gives the same integers.
KOKKOS_INLINE_FUNCTION void add_fixed_rows(const Tile& t, int rows, int from, int to, std::int64_t* acc,
                                           std::int64_t step, bool* overflow, FixedPoint f) {
#ifdef DUALNET_TILE_VECTORS
  if (from == 0 && to % 4 == 0 && to <= kTileMaxCols) {
    tile_vec::v4 sum = {};
    for (int m = 0; m < rows; ++m)
      for (int e = 0; e < to; e += 4) sum += tile_vec::magnitude(tile_vec::load(&t.c[m][e]));
    if (tile_vec::fits_fixed4(sum, f)) {
      for (int m = 0; m < rows; ++m)
        for (int e = 0; e < to; e += 4) {
          tile_vec::i4 a;
          __builtin_memcpy(&a, acc + m * step + e, sizeof a);
          a += tile_vec::to_fixed4(tile_vec::load(&t.c[m][e]), f);
          __builtin_memcpy(acc + m * step + e, &a, sizeof a);
        }
      return;
    }
  }
#endif
  for_cols<kTileRows>(0, rows, [&](int m) {
    for_cols<kTileMaxCols>(from, to, [&](int e) { acc[m * step + e] += to_fixed(t.c[m][e], overflow, f); });
  });
}

// add_fixed_rows(tile_product_rows_step(a, row_step, rows, a_at, b_at, K, read), rows, from,
// read, acc, step, overflow, f): the host's vector path adds the product's registers (from
// 0, read 4, 8 or 12) and goes through the Tile only when some value does not fit.
template <class KA, class KB>
KOKKOS_FORCEINLINE_FUNCTION void tile_product_add_fixed_rows(const real* a, std::int64_t row_step, int rows,
                                                             const KA& a_at, const KB& b_at, int K, int from, int read,
                                                             std::int64_t* acc, std::int64_t step, bool* overflow,
                                                             FixedPoint f) {
#ifdef DUALNET_TILE_VECTORS
  Tile spill;
  if (from != 0)
    spill = tile_product_rows_step(a, row_step, rows, a_at, b_at, K, read);
  else if (tile_vec::product_add_fixed(a, row_step, rows, a_at, b_at, K, read, acc, step, f, &spill))
    return;
  add_fixed_rows(spill, rows, from, read, acc, step, overflow, tile_vec::opaque(f));
#else
  add_fixed_rows(tile_product_rows_step(a, row_step, rows, a_at, b_at, K, read), rows, from, read, acc, step, overflow,
                 f);
#endif
}

// acc[e] += to_fixed(s[e] - shift[e] * c, overflow, f) for from <= e < to <= W (the z*h
// sums less their shift). The host's vector path converts 4 at a time where all 4 are within
// to_fixed4's range (the same integers; the expression rounds the same, contracted to one
// fused multiply-add either way), the rest one at a time.
template <int W>
KOKKOS_INLINE_FUNCTION void add_fixed_shifted(const real* s, const real* shift, double c, int from, int to,
                                              std::int64_t* acc, bool* overflow, FixedPoint f) {
  int e = from;
#ifdef DUALNET_TILE_VECTORS
  const tile_vec::v4 c4 = tile_vec::splat(c);
  for (; e + 4 <= to; e += 4) {
    const tile_vec::v4 v = tile_vec::load(s + e) - tile_vec::load(shift + e) * c4;
    if (!tile_vec::fits_fixed4(tile_vec::magnitude(v), f)) break;  // the rest one at a time
    tile_vec::i4 a;
    __builtin_memcpy(&a, acc + e, sizeof a);
    a += tile_vec::to_fixed4(v, f);
    __builtin_memcpy(acc + e, &a, sizeof a);
  }
#endif
  for_cols<W>(e, to, [&](int i) { acc[i] += to_fixed(s[i] - shift[i] * c, overflow, f); });
}

}  // namespace dualnet
