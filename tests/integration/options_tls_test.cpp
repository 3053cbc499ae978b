// TLS with both drivers against a server that requires it (require_secure_transport=ON), with
// certificates this test's prepare step generated with openssl (make_tls_certs.sh) into the
// server's directory: each ssl_mode does what it promises, and a failed verification is a clear
// error that is not retried. Entries (label options): integration.options.tls (the server's
// certificate names 127.0.0.1) and integration.options.tls_wrong_name (it names another host).
#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/driver/capi.hpp>
#include <lifeline/driver/jdbc.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

using namespace lifeline;
using namespace lifeline::test;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

std::string tls(const std::string& file) { return std::string(std::getenv("LIFELINE_TEST_SERVER_DIR")) + "/tls/" + file; }

// An admin session over the Unix socket: require_secure_transport lets it in without TLS.
mysql_handle admin_socket(const endpoint& e) {
    mysql_handle m(mysql_init(nullptr));
    if (!mysql_real_connect(m.get(), "localhost", e.admin_user.c_str(), e.admin_password.c_str(), e.database.c_str(), 0,
                            e.socket.c_str(), 0))
        throw server_error(std::string("admin over the socket: ") + mysql_error(m.get()));
    return m;
}

template <class Driver>
std::unique_ptr<lifeline::connection<Driver>> make_db(connect_options o, default_policy p = {}) {
    p.retry.deadline = 10s;
    auto db = std::make_unique<lifeline::connection<Driver>>(std::move(o), p);
    db->set_retry_budget(std::make_shared<retry_budget>(p.budget));
    db->set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
    db->set_endpoint_monitor(std::make_shared<endpoint_monitor>(p.probe));
    return db;
}

template <class Driver>
std::string cipher_of(lifeline::connection<Driver>& db) {
    auto r = db.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'", idempotent);
    REQUIRE(r.rows.size() == 1);
    return r.rows[0][1].value_or("");
}

// A connect that must fail: the error, how long it took, and how many connects were made.
struct refused {
    std::error_code ec;
    diagnostics diag;
    clk::duration took;
    std::uint64_t reconnects = 0;
};
template <class Driver>
refused refuse(const connect_options& o) {
    auto db = make_db<Driver>(o);
    refused r;
    const auto t0 = clk::now();
    db->connect({}, r.ec, r.diag);
    r.took = clk::now() - t0;
    r.reconnects = db->stats().reconnects;
    return r;
}

template <class Driver>
void verified_session(const endpoint& e) {
    connect_options o = options_for(e);
    o.ssl = ssl_mode::verify_identity;  // the certificate names 127.0.0.1 (SAN IP)
    o.ssl_ca = tls("ca.pem");
    auto db = make_db<Driver>(o);
    CHECK_FALSE(cipher_of(*db).empty());
    // Several operations on one session: TLS records left unread never look like a dead socket.
    for (int i = 0; i < 20; ++i) CHECK(db->query("SELECT 1", idempotent).scalar() == std::optional<std::string>("1"));
    CHECK(db->stats().reconnects == 1);
}

template <class Driver>
void wrong_ca_is_final(const endpoint& e) {
    connect_options o = options_for(e);
    o.ssl = ssl_mode::verify_ca;
    o.ssl_ca = tls("other-ca.pem");
    const refused r = refuse<Driver>(o);
    INFO(r.diag.server_message << " | " << r.diag.client_message);
    CHECK(r.ec == make_driver_error_code(2026));  // CR_SSL_CONNECTION_ERROR, in client_category
    CHECK(r.ec.category() == client_category());
    CHECK(r.diag.server_message.find("certificate") != std::string::npos);  // the driver's own words
    CHECK(r.reconnects == 1);   // one connect: a verification that failed is not retried
    CHECK(r.took < 5s);         // not the 10 s deadline
}

}  // namespace

TEST_CASE("TLS: verify_identity, verify_ca, required and preferred connect with TLS (C API)", "[options][tls][capi]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    verified_session<capi>(e);
    for (ssl_mode m : {ssl_mode::preferred, ssl_mode::required, ssl_mode::verify_ca}) {
        INFO(to_string(m));
        connect_options o = options_for(e);
        o.ssl = m;
        if (m == ssl_mode::verify_ca) o.ssl_ca = tls("ca.pem");
        auto db = make_db<capi>(o);
        CHECK_FALSE(cipher_of(*db).empty());
    }
    // The server refuses plaintext (require_secure_transport): MariaDB answers 1045, never retried.
    connect_options plain = options_for(e);
    plain.ssl = ssl_mode::disabled;
    const refused r = refuse<capi>(plain);
    CHECK(r.ec == make_driver_error_code(1045));
    CHECK(r.reconnects == 1);
}

TEST_CASE("TLS: a certificate from another CA fails verification once, clearly (C API)", "[options][tls][capi]") {
    wrong_ca_is_final<capi>(server::attach().where());
}

