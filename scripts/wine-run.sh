#!/usr/bin/env bash
# scripts/wine-run.sh PROGRAM.exe [ARGS...]   run a Windows program under Wine
# scripts/wine-run.sh --stop                  stop the prefix's wineserver
#
# The CMAKE_CROSSCOMPILING_EMULATOR of cmake/toolchains/mingw-w64.cmake, so
# ctest and gtest_discover_tests run the cross-built tests through it.
#
# Contract: the program's arguments, stdout, stderr and exit status pass through
# unchanged. Headless (DISPLAY unset) and quiet (WINEDEBUG=-all). The Wine
# prefix is $DAEMONEYE_WINEPREFIX (the toolchain passes <build dir>/wineprefix;
# default: build-windows/wineprefix of this checkout), never ~/.wine. Its first
# use creates it (~10 s, once, under a lock so parallel tests wait for it). A
# persistent wineserver then serves the prefix (a start costs <0.1 s instead of
# 0.6 s or more with a new server) until `--stop`, which `make windows` and
# `make windows-test` call at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export WINEPREFIX=${DAEMONEYE_WINEPREFIX:-$here/../build-windows/wineprefix}
export WINEDEBUG=-all
# No Mono/Gecko: nothing here needs .NET or HTML, and Wine would offer to
# download them.
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY

if [ "${1:-}" = --stop ]; then
  [ -d "$WINEPREFIX" ] || exit 0
  wineserver -k 2>/dev/null || true  # fails when none runs
  wineserver -w  # until it has gone (and saved the registry)
  exit 0
fi
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM.exe [ARGS...] | --stop" >&2; exit 2; }

mkdir -p "$(dirname "$WINEPREFIX")"
(
  flock 9
  if [ ! -e "$WINEPREFIX/system.reg" ]; then
    # Its complaint about the absent 32-bit half (syswow64) is harmless.
    wine wineboot --init >/dev/null 2>&1 9>&-
    wineserver -w 9>&-  # the registry (system.reg) is written when the server exits
  fi
  # Exits with 2 when a server already runs. When this one started it, bring up
  # Wine's own background processes (services.exe, ...) now, with no inherited
  # descriptors: started by a test instead, they would keep its stdout pipe open
  # for as long as the server lives, and ctest or gtest_discover_tests would
  # wait on it until their timeout.
  # (Nothing Wine starts may inherit the lock, 9.)
  if wineserver -p </dev/null >/dev/null 2>&1 9>&-; then
    wine cmd /c exit </dev/null >/dev/null 2>&1 9>&- || true
  fi
) 9>"$WINEPREFIX.lock"
exec wine "$@"
