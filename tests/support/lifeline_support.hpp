// Glue between the harness and lifeline: connect_options for the harness server.
#ifndef LIFELINE_TESTS_SUPPORT_LIFELINE_SUPPORT_HPP
#define LIFELINE_TESTS_SUPPORT_LIFELINE_SUPPORT_HPP

#include "test_server.hpp"

#include <lifeline/options.hpp>

namespace lifeline::test {

inline connect_options options_for(const endpoint& e, bool admin = false) {
    connect_options o;
    o.host = e.host;
    o.port = static_cast<std::uint16_t>(e.port);
    o.user = admin ? e.admin_user : e.app_user;
    o.password = admin ? e.admin_password : e.app_password;
    o.database = e.database;
    return o;
}

}  // namespace lifeline::test

#endif
