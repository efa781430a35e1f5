#pragma once
// The five contrastive losses of docs/science.md#losses, as the mean over the global batch.
// Every loss depends on an item only through the squared distances E_j = |f0 - f_{j+1}|^2
// between the anchor (view 0) and view j+1 (j = 0: the positive, j >= 1: negatives), so each
// loss is a rule for the coefficients C_j = dL/dE_j; dL/df then follows in one kernel.
// ref_nce and ref_subtract couple the whole global batch through the sums of E over it.
#include <cstdint>
#include <string>

#include "loss/loss_names.hpp"
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

// E(item, j) for `items` items of `views` = negatives + 2 rows each.
void pair_distances(const View2<real>& out, std::int64_t items, int views, const View2<real>& dist);

// Local contribution to the batch sums, micro-batch by micro-batch (see util/fixed_point.hpp).
void batch_sums(const View2<real>& dist, std::int64_t items, std::int64_t micro_batch, const View1<std::int64_t>& sums);

// C(item, j) for the mean loss and each item's share of it (item_loss); for the local losses also the loss sum of the
// items, added in fixed point to sums_out(loss_slot) (overflows counted in sums_out(loss_slot + 1)). `batch` holds the
// all-reduced batch sums (used by the coupled losses only).
void loss_coefficients(const LossParams& p, const View2<real>& dist, std::int64_t items, std::int64_t micro_batch,
                       const View1<std::int64_t>& batch, const View2<real>& coef, const View1<real>& item_loss,
                       const View1<std::int64_t>& sums_out, std::int64_t loss_slot);

// dL/df for every row from the coefficients.
void output_gradient(const View2<real>& out, const View2<real>& coef, std::int64_t items, int views,
                     const View2<real>& grad_out);

// The batch's mean loss from the all-reduced sums, into losses(step).
void record_loss(const LossParams& p, const View1<std::int64_t>& batch, const View1<std::int64_t>& reduced,
                 std::int64_t loss_slot, const View1<real>& losses, std::int64_t step);

}  // namespace dualnet
