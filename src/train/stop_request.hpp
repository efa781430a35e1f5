#pragma once
// Graceful stops: SIGTERM, SIGUSR1 (Slurm's warning before the time limit) and SIGINT only
// set a flag; the training loop polls it at step boundaries, agrees on it across ranks,
// writes a checkpoint and returns normally.
namespace dualnet {

void install_stop_handlers();
// The signal received since install (0: none).
int pending_stop_signal();
const char* signal_name(int sig);

}  // namespace dualnet
