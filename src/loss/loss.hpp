#pragma once
// The five contrastive losses of docs/science.md#losses, as the mean over the global batch.
// Every loss depends on an item only through the squared distances E_j = |f0 - f_{j+1}|^2
// between the anchor (view 0) and view j+1 (j = 0: the positive, j >= 1: negatives), so each
// loss is a rule for the coefficients C_j = dL/dE_j; dL/df then follows in one kernel.
// ref_nce and ref_subtract couple the whole global batch through the sums of E over it.
#include <cstdint>
#include <string>

#include "loss/loss_names.hpp"
#include "util/fixed_point.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {

struct LossParams {
  LossKind kind = LossKind::ref_nce;
  double temp = 0.1;
  double margin = 0.0;
  int negatives = 1;
  std::int64_t global_batch = 1;
  int out_dim = 1;  // hid: the reference averages over output dimensions
  KOKKOS_INLINE_FUNCTION bool batch_coupled() const {
    return kind == LossKind::ref_nce || kind == LossKind::ref_subtract;
  }
};

// Batch sums for the coupled losses, in 64-bit fixed point: [sum E_pos, sum E_neg, overflow].
constexpr int kBatchSums = 3;

// The reference's batch means: pos = sum E_pos / (B*hid), neg = sum E_neg / (B*H*hid).
struct RefMeans {
  double pos, neg, dpos, dneg;  // means and their derivatives w.r.t. one item's E
};

KOKKOS_INLINE_FUNCTION RefMeans ref_means(const LossParams& p, const View1<std::int64_t>& batch) {
  const double bpos = static_cast<double>(p.global_batch) * p.out_dim;
  const double bneg = bpos * p.negatives;
  return RefMeans{from_fixed(batch(0)) / bpos, from_fixed(batch(1)) / bneg, 1.0 / bpos, 1.0 / bneg};
}

// Loss value and dL/dpos (dL/dneg is its negative) of the coupled losses.
KOKKOS_INLINE_FUNCTION void ref_loss(const LossParams& p, const RefMeans& m, double* loss, double* dloss_dpos) {
  if (p.kind == LossKind::ref_subtract) {
    *loss = m.pos - m.neg;
    *dloss_dpos = 1.0;
  } else {  // ref_nce: -e^{-pos/t} / (e^{-pos/t} + e^{-neg/t}) = -sigmoid((neg - pos)/t)
    const double q = kmath::sigmoid((m.neg - m.pos) / p.temp);
    *loss = -q;
    *dloss_dpos = q * (1.0 - q) / p.temp;
  }
}

// The batch's mean loss, from the all-reduced sums: the batch sums (coupled losses) or the
// loss sum in reduced(loss_slot) (the others). Device code: the update kernel records it.
KOKKOS_INLINE_FUNCTION double batch_loss(const LossParams& p, const View1<std::int64_t>& batch,
                                         const View1<std::int64_t>& reduced, std::int64_t loss_slot) {
  if (!p.batch_coupled()) return from_fixed(reduced(loss_slot));
  double value, dpos;
  ref_loss(p, ref_means(p, batch), &value, &dpos);
  return value;
}

// E(item, j) for `items` items of `views` = negatives + 2 rows each, one team per
// micro-batch. With `sums` (the coupled losses), each micro-batch's sums of E over its
// positive and its negative pairs are also added to sums in fixed point (util/fixed_point.hpp):
// sums must hold 0 (or earlier micro-batches) before.
void pair_distances(const View2<real>& out, std::int64_t items, int views, std::int64_t micro_batch,
                    const View2<real>& dist, const View1<std::int64_t>& sums = {});

// From E and (coupled losses) the all-reduced batch sums in `batch`: C(item, j), each
// item's share of the mean loss (item_loss) and dL/df of every row (grad_out), one team per
// micro-batch. The local losses also add each micro-batch's loss sum in fixed point to
// sums_out(loss_slot) (overflows counted in sums_out(loss_slot + 1)).
void loss_gradient(const LossParams& p, const View2<real>& out, const View2<real>& dist, std::int64_t items,
                   std::int64_t micro_batch, const View1<std::int64_t>& batch, const View2<real>& coef,
                   const View1<real>& item_loss, const View2<real>& grad_out, const View1<std::int64_t>& sums_out,
                   std::int64_t loss_slot);

}  // namespace dualnet
