#!/usr/bin/env bash
# Every tracked C++ file against the repository's .clang-format (clang-format-14 --dry-run --Werror).
# Usage: check_format.sh REPO_ROOT
# Fails naming each file that differs; to fix them all:
#   git ls-files -z '*.cpp' '*.h' | xargs -0 clang-format-14 -i
set -uo pipefail

root="$1"
cd "$root" || exit 1
formatter=clang-format-14
command -v "$formatter" >/dev/null || { echo "check_format: $formatter is not installed (packaging/install_deps.sh)"; exit 1; }
[[ -f .clang-format ]] || { echo "check_format: no .clang-format in $root"; exit 1; }

mapfile -d '' files < <(git ls-files -z '*.cpp' '*.h')
[[ ${#files[@]} -gt 0 ]] || { echo "check_format: no tracked C++ files found in $root (not a git checkout?)"; exit 1; }

differing=()
for file in "${files[@]}"; do
    [[ -f "$file" ]] || continue  # deleted in the working tree, not yet committed
    "$formatter" --style=file --dry-run --Werror "$file" >/dev/null 2>&1 || differing+=("$file")
done

if [[ ${#differing[@]} -ne 0 ]]; then
    echo "check_format: ${#differing[@]} of ${#files[@]} files differ from .clang-format:"
    printf '  %s\n' "${differing[@]}"
    echo "check_format: reformat with: git ls-files -z '*.cpp' '*.h' | xargs -0 $formatter -i"
    echo "check_format: or see one file's changes: $formatter FILE | diff FILE -"
    exit 1
fi
echo "check_format: all ${#files[@]} files match .clang-format"
