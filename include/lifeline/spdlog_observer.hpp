// lifeline — an observer that logs through spdlog (link lifeline::spdlog).
//
//   db.set_observer(std::make_shared<lifeline::spdlog_observer>(spdlog::default_logger()));
//
// Never logs a password (no event carries one). Logs SQL text only when log_sql is set: statements
// can carry personal data — and so can the server's messages, which quote statements (1064) and
// values (1062, 1366, 1406): without log_sql their quoted parts are logged as '?'.
// Retries and failed reconnects log at warn, successful reconnects and restores at info, gave-up at
// error (with the driver's error number and phase besides lifeline's verdict), attempts at trace.
#ifndef LIFELINE_SPDLOG_OBSERVER_HPP
#define LIFELINE_SPDLOG_OBSERVER_HPP

#include <lifeline/observer.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
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
        logger_->warn("lifeline {} retry {}: error {} ({}) in {}: {}; connection {}, outcome {}; "
                      "waiting {} ms{}",
                      e.endpoint, e.attempt ? "after attempt " + std::to_string(e.attempt) : std::string("before the first attempt"),
                      e.diag.code, server_text(e.diag.server_message), to_string(e.diag.where), e.reason,
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
        logger_->error("lifeline {} gave up after {} attempt(s): {} [error {} in {}: {}]: {}{}", e.endpoint, e.attempts,
                       e.error.message(), e.diag.code, to_string(e.diag.where), server_text(e.diag.server_message),
                       e.reason, sql(e.sql));
    }
    void on_ping(std::string_view endpoint, bool ok) override {
        logger_->debug("lifeline {} ping {}", endpoint, ok ? "ok" : "failed");
    }

private:
    std::string sql(std::string_view s) const {
        if (!options_.log_sql || s.empty()) return {};
        std::string out = " sql: ";
        std::size_t n = std::min(s.size(), options_.max_sql);
        // Never cut through a UTF-8 sequence: back off to the start of the character.
        while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
        out.append(s.substr(0, n));
        if (s.size() > n) out += "...";
        return out;
    }

    // The server's text, with quoted parts (statement fragments, key values) replaced by '?'
    // unless SQL logging was asked for.
    std::string server_text(const std::string& text) const {
        if (options_.log_sql) return text;
        // 1064 quotes the statement's tail without escaping its own quotes: "near '...' at line N".
        std::string m = text;
        auto near = m.find("near '");
        auto at_line = m.rfind("' at line ");
        if (near != std::string::npos && at_line != std::string::npos && at_line > near + 5)
            m.replace(near + 6, at_line - near - 6, "?");
        std::string out;
        out.reserve(m.size());
        for (std::size_t i = 0; i < m.size(); ++i) {
            char q = m[i];
            // An apostrophe inside a word ("Can't") does not open a quote.
            bool opens = (q == '\'' || q == '"' || q == '`') &&
                         (i == 0 || !std::isalnum(static_cast<unsigned char>(m[i - 1])));
            if (!opens) {
                out += q;
                continue;
            }
            // Skip to the closing quote; a doubled quote ('') inside is part of the value.
            std::size_t j = i + 1;
            for (; j < m.size(); ++j) {
                if (m[j] != q) continue;
                if (j + 1 < m.size() && m[j + 1] == q) {
                    ++j;
                    continue;
                }
                break;
            }
            out += q;
            out += '?';
            out += q;
            i = j;  // past the closing quote (or the end)
        }
        return out;
    }

    std::shared_ptr<spdlog::logger> logger_;
    options options_{};
};

}  // namespace lifeline

#endif  // LIFELINE_SPDLOG_OBSERVER_HPP
