# Installs a chatshard build into a scratch prefix and builds and runs
# tests/install/consumer against it. Run with cmake -P and:
#   BUILD_DIR     the chatshard build tree to install
#   CONSUMER_DIR  tests/install/consumer
#   WORK_DIR      scratch directory (emptied first)
#   CXX_COMPILER  the compiler the build used
#   BUILD_TYPE    its CMAKE_BUILD_TYPE
#   SANITIZE      its CHATSHARD_SANITIZE ('' for none)
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

run(install "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
foreach(installed include/chatshard/engine.h include/chatshard/options.h bin/chatshard)
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
run(configure "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${WORK_DIR}/build"
    "-DCMAKE_PREFIX_PATH=${prefix}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
    "-DCMAKE_CXX_FLAGS=${flags}"
    "-DCMAKE_EXE_LINKER_FLAGS=${flags}")
run(build "${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
run(run "${WORK_DIR}/build/chatshard_consumer")
