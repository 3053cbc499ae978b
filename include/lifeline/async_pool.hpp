// lifeline — a pool of async connections for Boost.Asio (the async twin of pool.hpp).
//
//   lifeline::async_pool<lifeline::capi> db{io.get_executor(), options, {/*max_size*/ 16}};
//   auto [ec, c] = co_await db.async_borrow(2s, boost::asio::use_awaitable);
//   if (!ec) auto [qec, r] = co_await c->async_query("SELECT 1", lifeline::idempotent, boost::asio::use_awaitable);
//   // c goes back to the pool when it is destroyed (or c.reset()).
//
// The same rules as the blocking pool, without blocking:
//   - Borrowing validates the connection exactly as the connection does before each use
//     (async_ready with fail_fast: socket poll, ping after the idle window, recycle, reconnect +
//     session restore): a connection lifeline would reject is reconnected, never handed out dead.
//   - Connects are single-flight: new connections are opened one at a time, and once a connect
//     failed (outage) every borrow that might connect waits for the one in flight; between failed
//     connects the pool backs off with jitter (a timer). N borrowers against a dead server cause
//     one connect attempt at a time.
//   - A returned session whose state changed is reset (COM_RESET_CONNECTION + the registered
//     session, under reset_timeout) before the next borrower gets it; if that fails it is closed.
//   - Borrowers are served first come, first served; a borrow that gets nothing within its
//     timeout completes with errc::pool_exhausted (the empty handle's diagnostics() say why).
//
// Completion signature of async_borrow: void(std::error_code, async_pool::handle). Like the
// connections, the pool lives on one executor (one io thread, or a strand): call it from there.
// Handles may be destroyed anywhere on that executor; the pool's state outlives a pool object
// destroyed while handles are out (they are then closed on return).
#ifndef LIFELINE_ASYNC_POOL_HPP
#define LIFELINE_ASYNC_POOL_HPP

#include <utility>  // before any Boost header

#include <lifeline/async_connection.hpp>
#include <lifeline/detail/pool_slots.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace lifeline {

struct async_pool_options {
    std::size_t max_size = 8;  // connections at most (in use + idle + being opened)
    // Default wait for async_borrow(); also bounds the validation (and reconnect) of what it hands out.
    std::chrono::milliseconds borrow_timeout{5000};
    // Bound on resetting a returned session whose state changed; then it is closed.
    std::chrono::milliseconds reset_timeout{1000};
    // Idle connections unused this long are closed (checked on borrow and return); 0 disables.
    std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
    // Given to every connection.
    std::shared_ptr<lifeline::observer> connection_observer;
    // Shared by the pool's connections; null: the process-wide budget / per-endpoint breaker and monitor.
    std::shared_ptr<lifeline::retry_budget> budget;
    std::shared_ptr<lifeline::circuit_breaker> breaker;
    std::shared_ptr<lifeline::endpoint_monitor> monitor;

    std::string validate() const {
        std::string why;
        if (max_size == 0) why += "async_pool_options.max_size must be >= 1 (e.g. 8); ";
        if (borrow_timeout.count() <= 0) why += "async_pool_options.borrow_timeout must be > 0 (e.g. 5s); ";
        if (reset_timeout.count() <= 0) why += "async_pool_options.reset_timeout must be > 0 (e.g. 1s); ";
        if (idle_timeout.count() < 0) why += "async_pool_options.idle_timeout must be >= 0 (0 disables); ";
        return why;
    }
};

struct async_pool_stats {
    std::size_t in_use = 0;      // handed out, being validated, or being reset after return
    std::size_t idle = 0;
    std::size_t waiting = 0;     // borrows without a connection yet
    std::size_t connecting = 0;  // single-flight connects in progress
    std::size_t max_size = 0;
    std::uint64_t created = 0, closed = 0;
    std::uint64_t broken = 0;            // found dead on validation, or returned closed
    std::uint64_t retries = 0;           // the connections' retries
    std::uint64_t connect_failures = 0;  // validations that could not produce a connection
    std::uint64_t borrows = 0, exhausted = 0;
    std::uint64_t resets = 0, reset_failures = 0;
};

