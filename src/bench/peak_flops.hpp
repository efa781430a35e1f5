#pragma once
// The machine's own double-precision peak, measured: a loop of independent fused
// multiply-adds on one core (16 accumulators, so the vector units never wait).
namespace dualnet {

// FLOP/s of one core (a multiply-add counts 2).
double measure_peak_flops_per_core();

}  // namespace dualnet
