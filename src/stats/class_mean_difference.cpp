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
  const EvalLayout l = layout;
  const double n0 = classes.n0, n1 = classes.n1;
  Kokkos::parallel_for(
      "stats::covop_delta", range(delta.extent(0)), KOKKOS_LAMBDA(const std::int64_t e) {
        const std::int64_t at = l.conn_at(first + e);
        delta(e) = from_fixed(total(l.conn0 + at), kStatFixed) / n0 - from_fixed(total(l.conn1 + at), kStatFixed) / n1;
      });
}

}  // namespace dualnet