template <class Driver, class Policy = default_policy>
class async_pool {
public:
    using connection_type = async_connection<Driver, Policy>;
    using session_spec = typename connection_type::session_spec;
    using executor_type = boost::asio::any_io_executor;
    using time_point = std::chrono::steady_clock::time_point;

private:
    struct impl;
    struct slot {
        std::unique_ptr<connection_type> conn;
        time_point idle_since{};
        std::uint64_t retries_seen = 0;
    };

public:
    // RAII: the connection goes back to the pool when the handle is destroyed or reset().
    class handle {
    public:
        handle() = default;
        handle(handle&& o) noexcept : pool_(std::move(o.pool_)), slot_(std::exchange(o.slot_, nullptr)), diag_(std::move(o.diag_)) {}
        handle& operator=(handle&& o) noexcept {
            if (this != &o) {
                reset();
                pool_ = std::move(o.pool_);
                slot_ = std::exchange(o.slot_, nullptr);
                diag_ = std::move(o.diag_);
            }
            return *this;
        }
        handle(const handle&) = delete;
        handle& operator=(const handle&) = delete;
        ~handle() { reset(); }

        connection_type* operator->() const noexcept { return slot_->conn.get(); }
        connection_type& operator*() const noexcept { return *slot_->conn; }
        connection_type* get() const noexcept { return slot_ ? slot_->conn.get() : nullptr; }
        explicit operator bool() const noexcept { return slot_ != nullptr; }
        // Why a borrow failed (an empty handle); empty otherwise.
        const diagnostics& diag() const noexcept { return diag_; }

        void reset() noexcept { give_back(false); }
        // Closes the connection instead of reusing it.
        void discard() noexcept { give_back(true); }

    private:
        friend struct impl;
        handle(std::shared_ptr<impl> p, slot* s) noexcept : pool_(std::move(p)), slot_(s) {}
        explicit handle(diagnostics d) noexcept : diag_(std::move(d)) {}
        void give_back(bool discard) noexcept {
            if (slot_) pool_->give_back(slot_, discard);
            pool_.reset();
            slot_ = nullptr;
        }
        std::shared_ptr<impl> pool_;
        slot* slot_ = nullptr;
        diagnostics diag_;
    };

    async_pool(executor_type ex, connect_options options, async_pool_options po = {}, Policy policy = {},
               session_spec session = {})
        : impl_(std::make_shared<impl>(std::move(ex), std::move(options), std::move(po), std::move(policy), std::move(session))) {
        std::string why = impl_->popts_.validate();
        if (auto c = validate(impl_->options_); !c.empty()) why += c + "; ";
        why += impl_->policy_.validate();
        if (!why.empty()) {
            diagnostics d;
            d.client_message = why;
            throw error(make_error_code(errc::invalid_option), std::move(d));
        }
        // A connection validates everything else (numeric address, on_connect): fail here, not
        // at the first borrow.
        connection_type probe(impl_->ex_, impl_->options_, impl_->policy_, impl_->spec_);
        impl_->observer_ = std::make_shared<slot_observer>(impl_, impl_->popts_.connection_observer);
    }
    async_pool(const async_pool&) = delete;
    async_pool& operator=(const async_pool&) = delete;
    // Pending borrows complete with errc::not_connected; idle connections close; handles still
    // out are closed when they come back.
    ~async_pool() { impl_->shutdown(); }

    executor_type get_executor() const noexcept { return impl_->ex_; }

    // void(std::error_code, handle)
    template <class Token>
    auto async_borrow(std::chrono::milliseconds timeout, Token&& token) {
        return boost::asio::async_initiate<Token, void(std::error_code, handle)>(
            [p = impl_](auto h, std::chrono::milliseconds t) {
                p->borrow(t, borrow_handler(std::move(h), p->ex_));
            },
            token, timeout);
    }
    template <class Token>
    auto async_borrow(Token&& token) {
        return async_borrow(impl_->popts_.borrow_timeout, std::forward<Token>(token));
    }

    async_pool_stats stats() const {
        async_pool_stats s = impl_->stats_;
        s.in_use = impl_->in_use_;
        s.idle = impl_->idle_.size();
        s.waiting = impl_->waiters_.size();
        s.connecting = impl_->connecting_;
        s.max_size = impl_->popts_.max_size;
        return s;
    }
    const async_pool_options& options() const noexcept { return impl_->popts_; }

private:
    using borrow_handler = detail::async_handler<std::error_code, handle>;

