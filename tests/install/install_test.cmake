# Installs a chatshard build into a scratch prefix and builds and runs
# tests/install/consumer against it. Run with cmake -P and:
#   BUILD_DIR     the chatshard build tree to install
#   CONSUMER_DIR  tests/install/consumer
#   WORK_DIR      scratch directory (emptied first)
#   CXX_COMPILER  the compiler the build used
#   BUILD_TYPE    its CMAKE_BUILD_TYPE
#   SANITIZE      its CHATSHARD_SANITIZE ('' for none)
# The consumer is built twice: engine only, and, when the build has the Redis
# adapter (CHATSHARD_BUILD_REDIS in its cache), with the redis component too.
cmake_minimum_required(VERSION 3.25)

foreach(var BUILD_DIR CONSUMER_DIR WORK_DIR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run step)
  message(STATUS "install test: ${step}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: ${step} failed (${rc})")
  endif()
endfunction()

set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

load_cache("${BUILD_DIR}" READ_WITH_PREFIX build_ CHATSHARD_BUILD_REDIS)

run(install "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
set(expected include/chatshard/engine.h include/chatshard/options.h bin/chatshard)
if(build_CHATSHARD_BUILD_REDIS)
  list(APPEND expected include/chatshard/redis/options.h include/chatshard/redis/consumer.h)
endif()
foreach(installed ${expected})
  if(NOT EXISTS "${prefix}/${installed}")
    message(FATAL_ERROR "install test: ${prefix}/${installed} was not installed")
  endif()
endforeach()
file(GLOB_RECURSE package_config "${prefix}/*/chatshardConfig.cmake")
if(NOT package_config)
  message(FATAL_ERROR "install test: no chatshardConfig.cmake under ${prefix}")
endif()

set(flags "")
if(SANITIZE)
  set(flags "-fsanitize=${SANITIZE} -fno-omit-frame-pointer")
endif()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()
set(variants OFF)
if(build_CHATSHARD_BUILD_REDIS)
  list(APPEND variants ON)
endif()
foreach(redis ${variants})
  set(build "${WORK_DIR}/build-redis-${redis}")
  run("configure (redis ${redis})" "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${build}"
      "-DCMAKE_PREFIX_PATH=${prefix}"
      "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
      "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
      "-DCMAKE_CXX_FLAGS=${flags}"
      "-DCMAKE_EXE_LINKER_FLAGS=${flags}"
      "-DCHATSHARD_CONSUMER_REDIS=${redis}")
  run("build (redis ${redis})" "${CMAKE_COMMAND}" --build "${build}")
  run("run (redis ${redis})" "${build}/chatshard_consumer")
endforeach()
