// lifeline — an observer that logs through spdlog (link lifeline::spdlog).
//
//   db.set_observer(std::make_shared<lifeline::spdlog_observer>(spdlog::default_logger()));
//
// Never logs a password (no event carries one). Logs SQL text only when log_sql is set: statements
// can carry personal data. Retries and reconnects log at warn, gave-up at error, attempts at trace.
#ifndef LIFELINE_SPDLOG_OBSERVER_HPP
#define LIFELINE_SPDLOG_OBSERVER_HPP

#include <lifeline/observer.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

namespace lifeline {

class spdlog_observer : public observer {
public:
    struct options {
        bool log_sql = false;        // include statement text (truncated) in messages
        std::size_t max_sql = 200;   // truncate longer statements
        bool log_attempts = false;   // every attempt at trace level (noisy)
    };

    explicit spdlog_observer(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}
    spdlog_observer(std::shared_ptr<spdlog::logger> logger, options o) : logger_(std::move(logger)), options_(o) {}

    void on_attempt(const attempt_event& e) override {
        if (options_.log_attempts) logger_->trace("lifeline {} attempt {}{}", e.endpoint, e.attempt, sql(e.sql));
    }
    void on_retry(const retry_event& e) override {
        logger_->warn("lifeline {} retry after attempt {}: error {} ({}) in {}: {}; connection {}, outcome {}; "
                      "waiting {} ms{}",
                      e.endpoint, e.attempt, e.diag.code, e.diag.server_message, to_string(e.diag.where), e.reason,
                      to_string(e.what.connection), to_string(e.what.statement),
                      std::chrono::duration_cast<std::chrono::milliseconds>(e.delay).count(), sql(e.sql));
    }
    void on_reconnect(const reconnect_event& e) override {
        if (e.ok)
            logger_->info("lifeline {} reconnected in {} ms ({})", e.endpoint,
                          std::chrono::duration_cast<std::chrono::milliseconds>(e.took).count(), e.reason);
        else
            logger_->warn("lifeline {} reconnect failed: {} ({})", e.endpoint, e.error.message(), e.reason);
    }
    void on_session_restored(const session_restored_event& e) override {
        logger_->info("lifeline {} session restored ({} statements replayed)", e.endpoint, e.statements);
    }
    void on_gave_up(const gave_up_event& e) override {
        logger_->error("lifeline {} gave up after {} attempt(s): {} [{}]: {}{}", e.endpoint, e.attempts,
                       e.error.message(), e.diag.server_message, e.reason, sql(e.sql));
    }
    void on_ping(std::string_view endpoint, bool ok) override {
        logger_->debug("lifeline {} ping {}", endpoint, ok ? "ok" : "failed");
    }

private:
    std::string sql(std::string_view s) const {
        if (!options_.log_sql || s.empty()) return {};
        std::string out = " sql: ";
        out.append(s.substr(0, options_.max_sql));
        if (s.size() > options_.max_sql) out += "...";
        return out;
    }

    std::shared_ptr<spdlog::logger> logger_;
    options options_{};
};

}  // namespace lifeline

#endif  // LIFELINE_SPDLOG_OBSERVER_HPP