    struct waiter {
        explicit waiter(const executor_type& ex) : timer(ex) {}
        borrow_handler h;
        boost::asio::steady_timer timer;
        time_point until{};
        std::chrono::milliseconds timeout{0};
        bool first = true;
        bool queued = false;
    };

    // Counts connections found dead on validation, forwards everything to the caller's observer.
    struct slot_observer final : observer {
        explicit slot_observer(std::weak_ptr<impl> p, std::shared_ptr<observer> next) : p_(std::move(p)), next_(std::move(next)) {}
        void on_attempt(const attempt_event& e) override {
            if (next_) next_->on_attempt(e);
        }
        void on_retry(const retry_event& e) override {
            if (next_) next_->on_retry(e);
        }
        void on_reconnect(const reconnect_event& e) override {
            if (e.cause == reconnect_cause::found_dead || e.cause == reconnect_cause::ping_failed)
                if (auto p = p_.lock()) ++p->stats_.broken;
            if (next_) next_->on_reconnect(e);
        }
        void on_session_restored(const session_restored_event& e) override {
            if (next_) next_->on_session_restored(e);
        }
        void on_gave_up(const gave_up_event& e) override {
            if (next_) next_->on_gave_up(e);
        }
        void on_ping(std::string_view endpoint, bool ok) override {
            if (next_) next_->on_ping(endpoint, ok);
        }
        std::weak_ptr<impl> p_;
        std::shared_ptr<observer> next_;
    };

    struct impl : std::enable_shared_from_this<impl> {
        impl(executor_type ex, connect_options o, async_pool_options po, Policy p, session_spec s)
            : ex_(std::move(ex)), options_(std::move(o)), popts_(std::move(po)), policy_(std::move(p)), spec_(std::move(s)),
              gate_timer_(ex_), backoff_(policy_.backoff, detail::entropy_seed(this)) {}

        void borrow(std::chrono::milliseconds timeout, borrow_handler h) {
            if (closing_) {
                diagnostics d;
                d.client_message = "the pool is shutting down";
                h.post(make_error_code(errc::not_connected), handle(std::move(d)));
                return;
            }
            auto w = std::make_shared<waiter>(ex_);
            w->h = std::move(h);
            w->timeout = timeout;
            w->until = std::chrono::steady_clock::now() + timeout;
            w->queued = true;
            waiters_.push_back(w);
            w->timer.expires_at(w->until);
            std::weak_ptr<impl> weak = this->shared_from_this();
            w->timer.async_wait([weak, w](const boost::system::error_code& ec) {
                if (ec) return;
                if (auto self = weak.lock()) self->expired(w);
            });
            pump();
        }

        void expired(const std::shared_ptr<waiter>& w) {
            if (!w->queued) return;  // being validated: that is bounded by the same timeout
            remove_waiter(w);
            exhaust(w);
            pump();
        }

        void exhaust(const std::shared_ptr<waiter>& w) {
            ++stats_.exhausted;
            diagnostics d;
            d.where = phase::connect;
            d.code = last_diag_.code;
            d.sqlstate = last_diag_.sqlstate;
            d.driver = last_diag_.driver;
            std::string m = "no connection within " + std::to_string(w->timeout.count()) +
                            " ms: in_use=" + std::to_string(in_use_) + " idle=" + std::to_string(idle_.size()) +
                            " waiting=" + std::to_string(waiters_.size()) + " connecting=" + std::to_string(connecting_) +
                            " max=" + std::to_string(popts_.max_size) + "; last connect error: ";
            if (last_error_) {
                m += last_error_.message();
                if (last_diag_.code) m += " [" + std::to_string(last_diag_.code) + "]";
                if (!last_diag_.client_message.empty()) m += " (" + last_diag_.client_message + ")";
            } else {
                m += "none since the last successful connect";
            }
            d.client_message = std::move(m);
            d.server_message = last_diag_.server_message;
            w->h.post(make_error_code(errc::pool_exhausted), handle(std::move(d)));
        }

