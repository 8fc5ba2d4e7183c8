# Cross build for 64-bit Windows 10+ with Debian's mingw-w64 (the POSIX thread
# model, so std::thread and std::mutex work); programs and tests run under Wine.
#
#   scripts/windows-deps.sh build-windows
#   cmake -S . -B build-windows -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64.cmake
#
# Cache variables:
#   DAEMONEYE_WINDOWS_DEPS  prefix holding the cross-built third-party libraries
#                           (default <build dir>/deps/prefix, where
#                           `scripts/windows-deps.sh <build dir>` installs them)
#   DAEMONEYE_WINEPREFIX    Wine prefix for tests and try_run (default
#                           <build dir>/wineprefix), passed to scripts/wine-run.sh,
#                           the CMAKE_CROSSCOMPILING_EMULATOR
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(_mingw x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${_mingw}-gcc-posix)
set(CMAKE_CXX_COMPILER ${_mingw}-g++-posix)
set(CMAKE_RC_COMPILER ${_mingw}-windres)

set(DAEMONEYE_WINDOWS_DEPS "${CMAKE_BINARY_DIR}/deps/prefix" CACHE PATH
  "Prefix of the cross-built third-party libraries (scripts/windows-deps.sh)")
set(DAEMONEYE_WINEPREFIX "${CMAKE_BINARY_DIR}/wineprefix" CACHE PATH
  "Wine prefix in which tests run")
# try_compile/try_run projects see the same values (and not their own build dir).
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES DAEMONEYE_WINDOWS_DEPS DAEMONEYE_WINEPREFIX)

# Libraries, headers and packages only from the prefix and the mingw sysroot,
# never the host's; programs (protoc, tclsh, ...) from the host.
set(CMAKE_FIND_ROOT_PATH "${DAEMONEYE_WINDOWS_DEPS}" /usr/${_mingw})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_LIBDIR} "${DAEMONEYE_WINDOWS_DEPS}/lib/pkgconfig")

# Windows 10 API level; lean <windows.h> without the min/max macros.
# ASIO_STANDALONE is not set here: cmake/FindAsio.cmake puts it on Asio::asio.
set(_defs "-D_WIN32_WINNT=0x0A00 -DWIN32_LEAN_AND_MEAN -DNOMINMAX")
set(CMAKE_C_FLAGS_INIT "${_defs}")
set(CMAKE_CXX_FLAGS_INIT "${_defs}")
# Self-contained executables: without -static they need libstdc++-6.dll,
# libgcc_s_seh-1.dll and libwinpthread-1.dll, and under Wine they then fail
# silently (exit code 53) instead of running.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -static-libgcc -static-libstdc++")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc -static-libstdc++")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-static-libgcc -static-libstdc++")
# Winsock for Asio, at the end of every link line. These replace CMake's
# Windows-GNU default list (its *_INIT is set after this file is read), so
# that list is repeated.
set(_libs "-lws2_32 -lmswsock -lkernel32 -luser32 -lgdi32 -lwinspool -lshell32 -lole32 -loleaut32 -luuid -lcomdlg32 -ladvapi32")
set(CMAKE_C_STANDARD_LIBRARIES "${_libs}" CACHE STRING "Libraries linked into every C target")
set(CMAKE_CXX_STANDARD_LIBRARIES "${_libs}" CACHE STRING "Libraries linked into every C++ target")

# Code generation runs on the host: Debian's protoc is the same 3.21.12 as the
# cross-built libprotobuf.
set(Protobuf_PROTOC_EXECUTABLE /usr/bin/protoc CACHE FILEPATH "Host protoc")

get_filename_component(_wine_run "${CMAKE_CURRENT_LIST_DIR}/../../scripts/wine-run.sh" ABSOLUTE)
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/env "DAEMONEYE_WINEPREFIX=${DAEMONEYE_WINEPREFIX}" "${_wine_run}")
