// lifeline — a fault-injecting TCP proxy for testing MySQL/MariaDB clients (loopback only).
//
//   lifeline::testing::fault_proxy proxy{"127.0.0.1", server_port};
//   connect your client to 127.0.0.1:proxy.port(), then, at any time from any thread:
//   proxy.blackhole();                                       // silence both ways, keep sockets open
//   proxy.cut_after(5, lifeline::testing::direction::server_to_client, lifeline::testing::cut_kind::rst);
//   proxy.cut_on_commit(lifeline::testing::commit_cut::after_forward);   // the lost COMMIT
//   proxy.drop_when_idle(std::chrono::seconds(2));           // a firewall forgetting idle connections
//   proxy.pass();
//   CHECK(proxy.stats().cuts == 1);                          // prove the fault happened
//
// Modes are exclusive and persistent: a mode applies to every current and future connection until
// another mode is set (cut_after counts per connection, from the moment the mode was set or the
// connection was opened). refuse_new() is orthogonal to the mode.
//
// Runs its own io_context on one internal thread; the destructor (or stop()) closes everything and
// joins. That thread never blocks, so stop() is bounded. Needs Boost.Asio (header-only) + Threads;
// link lifeline::testing. Not for production traffic: no TLS, no compression awareness (COMMIT
// detection reads plain COM_QUERY packets; both are off in lifeline's tests).
#ifndef LIFELINE_TESTING_FAULT_PROXY_HPP
#define LIFELINE_TESTING_FAULT_PROXY_HPP

#include <boost/asio/buffer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace lifeline::testing {

enum class direction { client_to_server, server_to_client };

// rst: SO_LINGER 0 then close, the peer reads ECONNRESET. fin: orderly shutdown, the peer reads
// EOF (the kernel still sends RST instead if unread bytes remain in our receive buffer).
enum class cut_kind { rst, fin };

// before_forward: the COMMIT never reaches the server; both sides are reset (never committed).
// after_forward: the COMMIT is forwarded; when the server's reply arrives it is swallowed, the
// client side is reset and the server side closed (committed, and the client never learns).
enum class commit_cut { before_forward, after_forward };

// A snapshot of the proxy's counters (each read atomically; together only roughly consistent).
struct fault_proxy_stats {
    std::uint64_t accepted = 0;                // client connections proxied
    std::uint64_t refused = 0;                 // client connections reset because of refuse_new
    std::uint64_t upstream_failures = 0;       // upstream connects that failed
    std::uint64_t bytes_client_to_server = 0;  // bytes forwarded to the server
    std::uint64_t bytes_server_to_client = 0;  // bytes forwarded to clients
    std::uint64_t cuts = 0;                    // connections cut (cut_after, cut_on_commit, cut_all)
    std::uint64_t commits_seen = 0;            // COM_QUERY packets starting with COMMIT
    std::uint64_t commits_cut = 0;             // of those, cut by cut_on_commit
    std::uint64_t idle_drops = 0;              // connections silenced by drop_when_idle
};

namespace detail {

enum class proxy_mode { pass, latency, blackhole, cut_after, cut_on_commit, idle_drop };

struct proxy_config {
    proxy_mode mode = proxy_mode::pass;
    std::uint64_t generation = 0;  // bumped on every change, restarts cut_after's byte count
    std::chrono::milliseconds latency{0};
    std::size_t cut_bytes = 0;
    direction cut_direction = direction::client_to_server;
    cut_kind kind = cut_kind::rst;
    commit_cut commit = commit_cut::before_forward;
    std::chrono::milliseconds idle_drop{0};
};

// State shared by the proxy object (test thread) and its sessions (io thread).
struct proxy_shared {
    std::mutex mu;
    proxy_config cfg;  // guarded by mu
    std::atomic<bool> refuse{false};
    std::atomic<std::uint64_t> accepted{0}, refused{0}, upstream_failures{0}, bytes_c2s{0}, bytes_s2c{0},
        cuts{0}, commits_seen{0}, commits_cut{0}, idle_drops{0};

