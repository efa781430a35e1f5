#pragma once
// The command line of every command, read one way: `dualnet <command> [PATH] [key=value ...]`.
// Help is `--help`, `-h` or `help` anywhere; a command that takes a path takes the first
// argument without '='; every other argument is key=value. A command's own keys (covop's
// batch, bench's steps) are a key table over its settings struct (config/key_spec.hpp),
// read, checked and documented like the config keys (config/key_table.hpp); the other
// key=value arguments are config keys, applied by parse_config after any config file.
#include <string>
#include <vector>

#include "config/key_table.hpp"

namespace dualnet {

bool is_help(const std::string& arg);
bool asks_help(const std::vector<std::string>& args);

struct Arguments {
  bool has_path = false;  // an empty first argument is a path too, and refused by the command
  std::string path;
  std::vector<std::string> config_overrides;  // key=value for parse_config
};

// Splits the arguments; UsageError for an argument that is not key=value.
Arguments split_arguments(const std::vector<std::string>& args, bool takes_path);

// split_arguments, then the keys of `keys` set in `own` (taken out of config_overrides).
template <class S>
Arguments read_arguments(const std::vector<std::string>& args, bool takes_path, const std::vector<KeySpecOf<S>>& keys,
                         S& own) {
  Arguments a = split_arguments(args, takes_path);
  std::vector<std::string> rest;
  for (const auto& kv : a.config_overrides) {
    const auto eq = kv.find('=');
    const KeySpecOf<S>* k = key_named(keys, kv.substr(0, eq));
    if (k == nullptr) {
      rest.push_back(kv);
      continue;
    }
    const std::string raw = kv.substr(eq + 1);
    set_key(own, *k, command_line_value(raw), raw, "command line");
  }
  a.config_overrides = rest;
  return a;
}

// `dualnet <command> --help`: `head` (usage and purpose), the key table, then `tail`.
template <class S>
std::string command_help(const std::string& head, const std::vector<KeySpecOf<S>>& keys, const std::string& tail) {
  return head + "\nkeys of the command:\n" + key_lines(S(), keys) + "\n" + tail;
}

}  // namespace dualnet
