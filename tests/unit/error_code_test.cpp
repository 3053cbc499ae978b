// std::error_code integration: categories, messages, make_error_code, the error exception.
#include <lifeline/error.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

namespace {

constexpr lifeline::errc all_errcs[] = {
    lifeline::errc::outcome_unknown,        lifeline::errc::commit_unknown,
    lifeline::errc::transaction_lost,       lifeline::errc::deadline_exceeded,
    lifeline::errc::retry_budget_exhausted, lifeline::errc::circuit_open,
    lifeline::errc::pool_exhausted,         lifeline::errc::invalid_option,
    lifeline::errc::invalid_dsn,            lifeline::errc::session_state_lost,
    lifeline::errc::not_connected,          lifeline::errc::verification_failed,
    lifeline::errc::statement_too_large,    lifeline::errc::read_only_server,
    lifeline::errc::internal_error,         lifeline::errc::implicit_commit,
    lifeline::errc::operation_in_progress,  lifeline::errc::server_unavailable,
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("errc converts implicitly to a lifeline error_code", "[unit][classification]") {
    static_assert(std::is_error_code_enum<lifeline::errc>::value);
    const std::error_code ec = lifeline::errc::outcome_unknown;
    CHECK(ec.value() == 1);
    CHECK(ec.category() == lifeline::category());
    CHECK(std::string(ec.category().name()) == "lifeline");
    CHECK(ec == lifeline::errc::outcome_unknown);
    CHECK(ec != lifeline::errc::commit_unknown);
    CHECK(lifeline::make_error_code(lifeline::errc::commit_unknown) == lifeline::errc::commit_unknown);
    CHECK(static_cast<bool>(ec));
    // Same value, other category: not equal.
    CHECK(ec != std::error_code(1, std::generic_category()));
    CHECK(ec != lifeline::make_driver_error_code(1));
}

TEST_CASE("every errc has a distinct message that says what to do", "[unit][classification]") {
    std::set<std::string> seen;
    int expected_value = 1;
    for (lifeline::errc e : all_errcs) {
        const std::error_code ec = e;
        CAPTURE(ec.value());
        CHECK(ec.value() == expected_value++);  // values are stable, starting at 1
        const std::string m = ec.message();
        CHECK(m.size() > 40);
        CHECK(m.find(';') != std::string::npos);  // "what happened; what to do"
        CHECK(m != "unknown lifeline error");
        CHECK(seen.insert(m).second);
    }
    CHECK(contains(std::error_code(lifeline::errc::outcome_unknown).message(), "idempotent"));
    CHECK(contains(std::error_code(lifeline::errc::outcome_unknown).message(), "verification callback"));
    CHECK(contains(std::error_code(lifeline::errc::commit_unknown).message(), "COMMIT"));
    CHECK(contains(std::error_code(lifeline::errc::transaction_lost).message(), "whole transaction"));
    CHECK(std::error_code(0, lifeline::category()).message() == "unknown lifeline error");
    CHECK(std::error_code(999, lifeline::category()).message() == "unknown lifeline error");
}

TEST_CASE("lifeline errors map to portable conditions where one fits", "[unit][classification]") {
    CHECK(std::error_code(lifeline::errc::deadline_exceeded) == std::errc::timed_out);
    CHECK(std::error_code(lifeline::errc::invalid_dsn) == std::errc::invalid_argument);
    CHECK(std::error_code(lifeline::errc::invalid_option) == std::errc::invalid_argument);
    CHECK(std::error_code(lifeline::errc::not_connected) == std::errc::not_connected);
    CHECK(std::error_code(lifeline::errc::outcome_unknown) != std::errc::timed_out);
    // Without a portable equivalent the condition stays in lifeline's category.
    CHECK(std::error_code(lifeline::errc::outcome_unknown).default_error_condition().category() ==
          lifeline::category());
}

TEST_CASE("driver codes: client range in lifeline.client, the rest in lifeline.server", "[unit][classification]") {
    CHECK(std::string(lifeline::server_category().name()) == "lifeline.server");
    CHECK(std::string(lifeline::client_category().name()) == "lifeline.client");

    CHECK_FALSE(lifeline::make_driver_error_code(0));
    CHECK(lifeline::make_driver_error_code(0) == std::error_code{});

    const std::error_code lost = lifeline::make_driver_error_code(2013);
    CHECK(lost.value() == 2013);
    CHECK(lost.category() == lifeline::client_category());
    CHECK(lifeline::make_driver_error_code(2000).category() == lifeline::client_category());
    CHECK(lifeline::make_driver_error_code(2999).category() == lifeline::client_category());
    CHECK(lifeline::make_driver_error_code(5013).category() == lifeline::client_category());  // MariaDB Connector/C
    CHECK(lifeline::make_driver_error_code(1999).category() == lifeline::server_category());
    CHECK(lifeline::make_driver_error_code(3000).category() == lifeline::server_category());
    CHECK(lifeline::make_driver_error_code(4031).category() == lifeline::server_category());
    CHECK(lifeline::make_driver_error_code(1213).category() == lifeline::server_category());

    CHECK(lifeline::make_driver_error_code(1213) == lifeline::make_driver_error_code(1213));
    CHECK(lifeline::make_driver_error_code(1213) != lifeline::make_driver_error_code(1205));
}

TEST_CASE("driver code messages name the symbol and what it means", "[unit][classification]") {
    CHECK(lifeline::make_driver_error_code(1213).message() ==
          "ER_LOCK_DEADLOCK (1213): deadlock found: the transaction was rolled back (in autocommit: the statement); "
          "run it again");
    const std::string lost = lifeline::make_driver_error_code(2013).message();
    CHECK(lost.rfind("CR_SERVER_LOST (2013): ", 0) == 0);
    CHECK(contains(lost, "may or may not have run"));
    CHECK(lifeline::make_driver_error_code(4031).message().rfind("ER_CLIENT_INTERACTION_TIMEOUT (4031): ", 0) == 0);

    // Unlisted codes: generic, and a pointer to where the server's own text is.
    const std::string unlisted = lifeline::make_driver_error_code(1105).message();
    CHECK(unlisted.rfind("server error 1105 ", 0) == 0);
    CHECK(contains(unlisted, "diagnostics"));
    CHECK(lifeline::make_driver_error_code(2099).message().rfind("client error 2099 ", 0) == 0);
    CHECK(std::error_code(-5, lifeline::server_category()).message().rfind("server error -5 ", 0) == 0);
}

TEST_CASE("diagnostics is cheap to default-construct", "[unit][classification]") {
    static_assert(std::is_nothrow_default_constructible_v<lifeline::diagnostics>);
    const lifeline::diagnostics d;
    CHECK(d.server_message.empty());
    CHECK(d.sqlstate.empty());
    CHECK(d.driver.empty());
    CHECK(d.where == lifeline::phase::read_result);
    CHECK(d.code == 0);
}

TEST_CASE("lifeline::error carries the code and the diagnostics", "[unit][classification]") {
    static_assert(std::is_base_of_v<std::system_error, lifeline::error>);
    static_assert(std::is_nothrow_copy_constructible_v<lifeline::error>);

    lifeline::diagnostics d;
    d.server_message = "Lost connection to server during query";
    d.sqlstate = "HY000";
    d.driver = "capi";
    d.where = lifeline::phase::read_result;
    d.code = 2013;

    try {
        throw lifeline::error(lifeline::errc::outcome_unknown, d);
    } catch (const std::system_error& e) {
        CHECK(e.code() == lifeline::errc::outcome_unknown);
        const std::string what = e.what();
        CHECK(what.rfind(std::error_code(lifeline::errc::outcome_unknown).message(), 0) == 0);
        CHECK(contains(what, "server said: Lost connection to server during query"));
        const auto* le = dynamic_cast<const lifeline::error*>(&e);
        REQUIRE(le != nullptr);
        CHECK(le->diag().server_message == d.server_message);
        CHECK(le->diag().sqlstate == "HY000");
        CHECK(le->diag().driver == "capi");
        CHECK(le->diag().where == lifeline::phase::read_result);
        CHECK(le->diag().code == 2013);

        const lifeline::error copy = *le;  // shares the payload
        CHECK(copy.code() == le->code());
        CHECK(&copy.diag() == &le->diag());
        CHECK(std::string(copy.what()) == what);
    }

    const lifeline::error from_driver(lifeline::make_driver_error_code(1213));
    CHECK(from_driver.code().category() == lifeline::server_category());
    CHECK(std::string(from_driver.what()) == lifeline::make_driver_error_code(1213).message());
    CHECK(from_driver.diag().server_message.empty());
}
