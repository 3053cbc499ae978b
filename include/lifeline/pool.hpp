// lifeline — a thread-safe pool of resilient connections.
//
//   lifeline::pool<lifeline::capi> db{options, {/*min_size*/ 2, /*max_size*/ 16}};
//   {
//       auto c = LIFELINE_BORROW(db, 2s);          // or db.borrow(2s, "orders.cpp:42")
//       c->query("SELECT 1", lifeline::idempotent);
//   }                                              // back in the pool
//
// Borrowing validates the connection exactly as the connection itself does before each use
// (zero-round-trip socket poll, COM_PING only after the idle window, recycle before wait_timeout
// and after the jittered max lifetime, reconnect + session restore): a connection that lifeline's
// health tracker would reject is reconnected, never handed out dead.
//
// Outages: opening connections is single-flight. New connections are opened one at a time, and
// once a connect has failed (the pool is "in outage") every borrow that might connect, including
// the validation of an idle connection, waits for the one connect in flight instead of adding its
// own; between failed connects the pool backs off with jitter. So N threads hitting a dead server
// cause one connect attempt at a time, not N. After an outage the background refill to min_size
// is spread out by a random delay per connection (refill_jitter), so a recovering server does not
// meet a burst of connects.
//
// A thread gets back the connection it borrowed last when that one is idle (thread affinity,
// as HikariCP does), else one from a LIFO stack of returned connections. A healthy borrow and
// return take no lock.
//
// Time here is the real steady clock (borrowers block on a condition variable); the connections
// keep using the Policy's clock. The pool must outlive every handle it gave out.
#ifndef LIFELINE_POOL_HPP
#define LIFELINE_POOL_HPP

#include <lifeline/connection.hpp>
#include <lifeline/detail/pool_slots.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

// Borrows recording the call site ("file.cpp:42") for leak reports: LIFELINE_BORROW(pool, 2s).
// The only macro lifeline defines; its helpers are LIFELINE_-prefixed too.
#define LIFELINE_DETAIL_STR2(x) #x
#define LIFELINE_DETAIL_STR(x) LIFELINE_DETAIL_STR2(x)
#define LIFELINE_BORROW(pool, timeout) (pool).borrow((timeout), __FILE__ ":" LIFELINE_DETAIL_STR(__LINE__))

namespace lifeline {

// A handle held longer than pool_options::leak_threshold.
struct leak_report {
    const char* where = nullptr;           // the borrow's tag (nullptr: none given)
    std::chrono::milliseconds held_for{0};
    // Identifies the borrow in its pool: 1-based and unique, (the slot's own borrow count - 1) x
    // max_size + the slot's index + 1. Not a pool-wide sequence: numbering every borrow in order
    // would be a write that every borrowing thread shares.
    std::uint64_t borrow_id = 0;
};

struct pool_options {
    std::size_t min_size = 0;  // connections kept open, refilled in the background
    std::size_t max_size = 8;  // connections at most (in use + idle + being opened)
    // Default wait for borrow(); also bounds the validation (and reconnect) of what it hands out.
    std::chrono::milliseconds borrow_timeout{5000};
    // Idle connections above min_size are closed after this long unused; 0 disables.
    std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
    // A handle held longer is reported once (on_leak, leaks()); 0 disables.
    std::chrono::milliseconds leak_threshold{0};
    // After an outage each background refill waits uniform[0, refill_jitter] before connecting.
    std::chrono::milliseconds refill_jitter{1000};
    // How often the background thread evicts, reports leaks and refills; 0: no thread (call
    // maintain() yourself).
    std::chrono::milliseconds housekeeping_interval{1000};
    // Bound on resetting a returned session whose state changed (see give_back); then it is closed.
    std::chrono::milliseconds reset_timeout{1000};
    // Called (on the housekeeping thread, no lock held) for each new leak.
    std::function<void(const leak_report&)> on_leak;
    // Given to every connection; called from many threads at once, so it must be thread-safe.
    std::shared_ptr<lifeline::observer> connection_observer;
    // Shared by the pool's connections; null: the process-wide budget / per-endpoint breaker.
    std::shared_ptr<lifeline::retry_budget> budget;
    std::shared_ptr<lifeline::circuit_breaker> breaker;

