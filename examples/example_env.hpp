// Where the examples find their server: LIFELINE_TEST_* from lifeline_with_server (scripts/demo.sh).
// In your service you would fill connect_options from your configuration, or parse_dsn().
#ifndef LIFELINE_EXAMPLES_EXAMPLE_ENV_HPP
#define LIFELINE_EXAMPLES_EXAMPLE_ENV_HPP

#include <lifeline/options.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

inline std::string example_env(const char* name) {
    const char* v = std::getenv(name);
    if (!v) {
        std::fprintf(stderr, "%s is not set: run the examples through scripts/demo.sh\n", name);
        std::exit(2);
    }
    return v;
}

inline lifeline::connect_options example_options(bool admin = false) {
    lifeline::connect_options o;
    o.host = example_env("LIFELINE_TEST_HOST");
    o.port = static_cast<std::uint16_t>(std::stoul(example_env("LIFELINE_TEST_PORT")));
    o.user = example_env(admin ? "LIFELINE_TEST_ADMIN_USER" : "LIFELINE_TEST_USER");
    o.password = example_env(admin ? "LIFELINE_TEST_ADMIN_PASSWORD" : "LIFELINE_TEST_PASSWORD");
    o.database = example_env("LIFELINE_TEST_DATABASE");
    return o;
}

#endif
