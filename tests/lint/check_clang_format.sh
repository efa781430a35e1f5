#!/usr/bin/env bash
# Every C++ source of src/ and tests/ is formatted as .clang-format says (clang-format 14,
# Debian 12's: other versions format some constructs differently, so they skip).
#
#   tests/lint/check_clang_format.sh          # check; prints the files that differ and a diff
#   tests/lint/check_clang_format.sh --fix    # reformat them in place
#
# Exit status: 0 formatted, 1 not (or --fix failed), 77 skipped (no clang-format 14).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
want=14
cf=""
for c in "${CLANG_FORMAT:-}" clang-format-$want clang-format; do
  if [[ -z $c ]] || ! command -v "$c" >/dev/null 2>&1; then continue; fi
  if [[ $("$c" --version) =~ version\ $want\. ]]; then cf=$c; break; fi
done
[[ -n $cf ]] || { echo "SKIPPED: clang-format $want not found (apt-get install clang-format, or set CLANG_FORMAT)"; exit 77; }

files=()
while IFS= read -r -d '' f; do files+=("$f"); done < <(find src tests \( -name '*.cpp' -o -name '*.hpp' \) -print0 | sort -z)
if [[ ${1:-} == --fix ]]; then
  "$cf" -i --style=file "${files[@]}"
  echo "reformatted ${#files[@]} files with $("$cf" --version)"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  if ! "$cf" --style=file "$f" | cmp -s "$f" -; then bad+=("$f"); fi
done
if ((${#bad[@]})); then
  echo "${#bad[@]} of ${#files[@]} files are not formatted ($("$cf" --version)); the first diffs:"
  for f in "${bad[@]:0:3}"; do "$cf" --style=file "$f" | diff -u "$f" - | head -n 20 || true; done
  printf '  %s\n' "${bad[@]}"
  echo "fix: tests/lint/check_clang_format.sh --fix"
  exit 1
fi
echo "clang-format: ${#files[@]} files formatted"