    // Empty if usable; else each problem, naming the field and the fix ("...; " separated).
    std::string validate() const {
        std::string why;
        if (max_size == 0) why += "pool_options.max_size must be >= 1 (e.g. 8); ";
        if (min_size > max_size) why += "pool_options.min_size must be <= pool_options.max_size; ";
        if (borrow_timeout.count() <= 0) why += "pool_options.borrow_timeout must be > 0 (e.g. 5s); ";
        if (idle_timeout.count() < 0) why += "pool_options.idle_timeout must be >= 0 (e.g. 10min; 0 disables); ";
        if (leak_threshold.count() < 0) why += "pool_options.leak_threshold must be >= 0 (e.g. 60s; 0 disables); ";
        if (refill_jitter.count() < 0) why += "pool_options.refill_jitter must be >= 0 (e.g. 1s); ";
        if (reset_timeout.count() <= 0) why += "pool_options.reset_timeout must be > 0 (e.g. 1s); ";
        if (housekeeping_interval.count() < 0)
            why += "pool_options.housekeeping_interval must be >= 0 (e.g. 1s; 0: call maintain() yourself); ";
        return why;
    }
};

struct pool_stats {
    std::size_t in_use = 0;      // handed out, or being validated for a borrower
    std::size_t idle = 0;        // open and free
    std::size_t waiting = 0;     // threads inside borrow() without a connection yet
    std::size_t connecting = 0;  // single-flight connects in progress (borrowers in outage, refill)
    std::size_t max_size = 0;
    std::uint64_t created = 0;           // connections opened by the pool (new slots)
    std::uint64_t closed = 0;            // connections closed by the pool (eviction, failure, discard)
    std::uint64_t broken = 0;            // found dead on validation (socket closed, ping failed) or returned closed
    std::uint64_t retries = 0;           // the connections' retries (statements and connects)
    std::uint64_t connect_failures = 0;  // validations/connects that could not produce a connection
    std::uint64_t borrows = 0;
    std::uint64_t exhausted = 0;         // borrows that failed with pool_exhausted
    std::uint64_t leaks = 0;
    std::uint64_t resets = 0;                 // returned sessions put back to the registered state
    std::uint64_t rolled_back_on_return = 0;  // ... of which had a transaction open (rolled back)
    std::uint64_t reset_failures = 0;         // ... that could not be reset and were closed
};

namespace detail {
// The pool's counters, each its own atomic (read together only roughly consistently).
struct pool_counters {
    std::atomic<std::uint64_t> created{0}, closed{0}, broken{0}, retries{0}, connect_failures{0}, exhausted{0},
        leaks{0}, resets{0}, rolled_back_on_return{0}, reset_failures{0};
};
}  // namespace detail

template <class Driver, class Policy = default_policy>
class pool {
public:
    using connection_type = connection<Driver, Policy>;
    using session_spec = typename connection_type::session_spec;
    using clock_type = typename connection_type::clock_type;
    using native_handle = typename connection_type::native_handle;
    using time_point = std::chrono::steady_clock::time_point;

private:
    // One per possible connection (max_size of them, allocated once: indices stay valid, so the
    // lock-free idle stack below never reads freed memory). `conn` belongs to whoever holds the
    // slot (a borrower, the housekeeper, or the idle stack); the rest is read by the housekeeper.
    // A cache line each: two threads on neighbouring slots do not invalidate each other's writes.
    struct alignas(64) slot {
        std::unique_ptr<connection_type> conn;
        std::atomic<std::uint32_t> next{0};        // idle stack link: index + 1, 0 = bottom
        // The claim protocol (see "idle connections" below); stats() counts `idle` too.
        std::atomic<bool> idle{false};             // free to take
        std::atomic<bool> in_stack{false};         // an entry for it is on the idle stack
        // For stats() only, written by the slot's holder: a shared counter would be two more
        // contended writes per borrow.
        std::atomic<bool> in_use{false};           // handed out, or being validated for a borrower
        std::atomic<bool> handed_out{false};       // the borrower holds it: leak clock running
        std::atomic<bool> leak_reported{false};
        std::atomic<std::int64_t> borrowed_at{0};  // steady ns
        std::atomic<std::int64_t> idle_since{0};   // steady ns
        std::atomic<const char*> where{nullptr};
        std::atomic<std::uint64_t> borrows{0};     // handed out so far (stats() sums them; the leak's id)
        std::uint64_t retries_seen = 0;            // conn->stats().retries already counted (holder only)
    };

public:
    // RAII handle: the connection goes back to the pool when it is destroyed or reset().
    class pooled {
    public:
        pooled() noexcept = default;
        pooled(pooled&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), slot_(std::exchange(o.slot_, nullptr)) {}
        pooled& operator=(pooled&& o) noexcept {
            if (this != &o) {
                reset();
                pool_ = std::exchange(o.pool_, nullptr);
                slot_ = std::exchange(o.slot_, nullptr);
            }
            return *this;
        }
        pooled(const pooled&) = delete;
        pooled& operator=(const pooled&) = delete;
        ~pooled() { reset(); }

        connection_type* operator->() const noexcept { return slot_->conn.get(); }
        connection_type& operator*() const noexcept { return *slot_->conn; }
        connection_type* get() const noexcept { return slot_ ? slot_->conn.get() : nullptr; }
        explicit operator bool() const noexcept { return slot_ != nullptr; }
        const char* where() const noexcept { return slot_ ? slot_->where.load(std::memory_order_relaxed) : nullptr; }

