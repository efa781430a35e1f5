#pragma once
// Spectrum of the covariance operator per node, and how well the weights line up with it
// (docs/covop.md). Restricted to node mu the operator is OP_mu = p0 p1 Delta Delta^T, with
// Delta the difference of the class means of conn = input (x) J in the paper's reshape:
// rows (input i, mu's neuron b), columns output dim a. Its nonzero eigenvalues are those of
// the hid x hid Gram matrix G = p0 p1 Delta^T Delta (EvalResult::gram_paper); if G v = lambda v
// then u = Delta v / |Delta v| is the eigenvector of OP_mu, in the (i, b) space of vec(W_mu).
// Nothing here forms an (in*hid) x (in*hid) matrix.
#include "hltm/tree.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {

// Largest hid for which evaluations decompose the per-node Gram matrices (cyclic Jacobi,
// O(hid^3) per sweep and node); above it the spectrum and alignment are written as NaN.
constexpr int kCovopSpectrumMaxHid = 128;

// Eigen-decomposition of `count` symmetric n x n matrices a[m] (cyclic Jacobi, one team per
// matrix): values[m][j] descending, vectors[m][:, j] the unit eigenvector of values[m][j],
// signed so that its largest-magnitude entry is positive. A matrix with a non-finite entry
// gives NaN values and vectors. `a` is not modified.
void symmetric_eigen(const View3<real>& a, const View2<real>& values, const View3<real>& vectors);

// Alignment of each node's weights with the top eigenvector of its operator:
//   |<vec(W_mu), u>| / |vec(W_mu)|,  u = Delta_mu v / |Delta_mu v|,  vec(W_mu)[(i, b)] = W_mu(b, i),
// v = vectors[mu][:, 0] (eigenvalue values[mu][0]). `delta` is Delta in the flat conn layout
// of TreeShape (node, i, a, b). NaN where the top eigenvalue is not positive or W_mu = 0.
void covop_alignment(const TreeShape& tree, const View1<real>& delta, const View2<real>& values,
                     const View3<real>& vectors, const View1<real>& params, const View1<real>& alignment);

}  // namespace dualnet