        void remove_waiter(const std::shared_ptr<waiter>& w) {
            w->queued = false;
            waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), w), waiters_.end());
        }

        // Serves waiters in order while a connection can be had (the blocking pool's rules).
        void pump() {
            if (closing_) return;
            const time_point now = std::chrono::steady_clock::now();
            evict_idle(now);
            while (!waiters_.empty()) {
                auto w = waiters_.front();
                if (!w->first && now >= w->until) {  // a retry after a failed connect: only within its time
                    remove_waiter(w);
                    boost::system::error_code ignored;
                    w->timer.cancel(ignored);
                    exhaust(w);
                    continue;
                }
                const bool may_connect = connecting_ == 0 && now >= next_connect_at_;
                slot* s = nullptr;
                bool token = false;  // this borrow is the pool's one connect in flight
                if (!idle_.empty() && (!outage_ || may_connect)) {
                    s = idle_.back();  // LIFO: the hottest connection
                    idle_.pop_back();
                    token = outage_;  // in an outage its validation may well connect: single-flight
                } else if (slots_.size() < popts_.max_size && may_connect) {
                    slots_.push_back(std::make_unique<slot>());
                    s = slots_.back().get();
                    token = true;  // new connections are opened one at a time
                }
                if (!s) break;
                remove_waiter(w);
                validate(s, w, token, 0);
            }
            if (waiters_.empty() && gate_armed_) {
                // Nobody waits for the gate: do not keep the io_context busy for it.
                boost::system::error_code ignored;
                gate_timer_.cancel(ignored);
                gate_armed_ = false;
            }
            if (!waiters_.empty() && connecting_ == 0 && next_connect_at_ > now && !gate_armed_) {
                gate_armed_ = true;
                gate_timer_.expires_at(next_connect_at_);
                std::weak_ptr<impl> weak = this->shared_from_this();
                gate_timer_.async_wait([weak](const boost::system::error_code& ec) {
                    if (ec) return;  // cancelled: gate_armed_ was cleared by whoever cancelled
                    if (auto self = weak.lock()) {
                        self->gate_armed_ = false;
                        self->pump();
                    }
                });
            }
        }

        void validate(slot* s, std::shared_ptr<waiter> w, bool token, int pass) {
            if (pass == 0) {
                ++in_use_;
                if (token) ++connecting_;
            }
            const bool fresh = !s->conn;
            if (fresh) s->conn = make_connection();
            const auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(w->until - std::chrono::steady_clock::now()),
                                       std::chrono::milliseconds(1));
            std::weak_ptr<impl> weak = this->shared_from_this();
            // One connect attempt: the pool paces connects itself (single-flight, backoff).
            s->conn->async_ready(call_options{left, true}, [weak, s, w, token, fresh, pass](std::error_code ec) {
                if (auto self = weak.lock()) self->validated(s, w, token, fresh || pass > 0, pass, ec);
            });
        }

        void validated(slot* s, std::shared_ptr<waiter> w, bool token, bool fresh, int pass, std::error_code ec) {
            if (!closing_ && pass == 0 && (ec == errc::transaction_lost || ec == errc::session_state_lost)) {
                // The previous borrower's loss (it was told): the next one starts on a clean session.
                s->conn->acknowledge_transaction_lost();
                s->conn->close();
                return validate(s, std::move(w), token, 1);
            }
            stats_.retries += detail::take_new_retries(*s);
            if (token) --connecting_;
            const time_point now = std::chrono::steady_clock::now();
            boost::system::error_code ignored;
            if (closing_) {
                --in_use_;
                remove_slot(s);
                w->timer.cancel(ignored);
                diagnostics d;
                d.client_message = "the pool is shutting down";
                w->h.post(make_error_code(errc::not_connected), handle(std::move(d)));
                return;
            }
            if (!ec) {
                if (fresh) ++stats_.created;
                if (token || fresh) note_connect_success(now);
                ++stats_.borrows;
                w->timer.cancel(ignored);
                w->h.post(std::error_code{}, handle(this->shared_from_this(), s));
                pump();  // the gate may be open again
                return;
            }
            note_connect_failure(ec, s->conn->last_diagnostics(), now);
            --in_use_;
            remove_slot(s);
            w->first = false;
            w->queued = true;
            waiters_.push_front(w);
            pump();
        }

        void give_back(slot* s, bool discard) noexcept {
            try {
                std::weak_ptr<impl> weak = this->shared_from_this();
                boost::asio::dispatch(ex_, [weak, s, discard] {
                    if (auto self = weak.lock()) self->returned(s, discard);
                });
            } catch (...) {
            }
        }

        void returned(slot* s, bool discard) {
            stats_.retries += detail::take_new_retries(*s);
            if (closing_) {
                --in_use_;
                remove_slot(s);
                return;
            }
            if (s->conn->busy()) {
                // Given back with an operation in flight: its handler gets operation_canceled
                // (or the unknown outcome); the connection is not lent again.
                discard = true;
            }
            const bool open = s->conn->is_open();
            if (!open) ++stats_.broken;
            if (discard) {
                --in_use_;
                remove_slot(s);
                pump();
                return;
            }
            if (open && s->conn->dirty()) {
                ++stats_.resets;
                std::weak_ptr<impl> weak = this->shared_from_this();
                s->conn->async_reset_if_dirty(call_options{popts_.reset_timeout}, [weak, s](std::error_code ec) {
                    if (auto self = weak.lock()) {
                        if (ec) ++self->stats_.reset_failures;
                        self->put_idle(s);
                    }
                });
                return;
            }
            put_idle(s);
        }

        void put_idle(slot* s) {
            --in_use_;
            if (closing_) return remove_slot(s);
            // A closed one stays: the next borrower's validation reconnects it in place.
            s->idle_since = std::chrono::steady_clock::now();
            idle_.push_back(s);
            pump();
        }

        void evict_idle(time_point now) {
            if (popts_.idle_timeout.count() <= 0) return;
            // idle_ is a LIFO stack: its front has been idle longest.
            while (!idle_.empty() && now - idle_.front()->idle_since >= popts_.idle_timeout) {
                slot* s = idle_.front();
                idle_.erase(idle_.begin());
                remove_slot(s);
            }
        }

        void remove_slot(slot* s) {
            idle_.erase(std::remove(idle_.begin(), idle_.end(), s), idle_.end());
            auto it = std::find_if(slots_.begin(), slots_.end(), [&](const auto& p) { return p.get() == s; });
            if (it == slots_.end()) return;
            if ((*it)->conn) ++stats_.closed;
            slots_.erase(it);  // the connection's destructor closes it (cancelling what it runs)
        }

        std::unique_ptr<connection_type> make_connection() {
            auto c = std::make_unique<connection_type>(ex_, options_, policy_, spec_);
            c->set_observer(observer_);
            if (popts_.budget) c->set_retry_budget(popts_.budget);
            if (popts_.breaker) c->set_circuit_breaker(popts_.breaker);
            if (popts_.monitor) c->set_endpoint_monitor(popts_.monitor);
            return c;
        }

        void note_connect_failure(const std::error_code& ec, const diagnostics& diag, time_point now) {
            ++stats_.connect_failures;
            // The most telling error: a driver's verdict beats "deadline exceeded".
            if (diag.code != 0 || !last_error_) {
                last_error_ = diag.code != 0 ? make_driver_error_code(diag.code) : ec;
                last_diag_ = diag;
            }
            outage_ = true;
            next_connect_at_ = now + std::chrono::duration_cast<time_point::duration>(backoff_.next());
        }
        void note_connect_success(time_point now) {
            outage_ = false;
            backoff_.reset();
            next_connect_at_ = now;
            last_error_.clear();
            last_diag_ = diagnostics{};
        }

        void shutdown() {
            closing_ = true;
            boost::system::error_code ignored;
            gate_timer_.cancel(ignored);
            auto waiting = std::move(waiters_);
            waiters_.clear();
            for (auto& w : waiting) {
                w->queued = false;
                w->timer.cancel(ignored);
                diagnostics d;
                d.client_message = "the pool is shutting down";
                w->h.post(make_error_code(errc::not_connected), handle(std::move(d)));
            }
            auto idle = std::move(idle_);
            idle_.clear();
            for (slot* s : idle) remove_slot(s);
        }

        executor_type ex_;
        connect_options options_;
        async_pool_options popts_;
        Policy policy_;
        session_spec spec_;
        boost::asio::steady_timer gate_timer_;
        bool gate_armed_ = false;
        std::shared_ptr<observer> observer_;
        std::vector<std::unique_ptr<slot>> slots_;
        std::vector<slot*> idle_;
        std::deque<std::shared_ptr<waiter>> waiters_;
        std::size_t in_use_ = 0, connecting_ = 0;
        bool outage_ = false, closing_ = false;
        time_point next_connect_at_{};
        backoff backoff_;
        std::error_code last_error_;
        diagnostics last_diag_;
        async_pool_stats stats_;
    };

    std::shared_ptr<impl> impl_;
};

}  // namespace lifeline

#endif  // LIFELINE_ASYNC_POOL_HPP
