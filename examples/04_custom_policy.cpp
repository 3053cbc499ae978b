// 04 — customise through a policy: classification, retry decision, backoff and deadlines.
#include <lifeline/driver/capi.hpp>

#include "example_env.hpp"

#include <cstdio>

// A service whose lock waits are user-facing: never retry them, fail fast; everything else default.
struct checkout_policy : lifeline::default_policy {
    checkout_policy() {
        retry.deadline = std::chrono::milliseconds(800);  // the whole call, all attempts included
        retry.max_attempts = 3;
        backoff.initial = std::chrono::milliseconds(20);
        backoff.max = std::chrono::milliseconds(200);
        health.ping_after_idle = std::chrono::seconds(5);
    }
    lifeline::classification classify(const lifeline::failure& f) const noexcept {
        if (f.code == 1205)  // ER_LOCK_WAIT_TIMEOUT
            return {lifeline::connection_state::usable, lifeline::outcome::statement_rolled_back,
                    lifeline::remedy::do_not_retry, "checkout: lock waits surface to the user"};
        return default_policy::classify(f);
    }
};

int main() {
    lifeline::connection<lifeline::capi, checkout_policy> db{example_options()};
    auto r = db.query("SELECT 'custom policy'", lifeline::idempotent);
    std::printf("04 custom policy: %s (deadline %lld ms)\n", r.scalar().value_or("").c_str(),
                static_cast<long long>(db.policy().retry.deadline.count()));
    return 0;
}
