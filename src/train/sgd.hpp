#pragma once
// Plain SGD with optional momentum and weight decay, PyTorch's convention:
//   g = grad + weight_decay * w;  v = momentum * v + g;  w -= lr * v.
// The gradient arrives as the all-reduced fixed-point sum (util/fixed_point.hpp).
#include <cstdint>

#include "util/kokkos_compat.hpp"

namespace dualnet {

struct SgdParams {
  double lr = 0.1;
  double momentum = 0.0;
  double weight_decay = 0.0;
};

void sgd_update(const SgdParams& p, const View1<real>& params, const View1<real>& velocity,
                const View1<std::int64_t>& grad);

}  // namespace dualnet