    proxy_config snapshot() {
        std::lock_guard<std::mutex> lock(mu);
        return cfg;
    }
};

// Follows the client->server MySQL packet stream (3-byte LE length, 1-byte sequence id, payload)
// across reads. A command packet (sequence id 0) is held back until we know whether it is a
// COM_QUERY whose SQL starts with COMMIT (case-insensitive, after optional whitespace; comments
// before COMMIT are not recognised), so a COMMIT split over many reads can still be stopped
// before any byte of it is forwarded.
class commit_detector {
public:
    // Appends the bytes that may be forwarded to `out`; sets `commit_at` (if unset) to the offset in
    // `out` where the first detected COMMIT packet starts. Returns the number of COMMITs detected.
    // With hold == false (any mode but cut_on_commit) nothing is held back: packets are still
    // followed and COMMITs counted, but `commit_at` is meaningless.
    std::size_t feed(const char* p, std::size_t n, std::string& out, std::optional<std::size_t>& commit_at,
                     bool hold = true) {
        const std::size_t found = feed_all(p, n, out, commit_at);
        if (!hold) {
            out += held_;
            held_.clear();
        }
        return found;
    }

private:
    std::size_t feed_all(const char* p, std::size_t n, std::string& out, std::optional<std::size_t>& commit_at) {
        std::size_t found = 0;
        while (n > 0) {
            if (header_len_ < 4) {
                header_[header_len_++] = static_cast<unsigned char>(*p);
                held_.push_back(*p);
                ++p;
                --n;
                if (header_len_ == 4) start_payload(out);
                continue;
            }
            if (deciding_) {
                held_.push_back(*p);
                prefix_.push_back(*p);
                ++p;
                --n;
                const int verdict = decide();
                if (verdict == 0) continue;
                if (verdict > 0) {
                    ++found;
                    if (!commit_at) commit_at = out.size();
                }
                out += held_;
                held_.clear();
                deciding_ = false;
                payload_left_ = payload_len_ - prefix_.size();
                if (payload_left_ == 0) header_len_ = 0;
                continue;
            }
            const std::size_t take = n < payload_left_ ? n : payload_left_;
            out.append(p, take);
            p += take;
            n -= take;
            payload_left_ -= take;
            if (payload_left_ == 0) header_len_ = 0;
        }
        return found;
    }

    static constexpr std::size_t max_prefix = 64;  // more leading whitespace than this: not a COMMIT

    void start_payload(std::string& out) {
        payload_len_ = static_cast<std::size_t>(header_[0]) | (static_cast<std::size_t>(header_[1]) << 8) |
                       (static_cast<std::size_t>(header_[2]) << 16);
        prefix_.clear();
        deciding_ = payload_len_ > 0 && header_[3] == 0;  // only sequence id 0 starts a command
        if (deciding_) return;
        out += held_;
        held_.clear();
        payload_left_ = payload_len_;
        if (payload_left_ == 0) header_len_ = 0;
    }

    static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
    static bool is_ident(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
    }

    // 1: COMMIT, -1: not a COMMIT, 0: need more bytes.
    int decide() const {
        const std::size_t have = prefix_.size();
        const bool complete = have == payload_len_;
        if (static_cast<unsigned char>(prefix_[0]) != 0x03) return -1;
        std::size_t i = 1;
        while (i < have && is_space(prefix_[i])) ++i;
        if (i == have) return complete || have >= max_prefix ? -1 : 0;
        static constexpr char word[] = "commit";
        for (std::size_t k = 0; k < 6; ++k, ++i) {
            if (i == have) return complete ? -1 : 0;
            char c = prefix_[i];
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            if (c != word[k]) return -1;
        }
        if (i == have) return complete ? 1 : 0;
        return is_ident(prefix_[i]) ? -1 : 1;
    }

