# Helpers that give every atbridge target the same warnings and include root.

set(ATBRIDGE_SOURCE_ROOT ${PROJECT_SOURCE_DIR})

# Warnings for our own code (generated code gets atbridge_generated_options).
function(atbridge_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                         -Wno-unused-parameter -Wno-missing-field-initializers
                         -Wnon-virtual-dtor)
  if(ATBRIDGE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # gcc 12 misreports Asio's coroutine frame allocator (awaitable_frame_base
    # operator new/delete) as a mismatched pair.
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
  endif()
  if(ATBRIDGE_THREAD_SAFETY AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    target_compile_options(${target} PRIVATE -Wthread-safety -Werror=thread-safety)
  endif()
endfunction()

# atbridge_cc_library(NAME name SRCS ... DEPS ...)
function(atbridge_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PUBLIC ${ATBRIDGE_SOURCE_ROOT})
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
  atbridge_target_options(${ARG_NAME})
endfunction()

# atbridge_cc_binary(NAME name SRCS ... DEPS ...): lands in build/bin/.
function(atbridge_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PRIVATE ${ATBRIDGE_SOURCE_ROOT})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  atbridge_target_options(${ARG_NAME})
endfunction()

# atbridge_cc_test(NAME name SRCS ... DEPS ... [LABELS ...] [TIMEOUT s])
# A GoogleTest binary whose cases are discovered by ctest at test time.
function(atbridge_cc_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PRIVATE ${ATBRIDGE_SOURCE_ROOT})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest GTest::gmock_main)
  atbridge_target_options(${ARG_NAME})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_compile_definitions(${ARG_NAME} PRIVATE
    ATBRIDGE_TESTDATA_DIR="${ATBRIDGE_SOURCE_ROOT}/tests/testdata"
    ATBRIDGE_BIN_DIR="${CMAKE_BINARY_DIR}/bin")
  gtest_discover_tests(${ARG_NAME}
    DISCOVERY_MODE PRE_TEST
    NO_PRETTY_VALUES
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}"
               ENVIRONMENT "GRPC_VERBOSITY=NONE")
endfunction()

# atbridge_fuzz_target(NAME name SRCS ... DEPS ... [CORPUS dir]): clang libFuzzer
# target, smoke-run by ctest for a bounded number of inputs.
function(atbridge_fuzz_target)
  cmake_parse_arguments(ARG "" "NAME;CORPUS" "SRCS;DEPS" ${ARGN})
  if(NOT ATBRIDGE_FUZZ)
    return()
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PRIVATE ${ATBRIDGE_SOURCE_ROOT})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  target_compile_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer)
  target_link_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer)
  atbridge_target_options(${ARG_NAME})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  set(args -runs=20000 -seed=1)
  if(ARG_CORPUS)
    list(APPEND args ${ARG_CORPUS})
  endif()
  add_test(NAME ${ARG_NAME}_smoke COMMAND ${ARG_NAME} ${args})
  set_tests_properties(${ARG_NAME}_smoke PROPERTIES LABELS fuzz TIMEOUT 300)
endfunction()
