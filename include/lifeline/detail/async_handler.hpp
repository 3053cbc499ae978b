// lifeline — a type-erased, move-only, one-shot Asio completion handler.
//
// The async core keeps one pending completion per operation without being a template on the
// handler type. The handler's associated executor is tracked as outstanding work while it waits
// (so io_context::run() does not return under a pending operation), and it is invoked through that
// executor: complete() dispatches (inline when already running there, the common case for a
// single io thread), post() never runs it inline (what an initiating function must do when it
// finishes at once; submitted as a continuation, see below).
#ifndef LIFELINE_DETAIL_ASYNC_HANDLER_HPP
#define LIFELINE_DETAIL_ASYNC_HANDLER_HPP

#include <utility>  // before any Boost header (Asio 1.18's awaitable.hpp needs std::exchange)

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/execute.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/execution/relationship.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <memory>
#include <tuple>
#include <type_traits>

namespace lifeline::detail {

template <class... Args>
class async_handler {
public:
    async_handler() noexcept = default;
    template <class Handler, class IoExecutor>
    async_handler(Handler&& h, const IoExecutor& io)
        : p_(std::make_unique<impl<std::decay_t<Handler>, IoExecutor>>(std::forward<Handler>(h), io)) {}
    async_handler(async_handler&&) noexcept = default;
    async_handler& operator=(async_handler&&) noexcept = default;

    explicit operator bool() const noexcept { return static_cast<bool>(p_); }

    // Runs the handler through its executor; inline if the caller already runs there.
    void complete(Args... args) {
        auto p = std::move(p_);
        p->dispatch(std::move(args)...);
    }
    // Never inline.
    void post(Args... args) {
        auto p = std::move(p_);
        p->post(std::move(args)...);
    }

private:
    struct base {
        virtual ~base() = default;
        virtual void dispatch(Args&&... args) = 0;
        virtual void post(Args&&... args) = 0;
    };

    template <class H, class IoExecutor>
    struct impl final : base {
        using executor = boost::asio::associated_executor_t<H, IoExecutor>;
        using work_executor = std::decay_t<decltype(
            boost::asio::prefer(std::declval<executor>(), boost::asio::execution::outstanding_work.tracked))>;

        impl(H&& handler, const IoExecutor& io)
            : h(std::move(handler)),
              work(boost::asio::prefer(boost::asio::get_associated_executor(h, io),
                                       boost::asio::execution::outstanding_work.tracked)) {}
        impl(const H& handler, const IoExecutor& io)
            : h(handler),
              work(boost::asio::prefer(boost::asio::get_associated_executor(h, io),
                                       boost::asio::execution::outstanding_work.tracked)) {}

        void dispatch(Args&&... args) override {
            work_executor w = std::move(work);
            boost::asio::dispatch(w, invoker{std::move(h), w, std::make_tuple(std::move(args)...)});
        }
        // Never inline, but as a continuation of the running handler: on the io thread it goes to
        // the thread's private queue (asio::post would mark it a fork, take the scheduler's lock
        // and interrupt the reactor: one epoll_ctl per operation that finished at once).
        void post(Args&&... args) override {
            work_executor w = std::move(work);
            boost::asio::execution::execute(
                boost::asio::prefer(w, boost::asio::execution::blocking.never,
                                    boost::asio::execution::relationship.continuation),
                invoker{std::move(h), w, std::make_tuple(std::move(args)...)});
        }

        // Holds the work until the handler has run.
        struct invoker {
            H h;
            work_executor w;
            std::tuple<Args...> args;
            void operator()() { std::apply(std::move(h), std::move(args)); }
        };

        H h;
        work_executor work;
    };

    std::unique_ptr<base> p_;
};

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_ASYNC_HANDLER_HPP
