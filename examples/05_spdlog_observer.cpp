// 05 — watch what lifeline does: the spdlog observer (never logs passwords; SQL only if asked).
#include <lifeline/driver/capi.hpp>
#include <lifeline/spdlog_observer.hpp>

#include "example_env.hpp"

#include <spdlog/spdlog.h>

#include <thread>

int main() {
    lifeline::connection<lifeline::capi> db{example_options()};
    lifeline::spdlog_observer::options log_opts;
    log_opts.log_sql = true;
    db.set_observer(std::make_shared<lifeline::spdlog_observer>(spdlog::default_logger(), log_opts));
    db.connect();

    // Kill our own connection mid-query from an admin session: the observer shows the retry.
    auto id = db.connection_id();
    std::thread op([id] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        lifeline::connection<lifeline::capi> admin{example_options(true)};
        admin.execute("KILL CONNECTION " + std::to_string(id));
    });
    auto r = db.query("SELECT SLEEP(0.5), 'observed'", lifeline::idempotent);
    op.join();
    spdlog::info("05 spdlog observer: got '{}' after {} attempt(s)", r.rows.at(0).at(1).value_or(""), r.attempts);
    return 0;
}
