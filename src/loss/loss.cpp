#include "loss/loss.hpp"

#include "util/error.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {

namespace {

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

}  // namespace

void pair_distances(const View2<real>& out, std::int64_t items, int views, const View2<real>& dist) {
  const int dim = static_cast<int>(out.extent(1));
  Kokkos::parallel_for(
      "loss::pair_distances", range(items * (views - 1)), KOKKOS_LAMBDA(const std::int64_t idx) {
        const std::int64_t item = idx / (views - 1);
        const int j = static_cast<int>(idx % (views - 1));
        const std::int64_t a = item * views, b = a + 1 + j;
        double s = 0.0;
        for (int d = 0; d < dim; ++d) s += (out(a, d) - out(b, d)) * (out(a, d) - out(b, d));
        dist(item, j) = s;
      });
}

void batch_sums(const View2<real>& dist, std::int64_t items, std::int64_t micro_batch,
                const View1<std::int64_t>& sums) {
  const int cols = static_cast<int>(dist.extent(1));
  const std::int64_t chunks = items / micro_batch;
  Kokkos::parallel_for(
      "loss::batch_sums", range(1), KOKKOS_LAMBDA(const std::int64_t) {
        bool overflow = false;
        std::int64_t pos = 0, neg = 0;
        for (std::int64_t c = 0; c < chunks; ++c) {
          double sp = 0.0, sn = 0.0;
          for (std::int64_t item = c * micro_batch; item < (c + 1) * micro_batch; ++item) {
            sp += dist(item, 0);
            for (int j = 1; j < cols; ++j) sn += dist(item, j);
          }
          pos += to_fixed(sp, &overflow);
          neg += to_fixed(sn, &overflow);
        }
        sums(0) = pos;
        sums(1) = neg;
        sums(2) = overflow ? 1 : 0;
      });
}

void loss_coefficients(const LossParams& p, const View2<real>& dist, std::int64_t items, std::int64_t micro_batch,
                       const View1<std::int64_t>& batch, const View2<real>& coef, const View1<real>& item_loss,
                       const View1<std::int64_t>& sums_out, std::int64_t loss_slot) {
  const int negs = p.negatives;
  const double inv_b = 1.0 / static_cast<double>(p.global_batch);
  Kokkos::parallel_for(
      "loss::coefficients", range(items), KOKKOS_LAMBDA(const std::int64_t item) {
        const double e_pos = dist(item, 0);
        double loss = 0.0;
        switch (p.kind) {
          case LossKind::simp: {  // d+^2 - mean_k d_k^2, d^2 = E/2
            loss = 0.5 * e_pos;
            coef(item, 0) = 0.5 * inv_b;
            for (int k = 1; k <= negs; ++k) {
              loss -= 0.5 * dist(item, k) / negs;
              coef(item, k) = -0.5 / negs * inv_b;
            }
            break;
          }
          case LossKind::triplet: {  // tau * softplus((d+^2 - d1^2 + r) / tau)
            const double a = (0.5 * e_pos - 0.5 * dist(item, 1) + p.margin) / p.temp;
            const double s = kmath::sigmoid(a);
            loss = p.temp * kmath::softplus(a);
            coef(item, 0) = 0.5 * s * inv_b;
            coef(item, 1) = -0.5 * s * inv_b;
            break;
          }
          case LossKind::infonce: {  // tau * (logsumexp_j(-d_j^2/tau) + d+^2/tau), j over pos and negs
            double top = -0.5 * e_pos / p.temp;
            for (int k = 1; k <= negs; ++k) top = kmath::max(top, -0.5 * dist(item, k) / p.temp);
            double z = 0.0;
            for (int k = 0; k <= negs; ++k) z += kmath::exp(-0.5 * dist(item, k) / p.temp - top);
            loss = p.temp * (top + kmath::log(z)) + 0.5 * e_pos;
            for (int k = 0; k <= negs; ++k) {
              const double prob = kmath::exp(-0.5 * dist(item, k) / p.temp - top) / z;
              coef(item, k) = ((k == 0 ? 0.5 : 0.0) - 0.5 * prob) * inv_b;
            }
            break;
          }
          case LossKind::ref_nce:
          case LossKind::ref_subtract: {
            const RefMeans m = ref_means(p, batch);
            double value, dpos;
            ref_loss(p, m, &value, &dpos);
            coef(item, 0) = dpos * m.dpos;
            for (int k = 1; k <= negs; ++k) coef(item, k) = -dpos * m.dneg;
            break;
          }
        }
        item_loss(item) = loss * inv_b;
      });
  if (p.batch_coupled()) return;
  const std::int64_t chunks = items / micro_batch;
  Kokkos::parallel_for(
      "loss::loss_sum", range(1), KOKKOS_LAMBDA(const std::int64_t) {
        bool overflow = false;
        std::int64_t acc = 0;
        for (std::int64_t c = 0; c < chunks; ++c) {
          double s = 0.0;
          for (std::int64_t item = c * micro_batch; item < (c + 1) * micro_batch; ++item) s += item_loss(item);
          acc += to_fixed(s, &overflow);
        }
        sums_out(loss_slot) = acc;
        if (overflow) sums_out(loss_slot + 1) += 1;
      });
}

void output_gradient(const View2<real>& out, const View2<real>& coef, std::int64_t items, int views,
                     const View2<real>& grad_out) {
  const int dim = static_cast<int>(out.extent(1));
  Kokkos::parallel_for(
      "loss::output_gradient", range(items * views), KOKKOS_LAMBDA(const std::int64_t row) {
        const std::int64_t item = row / views;
        const int view = static_cast<int>(row % views);
        const std::int64_t a = item * views;
        for (int d = 0; d < dim; ++d) {
          double g = 0.0;
          if (view == 0) {
            for (int j = 0; j + 1 < views; ++j) g += 2.0 * coef(item, j) * (out(a, d) - out(a + 1 + j, d));
          } else {
            g = -2.0 * coef(item, view - 1) * (out(a, d) - out(row, d));
          }
          grad_out(row, d) = g;
        }
      });
}

void record_loss(const LossParams& p, const View1<std::int64_t>& batch, const View1<std::int64_t>& reduced,
                 std::int64_t loss_slot, const View1<real>& losses, std::int64_t step) {
  Kokkos::parallel_for(
      "loss::record_loss", range(1), KOKKOS_LAMBDA(const std::int64_t) {
        if (p.batch_coupled()) {
          double value, dpos;
          ref_loss(p, ref_means(p, batch), &value, &dpos);
          losses(step) = value;
        } else {
          losses(step) = from_fixed(reduced(loss_slot));
        }
      });
}

}  // namespace dualnet
