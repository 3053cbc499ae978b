// 06 — what a real service sets when it connects: TLS that verifies the server, who it is
// (connection attributes), the character set from the handshake on, TCP keepalive under the
// firewall's idle limit, a driver option of its own (the pre-connect hook), the same from a DSN,
// an existing connection handed to lifeline, and a statement that may run for minutes.
//
// It runs against a throwaway server that requires TLS (examples/CMakeLists.txt generates its
// certificates with tests/integration/make_tls_certs.sh); in a service the paths come from your
// configuration.
#include <lifeline/driver/capi.hpp>

#include "example_env.hpp"

#include <cstdio>
#include <string>

int main() {
    const std::string tls_dir = example_env("LIFELINE_TEST_SERVER_DIR") + "/tls/";

    lifeline::connect_options o = example_options();
    o.ssl = lifeline::ssl_mode::verify_identity;  // TLS, a CA-signed certificate that names the host
    o.ssl_ca = tls_dir + "ca.pem";
    o.attributes = {{"program_name", "orders-api"}, {"version", "2.4.1"}};  // seen in session_connect_attrs
    o.charset = "utf8mb4";                      // announced in the handshake: the driver escapes with it
    o.collation = "utf8mb4_unicode_ci";
    o.tcp_keepalive_idle = std::chrono::seconds(30);  // the default: under a 60 s firewall idle limit
    o.pre_connect = [](MYSQL* m) {                    // anything else the driver offers, before every connect
        const unsigned local_infile = 0;
        return mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &local_infile) == 0;
    };
    lifeline::connection<lifeline::capi> db{o};

    auto tls = db.query("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'",
                        lifeline::idempotent);
    std::printf("06 options: TLS cipher %s, collation %s, server %s %u.%u%s\n", tls.scalar().value_or("(none)").c_str(),
                db.query("SELECT @@collation_connection", lifeline::idempotent).scalar().value_or("?").c_str(),
                std::string(lifeline::to_string(db.server().flavor)).c_str(), db.server().major, db.server().minor,
                db.server().galera ? " (Galera)" : "");

    // The same from a DSN ('-' or '_' in option names), e.g. from an environment variable.
    const std::string dsn = "mysql://" + o.user + ":" + o.password + "@" + o.host + ":" + std::to_string(o.port) + "/" +
                            o.database + "?ssl-mode=verify_identity&ssl-ca=" + tls_dir + "ca.pem" +
                            "&connect_attrs=program_name:orders-api&tcp_user_timeout=60s";
    lifeline::connection<lifeline::capi> from_dsn{lifeline::parse_dsn(dsn)};
    std::printf("06 options: from the DSN %s: %s\n", lifeline::format_dsn(from_dsn.options()).c_str(),
                from_dsn.query("SELECT 'connected'", lifeline::idempotent).scalar().value_or("?").c_str());

    // A connection opened elsewhere (legacy code) handed over: lifeline reads its options for
    // reconnects, switches MYSQL_OPT_RECONNECT off and owns it from now on.
    MYSQL* legacy = mysql_init(nullptr);
    mysql_options(legacy, MYSQL_OPT_SSL_CA, o.ssl_ca.c_str());
    const my_bool verify = 1;
    mysql_options(legacy, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    if (!mysql_real_connect(legacy, o.host.c_str(), o.user.c_str(), o.password.c_str(), o.database.c_str(), o.port,
                            nullptr, 0)) {
        std::fprintf(stderr, "06 options: the legacy connect failed: %s\n", mysql_error(legacy));
        mysql_close(legacy);
        return 1;
    }
    lifeline::connection<lifeline::capi> adopted{lifeline::options_of(legacy)};
    adopted.adopt(legacy, lifeline::ownership::take);
    std::printf("06 options: adopted session %llu (ssl_mode %s learnt from the handle)\n",
                static_cast<unsigned long long>(adopted.connection_id()),
                std::string(lifeline::to_string(adopted.options().ssl)).c_str());

    // A statement that may run for minutes: no deadline for this call, each wait bounded anyway.
    lifeline::call_options long_running{lifeline::no_deadline};
    long_running.io_timeout = std::chrono::minutes(30);
    auto r = db.query("SELECT SLEEP(1)", lifeline::idempotent, long_running);
    std::printf("06 options: a long statement ran to its end (%s)\n", r.scalar().value_or("?").c_str());
    return 0;
}
