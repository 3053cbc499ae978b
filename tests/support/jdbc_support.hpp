// Test helpers for MySQL Connector/C++ 1.1 (JDBC API) against the harness server.
#ifndef LIFELINE_TESTS_SUPPORT_JDBC_SUPPORT_HPP
#define LIFELINE_TESTS_SUPPORT_JDBC_SUPPORT_HPP

#include "test_server.hpp"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <mysql_driver.h>

#include <map>
#include <memory>
#include <string>

namespace lifeline::test {

struct jdbc_options {
    bool admin = false;
    int connect_timeout = 5;  // seconds
    int read_timeout = 0;     // seconds; 0 = none
};

inline std::unique_ptr<sql::Connection> jdbc_connect(const endpoint& e, const jdbc_options& o = {}) {
    sql::ConnectOptionsMap props;
    props["hostName"] = sql::SQLString("tcp://" + e.host + ":" + std::to_string(e.port));
    props["userName"] = sql::SQLString(o.admin ? e.admin_user : e.app_user);
    props["password"] = sql::SQLString(o.admin ? e.admin_password : e.app_password);
    props["schema"] = sql::SQLString(e.database);
    props["OPT_CONNECT_TIMEOUT"] = o.connect_timeout;
    if (o.read_timeout) props["OPT_READ_TIMEOUT"] = o.read_timeout;
    try {
        return std::unique_ptr<sql::Connection>(sql::mysql::get_driver_instance()->connect(props));
    } catch (const sql::SQLException& ex) {
        throw server_error("Connector/C++ cannot connect to the test server at " + e.host + ":" +
                           std::to_string(e.port) + ": " + ex.what() + " (" + std::to_string(ex.getErrorCode()) + ")");
    }
}

}  // namespace lifeline::test

#endif
