#pragma once
// Text checks shared by everything that takes strings from users: whether a string can be
// stored in TOML and printed on one line, and how to echo user input in a one-line message.
#include <cstddef>
#include <string>
#include <string_view>

namespace dualnet {

// Byte offset of the first byte that is not part of well-formed UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF are ill-formed), or npos.
std::size_t invalid_utf8_at(std::string_view s);

// Why `s` cannot be a free-form string value (a path, a run id): "" when it can. Refused:
// invalid UTF-8 and control characters (0x00-0x1F, 0x7F: a newline would end the stored
// TOML line; the others cannot be written in a TOML basic string or shown on a terminal).
std::string string_value_problem(std::string_view s);

// `s` for an error message: always one line, control characters and invalid bytes shown
// as escapes (\n, \t, \xHH), cut after `max_chars` characters with "...".
std::string echo(std::string_view s, std::size_t max_chars = 60);

}  // namespace dualnet
