#include "train/sgd.hpp"

#include "util/fixed_point.hpp"

namespace dualnet {

void update_step(const NetworkShape& net, const SgdParams& p, const LossParams& loss, const View1<real>& params,
                 const View1<real>& velocity, const Activations& act, const StepSums& sums, std::int64_t step) {
  const TreeShape t = net.tree;
  const PaddedLayout pad(t);
  const auto wt = act.wt;
  const auto wb = act.wb;
  const auto grad = sums.grad;
  const auto batch = sums.batch_sums;
  const auto losses = sums.losses;
  const auto overflows = sums.overflows;
  const std::int64_t n_params = t.n_params();
  Kokkos::parallel_for(
      "train::update", range(t.n_neuron()), KOKKOS_LAMBDA(const std::int64_t n) {
        const int node = static_cast<int>(n / t.hid), j = static_cast<int>(n % t.hid);
        const int in = t.in_size(node);
        const std::int64_t off = t.param_offset(node);
        const auto sgd = [&](std::int64_t i) {
          const double g = from_fixed(grad(i)) + p.weight_decay * params(i);
          const double v = p.momentum * velocity(i) + g;
          velocity(i) = v;
          params(i) -= p.lr * v;
          grad(i) = 0;
        };
        for (int i = 0; i < in; ++i) sgd(off + static_cast<std::int64_t>(j) * in + i);
        sgd(off + static_cast<std::int64_t>(t.hid) * in + j);  // the bias
        pad.copy_neuron(params, wt, wb, node, j);
        if (n != 0) return;
        losses(step) = batch_loss(loss, batch, grad, n_params);
        overflows(0) += grad(n_params + 1) + (loss.batch_coupled() ? batch(2) : 0);
        grad(n_params) = 0;
        grad(n_params + 1) = 0;
        for (int s = 0; s < kBatchSums; ++s) batch(s) = 0;
      });
}

}  // namespace dualnet