    std::array<unsigned char, 4> header_{};
    std::size_t header_len_ = 0;
    std::size_t payload_len_ = 0;
    std::size_t payload_left_ = 0;
    bool deciding_ = false;
    std::string held_;    // bytes of the current packet not yet released
    std::string prefix_;  // payload bytes seen while deciding
};

namespace asio = boost::asio;

// One proxied connection. Lives on the io thread only (no locking); kept alive by its handlers.
class proxy_session : public std::enable_shared_from_this<proxy_session> {
public:
    proxy_session(asio::io_context& io, asio::ip::tcp::socket client, std::shared_ptr<proxy_shared> shared)
        : client_(std::move(client)),
          server_(io),
          shared_(std::move(shared)),
          c2s_(io, true),
          s2c_(io, false),
          idle_timer_(io) {}

    void start(const asio::ip::tcp::endpoint& upstream) {
        auto self = shared_from_this();
        server_.async_connect(upstream, [self](const boost::system::error_code& ec) {
            if (self->closed_) return;
            if (ec) {
                ++self->shared_->upstream_failures;
                self->close();
                return;
            }
            boost::system::error_code ignored;
            self->client_.set_option(asio::ip::tcp::no_delay(true), ignored);
            self->server_.set_option(asio::ip::tcp::no_delay(true), ignored);
            self->last_activity_ = idle_clock::now();
            self->watch_idle(self->shared_->snapshot());
            self->read(self->c2s_);
            self->read(self->s2c_);
        });
    }

    // A mode change may release a direction parked by blackhole(); it also restarts the idle clock,
    // so drop_when_idle counts from the moment it was set or the last traffic, whichever is later.
    void resume() {
        if (closed_ || dropped_) return;
        last_activity_ = idle_clock::now();
        watch_idle(shared_->snapshot());
        if (c2s_.paused) process(c2s_);
        if (!closed_ && s2c_.paused) process(s2c_);
    }

    // Cuts both sides; counted once per connection.
    void cut(cut_kind kind) {
        if (closed_) return;
        ++shared_->cuts;
        terminate(client_, kind);
        terminate(server_, kind);
        close();
    }

    bool closed() const noexcept { return closed_; }

private:
    struct pump {
        pump(asio::io_context& io, bool c2s) : timer(io), client_to_server(c2s) {}
        std::array<char, 16384> buf{};
        std::size_t held_n = 0;  // bytes in buf not yet processed
        bool held_eof = false;   // the read ended (EOF or error), not yet acted on
        bool paused = false;     // parked by blackhole()
        std::string out;         // what is being written to the other side
        asio::steady_timer timer;
        std::uint64_t generation = ~std::uint64_t{0};
        std::size_t counted = 0;  // bytes forwarded under the current cut_after
        bool client_to_server;
    };

    void read(pump& p) {
        auto self = shared_from_this();
        client_or_server(p, true).async_read_some(
            asio::buffer(p.buf), [self, &p](const boost::system::error_code& ec, std::size_t n) {
                if (self->closed_) return;
                p.held_n = ec ? 0 : n;
                p.held_eof = static_cast<bool>(ec);
                if (p.held_n > 0) self->last_activity_ = idle_clock::now();
                self->process(p);
            });
    }

    asio::ip::tcp::socket& client_or_server(pump& p, bool source) {
        return (p.client_to_server == source) ? client_ : server_;
    }

