# Builds and runs tests/consumer/project against lifeline, either installed (MODE=install) or
# through add_subdirectory (MODE=subdirectory). Any failing step fails the test.
#   EXPECT "capi=ON,jdbc=OFF,...": which lifeline::<x> targets the project must (not) see; the
#          subdirectory build gets the same as LIFELINE_WITH_<X>=ON/OFF, so it resolves alike
cmake_policy(VERSION 3.16)  # script mode: if(... IN_LIST ...)

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message("${out}")
endfunction()

string(REPLACE "," ";" expect "${EXPECT}")
set(with_args "")
foreach(e IN LISTS expect)
  if(e MATCHES "^([a-z]+)=(ON|OFF)$")
    string(TOUPPER "${CMAKE_MATCH_1}" component)
    list(APPEND with_args "-DLIFELINE_WITH_${component}=${CMAKE_MATCH_2}")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK}")
if(MODE STREQUAL "install")
  step(${CMAKE_COMMAND} --install "${LIFELINE_BINARY_DIR}" --prefix "${WORK}/prefix")
  # lifeline-doctor is installed with the package (when this tree built it) and runs from there.
  if(EXISTS "${LIFELINE_BINARY_DIR}/tools/doctor/lifeline-doctor")
    step("${WORK}/prefix/bin/lifeline-doctor" --version)
  endif()
  step(${CMAKE_COMMAND} -S "${PROJECT_DIR}" -B "${WORK}/build" -DCMAKE_PREFIX_PATH=${WORK}/prefix
       "-DEXPECT=${EXPECT}")
else()
  step(${CMAKE_COMMAND} -S "${PROJECT_DIR}" -B "${WORK}/build" -DLIFELINE_SOURCE=${LIFELINE_SOURCE_DIR}
       "-DEXPECT=${EXPECT}" ${with_args})
endif()
step(${CMAKE_COMMAND} --build "${WORK}/build")
if("capi=ON" IN_LIST expect)
  step("${WORK}/build/consumer")
endif()
step("${WORK}/build/consumer_core")
