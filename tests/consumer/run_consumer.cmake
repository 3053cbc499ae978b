# Builds and runs tests/consumer/project against lifeline, either installed (MODE=install) or
# through add_subdirectory (MODE=subdirectory). Any failing step fails the test.
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message("${out}")
endfunction()

file(REMOVE_RECURSE "${WORK}")
if(MODE STREQUAL "install")
  step(${CMAKE_COMMAND} --install "${LIFELINE_BINARY_DIR}" --prefix "${WORK}/prefix")
  # lifeline-doctor is installed with the package (when this tree built it) and runs from there.
  if(EXISTS "${LIFELINE_BINARY_DIR}/tools/doctor/lifeline-doctor")
    step("${WORK}/prefix/bin/lifeline-doctor" --version)
  endif()
  step(${CMAKE_COMMAND} -S "${PROJECT_DIR}" -B "${WORK}/build" -DCMAKE_PREFIX_PATH=${WORK}/prefix)
else()
  step(${CMAKE_COMMAND} -S "${PROJECT_DIR}" -B "${WORK}/build" -DLIFELINE_SOURCE=${LIFELINE_SOURCE_DIR})
endif()
step(${CMAKE_COMMAND} --build "${WORK}/build")
step("${WORK}/build/consumer")
step("${WORK}/build/consumer_core")