    void process(pump& p) {
        if (dropped_) {  // forgotten by drop_when_idle: whatever arrives is swallowed, forever
            p.paused = true;
            return;
        }
        const proxy_config cfg = shared_->snapshot();
        if (cfg.mode == proxy_mode::blackhole) {  // neither forward nor read: the peers see silence
            p.paused = true;
            return;
        }
        p.paused = false;
        if (p.held_eof) {
            close();
            return;
        }
        if (!p.client_to_server && swallow_reply_) {  // cut_on_commit(after_forward): the server answered
            ++shared_->commits_cut;
            ++shared_->cuts;
            terminate(client_, cut_kind::rst);
            close();
            return;
        }
        p.out.clear();
        std::optional<std::size_t> commit_at;
        if (p.client_to_server)
            shared_->commits_seen += detector_.feed(p.buf.data(), p.held_n, p.out, commit_at,
                                                     cfg.mode == proxy_mode::cut_on_commit);
        else
            p.out.assign(p.buf.data(), p.held_n);
        p.held_n = 0;

        std::optional<cut_kind> cut_when_written;
        bool commit_cut_pending = false;
        if (commit_at && cfg.mode == proxy_mode::cut_on_commit) {
            if (cfg.commit == commit_cut::before_forward) {
                p.out.resize(*commit_at);  // earlier packets still go; the COMMIT never does
                cut_when_written = cut_kind::rst;
                commit_cut_pending = true;
            } else {
                swallow_reply_ = true;
            }
        } else if (cfg.mode == proxy_mode::cut_after &&
                   p.client_to_server == (cfg.cut_direction == direction::client_to_server)) {
            if (p.generation != cfg.generation) {
                p.generation = cfg.generation;
                p.counted = 0;
            }
            const std::size_t left = cfg.cut_bytes - p.counted;
            if (p.out.size() >= left) {
                p.out.resize(left);
                cut_when_written = cfg.kind;
            }
            p.counted += p.out.size();
        }

        auto self = shared_from_this();
        auto write = [self, &p, cut_when_written, commit_cut_pending] {
            if (self->closed_) return;
            auto finish = [self, &p, cut_when_written, commit_cut_pending] {
                if (self->closed_) return;
                if (cut_when_written) {
                    if (commit_cut_pending) ++self->shared_->commits_cut;
                    self->cut(*cut_when_written);
                } else {
                    self->read(p);
                }
            };
            if (p.out.empty()) {
                finish();
                return;
            }
            // Counted before the write so that a peer that has the bytes also sees them counted.
            (p.client_to_server ? self->shared_->bytes_c2s : self->shared_->bytes_s2c) += p.out.size();
            asio::async_write(self->client_or_server(p, false), asio::buffer(p.out),
                              [self, finish](const boost::system::error_code& ec, std::size_t) {
                                  if (self->closed_) return;
                                  if (ec) {
                                      self->close();
                                      return;
                                  }
                                  finish();
                              });
        };
        if (cfg.mode == proxy_mode::latency && cfg.latency.count() > 0) {
            p.timer.expires_after(cfg.latency);
            p.timer.async_wait([write](const boost::system::error_code& ec) {
                if (!ec) write();
            });
        } else {
            write();
        }
    }

    using idle_clock = asio::steady_timer::clock_type;

    // drop_when_idle: one timer per connection, re-armed only when it fires (traffic just moves
    // last_activity_), so forwarding a chunk costs no timer operation.
    void watch_idle(const proxy_config& cfg) {
        if (closed_ || dropped_ || cfg.mode != proxy_mode::idle_drop) {
            idle_timer_.cancel();
            return;
        }
        idle_timer_.expires_at(last_activity_ + cfg.idle_drop);
        auto self = shared_from_this();
        idle_timer_.async_wait([self](const boost::system::error_code& ec) {
            if (ec || self->closed_ || self->dropped_) return;
            const proxy_config now_cfg = self->shared_->snapshot();
            if (now_cfg.mode != proxy_mode::idle_drop) return;
            if (idle_clock::now() - self->last_activity_ >= now_cfg.idle_drop) {
                // Both sockets stay open and nothing is closed or reset: the peers see silence,
                // as behind a stateful firewall that has forgotten the connection.
                self->dropped_ = true;
                ++self->shared_->idle_drops;
                return;
            }
            self->watch_idle(now_cfg);
        });
    }

    static void terminate(asio::ip::tcp::socket& s, cut_kind kind) {
        boost::system::error_code ignored;
        if (!s.is_open()) return;
        if (kind == cut_kind::rst) {
            s.set_option(asio::socket_base::linger(true, 0), ignored);
        } else {
            s.shutdown(asio::socket_base::shutdown_send, ignored);
            // Unread input would turn close() into a RST: drain what is already here.
            std::array<char, 4096> sink{};
            s.non_blocking(true, ignored);
            while (s.available(ignored) > 0 && !ignored) s.read_some(asio::buffer(sink), ignored);
        }
        s.close(ignored);
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        c2s_.timer.cancel();
        s2c_.timer.cancel();
        idle_timer_.cancel();
        boost::system::error_code ignored;
        client_.close(ignored);
        server_.close(ignored);
    }

