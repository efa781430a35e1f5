#pragma once
// Plain SGD with optional momentum and weight decay, PyTorch's convention:
//   g = grad + weight_decay * w;  v = momentum * v + g;  w -= lr * v.
// The gradient arrives as the all-reduced fixed-point sum (util/fixed_point.hpp).
#include <cstdint>

#include "loss/loss.hpp"
#include "model/network.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {

struct SgdParams {
  double lr = 0.1;
  double momentum = 0.0;
  double weight_decay = 0.0;
};

// What a training step leaves in its sums, and where the update kernel records it.
struct StepSums {
  View1<std::int64_t> grad;        // [n_params + 2]: gradient, loss sum, overflow count
  View1<std::int64_t> batch_sums;  // [kBatchSums]: the coupled losses' batch sums
  View1<real> losses;              // [steps per pass]: the batch loss of each step
  View1<std::int64_t> overflows;   // [1]: fixed-point overflows seen this pass
};

// The step's last kernel, one thread per neuron (row j of W_mu and its bias: together the
// neurons own every parameter, each exactly once). Each thread applies SGD to its
// parameters, writes them into act's padded layouts for the next forward (so no forward
// pads), and zeroes their gradient sums for the next step. Thread 0 also records the step's
// loss in losses(step), adds the step's overflows, and zeroes the loss, overflow and batch
// sums. One kernel where there were an update, a loss record, an overflow count and two
// fills (docs/gpu.md#step-budget).
void update_step(const NetworkShape& net, const SgdParams& p, const LossParams& loss, const View1<real>& params,
                 const View1<real>& velocity, const Activations& act, const StepSums& sums, std::int64_t step);

}  // namespace dualnet
