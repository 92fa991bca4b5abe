# Every dependency comes from a Debian 12 package (see scripts/install-deps).
find_package(Threads REQUIRED)
# Debian ships no protobuf CMake config: use CMake's FindProtobuf module.
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(Boost 1.74 CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(PostgreSQL)
find_package(spdlog CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)  # target: yaml-cpp (0.7 has no namespace)
if(ATBRIDGE_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
  include(GoogleTest)
endif()
if(ATBRIDGE_BUILD_BENCH)
  find_package(benchmark CONFIG)
endif()
message(STATUS "atbridge: protoc ${Protobuf_VERSION}, gRPC ${gRPC_VERSION}, absl ${absl_VERSION}, "
               "OpenSSL ${OPENSSL_VERSION}, Boost ${Boost_VERSION}")

# Asio (header-only, Boost 1.74). Its awaitable.hpp uses std::exchange without
# including <utility>; force the include so C++20 coroutine code compiles
# whatever the include order (clang-format sorts includes).
add_library(atbridge_asio INTERFACE)
target_link_libraries(atbridge_asio INTERFACE Boost::headers Threads::Threads)
target_compile_options(atbridge_asio INTERFACE "SHELL:-include utility")
# Boost 1.74 only enables co_await under clang with <experimental/coroutine>
# (libc++); clang 14 with libstdc++ 12 supports the standard <coroutine>,
# which Asio then uses (BOOST_ASIO_HAS_STD_COROUTINE is set for it).
target_compile_definitions(atbridge_asio INTERFACE
  $<$<CXX_COMPILER_ID:Clang>:BOOST_ASIO_HAS_CO_AWAIT=1>)