        // Returns the connection now.
        void reset() noexcept {
            if (slot_) pool_->give_back(*slot_, false);
            pool_ = nullptr;
            slot_ = nullptr;
        }
        // Closes the connection instead of reusing it.
        void discard() noexcept {
            if (slot_) pool_->give_back(*slot_, true);
            pool_ = nullptr;
            slot_ = nullptr;
        }

    private:
        friend class pool;
        pooled(pool* p, slot* s) noexcept : pool_(p), slot_(s) {}
        pool* pool_ = nullptr;
        slot* slot_ = nullptr;
    };

    // Validates everything up front; throws lifeline::error (errc::invalid_option) naming the
    // field. Opens nothing itself: borrows and the background refill (min_size) do.
    explicit pool(connect_options options, pool_options po = {}, Policy policy = {}, session_spec session = {},
                  clock_type clock = {})
        : options_(std::move(options)),
          popts_(std::move(po)),
          policy_(std::move(policy)),
          spec_(std::move(session)),
          clock_(std::move(clock)),
          backoff_(policy_.backoff, detail::entropy_seed(this)),
          rng_(detail::entropy_seed(this) ^ 0x5851f42d4c957f2dull),
          observer_(std::make_shared<slot_observer>(this)) {
        std::string why = popts_.validate();
        if (auto c = validate(options_); !c.empty()) why += c + "; ";
        why += policy_.validate();
        if (!why.empty()) {
            diagnostics d;
            d.client_message = why;
            throw error(make_error_code(errc::invalid_option), std::move(d));
        }
        slots_ = std::make_unique<slot[]>(popts_.max_size);
        free_.reserve(popts_.max_size);
        for (std::size_t i = popts_.max_size; i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
        if (popts_.housekeeping_interval.count() > 0) housekeeper_ = std::thread([this] { housekeep(); });
    }

    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    // Precondition: every handle has been returned and no thread is inside borrow().
    ~pool() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closing_ = true;
        }
        cv_.notify_all();
        house_cv_.notify_all();
        if (housekeeper_.joinable()) housekeeper_.join();
    }

    // --- borrowing ---------------------------------------------------------------------------
    // `where` tags the borrow in leak reports; it must outlive the borrow (a literal; see
    // LIFELINE_BORROW). Throws lifeline::error (errc::pool_exhausted, ...) on failure.
    pooled borrow(const char* where = nullptr) { return borrow(popts_.borrow_timeout, where); }
    pooled borrow(std::chrono::milliseconds timeout, const char* where = nullptr) {
        std::error_code ec;
        diagnostics diag;
        pooled p = borrow(timeout, ec, diag, where);
        throw_if(ec, diag);
        return p;
    }
    // Non-throwing: an empty handle and ec set (errc::pool_exhausted: diag names the pool's state
    // and the last connect error).
    pooled borrow(std::chrono::milliseconds timeout, std::error_code& ec, diagnostics& diag,
                  const char* where = nullptr) noexcept {
        ec.clear();
        diag.clear();
        try {
            return borrow_impl(timeout, ec, diag, where);
        } catch (const std::exception& e) {
            ec = make_error_code(errc::internal_error);
            diag = diagnostics{};
            diag.client_message = e.what();
            return {};
        }
    }

