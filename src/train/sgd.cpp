#include "train/sgd.hpp"

#include "util/fixed_point.hpp"

namespace dualnet {

void sgd_update(const SgdParams& p, const View1<real>& params, const View1<real>& velocity,
                const View1<std::int64_t>& grad) {
  Kokkos::parallel_for(
      "train::sgd_update", range(params.extent(0)), KOKKOS_LAMBDA(const std::int64_t i) {
        const double g = from_fixed(grad(i)) + p.weight_decay * params(i);
        const double v = p.momentum * velocity(i) + g;
        velocity(i) = v;
        params(i) -= p.lr * v;
      });
}

}  // namespace dualnet
