#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every source file that marks messages for translation is listed in
# po/POTFILES, or its messages never reach the translators.
#
#   check-potfiles.sh SOURCE_ROOT
set -eu
cd "$1"
missing=$(grep -l -E '(^|[^A-Za-z0-9_])N?_\("' \
            afork/*.c afork/loaders/*/*.c examples/*.c examples/*/*.c |
          while read -r file; do
            grep -qxF "$file" po/POTFILES || echo "$file"
          done)
if [ -n "$missing" ]; then
  echo "marks messages for translation but is not in po/POTFILES:"
  echo "$missing"
  exit 1
fi
echo "every file with translatable messages is in po/POTFILES"
