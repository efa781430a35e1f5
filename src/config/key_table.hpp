#pragma once
// Reading, checking and printing the values of a key table (config/key_spec.hpp): the one
// rule for a value, whether it comes from a TOML file or from key=value on a command line,
// and whether the key is a config key or a command's own. Values are TOML (depth=5,
// lr=1e-2, bias=false, out="a b"); bare words are strings (loss=simp); a list is a TOML
// array or comma-separated items (taus=0.01,1), each item checked like a scalar. Numbers are
// read strictly: "10x" or "1e3" for an integer is refused, never read as a prefix.
// Problems are UsageError naming the key and what it allows. Included by config.cpp and
// the command line (commands/arguments.hpp) only: it brings in toml11.
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>
#include <toml.hpp>
#include <vector>

#include "config/key_spec.hpp"
#include "util/error.hpp"
#include "util/text.hpp"

namespace dualnet {

constexpr double kNoMax = std::numeric_limits<double>::infinity();
constexpr double kIntMax = 9.0e18;
// Free-form strings (paths) longer than this cannot name a file (PATH_MAX).
constexpr std::size_t kMaxStringBytes = 4096;
// toml11 parses arrays and inline tables recursively: a deep nesting overflows the stack.
constexpr int kMaxNesting = 32;

// A TOML basic string that reads back as exactly `s`.
std::string toml_quote(const std::string& s);
// The shortest text that reads back as exactly x, kept a TOML float.
std::string double_text(double x);
// The text of a scalar value as it stood in the TOML source ("" if unknown).
std::string token_of(const toml::value& v);
// What toml11 hides about a number token (clamped or wrapped); "" when representable.
std::string number_problem(const toml::value& v);
// "an array", "a table", "a date/time", or "" for a scalar.
std::string type_name(const toml::value& v);
// Deepest nesting of arrays and inline tables, read without parsing.
int nesting_depth(const std::string& text);
// The value of key=RAW on a command line: RAW as TOML, or the bare string when it is not.
toml::value command_line_value(const std::string& raw);
// The items of a list value: a TOML array's elements, the comma-separated items of a
// string (brackets and quotes dropped), or the value itself.
std::vector<toml::value> list_items(const toml::value& v);

template <class S>
bool is_free_string(const KeySpecOf<S>& k) {
  return std::holds_alternative<std::string S::*>(k.field) && k.choices.empty();
}

template <class S>
std::string allowed_text(const KeySpecOf<S>& k) {
  const auto range = [&](const char* what, bool integer) {
    std::ostringstream s;
    s << what << " in [";
    if (integer)
      s << static_cast<long long>(k.min);
    else
      s << k.min;
    s << ", ";
    if (std::isinf(k.max) || (integer && k.max >= kIntMax))
      s << "inf";
    else if (integer)
      s << static_cast<long long>(k.max);
    else
      s << k.max;
    s << "]";
    return s.str();
  };
  const auto names = [&] {
    std::string s;
    for (size_t i = 0; i < k.choices.size(); ++i) s += (i ? "|" : "") + k.choices[i];
    return s;
  };
  const auto& f = k.field;
  if (std::holds_alternative<std::int64_t S::*>(f)) return range("an integer", true);
  if (std::holds_alternative<double S::*>(f)) return range("a number", false);
  if (std::holds_alternative<bool S::*>(f)) return "true or false";
  if (std::holds_alternative<std::vector<double> S::*>(f)) return "a list of " + range("numbers", false);
  if (std::holds_alternative<std::vector<std::string> S::*>(f)) return "a list of names among " + names();
  if (!k.choices.empty()) return "one of " + names();
  return std::string(std::string(k.name) == "resume" ? "a string" : "a non-empty string") + " of at most " +
         std::to_string(kMaxStringBytes) + " bytes of UTF-8 without control characters";
}

template <class S>
std::string value_text(const S& obj, const KeySpecOf<S>& k) {
  struct Visitor {
    const S& c;
    std::string operator()(std::int64_t S::*f) const { return std::to_string(c.*f); }
    std::string operator()(double S::*f) const { return double_text(c.*f); }
    std::string operator()(bool S::*f) const { return c.*f ? "true" : "false"; }
    std::string operator()(std::string S::*f) const { return toml_quote(c.*f); }
    std::string operator()(std::vector<double> S::*f) const {
      std::string s;
      for (double x : c.*f) s += (s.empty() ? "" : ", ") + double_text(x);
      return "[" + s + "]";
    }
    std::string operator()(std::vector<std::string> S::*f) const {
      std::string s;
      for (const auto& x : c.*f) s += (s.empty() ? "" : ", ") + toml_quote(x);
      return "[" + s + "]";
    }
  };
  return std::visit(Visitor{obj}, k.field);
}

// Sets one key from a parsed TOML value; `raw` is the user's text for messages ("" when the
// value comes from a file: the value's own token is shown).
template <class S>
void set_key(S& obj, const KeySpecOf<S>& k, const toml::value& v, const std::string& raw, const std::string& origin) {
  const auto bad = [&](const std::string& why = "") {
    std::string got;
    const std::string type = type_name(v);
    if (!raw.empty() || v.is_string())
      got = "'" + echo(raw.empty() ? v.as_string().str : raw) + "'";
    else if (type.empty())
      got = "'" + echo(token_of(v)) + "'";
    if (!type.empty()) got += got.empty() ? type : " (" + type + ")";
    if (got.empty()) got = "''";
    return UsageError(origin + ": key '" + std::string(k.name) + "' must be " + allowed_text(k) + ", got " + got +
                      (why.empty() ? "" : " (" + why + ")"));
  };
  const auto integer = [&](const toml::value& x) {
    if (!x.is_integer()) throw bad();
    const std::string problem = number_problem(x);
    if (!problem.empty()) throw bad(problem);
    const auto n = x.as_integer();
    if (static_cast<double>(n) < k.min || static_cast<double>(n) > k.max) throw bad();
    return static_cast<std::int64_t>(n);
  };
  const auto number = [&](const toml::value& x) {
    double d;
    if (x.is_floating())
      d = x.as_floating();
    else if (x.is_integer())
      d = static_cast<double>(x.as_integer());
    else
      throw bad();
    const std::string problem = number_problem(x);
    if (!problem.empty()) throw bad(problem);
    if (!std::isfinite(d) || d < k.min || d > k.max) throw bad();
    return d == 0.0 ? 0.0 : d;  // -0.0 -> +0.0: equal values must store equal texts
  };
  const auto text = [&](const toml::value& x) {
    std::string s;
    if (x.is_string())
      s = x.as_string().str;
    else if (x.is_boolean())
      s = x.as_boolean() ? "true" : "false";
    else
      throw bad();
    if (!k.choices.empty()) {
      bool ok = false;
      for (const auto& c : k.choices) ok = ok || (c == s);
      if (!ok) throw bad();
    } else {
      const std::string problem = string_value_problem(s);
      if (!problem.empty()) throw bad(problem);
      if (s.size() > kMaxStringBytes) throw bad(std::to_string(s.size()) + " bytes");
    }
    if (s.empty() && std::string(k.name) != "resume") throw bad();  // resume="" means: a new run
    return s;
  };
  if (auto f = std::get_if<std::int64_t S::*>(&k.field)) {
    obj.** f = integer(v);
  } else if (auto f = std::get_if<double S::*>(&k.field)) {
    obj.** f = number(v);
  } else if (auto f = std::get_if<bool S::*>(&k.field)) {
    if (!v.is_boolean()) throw bad();
    obj.** f = v.as_boolean();
  } else if (auto f = std::get_if<std::string S::*>(&k.field)) {
    obj.** f = text(v);
  } else if (auto f = std::get_if<std::vector<double> S::*>(&k.field)) {
    std::vector<double> xs;
    for (const auto& item : list_items(v)) xs.push_back(number(item));
    obj.** f = xs;
  } else if (auto f = std::get_if<std::vector<std::string> S::*>(&k.field)) {
    std::vector<std::string> xs;
    for (const auto& item : list_items(v)) xs.push_back(text(item));
    obj.** f = xs;
  }
}

// The key named `name`, or nullptr.
template <class S>
const KeySpecOf<S>* key_named(const std::vector<KeySpecOf<S>>& keys, const std::string& name) {
  for (const auto& k : keys)
    if (name == k.name) return &k;
  return nullptr;
}

// The lines of a --help text that list `keys`: name, default, what is allowed, meaning.
template <class S>
std::string key_lines(const S& defaults, const std::vector<KeySpecOf<S>>& keys) {
  std::ostringstream s;
  s << std::left << "  " << std::setw(20) << "key" << std::setw(14) << "default"
    << "allowed / meaning\n";
  for (const auto& k : keys) {
    s << "  " << std::setw(20) << k.name << std::setw(14) << value_text(defaults, k) << " " << allowed_text(k) << "\n"
      << std::setw(37) << "" << k.help << "\n";
  }
  return s.str();
}

}  // namespace dualnet
