# Install rules: headers, the INTERFACE targets, an export set, package config and version file,
# so that an outside project can `find_package(lifeline REQUIRED)` and link lifeline::capi.
include(CMakePackageConfigHelpers)

set(LIFELINE_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/lifeline")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

set(lifeline_export_targets lifeline)
foreach(t lifeline_capi lifeline_jdbc lifeline_spdlog lifeline_testing)
  if(TARGET ${t})
    list(APPEND lifeline_export_targets ${t})
  endif()
endforeach()
install(TARGETS ${lifeline_export_targets} EXPORT lifelineTargets)
install(EXPORT lifelineTargets NAMESPACE lifeline:: DESTINATION "${LIFELINE_CMAKE_DIR}")

configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/lifelineConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/lifelineConfig.cmake" INSTALL_DESTINATION "${LIFELINE_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/lifelineConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES
  "${PROJECT_BINARY_DIR}/lifelineConfig.cmake"
  "${PROJECT_BINARY_DIR}/lifelineConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/FindMySQLCAPI.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/FindMySQLConnectorCpp.cmake"
  DESTINATION "${LIFELINE_CMAKE_DIR}")
