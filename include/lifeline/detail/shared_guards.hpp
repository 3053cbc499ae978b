// lifeline — the process-wide retry budget, and the per-endpoint circuit breakers and endpoint
// monitors that every connection shares unless it is given its own (connection::set_*).
#ifndef LIFELINE_DETAIL_SHARED_GUARDS_HPP
#define LIFELINE_DETAIL_SHARED_GUARDS_HPP

#include <lifeline/circuit_breaker.hpp>
#include <lifeline/endpoint_monitor.hpp>
#include <lifeline/retry_budget.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace lifeline::detail {

inline std::shared_ptr<retry_budget> shared_retry_budget(const retry_budget_policy& p) {
    static std::mutex m;
    static std::shared_ptr<retry_budget> b;
    std::lock_guard<std::mutex> lock(m);
    if (!b) b = std::make_shared<retry_budget>(p);
    return b;
}

// One T per endpoint, alive while some connection holds it.
template <class T, class P>
std::shared_ptr<T> shared_by_endpoint(const std::string& endpoint, const P& policy) {
    static std::mutex m;
    static std::map<std::string, std::weak_ptr<T>> all;
    std::lock_guard<std::mutex> lock(m);
    auto& w = all[endpoint];
    auto t = w.lock();
    if (!t) {
        t = std::make_shared<T>(policy);
        w = t;
    }
    return t;
}

inline std::shared_ptr<circuit_breaker> shared_breaker(const std::string& endpoint, const circuit_breaker_policy& p) {
    return shared_by_endpoint<circuit_breaker>(endpoint, p);
}

inline std::shared_ptr<endpoint_monitor> shared_monitor(const std::string& endpoint, const probe_policy& p) {
    return shared_by_endpoint<endpoint_monitor>(endpoint, p);
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_SHARED_GUARDS_HPP
