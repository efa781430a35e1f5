#include "loss/loss.hpp"

#include <string>

#include "util/error.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {

namespace {
// Both kernels run one team per micro-batch.
void require_whole_micro_batches(const char* kernel, std::int64_t items, std::int64_t micro_batch) {
  if (micro_batch <= 0 || items % micro_batch != 0)
    DUALNET_FAIL(std::string(kernel) + ": micro_batch " + std::to_string(micro_batch) + " does not divide " +
                 std::to_string(items) + " items");
}
}  // namespace

void pair_distances(const View2<real>& out, std::int64_t items, int views, std::int64_t micro_batch,
                    const View2<real>& dist, const View1<std::int64_t>& sums) {
  require_whole_micro_batches("pair_distances", items, micro_batch);
  const int dim = static_cast<int>(out.extent(1)), pairs = views - 1;
  const bool with_sums = sums.extent(0) > 0;
  Kokkos::parallel_for(
      "loss::pair_distances", teams(items / micro_batch), KOKKOS_LAMBDA(const Team& team) {
        const std::int64_t first = team.league_rank() * micro_batch;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, micro_batch * pairs), [&](const std::int64_t idx) {
          const std::int64_t item = first + idx / pairs;
          const int j = static_cast<int>(idx % pairs);
          const std::int64_t a = item * views, b = a + 1 + j;
          double s = 0.0;
          for (int d = 0; d < dim; ++d) s += (out(a, d) - out(b, d)) * (out(a, d) - out(b, d));
          dist(item, j) = s;
        });
        if (!with_sums) return;
        team.team_barrier();
        // The micro-batch's sums in item order, then added as integers (order-free).
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          double sp = 0.0, sn = 0.0;
          for (std::int64_t item = first; item < first + micro_batch; ++item) {
            sp += dist(item, 0);
            for (int j = 1; j < pairs; ++j) sn += dist(item, j);
          }
          bool overflow = false;
          Kokkos::atomic_add(&sums(0), to_fixed(sp, &overflow));
          Kokkos::atomic_add(&sums(1), to_fixed(sn, &overflow));
          if (overflow) Kokkos::atomic_add(&sums(2), std::int64_t(1));
        });
      });
}

void loss_gradient(const LossParams& p, const View2<real>& out, const View2<real>& dist, std::int64_t items,
                   std::int64_t micro_batch, const View1<std::int64_t>& batch, const View2<real>& coef,
                   const View1<real>& item_loss, const View2<real>& grad_out, const View1<std::int64_t>& sums_out,
                   std::int64_t loss_slot) {
  require_whole_micro_batches("loss_gradient", items, micro_batch);
  const int negs = p.negatives, views = negs + 2, dim = static_cast<int>(out.extent(1));
  const double inv_b = 1.0 / static_cast<double>(p.global_batch);
  Kokkos::parallel_for(
      "loss::gradient", teams(items / micro_batch), KOKKOS_LAMBDA(const Team& team) {
        const std::int64_t first = team.league_rank() * micro_batch;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, micro_batch), [&](const std::int64_t i) {
          const std::int64_t item = first + i;
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
        team.team_barrier();  // the coefficients and losses of the micro-batch, for every thread
        // dL/df of each row: the anchor through all its pairs, view j + 1 through pair j.
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, micro_batch * views), [&](const std::int64_t r) {
          const std::int64_t item = first + r / views, row = first * views + r;
          const int view = static_cast<int>(r % views);
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
        if (p.batch_coupled()) return;
        // The local losses' sum over the micro-batch in item order, then as an integer.
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          double s = 0.0;
          for (std::int64_t item = first; item < first + micro_batch; ++item) s += item_loss(item);
          bool overflow = false;
          Kokkos::atomic_add(&sums_out(loss_slot), to_fixed(s, &overflow));
          if (overflow) Kokkos::atomic_add(&sums_out(loss_slot + 1), std::int64_t(1));
        });
      });
}

}  // namespace dualnet