    // --- housekeeping ------------------------------------------------------------------------
    // Idle eviction above min_size, leak reports, one step of the refill to min_size. The
    // background thread calls it; tests call it with a later `now` instead of sleeping.
    void maintain() { maintain(std::chrono::steady_clock::now()); }
    void maintain(time_point now) {
        std::vector<std::unique_ptr<connection_type>> doomed;
        std::vector<leak_report> leaks;
        std::optional<std::uint32_t> refill;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (closing_) return;
            evict_idle(now, doomed);
            if (popts_.leak_threshold.count() > 0) {
                for (std::size_t i = 0; i < popts_.max_size; ++i) {
                    slot& s = slots_[i];
                    if (!s.handed_out.load(std::memory_order_acquire) || s.leak_reported.load(std::memory_order_relaxed) ||
                        now - at(s.borrowed_at) < popts_.leak_threshold)
                        continue;
                    s.leak_reported.store(true, std::memory_order_relaxed);
                    ++counters_.leaks;
                    leaks.push_back(report_of(s, now));
                }
            }
            const std::size_t live = live_.load(std::memory_order_relaxed);
            if (live < popts_.min_size && connecting_ == 0 && now >= next_connect_at_ && now >= next_refill_at_ &&
                !free_.empty()) {
                refill = take_free();
                ++connecting_;
            } else if (live >= popts_.min_size) {
                refill_jittered_ = false;  // full again: the outage is over for the refill too
            }
        }
        doomed.clear();  // closes outside the lock
        if (popts_.on_leak)
            for (const auto& l : leaks) popts_.on_leak(l);
        if (refill) refill_one(*refill);
    }

    // Handles currently held longer than leak_threshold (empty when it is 0).
    std::vector<leak_report> leaks() const {
        std::vector<leak_report> out;
        if (popts_.leak_threshold.count() <= 0) return out;
        const auto now = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < popts_.max_size; ++i) {
            const slot& s = slots_[i];
            if (s.handed_out.load(std::memory_order_acquire) && now - at(s.borrowed_at) >= popts_.leak_threshold)
                out.push_back(report_of(s, now));
        }
        return out;
    }

    pool_stats stats() const {
        pool_stats s;
        s.in_use = count_slots(&slot::in_use);
        s.idle = count_slots(&slot::idle);
        s.waiting = waiting_.load(std::memory_order_relaxed);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            s.connecting = connecting_;
        }
        s.max_size = popts_.max_size;
        s.created = counters_.created;
        s.closed = counters_.closed;
        s.broken = counters_.broken;
        s.retries = counters_.retries;
        s.connect_failures = counters_.connect_failures;
        s.borrows = count_slots(&slot::borrows);
        s.exhausted = counters_.exhausted;
        s.leaks = counters_.leaks;
        s.resets = counters_.resets;
        s.rolled_back_on_return = counters_.rolled_back_on_return;
        s.reset_failures = counters_.reset_failures;
        return s;
    }
    const pool_options& options() const noexcept { return popts_; }
    const connect_options& connection_options() const noexcept { return options_; }

