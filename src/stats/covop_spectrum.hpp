#pragma once
// Spectrum of the covariance operator per node, and how well the weights line up with it
// (docs/covop.md). Restricted to node mu the operator is OP_mu = p0 p1 Delta Delta^T, with
// Delta the difference of the class means of conn = input (x) J in the paper's reshape:
// rows (input i, mu's neuron b), columns output dim a. Its nonzero eigenvalues are those of
// the hid x hid Gram matrix G = p0 p1 Delta^T Delta (EvalResult::gram_paper); if G v = lambda v
// then u = Delta v / |Delta v| is the eigenvector of OP_mu, in the (i, b) space of vec(W_mu).
// Nothing here forms an (in*hid) x (in*hid) matrix.
#include <cstdint>

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

// Eigenvalues within this relative distance of the largest count as tied with it.
constexpr double kCovopTopTie = 1e-8;

// Alignment of each node's weights with the top eigenspace of its operator: the length of the
// projection of vec(W_mu) onto the span of u_j = Delta_mu v_j over the eigenvectors v_j =
// vectors[mu][:, j] whose eigenvalue ties with the largest (relative kCovopTopTie), over
// |vec(W_mu)|; vec(W_mu)[(i, b)] = W_mu(b, i). For a simple top eigenvalue this is
// |<vec W_mu, u>| / |vec W_mu| with u the top unit eigenvector. (At the root J = I, so
// OP_root = p0 p1 (dx dx^T) (x) I has hid equal eigenvalues and the span is what is defined.)
// Nodes [first_node, first_node + values.extent(0)); `delta` holds Delta from entry
// conn_offset(first_node) of the flat conn layout of TreeShape (node, i, a, b) on. NaN where
// the top eigenvalue is not positive or W_mu = 0.
void covop_alignment(const TreeShape& tree, int first_node, const View1<real>& delta, const View2<real>& values,
                     const View3<real>& vectors, const View1<real>& params, const View1<real>& alignment);

// Both for the nodes [first, first + count): gram [latent][hid][hid] = p0 p1 Delta^T Delta
// per node (rows first.. are read); delta holds those nodes' Delta from entry
// conn_offset(first) on (stats/class_mean_difference.hpp); values [latent][hid] and
// alignment [latent] get their rows. An empty `params` leaves alignment untouched. The
// caller chooses the batch (stats/covop_stats.hpp sizes it to a workspace budget).
void covop_spectrum(const TreeShape& tree, int first, int count, const View3<real>& gram, const View1<real>& delta,
                    const View1<real>& params, const View2<real>& values, const View1<real>& alignment);

}  // namespace dualnet
