# The platform layer: per-OS implementations of the interfaces in
# src/platform/*.hpp, compiled into the libraries that use them. One folder
# per OS; nothing outside src/platform and the transports picks an OS.
if(WIN32)
  set(DAEMONEYE_PLATFORM windows)
else()
  set(DAEMONEYE_PLATFORM linux)  # also the POSIX home of macOS/FreeBSD code paths
endif()
set(_dir ${CMAKE_CURRENT_LIST_DIR}/${DAEMONEYE_PLATFORM})

# Used by the client library (and so by every program).
set(DAEMONEYE_PLATFORM_BUS_SOURCES
  ${_dir}/process_identity_${DAEMONEYE_PLATFORM}.cpp
  ${_dir}/user_${DAEMONEYE_PLATFORM}.cpp
  ${_dir}/stop_signals_${DAEMONEYE_PLATFORM}.cpp
  ${_dir}/secrets_${DAEMONEYE_PLATFORM}.cpp
  ${CMAKE_CURRENT_LIST_DIR}/secrets.cpp)
if(WIN32)
  list(APPEND DAEMONEYE_PLATFORM_BUS_SOURCES ${_dir}/win_util.cpp)
  set(DAEMONEYE_PLATFORM_BUS_LIBS bcrypt)  # BCryptGenRandom
else()
  set(DAEMONEYE_PLATFORM_BUS_LIBS)
endif()
set(DAEMONEYE_PLATFORM_RESOURCE_SOURCES ${_dir}/resources_${DAEMONEYE_PLATFORM}.cpp)
set(DAEMONEYE_PLATFORM_SPAWN_SOURCES ${_dir}/spawn_${DAEMONEYE_PLATFORM}.cpp ${_dir}/child_exits_${DAEMONEYE_PLATFORM}.cpp)
# Files, directories and state locations: the event store (and, through it,
# the benchmarks). files.cpp holds the OS-independent rules.
set(DAEMONEYE_PLATFORM_FILES_SOURCES ${CMAKE_CURRENT_LIST_DIR}/files.cpp ${_dir}/files_${DAEMONEYE_PLATFORM}.cpp)
# Other processes' CPU and memory use, and precise sleeps: the benchmarks.
set(DAEMONEYE_PLATFORM_PROCESS_STATS_SOURCES ${_dir}/process_stats_${DAEMONEYE_PLATFORM}.cpp)
# System libraries those need beyond the C++ runtime.
if(WIN32)
  set(DAEMONEYE_PLATFORM_FILES_LIBS shell32 ole32 uuid)  # SHGetKnownFolderPath, CoTaskMemFree, FOLDERID_*
  set(DAEMONEYE_PLATFORM_PROCESS_STATS_LIBS winmm)       # timeBeginPeriod
else()
  set(DAEMONEYE_PLATFORM_FILES_LIBS)
  set(DAEMONEYE_PLATFORM_PROCESS_STATS_LIBS)
endif()
unset(_dir)
