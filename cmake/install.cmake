# Install rules: headers, the INTERFACE targets, an export set, package config and version file,
# so that an outside project can `find_package(lifeline REQUIRED)` and link lifeline::capi; and
# pkg-config files (lifeline, lifeline-capi, lifeline-jdbc) for builds without CMake.
# What is installed depends only on the LIFELINE_HAVE_<X> values that the top-level
# CMakeLists.txt resolved from the LIFELINE_WITH_<X> settings.
include(CMakePackageConfigHelpers)

set(LIFELINE_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/lifeline")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

set(lifeline_export_targets lifeline)
foreach(c CAPI JDBC SPDLOG TESTING ASIO)
  if(LIFELINE_HAVE_${c})
    string(TOLOWER "${c}" lower)
    list(APPEND lifeline_export_targets lifeline_${lower})
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

# --- pkg-config --------------------------------------------------------------------------------
# The files locate the prefix from their own directory (${pcfiledir}), so an installed tree can
# be moved, and `cmake --install --prefix <dir>` works without reconfiguring.
set(LIFELINE_PKGCONFIG_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${LIFELINE_PKGCONFIG_DIR}")
  set(lifeline_pc_prefix "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH lifeline_pc_up "/${LIFELINE_PKGCONFIG_DIR}" "/")
  string(REGEX REPLACE "/$" "" lifeline_pc_up "${lifeline_pc_up}")
  set(lifeline_pc_prefix "\${pcfiledir}/${lifeline_pc_up}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(lifeline_pc_includedir "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(lifeline_pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# "-L<dir> -l<name>" for a library file found by find_library(), or its path if it has no lib prefix.
function(lifeline_pc_libs out library)
  get_filename_component(dir "${library}" DIRECTORY)
  get_filename_component(file "${library}" NAME)
  if(file MATCHES "^lib(.+)\\.(so|a|dylib)(\\..*)?$")
    set(${out} "-L${dir} -l${CMAKE_MATCH_1}" PARENT_SCOPE)
  else()
    set(${out} "${library}" PARENT_SCOPE)
  endif()
endfunction()

set(lifeline_pc_files lifeline)
if(LIFELINE_HAVE_CAPI)
  # The C API's own .pc file brings its flags; the define is the one MySQL::CAPI carries
  # (FindMySQLCAPI.cmake): it selects the MariaDB-only code paths (non-blocking connect).
  if(MySQLCAPI_FLAVOR STREQUAL "mariadb")
    set(lifeline_pc_capi_requires libmariadb)
    set(lifeline_pc_capi_cflags "-DLIFELINE_CAPI_MARIADB=1")
  else()
    set(lifeline_pc_capi_requires mysqlclient)
    set(lifeline_pc_capi_cflags "")
  endif()
  list(APPEND lifeline_pc_files lifeline-capi)
endif()
if(LIFELINE_HAVE_JDBC)
  # Connector/C++ 1.1 ships no .pc file: its include dir, the Boost headers it needs, its library.
  set(lifeline_pc_jdbc_cflags "")
  foreach(dir IN LISTS MySQLConnectorCpp_INCLUDE_DIR Boost_INCLUDE_DIRS)
    if(dir AND NOT dir STREQUAL "/usr/include")
      string(APPEND lifeline_pc_jdbc_cflags " -I${dir}")
    endif()
  endforeach()
  string(STRIP "${lifeline_pc_jdbc_cflags}" lifeline_pc_jdbc_cflags)
  lifeline_pc_libs(lifeline_pc_jdbc_libs "${MySQLConnectorCpp_LIBRARY}")
  list(APPEND lifeline_pc_files lifeline-jdbc)
endif()
foreach(pc IN LISTS lifeline_pc_files)
  configure_file("${PROJECT_SOURCE_DIR}/cmake/pkgconfig/${pc}.pc.in" "${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc" DESTINATION "${LIFELINE_PKGCONFIG_DIR}")
endforeach()
