# Standalone Asio is header-only and ships no CMake config on Debian.
# Provides the imported target Asio::asio.
find_path(Asio_INCLUDE_DIR NAMES asio.hpp)
if(Asio_INCLUDE_DIR AND EXISTS "${Asio_INCLUDE_DIR}/asio/version.hpp")
  file(STRINGS "${Asio_INCLUDE_DIR}/asio/version.hpp" _asio_ver REGEX "#define ASIO_VERSION ")
  string(REGEX MATCH "[0-9]+" _asio_num "${_asio_ver}")
  math(EXPR _maj "${_asio_num} / 100000")
  math(EXPR _min "${_asio_num} / 100 % 1000")
  math(EXPR _pat "${_asio_num} % 100")
  set(Asio_VERSION "${_maj}.${_min}.${_pat}")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Asio REQUIRED_VARS Asio_INCLUDE_DIR VERSION_VAR Asio_VERSION)
if(Asio_FOUND AND NOT TARGET Asio::asio)
  find_package(Threads REQUIRED)
  add_library(Asio::asio INTERFACE IMPORTED)
  set_target_properties(Asio::asio PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${Asio_INCLUDE_DIR}")
  # Standalone mode; no deprecated APIs so code stays portable to newer Asio.
  target_compile_definitions(Asio::asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED
    # Asio 1.22 decides between aligned_alloc/free and operator new/delete per
    # translation unit (by whether libstdc++'s config was seen first), which
    # mixes the two across files (AddressSanitizer: alloc-dealloc-mismatch).
    # Pin it to operator new/delete everywhere.
    ASIO_DISABLE_STD_ALIGNED_ALLOC)
  target_link_libraries(Asio::asio INTERFACE Threads::Threads)
  # Asio 1.22 recognises clang's coroutines only with libc++'s
  # <experimental/coroutine>; with libstdc++'s <coroutine> (which it does
  # detect) co_await works too, so say so.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    target_compile_definitions(Asio::asio INTERFACE ASIO_HAS_CO_AWAIT=1)
  endif()
endif()
mark_as_advanced(Asio_INCLUDE_DIR)
