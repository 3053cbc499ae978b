// The one shared fixture for unit tests over the fake driver: a fake server, a manual clock the
// connection sleeps on (backoff costs no wall time), its own retry budget and circuit breaker.
#ifndef LIFELINE_TESTS_SUPPORT_FAKE_FIXTURE_HPP
#define LIFELINE_TESTS_SUPPORT_FAKE_FIXTURE_HPP

#include "fake_driver.hpp"

#include <lifeline/clock.hpp>
#include <lifeline/connection.hpp>

#include <chrono>
#include <memory>

namespace lifeline::test {

struct fake_policy : default_policy {
    using clock_type = manual_clock;  // copies share one timeline
    fake_policy() {
        health.ping_after_idle = std::chrono::seconds(1);
        // The manual clock does not move between calls: without this every session would count as
        // just used and skip the socket probe (its own test turns it back on).
        health.probe_bypass = duration::zero();
        retry.deadline = std::chrono::seconds(10);
        retry.max_attempts = 4;
        budget.min_retries_per_second = 1000;  // tests exercise the budget explicitly
    }
};

inline connect_options fake_options() {
    connect_options o;
    o.host = "fake";
    o.port = 1;
    o.user = "u";
    return o;
}

template <class Policy = fake_policy>
struct basic_fake_fixture {
    using connection_type = connection<fake, Policy>;
    fake_server srv;
    manual_clock clock;
    std::shared_ptr<retry_budget> budget;
    std::unique_ptr<connection_type> db;

    explicit basic_fake_fixture(Policy p = {}, typename connection_type::session_spec spec = {},
                                connect_options options = fake_options()) {
        fake_server::current() = &srv;
        db = std::make_unique<connection_type>(std::move(options), p, std::move(spec), clock);
        budget = std::make_shared<retry_budget>(p.budget);
        db->set_retry_budget(budget);
        db->set_circuit_breaker(std::make_shared<circuit_breaker>(p.breaker));
        db->set_endpoint_monitor(std::make_shared<endpoint_monitor>(p.probe));
    }
    ~basic_fake_fixture() {
        db.reset();
        fake_server::current() = nullptr;
    }
    // The next n statements succeed, then one fails with f.
    void fail_after(int n, fault f) {
        for (int i = 0; i < n; ++i) srv.execute_faults.push_back(fault{});
        srv.execute_faults.push_back(f);
    }
    int marker_rows() {
        int n = 0;
        for (auto& kv : srv.applied)
            if (kv.first.rfind("INSERT INTO lifeline_commit_marker", 0) == 0) n += kv.second;
        return n;
    }
};
using fake_fixture = basic_fake_fixture<>;

}  // namespace lifeline::test

#endif