    asio::ip::tcp::socket client_;
    asio::ip::tcp::socket server_;
    std::shared_ptr<proxy_shared> shared_;
    pump c2s_;
    pump s2c_;
    commit_detector detector_;
    asio::steady_timer idle_timer_;
    idle_clock::time_point last_activity_{};
    bool dropped_ = false;  // silenced by drop_when_idle; never forwards again
    bool closed_ = false;
    bool swallow_reply_ = false;  // cut_on_commit(after_forward) forwarded a COMMIT
};

}  // namespace detail

class fault_proxy {
public:
    // Listens on 127.0.0.1 (ephemeral port) and forwards to upstream_host:upstream_port, which must
    // be a loopback address (127.0.0.0/8, ::1, or "localhost" = 127.0.0.1): this tool must never
    // be pointed at another machine. Throws std::invalid_argument otherwise.
    fault_proxy(std::string upstream_host, std::uint16_t upstream_port)
        : shared_(std::make_shared<detail::proxy_shared>()),
          upstream_(loopback_address(upstream_host), upstream_port),
          acceptor_(io_),
          work_(io_.get_executor()) {
        const detail::asio::ip::tcp::endpoint listen(detail::asio::ip::address_v4::loopback(), 0);
        acceptor_.open(listen.protocol());
        acceptor_.set_option(detail::asio::socket_base::reuse_address(true));
        acceptor_.bind(listen);
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }

    fault_proxy(const fault_proxy&) = delete;
    fault_proxy& operator=(const fault_proxy&) = delete;
    ~fault_proxy() { stop(); }

    std::uint16_t port() const noexcept { return port_; }
    std::string host() const { return "127.0.0.1"; }

    // Forward everything unchanged (also releases what blackhole() parked).
    void pass() {
        set([](detail::proxy_config& c) { c.mode = detail::proxy_mode::pass; });
    }
    // Delay every chunk, both ways, by `delay` (chunks of one direction stay in order).
    void latency(std::chrono::milliseconds delay) {
        set([delay](detail::proxy_config& c) {
            c.mode = detail::proxy_mode::latency;
            c.latency = delay;
        });
    }
    // Stop forwarding both ways without closing: nothing more is read from either side, so the
    // peers see silence and the kernel buffers fill. Switching mode resumes where it stopped.
    void blackhole() {
        set([](detail::proxy_config& c) { c.mode = detail::proxy_mode::blackhole; });
    }
    // In each connection, forward `bytes` more bytes in direction `d`, then cut both sides. With
    // bytes == 0 the cut happens when the next chunk arrives in that direction.
    void cut_after(std::size_t bytes, direction d, cut_kind kind) {
        set([=](detail::proxy_config& c) {
            c.mode = detail::proxy_mode::cut_after;
            c.cut_bytes = bytes;
            c.cut_direction = d;
            c.kind = kind;
        });
    }
    // Cut every connection at its next COMMIT (see commit_cut).
    void cut_on_commit(commit_cut when) {
        set([when](detail::proxy_config& c) {
            c.mode = detail::proxy_mode::cut_on_commit;
            c.commit = when;
        });
    }
    // A stateful firewall or NAT that forgets idle connections (the article's cause 5): a connection
    // that carried no byte in either direction for `idle` (counted from its last traffic, its
    // opening, or this call, whichever is latest) is dropped silently and for good: both sockets
    // stay open, nothing more is forwarded either way and nothing is closed or reset, so only a
    // read timeout (or TCP keepalive) can find out. Connections with traffic pass as in pass(); a
    // later mode change does not revive a dropped connection (the firewall has forgotten it).
    void drop_when_idle(std::chrono::milliseconds idle) {
        set([idle](detail::proxy_config& c) {
            c.mode = detail::proxy_mode::idle_drop;
            c.idle_drop = idle;
        });
    }
    // true: new client connections are accepted and reset at once (the port stays bound, so a
    // client sees "connection reset" as from a crashed server, not a connect to a reused port).
    void refuse_new(bool refuse) { shared_->refuse = refuse; }

