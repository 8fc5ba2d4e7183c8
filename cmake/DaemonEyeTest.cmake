# daemoneye_add_test(NAME SOURCES ... LIBS ... [TIMEOUT s]): a GoogleTest
# executable linked with the test-only library, its tests registered with
# CTest. Unit tests live next to the code they test (src/**/foo_test.cpp),
# so any CMakeLists may call this (inside if(DAEMONEYE_BUILD_TESTS)).
function(daemoneye_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} daemoneye_testing GTest::gtest GTest::gtest_main daemoneye_options)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT ${T_TIMEOUT})
endfunction()
