# FindMySQLConnectorCpp — MySQL Connector/C++ 1.1, the JDBC-style API (sql::Connection).
#
# Defines the imported target MySQL::ConnectorCpp and MySQLConnectorCpp_FOUND.
# Connector/C++ 1.1 headers include Boost (Debian pins 1.74), so Boost headers are required too.
include(FindPackageHandleStandardArgs)

find_path(MySQLConnectorCpp_INCLUDE_DIR NAMES mysql_driver.h cppconn/driver.h)
find_library(MySQLConnectorCpp_LIBRARY NAMES mysqlcppconn)
find_package(Boost 1.66 QUIET)

find_package_handle_standard_args(MySQLConnectorCpp
  REQUIRED_VARS MySQLConnectorCpp_LIBRARY MySQLConnectorCpp_INCLUDE_DIR Boost_FOUND
  REASON_FAILURE_MESSAGE "install libmysqlcppconn-dev and libboost-dev")

if(MySQLConnectorCpp_FOUND AND NOT TARGET MySQL::ConnectorCpp)
  add_library(MySQL::ConnectorCpp UNKNOWN IMPORTED)
  set_target_properties(MySQL::ConnectorCpp PROPERTIES
    IMPORTED_LOCATION "${MySQLConnectorCpp_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${MySQLConnectorCpp_INCLUDE_DIR};${Boost_INCLUDE_DIRS}")
endif()
mark_as_advanced(MySQLConnectorCpp_INCLUDE_DIR MySQLConnectorCpp_LIBRARY)
