#include "stats/class_mean_difference.hpp"

#include <utility>

#include "util/fixed_point.hpp"

namespace dualnet {

RootClasses root_classes(const View1<std::int64_t>& total) {
  const auto counts =
      Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), Kokkos::subview(total, std::make_pair(0, 2)));
  RootClasses c;
  c.n0 = from_fixed(counts(0), kStatFixed);
  c.n1 = from_fixed(counts(1), kStatFixed);
  return c;
}

void class_mean_difference(const EvalLayout& layout, const View1<std::int64_t>& total, const RootClasses& classes,
                           std::int64_t first, const View1<real>& delta) {
  const std::int64_t o_c0 = layout.conn0 + first, o_c1 = layout.conn1 + first;
  const double n0 = classes.n0, n1 = classes.n1;
  Kokkos::parallel_for(
      "stats::covop_delta", range(delta.extent(0)), KOKKOS_LAMBDA(const std::int64_t e) {
        delta(e) = from_fixed(total(o_c0 + e), kStatFixed) / n0 - from_fixed(total(o_c1 + e), kStatFixed) / n1;
      });
}

}  // namespace dualnet