    // Cuts every current connection; returns once done (bounded by 5 s).
    void cut_all(cut_kind kind) {
        auto done = std::make_shared<std::promise<void>>();
        auto fut = done->get_future();
        detail::asio::post(io_, [this, kind, done] {
            for (auto& w : sessions_)
                if (auto s = w.lock()) s->cut(kind);
            done->set_value();
        });
        fut.wait_for(std::chrono::seconds(5));
    }

    fault_proxy_stats stats() const {
        fault_proxy_stats s;
        s.accepted = shared_->accepted;
        s.refused = shared_->refused;
        s.upstream_failures = shared_->upstream_failures;
        s.bytes_client_to_server = shared_->bytes_c2s;
        s.bytes_server_to_client = shared_->bytes_s2c;
        s.cuts = shared_->cuts;
        s.commits_seen = shared_->commits_seen;
        s.commits_cut = shared_->commits_cut;
        s.idle_drops = shared_->idle_drops;
        return s;
    }

    // Closes the listener and every connection, and joins the io thread. Idempotent. Bounded: the
    // io thread never blocks, so it sees the request at once.
    void stop() {
        if (stopped_.exchange(true)) return;
        detail::asio::post(io_, [this] {
            boost::system::error_code ignored;
            acceptor_.close(ignored);
            for (auto& w : sessions_)
                if (auto s = w.lock()) s->cut(cut_kind::fin);
            sessions_.clear();
            io_.stop();
        });
        if (thread_.joinable()) thread_.join();
    }

private:
    static detail::asio::ip::address loopback_address(const std::string& host) {
        boost::system::error_code ec;
        auto a = detail::asio::ip::make_address(host == "localhost" ? std::string("127.0.0.1") : host, ec);
        if (ec || !a.is_loopback())
            throw std::invalid_argument("lifeline::testing::fault_proxy: upstream host '" + host +
                                        "' is not a loopback address (127.0.0.0/8 or ::1); the proxy only "
                                        "forwards to this machine");
        return a;
    }

    template <class F>
    void set(F change) {
        {
            std::lock_guard<std::mutex> lock(shared_->mu);
            change(shared_->cfg);
            ++shared_->cfg.generation;
        }
        detail::asio::post(io_, [this] {
            for (auto& w : sessions_)
                if (auto s = w.lock()) s->resume();
        });
    }

    void accept() {
        acceptor_.async_accept([this](const boost::system::error_code& ec, detail::asio::ip::tcp::socket s) {
            if (ec == detail::asio::error::operation_aborted || !acceptor_.is_open()) return;
            if (!ec) {
                if (shared_->refuse) {
                    ++shared_->refused;
                    boost::system::error_code ignored;
                    s.set_option(detail::asio::socket_base::linger(true, 0), ignored);
                    s.close(ignored);
                } else {
                    ++shared_->accepted;
                    auto session = std::make_shared<detail::proxy_session>(io_, std::move(s), shared_);
                    prune();
                    sessions_.push_back(session);
                    session->start(upstream_);
                }
            }
            accept();
        });
    }

    void prune() {
        std::vector<std::weak_ptr<detail::proxy_session>> live;
        for (auto& w : sessions_) {
            auto s = w.lock();
            if (s && !s->closed()) live.push_back(w);
        }
        sessions_.swap(live);
    }

    std::shared_ptr<detail::proxy_shared> shared_;
    detail::asio::io_context io_;
    detail::asio::ip::tcp::endpoint upstream_;
    detail::asio::ip::tcp::acceptor acceptor_;
    detail::asio::executor_work_guard<detail::asio::io_context::executor_type> work_;
    std::vector<std::weak_ptr<detail::proxy_session>> sessions_;  // io thread only
    std::uint16_t port_ = 0;
    std::atomic<bool> stopped_{false};
    std::thread thread_;
};

}  // namespace lifeline::testing

#endif
