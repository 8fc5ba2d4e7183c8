# Warning flags and sanitizer switch shared by every target of the project.
add_library(daemoneye_options INTERFACE)
target_compile_options(daemoneye_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wconversion -Wsign-conversion
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # g++ 12 misreads Asio's coroutine frame allocation (operator new and
  # delete of awaitable_frame_base do match) in some coroutines.
  target_compile_options(daemoneye_options INTERFACE -Wno-mismatched-new-delete)
endif()
if(DAEMONEYE_WERROR)
  target_compile_options(daemoneye_options INTERFACE -Werror)
endif()

if(DAEMONEYE_SANITIZER STREQUAL "address")
  set(_san -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
elseif(DAEMONEYE_SANITIZER STREQUAL "thread")
  set(_san -fsanitize=thread -fno-omit-frame-pointer)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # Asio uses std::atomic_thread_fence, which g++ warns TSan cannot model.
    target_compile_options(daemoneye_options INTERFACE -Wno-tsan)
  endif()
elseif(DAEMONEYE_SANITIZER STREQUAL "undefined")
  set(_san -fsanitize=undefined -fno-sanitize-recover=undefined)
elseif(NOT DAEMONEYE_SANITIZER STREQUAL "none")
  message(FATAL_ERROR "DAEMONEYE_SANITIZER must be none, address, thread or undefined")
endif()
if(_san AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND NOT DAEMONEYE_SANITIZER STREQUAL "thread")
  list(APPEND _san -fno-sanitize=function)  # clang 14 cannot instrument coroutine frames with it
endif()
if(_san)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()