private:
    // Counts connections found dead, forwards everything to the caller's observer.
    struct slot_observer final : observer {
        explicit slot_observer(pool* p) : p_(p) {}
        void on_attempt(const attempt_event& e) override {
            if (auto& o = p_->popts_.connection_observer) o->on_attempt(e);
        }
        void on_retry(const retry_event& e) override {
            if (auto& o = p_->popts_.connection_observer) o->on_retry(e);
        }
        void on_reconnect(const reconnect_event& e) override {
            if (e.cause == reconnect_cause::found_dead || e.cause == reconnect_cause::ping_failed)
                p_->counters_.broken.fetch_add(1, std::memory_order_relaxed);
            if (auto& o = p_->popts_.connection_observer) o->on_reconnect(e);
        }
        void on_session_restored(const session_restored_event& e) override {
            if (auto& o = p_->popts_.connection_observer) o->on_session_restored(e);
        }
        void on_gave_up(const gave_up_event& e) override {
            if (auto& o = p_->popts_.connection_observer) o->on_gave_up(e);
        }
        void on_ping(std::string_view endpoint, bool ok) override {
            if (auto& o = p_->popts_.connection_observer) o->on_ping(endpoint, ok);
        }
        pool* p_;
    };

    static std::int64_t ns(time_point t) noexcept { return t.time_since_epoch().count(); }
    static time_point at(const std::atomic<std::int64_t>& v) noexcept {
        return time_point(time_point::duration(v.load(std::memory_order_relaxed)));
    }
    static std::chrono::milliseconds ms_until(time_point until, time_point now) {
        return until > now ? std::chrono::duration_cast<std::chrono::milliseconds>(until - now)
                           : std::chrono::milliseconds(0);
    }
    leak_report report_of(const slot& s, time_point now) const {
        const std::uint64_t n = s.borrows.load(std::memory_order_relaxed);
        return leak_report{s.where.load(std::memory_order_relaxed),
                           std::chrono::duration_cast<std::chrono::milliseconds>(now - at(s.borrowed_at)),
                           n ? (n - 1) * popts_.max_size + index_of(s) + 1 : 0};
    }
    // The sum of one per-slot field over all slots: a flag (how many are set) or a count.
    template <class T>
    std::uint64_t count_slots(std::atomic<T> slot::*field) const noexcept {
        std::uint64_t n = 0;
        for (std::size_t i = 0; i < popts_.max_size; ++i) n += (slots_[i].*field).load(std::memory_order_relaxed);
        return n;
    }
    void set_in_use(slot& s, bool v) noexcept { s.in_use.store(v, std::memory_order_relaxed); }
    std::uint32_t index_of(const slot& s) const noexcept { return static_cast<std::uint32_t>(&s - slots_.get()); }

    // --- idle connections: lock-free. A slot is taken by the one CAS of its `idle` flag
    // true -> false. Two ways lead to it: the slot this thread borrowed last (thread affinity, as
    // HikariCP's ConcurrentBag: a thread keeps its connection, and the scheduler keeps the client
    // and server threads paired; a shared LIFO alone hands connections across threads and cost
    // the 4-thread figure 10 points), else a tagged Treiber stack of slot indices (LIFO: the
    // hottest connection first; the tag in the head's upper half defeats ABA). A slot taken by
    // affinity leaves its entry behind; whoever pops it later finds `idle` false and drops it.
    // `in_stack` keeps at most one entry per slot; all four flag operations are seq_cst, so a
    // returned slot is never left idle with no entry (the returner sets `idle` before it looks at
    // `in_stack`, a popper clears `in_stack` before it tries `idle`). -----------------------------
    void push_idle(std::uint32_t i) noexcept {
        slot& s = slots_[i];
        s.idle.store(true, std::memory_order_seq_cst);
        if (s.in_stack.exchange(true, std::memory_order_seq_cst)) return;  // its entry is still there
        std::uint64_t old = idle_head_.load(std::memory_order_relaxed);
        std::uint64_t next;
        do {
            s.next.store(static_cast<std::uint32_t>(old), std::memory_order_relaxed);
            next = (((old >> 32) + 1) << 32) | (i + 1);
        } while (!idle_head_.compare_exchange_weak(old, next, std::memory_order_seq_cst, std::memory_order_seq_cst));
    }
    bool try_take(std::uint32_t i) noexcept {
        bool expected = true;
        return slots_[i].idle.compare_exchange_strong(expected, false, std::memory_order_seq_cst);
    }
    std::optional<std::uint32_t> pop_idle() noexcept {
        std::uint64_t old = idle_head_.load(std::memory_order_seq_cst);
        for (;;) {
            const auto top = static_cast<std::uint32_t>(old);
            if (top == 0) return std::nullopt;
            const std::uint32_t below = slots_[top - 1].next.load(std::memory_order_relaxed);
            const std::uint64_t next = (((old >> 32) + 1) << 32) | below;
            // On failure `old` is reloaded with acquire semantics (seq_cst): the next loop reads the
            // new top's `next` link, which its pusher wrote before its CAS.
            if (idle_head_.compare_exchange_weak(old, next, std::memory_order_seq_cst, std::memory_order_seq_cst)) {
                slots_[top - 1].in_stack.store(false, std::memory_order_seq_cst);
                if (try_take(top - 1)) return top - 1;
                old = idle_head_.load(std::memory_order_seq_cst);  // a stale entry: taken by affinity
            }
        }
    }
    // This thread's last slot of this pool, if it is idle; else the stack.
    std::optional<std::uint32_t> take_idle() noexcept {
        const affinity& a = last_borrow();
        if (a.pool == id_ && a.slot < popts_.max_size && try_take(a.slot)) return a.slot;
        return pop_idle();
    }
    struct affinity {
        std::uint64_t pool = 0;  // the pool's id_ (not its address, which a later pool may reuse)
        std::uint32_t slot = 0;
    };
    static affinity& last_borrow() noexcept {
        static thread_local affinity a;
        return a;
    }
    static std::uint64_t next_id() noexcept {
        static std::atomic<std::uint64_t> n{0};
        return ++n;
    }

    // With mutex_ held: a slot for a new connection.
    std::uint32_t take_free() {
        const std::uint32_t i = free_.back();
        free_.pop_back();
        live_.fetch_add(1, std::memory_order_relaxed);
        return i;
    }
    // With mutex_ held: the slot's connection goes to `doomed` (closed outside the lock).
    void release_slot(std::uint32_t i, std::vector<std::unique_ptr<connection_type>>& doomed) {
        slot& s = slots_[i];
        if (s.conn) {
            doomed.push_back(std::move(s.conn));
            ++counters_.closed;
        }
        s.retries_seen = 0;
        s.handed_out.store(false, std::memory_order_relaxed);
        live_.fetch_sub(1, std::memory_order_relaxed);
        free_.push_back(i);
    }
    // With mutex_ held: the longest-idle connections above min_size go.
    void evict_idle(time_point now, std::vector<std::unique_ptr<connection_type>>& doomed) {
        if (popts_.idle_timeout.count() <= 0) return;
        std::vector<std::uint32_t> idle;
        while (auto i = pop_idle()) idle.push_back(*i);
        // By return time, not stack position: a slot taken by affinity and returned keeps its old
        // entry, so the stack is not ordered by last use.
        std::stable_sort(idle.begin(), idle.end(), [&](std::uint32_t a, std::uint32_t b) {
            return slots_[a].idle_since.load(std::memory_order_relaxed) <
                   slots_[b].idle_since.load(std::memory_order_relaxed);
        });  // the coldest first
        std::size_t live = live_.load(std::memory_order_relaxed);
        std::size_t k = 0;
        for (; k < idle.size(); ++k) {
            if (live <= popts_.min_size || now - at(slots_[idle[k]].idle_since) < popts_.idle_timeout) break;
            release_slot(idle[k], doomed);
            --live;
        }
        for (; k < idle.size(); ++k) push_idle(idle[k]);  // the hottest ends on top
        if (!idle.empty()) cv_.notify_all();
    }

    // Most borrows see no retry: no write to the shared counter then.
    void add_retries(slot& s) noexcept {
        if (const auto d = detail::take_new_retries(s)) counters_.retries += d;
    }

    std::unique_ptr<connection_type> make_connection() {
        auto c = std::make_unique<connection_type>(options_, policy_, spec_, clock_);
        c->set_observer(observer_);
        if (popts_.budget) c->set_retry_budget(popts_.budget);
        if (popts_.breaker) c->set_circuit_breaker(popts_.breaker);
        return c;
    }

    // By the slot's holder, no lock: the connection's own before-use check (socket poll, ping
    // window, recycle, reconnect + session restore) within the time left. One connect attempt:
    // the pool paces connects itself (single-flight, backoff).
    bool validate_slot(slot& s, time_point until, std::error_code& ec, diagnostics& diag,
                       time_point now = std::chrono::steady_clock::now()) {
        if (!s.conn) s.conn = make_connection();
        for (int pass = 0; pass < 2; ++pass) {
            if (pass > 0) now = std::chrono::steady_clock::now();
            auto left = std::max(ms_until(until, now), std::chrono::milliseconds(1));
            if (s.conn->ready(call_options{left, true}, ec, diag)) return true;
            if (ec == errc::transaction_lost || ec == errc::session_state_lost) {
                // The previous borrower's loss (it was told): the next one starts on a clean session.
                s.conn->acknowledge_transaction_lost();
                s.conn->close();
                continue;
            }
            return false;
        }
        return false;
    }

    // With mutex_ held, after a validation or connect that produced nothing.
    void note_connect_failure(const std::error_code& ec, const diagnostics& diag, time_point now) {
        ++counters_.connect_failures;
        // Keep the most telling error: a driver's verdict beats "deadline exceeded" or "circuit
        // open", which only say that lifeline stopped trying.
        if (diag.code != 0 || !last_error_) {
            last_error_ = diag.code != 0 ? make_driver_error_code(diag.code) : ec;
            last_diag_ = diag;
        }
        outage_.store(true, std::memory_order_release);
        refill_jittered_ = true;
        next_connect_at_ = now + std::chrono::duration_cast<time_point::duration>(backoff_.next());
    }
    // With mutex_ held, after a connection was (re)opened or validated by a connect token holder.
    void note_connect_success(time_point now) {
        outage_.store(false, std::memory_order_release);
        backoff_.reset();
        next_connect_at_ = now;
        last_error_.clear();
        last_diag_ = diagnostics{};
    }

    pooled hand_out(slot& s, const char* where, time_point now = std::chrono::steady_clock::now()) {
        last_borrow() = affinity{id_, index_of(s)};
        s.leak_reported.store(false, std::memory_order_relaxed);
        s.borrowed_at.store(ns(now), std::memory_order_relaxed);
        s.where.store(where, std::memory_order_relaxed);
        // Only the holder writes its slot's count: no line shared by every borrowing thread.
        s.borrows.store(s.borrows.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        s.handed_out.store(true, std::memory_order_release);
        return pooled(this, &s);
    }

    pooled borrow_impl(std::chrono::milliseconds timeout, std::error_code& ec, diagnostics& diag, const char* where) {
        const auto start = std::chrono::steady_clock::now();
        const auto until = start + timeout;
        // The hot path takes no lock: a validated idle connection, when connects are not gated.
        if (!outage_.load(std::memory_order_acquire)) {
            if (auto i = take_idle()) {
                slot& s = slots_[*i];
                set_in_use(s, true);
                bool ok = false;
                try {
                    ok = validate_slot(s, until, ec, diag, start);
                } catch (...) {
                    fail_slot(*i, false, ec, diag);
                    throw;
                }
                add_retries(s);
                if (ok) return hand_out(s, where, start);
                fail_slot(*i, false, ec, diag);
                ec.clear();
                diag = diagnostics{};
            }
        }
        return borrow_slow(until, timeout, ec, diag, where);
    }

    // A validation by `i`'s holder failed: the slot is given up (with mutex_: the pool's outage
    // bookkeeping and the free list).
    void fail_slot(std::uint32_t i, bool token, const std::error_code& ec, const diagnostics& diag) {
        std::vector<std::unique_ptr<connection_type>> doomed;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (token) --connecting_;
            note_connect_failure(ec, diag, std::chrono::steady_clock::now());
            set_in_use(slots_[i], false);
            release_slot(i, doomed);
        }
        cv_.notify_all();  // the gate is free; waiters recompute their wake-up
    }

    pooled borrow_slow(time_point until, std::chrono::milliseconds timeout, std::error_code& ec, diagnostics& diag,
                       const char* where) {
        std::unique_lock<std::mutex> lock(mutex_);
        waiting_.fetch_add(1, std::memory_order_seq_cst);
        // The deadline is checked before every pass but the first, so a failing connect is never
        // retried past it, while borrow(0ms) can still take an idle connection.
        for (bool first = true;; first = false) {
            if (closing_) {
                waiting_.fetch_sub(1, std::memory_order_relaxed);
                ec = make_error_code(errc::not_connected);
                diag.client_message = "the pool is shutting down";
                return {};
            }
            const auto now = std::chrono::steady_clock::now();
            if (!first && now >= until) return give_up_borrow(timeout, ec, diag);
            const bool outage = outage_.load(std::memory_order_relaxed);
            const bool may_connect = connecting_ == 0 && now >= next_connect_at_;
            std::optional<std::uint32_t> i;
            bool token = false;  // this borrow is the pool's one connect in flight
            bool fresh = false;
            if (!outage || may_connect) {
                i = take_idle();  // this thread's last, else the top of the stack
                token = i && outage;  // in an outage its validation may well connect: single-flight
            }
            if (!i && live_.load(std::memory_order_relaxed) < popts_.max_size && may_connect && !free_.empty()) {
                i = take_free();
                token = fresh = true;  // new connections are opened one at a time
            }
            if (i) {
                slot& s = slots_[*i];
                set_in_use(s, true);
                waiting_.fetch_sub(1, std::memory_order_relaxed);
                if (token) ++connecting_;
                lock.unlock();
                bool ok = false;
                try {
                    ok = validate_slot(s, until, ec, diag);
                } catch (...) {
                    fail_slot(*i, token, ec, diag);
                    throw;
                }
                add_retries(s);
                if (ok) {
                    if (fresh) ++counters_.created;
                    if (token) {
                        {
                            std::lock_guard<std::mutex> relock(mutex_);
                            --connecting_;
                            note_connect_success(std::chrono::steady_clock::now());
                        }
                        cv_.notify_all();  // the gate is open again
                    }
                    return hand_out(s, where);
                }
                fail_slot(*i, token, ec, diag);
                lock.lock();
                waiting_.fetch_add(1, std::memory_order_seq_cst);
                ec.clear();
                diag = diagnostics{};
                continue;
            }
            if (now >= until) return give_up_borrow(timeout, ec, diag);
            auto wake = until;
            if (connecting_ == 0 && next_connect_at_ > now) wake = std::min(wake, next_connect_at_);
            cv_.wait_until(lock, wake);
        }
    }

    // With mutex_ held: the borrow ends with errc::pool_exhausted.
    pooled give_up_borrow(std::chrono::milliseconds timeout, std::error_code& ec, diagnostics& diag) {
        waiting_.fetch_sub(1, std::memory_order_relaxed);
        ++counters_.exhausted;
        fill_exhausted(timeout, ec, diag);
        if (count_slots(&slot::idle) > 0) cv_.notify_one();  // pass on a wake-up it may have taken
        return {};
    }

    // With mutex_ held.
    void fill_exhausted(std::chrono::milliseconds timeout, std::error_code& ec, diagnostics& diag) const {
        ec = make_error_code(errc::pool_exhausted);
        diag.clear();
        diag.where = phase::connect;
        diag.code = last_diag_.code;
        diag.sqlstate = last_diag_.sqlstate;
        diag.driver = last_diag_.driver;
        std::string m = "no connection within " + std::to_string(timeout.count()) +
                        " ms: in_use=" + std::to_string(count_slots(&slot::in_use)) + " idle=" + std::to_string(count_slots(&slot::idle)) +
                        " waiting=" + std::to_string(waiting_.load()) + " connecting=" + std::to_string(connecting_) +
                        " max=" + std::to_string(popts_.max_size) + "; last connect error: ";
        if (last_error_) {
            m += last_error_.message();
            if (last_diag_.code) m += " [" + std::to_string(last_diag_.code) + "]";
            if (!last_diag_.client_message.empty()) m += " (" + last_diag_.client_message + ")";
        } else {
            m += "none since the last successful connect";
        }
        diag.client_message = std::move(m);
        diag.server_message = last_diag_.server_message;  // the server's own words, if it said any
    }

    // By the handle's owner. The next borrower must get the registered session and nothing else:
    // a session the borrower changed (SET, USE, user variables, temporary tables, locks, an open
    // transaction, a run() callable) is reset with COM_RESET_CONNECTION and the registered session
    // replayed, under reset_timeout; if that fails it is closed (the next borrow reconnects). An
    // unchanged session costs nothing here, and a healthy return takes no lock.
    void give_back(slot& s, bool discard) noexcept {
        add_retries(s);
        const bool open = s.conn && s.conn->is_open();
        if (open && !discard && s.conn->dirty()) {
            const bool in_txn = s.conn->in_transaction();
            diagnostics d;
            ++counters_.resets;
            if (in_txn) ++counters_.rolled_back_on_return;
            if (!s.conn->reset_if_dirty(call_options{popts_.reset_timeout}, d)) ++counters_.reset_failures;
        }
        if (!open) ++counters_.broken;  // its last operation broke it and could not reconnect
        s.where.store(nullptr, std::memory_order_relaxed);
        s.handed_out.store(false, std::memory_order_release);
        const std::uint32_t i = index_of(s);
        if (discard || closing_.load(std::memory_order_acquire)) {
            std::vector<std::unique_ptr<connection_type>> doomed;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                set_in_use(s, false);
                release_slot(i, doomed);
            }
            cv_.notify_all();
            return;
        }
        // A closed one stays: the next borrower's validation reconnects it in place.
        s.idle_since.store(ns(std::chrono::steady_clock::now()), std::memory_order_relaxed);
        set_in_use(s, false);
        push_idle(i);
        if (waiting_.load(std::memory_order_seq_cst) > 0) {
            std::lock_guard<std::mutex> lock(mutex_);  // orders the wake-up after the waiter's check
            cv_.notify_one();
        }
    }

    // By the housekeeper: opens one connection towards min_size.
    void refill_one(std::uint32_t i) {
        slot& s = slots_[i];
        std::error_code ec;
        diagnostics diag;
        bool ok = false;
        const auto until = std::chrono::steady_clock::now() + options_.connect_timeout;
        try {
            ok = validate_slot(s, until, ec, diag);
        } catch (const std::exception& e) {
            ec = make_error_code(errc::internal_error);
            diag.client_message = e.what();
        }
        add_retries(s);
        std::vector<std::unique_ptr<connection_type>> doomed;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            --connecting_;
            const auto now = std::chrono::steady_clock::now();
            if (ok) {
                ++counters_.created;
                note_connect_success(now);
                s.idle_since.store(ns(now), std::memory_order_relaxed);
                push_idle(i);
                // After an outage the next one waits a random while: no burst at a recovering server.
                const auto j = popts_.refill_jitter.count();
                const auto delay = refill_jittered_ && j > 0
                                       ? std::chrono::milliseconds(static_cast<long long>(rng_() % static_cast<std::uint64_t>(j + 1)))
                                       : std::chrono::milliseconds(0);
                next_refill_at_ = now + delay;
            } else {
                note_connect_failure(ec, diag, now);
                release_slot(i, doomed);
            }
        }
        cv_.notify_all();
    }

    void housekeep() {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!closing_) {
            auto wake = std::chrono::steady_clock::now() + popts_.housekeeping_interval;
            if (live_.load(std::memory_order_relaxed) < popts_.min_size && connecting_ == 0) {
                // Refilling: come back when the next connect is allowed, not a full interval later.
                const auto next = std::max(next_refill_at_, next_connect_at_);
                wake = std::min(wake, std::max(next, std::chrono::steady_clock::now() + std::chrono::milliseconds(1)));
            }
            house_cv_.wait_until(lock, wake, [&] { return closing_.load(); });
            if (closing_) break;
            lock.unlock();
            try {
                maintain();
            } catch (...) {
                // Out of memory and the like: try again next round.
            }
            lock.lock();
        }
    }

    const connect_options options_;
    const pool_options popts_;
    const Policy policy_;
    const session_spec spec_;
    const clock_type clock_;

    const std::uint64_t id_ = next_id();            // this pool, for the threads' affinity hints
    std::unique_ptr<slot[]> slots_;                 // max_size slots, never reallocated
    // Written by every borrow and return: a line of its own, away from the flags every borrow reads.
    alignas(64) std::atomic<std::uint64_t> idle_head_{0};  // the lock-free idle stack (tag << 32 | index + 1)
    alignas(64) std::atomic<std::size_t> live_{0};  // slots holding a connection (or being opened)
    std::atomic<std::size_t> waiting_{0};           // borrowers on the slow path
    std::atomic<bool> outage_{false};               // the last connect failed: connects are single-flight
    alignas(64) detail::pool_counters counters_;

    // The slow path's state, under mutex_.
    mutable std::mutex mutex_;
    std::condition_variable cv_;        // borrowers: a connection came back, the gate opened
    std::condition_variable house_cv_;  // the housekeeper: shutting down
    std::vector<std::uint32_t> free_;   // slots with no connection
    std::size_t connecting_ = 0;
    bool refill_jittered_ = false;  // the refill after an outage is spread out
    std::atomic<bool> closing_{false};
    time_point next_connect_at_{};  // backoff between failed connects
    time_point next_refill_at_{};
    backoff backoff_;
    std::mt19937_64 rng_;
    std::error_code last_error_;
    diagnostics last_diag_;
    std::shared_ptr<slot_observer> observer_;
    std::thread housekeeper_;  // last: started once everything else exists
};

}  // namespace lifeline

#endif  // LIFELINE_POOL_HPP
