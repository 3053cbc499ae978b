// lifeline — stops, on the server, a statement whose call lifeline's deadline cut.
//
// When the watchdog cuts a call (watchdog.hpp), it shuts the client's socket down: the caller gets
// its answer at the deadline, but the server keeps running the statement — an ALTER TABLE, a
// long aggregation, a write waiting for a lock — and holding its locks, for a client that is gone.
// So every cut of a session lifeline knows (its id, its server's identity and its lock,
// server_identity.hpp) queues a job here. One process-wide thread runs the jobs one after the
// other, each bounded by its own deadline (kStopBudget), on a side connection made with the
// cut session's own connect_options:
//   1. connect, and learn that server's identity;
//   2. ask who holds the cut session's lock and who carries its id (fence_inspect_sql);
//   3. KILL CONNECTION the session only if that proves it is the cut one (judge_stop below, the
//      same rules as fencing: never a session lifeline cannot prove is its own).
// KILL CONNECTION, not KILL QUERY: lifeline has shut the session's socket, so the session can never
// be used again; ending it stops the statement, rolls its transaction back and releases its locks
// at once, instead of when the server next tries to talk to the dead socket.
// The caller never waits for any of this (its deadline has passed already); its error says that
// the statement is being stopped (diagnostics::client_message). The queue is bounded (kQueueLimit):
// when it is full the job is dropped and the error says so. Counters: reaper::instance().counters().
#ifndef LIFELINE_DETAIL_REAPER_HPP
#define LIFELINE_DETAIL_REAPER_HPP

#include <lifeline/detail/engine_core.hpp>
#include <lifeline/detail/server_identity.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace lifeline::detail {

enum class stop_verdict : std::uint8_t {
    kill,            // the cut session is alive and certainly the one lifeline cut
    gone,            // it has ended already (its lock is free, its id is absent, or the server restarted)
    not_provable,    // something carries its id or lock, and lifeline cannot prove it is the cut session
    other_server,    // the side connection reached another server (failover, a proxy's other backend)
};

constexpr std::string_view to_string(stop_verdict v) noexcept {
    switch (v) {
    case stop_verdict::kill: return "kill";
    case stop_verdict::gone: return "gone";
    case stop_verdict::not_provable: return "not_provable";
    case stop_verdict::other_server: return "other_server";
    }
    return "invalid";
}

// Pure: what to do with the cut session `target`, seen from the side session `side`, given what the
// server said (fenced). Mirrors engine_base's fencing rules.
constexpr stop_verdict judge_stop(const session_ref& target, const session_ref& side, const fenced& f) noexcept {
    switch (judge(target, side)) {
    case process_verdict::different_server:
    case process_verdict::unknown: return stop_verdict::other_server;
    case process_verdict::restarted: return stop_verdict::gone;
    case process_verdict::same_server:
    case process_verdict::same_process: break;
    }
    if (target.has_lock() && !f.locks_unsupported && f.lock_holder != 0)
        return f.lock_holder == target.id ? stop_verdict::kill : stop_verdict::not_provable;
    if (!f.present) return stop_verdict::gone;
    // Something carries the id but not the lock.
    if (target.has_lock() && target.lock_certain && !f.locks_unsupported) return stop_verdict::gone;  // another session
    if (judge(target, side) == process_verdict::same_process && f.present_is_ours && !target.has_lock())
        return stop_verdict::kill;  // no lock to go by: the id and the account, in the same process
    return stop_verdict::not_provable;
}

class reaper {
public:
    static constexpr std::size_t kQueueLimit = 64;
    static constexpr std::chrono::milliseconds kStopBudget{10000};  // per job: connect, inspect, KILL

    struct counters_t {
        std::uint64_t queued = 0, dropped = 0;            // submitted / refused (queue full)
        std::uint64_t killed = 0, gone = 0, refused = 0;  // verdicts carried out
        std::uint64_t failed = 0;                         // could not connect, inspect or KILL in time
    };
    enum class result_kind : std::uint8_t { killed, gone, refused, failed };

    static reaper& instance() {
        static reaper r;
        return r;
    }

    // Queues `job` (which reports with record()); false if the queue is full.
    bool submit(std::function<void()> job) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_ || queue_.size() >= kQueueLimit) {
            ++dropped_;
            return false;
        }
        queue_.push_back(std::move(job));
        ++queued_;
        if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
        cv_.notify_one();
        return true;
    }

    void record(result_kind k) noexcept {
        switch (k) {
        case result_kind::killed: ++killed_; break;
        case result_kind::gone: ++gone_; break;
        case result_kind::refused: ++refused_; break;
        case result_kind::failed: ++failed_; break;
        }
    }

    counters_t counters() const noexcept {
        counters_t c;
        c.queued = queued_.load();
        c.dropped = dropped_.load();
        c.killed = killed_.load();
        c.gone = gone_.load();
        c.refused = refused_.load();
        c.failed = failed_.load();
        return c;
    }

    // Waits until no job is queued or running, at most `timeout`; true if idle.
    bool wait_idle(std::chrono::milliseconds timeout) {
        std::unique_lock<std::mutex> lock(mutex_);
        return idle_cv_.wait_for(lock, timeout, [&] { return queue_.empty() && !running_; });
    }

    ~reaper() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
            queue_.clear();  // at exit nobody waits for them; the running one is bounded
            cv_.notify_one();
        }
        if (thread_.joinable()) thread_.join();
    }

private:
    reaper() = default;

    void loop() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (stop_) return;
            std::function<void()> job = std::move(queue_.front());
            queue_.pop_front();
            running_ = true;
            lock.unlock();
            try {
                job();
            } catch (...) {
                record(result_kind::failed);
            }
            lock.lock();
            running_ = false;
            idle_cv_.notify_all();
        }
    }

    mutable std::mutex mutex_;
    std::condition_variable cv_, idle_cv_;
    std::deque<std::function<void()>> queue_;
    bool running_ = false;
    bool stop_ = false;
    std::thread thread_;
    std::atomic<std::uint64_t> queued_{0}, dropped_{0}, killed_{0}, gone_{0}, refused_{0}, failed_{0};
};

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_REAPER_HPP
