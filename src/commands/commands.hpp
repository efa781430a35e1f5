#pragma once
// dualnet's commands, one file each in src/commands/: `train` (train.cpp), `covop`
// (covop.cpp), `bench` (bench.cpp), all reading their arguments one way
// (commands/arguments.hpp). run_cli() picks the command, answers --help and --version, and
// turns errors into one line and an exit code.
#include <string>
#include <vector>

#include "comm/world.hpp"

namespace dualnet {

// Runs the command line (argv[0] is the program) and returns the process exit code
// (0 ok, 2 bad input, 1 failure).
int run_cli(int argc, char* argv[], const World& world);

// The commands: each returns the exit code and throws Error (UsageError: bad input).
// `args` are the arguments after the command word, help already answered by run_cli.
int train_command(const std::vector<std::string>& args, const World& world);
int covop_command(const std::vector<std::string>& args, const World& world);
int bench_command(const std::vector<std::string>& args, const World& world);

// Their --help texts.
std::string train_help();
std::string covop_help();
std::string bench_help();

}  // namespace dualnet