TEST_CASE("TLS: the same with Connector/C++", "[options][tls][jdbc]") {
    const auto srv = server::attach();
    verified_session<jdbc>(srv.where());
    wrong_ca_is_final<jdbc>(srv.where());
    connect_options o = options_for(srv.where());
    o.ssl = ssl_mode::required;
    auto db = make_db<jdbc>(o);
    CHECK_FALSE(cipher_of(*db).empty());
}

TEST_CASE("TLS: versions and ciphers are the driver's to negotiate as asked", "[options][tls][capi]") {
    const auto srv = server::attach();
    connect_options o = options_for(srv.where());
    o.ssl = ssl_mode::verify_ca;
    o.ssl_ca = tls("ca.pem");
    o.tls_version = "TLSv1.2";
    o.ssl_cipher = "ECDHE-ECDSA-AES128-GCM-SHA256";
    auto db = make_db<capi>(o);
    auto r = db->query("SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME "
                       "IN ('SSL_VERSION', 'SSL_CIPHER') ORDER BY 1",
                       idempotent);
    REQUIRE(r.rows.size() == 2);
    CHECK(r.rows[0][1] == std::optional<std::string>("ECDHE-ECDSA-AES128-GCM-SHA256"));
    CHECK(r.rows[1][1] == std::optional<std::string>("TLSv1.2"));
    // Same through Connector/C++.
    auto j = make_db<jdbc>(o);
    auto rj = j->query("SHOW SESSION STATUS LIKE 'Ssl_version'", idempotent);
    REQUIRE(rj.rows.size() == 1);
    CHECK(rj.rows[0][1] == std::optional<std::string>("TLSv1.2"));
}

TEST_CASE("TLS: a client certificate logs into a REQUIRE X509 account; without one it is refused", "[options][tls][capi]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    {
        auto a = admin_socket(e);
        capi_exec(a.get(), "CREATE USER 'x509_user'@'%' IDENTIFIED BY 'x509-pw' REQUIRE X509");
        capi_exec(a.get(), "GRANT SELECT ON " + e.database + ".* TO 'x509_user'@'%'");
    }
    connect_options o = options_for(e);
    o.user = "x509_user";
    o.password = "x509-pw";
    o.ssl = ssl_mode::verify_identity;
    o.ssl_ca = tls("ca.pem");
    const refused without = refuse<capi>(o);
    CHECK(without.ec == make_driver_error_code(1045));
    o.ssl_cert = tls("client-cert.pem");
    o.ssl_key = tls("client-key.pem");
    auto db = make_db<capi>(o);
    CHECK(db->query("SELECT CURRENT_USER()", idempotent).scalar() == std::optional<std::string>("x509_user@%"));
    auto j = make_db<jdbc>(o);
    CHECK(j->query("SELECT CURRENT_USER()", idempotent).scalar() == std::optional<std::string>("x509_user@%"));
}

TEST_CASE("TLS: parse_dsn's ssl options reach the driver", "[options][tls][capi]") {
    const auto srv = server::attach();
    const auto& e = srv.where();
    const std::string dsn = "mysql://" + e.app_user + ":" + e.app_password + "@127.0.0.1:" + std::to_string(e.port) + "/" +
                            e.database + "?ssl-mode=verify_identity&ssl-ca=" + tls("ca.pem");
    auto db = make_db<capi>(parse_dsn(dsn));
    CHECK_FALSE(cipher_of(*db).empty());
    const std::string wrong = "mysql://" + e.app_user + ":" + e.app_password + "@127.0.0.1:" + std::to_string(e.port) +
                              "/" + e.database + "?ssl_mode=verify_ca&ssl_ca=" + tls("other-ca.pem");
    CHECK(refuse<capi>(parse_dsn(wrong)).ec == make_driver_error_code(2026));
}

// integration.options.tls_wrong_name: the server's certificate names db.example.invalid.
TEST_CASE("TLS: verify_ca accepts a certificate for another name, verify_identity refuses it", "[options][tls_name]") {
    const auto srv = server::attach();
    for (int driver = 0; driver < 2; ++driver) {
        INFO((driver ? "jdbc" : "capi"));
        connect_options o = options_for(srv.where());
        o.ssl = ssl_mode::verify_ca;
        o.ssl_ca = tls("ca.pem");
        if (driver) CHECK_FALSE(cipher_of(*make_db<jdbc>(o)).empty());
        else CHECK_FALSE(cipher_of(*make_db<capi>(o)).empty());
        o.ssl = ssl_mode::verify_identity;
        const refused r = driver ? refuse<jdbc>(o) : refuse<capi>(o);
        INFO(r.diag.server_message);
        CHECK(r.ec == make_driver_error_code(2026));
        CHECK(r.reconnects == 1);
    }
}
