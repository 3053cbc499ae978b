// A session's own duplicate of its driver's socket (detail/socket_ref.hpp) and the lookup of a
// hidden socket by identity + the server's view (detail/socket_discovery.hpp). No server: Unix
// socket pairs and loopback TCP sockets made here.
#include <lifeline/detail/socket_discovery.hpp>
#include <lifeline/detail/socket_probe.hpp>
#include <lifeline/detail/socket_ref.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace lifeline::detail;

namespace {

bool is_open_fd(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

struct fd_pair {
    int a = -1, b = -1;
    fd_pair() {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        a = sv[0];
        b = sv[1];
    }
    ~fd_pair() {
        if (a >= 0) ::close(a);
        if (b >= 0) ::close(b);
    }
};

// Sends one byte from `from` and reads it at `to` (both blocking; poll first so it cannot hang).
bool carries_byte(int from, int to) {
    const char out = 'x';
    if (::send(from, &out, 1, MSG_NOSIGNAL) != 1) return false;
    pollfd p{to, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    char in = 0;
    return ::recv(to, &in, 1, 0) == 1 && in == out;
}

// A loopback TCP listener with an accept thread (so connects never wait on the backlog).
class listener {
public:
    listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd_, SOMAXCONN) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] {
            std::vector<int> accepted;
            while (!stop_.load()) {
                pollfd p{fd_, POLLIN, 0};
                if (::poll(&p, 1, 20) == 1) {
                    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                    if (c >= 0) accepted.push_back(c);
                }
                // Keep the server ends open a while (like a server would), then close the oldest.
                while (accepted.size() > 64) {
                    ::close(accepted.front());
                    accepted.erase(accepted.begin());
                }
            }
            for (int c : accepted) ::close(c);
        });
    }
    ~listener() {
        stop_.store(true);
        thread_.join();
        ::close(fd_);
    }
    std::uint16_t port() const { return port_; }

    int connect_client() const {
        int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0) return -1;
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port_);
        if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(c);
            return -1;
        }
        return c;
    }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// What PROCESSLIST.HOST would say for this client ("" if unknown). No Catch macro: it runs on
// worker threads too, and Catch's assertions are not thread-safe.
std::string server_view_of(int client) {
    inet_endpoint e;
    if (!local_endpoint(client, e)) return {};
    return e.address + ":" + std::to_string(e.port);
}

socket_identity identity(int fd) {
    socket_identity id;
    REQUIRE(identity_of(fd, id));
    return id;
}

}  // namespace

TEST_CASE("socket_dup: shutdown through the duplicate never touches the socket that reused the number",
          "[socket_dup][safety]") {
    fd_pair old_conn;  // the session's connection; old_conn.a is the driver's descriptor
    socket_ref mine = socket_ref::duplicate(old_conn.a);
    REQUIRE(mine);
    REQUIRE(mine.get() != old_conn.a);
    const int number = old_conn.a;

    // The driver closes its descriptor (as Connector/C does on 2013) and another thread's new
    // connection gets the same number.
    ::close(old_conn.a);
    old_conn.a = -1;
    fd_pair new_conn;
    if (new_conn.a != number) {
        REQUIRE(::dup2(new_conn.a, number) == number);
        ::close(new_conn.a);
        new_conn.a = number;
    }
    REQUIRE_FALSE(identity(number) == identity(mine.get()));  // same number, another socket

    // The watchdog fires on the session's descriptor, and the probe polls it.
    REQUIRE(::shutdown(mine.get(), SHUT_RDWR) == 0);

    // The session's connection is cut: its peer sees EOF, the probe calls it dead.
    char c;
    CHECK(::recv(old_conn.b, &c, 1, 0) == 0);
    CHECK(probe_socket(mine.get()) == lifeline::socket_status::dead);
    // The other connection, which now owns the number, is untouched both ways.
    CHECK(probe_socket(number) == lifeline::socket_status::alive);
    CHECK(carries_byte(new_conn.b, number));
    CHECK(carries_byte(number, new_conn.b));

    // Control: what shutdown by NUMBER (the old scheme) would have done to that connection.
    REQUIRE(::shutdown(number, SHUT_RDWR) == 0);
    CHECK(::recv(new_conn.b, &c, 1, 0) == 0);
}

TEST_CASE("socket_dup: the duplicate keeps the session's socket alive after the driver closed its descriptor",
          "[socket_dup][safety]") {
    fd_pair conn;
    socket_ref mine = socket_ref::duplicate(conn.a);
    ::close(conn.a);
    conn.a = -1;
    CHECK(probe_socket(mine.get()) == lifeline::socket_status::alive);  // same object, still open
    CHECK(carries_byte(conn.b, mine.get()));
    mine.reset();  // the session closes: now the socket is gone
    char c;
    CHECK(::recv(conn.b, &c, 1, 0) == 0);
}

TEST_CASE("socket_dup: socket_ref moves ownership and closes exactly once", "[socket_dup][safety]") {
    fd_pair conn;
    CHECK_FALSE(socket_ref::duplicate(-1));
    CHECK(socket_ref::duplicate(-1).get() == -1);

    socket_ref a = socket_ref::duplicate(conn.a);
    const int n = a.get();
    REQUIRE(n >= 0);
    CHECK((::fcntl(n, F_GETFD) & FD_CLOEXEC) != 0);

    socket_ref b(std::move(a));
    CHECK(a.get() == -1);  // NOLINT(bugprone-use-after-move): moved-from is defined as empty
    CHECK(b.get() == n);
    CHECK(is_open_fd(n));

    socket_ref c = socket_ref::duplicate(conn.a);
    const int m = c.get();
    c = std::move(b);  // move-assign closes what c held
    CHECK_FALSE(is_open_fd(m));
    CHECK(c.get() == n);
    CHECK(b.get() == -1);  // NOLINT(bugprone-use-after-move)
    socket_ref& same = c;
    c = std::move(same);  // self-move keeps it
    CHECK(c.get() == n);
    CHECK(is_open_fd(n));

    c.reset();
    CHECK_FALSE(is_open_fd(n));
    c.reset();  // idempotent
    // A number reused after the close is not closed again by the moved-from or reset objects.
    const int reused = ::dup(conn.b);
    REQUIRE(reused >= 0);
    {
        socket_ref gone(std::move(a));  // a and b are empty: destroying them closes nothing
        socket_ref gone2(std::move(b));
    }
    CHECK(is_open_fd(reused));
    ::close(reused);
}

TEST_CASE("socket_dup: PROCESSLIST.HOST is split into address and port", "[socket_dup][safety]") {
    std::string host;
    std::uint16_t port = 0;
    CHECK(parse_processlist_host("127.0.0.1:49058", host, port));
    CHECK(host == "127.0.0.1");
    CHECK(port == 49058);
    CHECK(parse_processlist_host("[::1]:3307", host, port));
    CHECK(host == "::1");
    CHECK(port == 3307);
    CHECK(parse_processlist_host("::ffff:127.0.0.1:1234", host, port));
    CHECK(host == "::ffff:127.0.0.1");
    CHECK(parse_processlist_host("localhost:5", host, port));
    CHECK(host == "localhost");
    CHECK_FALSE(parse_processlist_host("localhost", host, port));  // Unix socket: no port
    CHECK_FALSE(parse_processlist_host("", host, port));
    CHECK_FALSE(parse_processlist_host("127.0.0.1:", host, port));
    CHECK_FALSE(parse_processlist_host("127.0.0.1:99999", host, port));
    CHECK_FALSE(parse_processlist_host("127.0.0.1:12a", host, port));
    CHECK_FALSE(parse_processlist_host(":123", host, port));
}

TEST_CASE("socket_dup: discovery takes the new socket the server's view names, as a duplicate",
          "[socket_dup][safety]") {
    listener srv;
    const int old_client = srv.connect_client();  // open before the "connect": never a candidate
    REQUIRE(old_client >= 0);
    const auto before = socket_identities();
    CHECK(std::binary_search(before.begin(), before.end(), identity(old_client)));

    // Three connects finish at once (other threads'); the server says ours is the second.
    int clients[3];
    for (int& c : clients) {
        c = srv.connect_client();
        REQUIRE(c >= 0);
    }
    discovery_outcome why{};
    socket_ref got = adopt_session_socket(before, "127.0.0.1", srv.port(), server_view_of(clients[1]), why);
    CHECK(why == discovery_outcome::found);
    REQUIRE(got);
    CHECK(got.get() != clients[1]);  // its own descriptor...
    CHECK(identity(got.get()) == identity(clients[1]));  // ...for the very same socket

    // The server's view as a name (skip_name_resolve off) or as an IPv4-mapped address.
    inet_endpoint e;
    REQUIRE(local_endpoint(clients[2], e));
    socket_ref by_name = adopt_session_socket(before, "127.0.0.1", srv.port(), "localhost:" + std::to_string(e.port), why);
    CHECK(why == discovery_outcome::found);
    REQUIRE(by_name);
    CHECK(identity(by_name.get()) == identity(clients[2]));
    socket_ref mapped =
        adopt_session_socket(before, "127.0.0.1", srv.port(), "::ffff:127.0.0.1:" + std::to_string(e.port), why);
    CHECK(why == discovery_outcome::found);
    REQUIRE(mapped);
    CHECK(identity(mapped.get()) == identity(clients[2]));

    // Unconfirmed: nothing, never a guess.
    CHECK_FALSE(adopt_session_socket(before, "127.0.0.1", srv.port(), server_view_of(old_client), why));
    CHECK(why == discovery_outcome::no_candidate);  // not new
    CHECK_FALSE(adopt_session_socket(before, "127.0.0.1", srv.port(), "127.0.0.1:1", why));
    CHECK(why == discovery_outcome::no_candidate);  // nobody has that port
    CHECK_FALSE(adopt_session_socket(before, "127.0.0.2", srv.port(), server_view_of(clients[0]), why));
    CHECK(why == discovery_outcome::no_candidate);  // peer is not the server asked for
    CHECK_FALSE(adopt_session_socket(before, "127.0.0.1", srv.port(), "10.1.2.3:" + std::to_string(e.port), why));
    CHECK(why == discovery_outcome::no_candidate);  // the server saw another address (a proxy)
    CHECK_FALSE(adopt_session_socket(before, "127.0.0.1", srv.port(), "localhost", why));
    CHECK(why == discovery_outcome::no_server_view);
    CHECK_FALSE(adopt_session_socket(before, "127.0.0.1", srv.port(), "", why));
    CHECK(why == discovery_outcome::no_server_view);

    for (int c : clients) ::close(c);
    ::close(old_client);
}

TEST_CASE("socket_dup: discovery under concurrent connects and closes never adopts a foreign socket",
          "[socket_dup][safety][concurrency]") {
    listener srv;
    std::atomic<long> lookups{0}, foreign{0}, unknown{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t)
        threads.emplace_back([&] {
            while (!stop.load()) {
                const auto before = socket_identities();
                const int c = srv.connect_client();
                if (c < 0) continue;
                discovery_outcome why{};
                socket_ref got = adopt_session_socket(before, "127.0.0.1", srv.port(), server_view_of(c), why);
                ++lookups;
                socket_identity mine, theirs;
                if (!got) ++unknown;
                else if (!identity_of(c, mine) || !identity_of(got.get(), theirs) || !(mine == theirs)) ++foreign;
                ::close(c);  // the number is free for another thread's next socket at once
            }
        });
    std::this_thread::sleep_until(std::chrono::steady_clock::now() + std::chrono::seconds(2));  // a time-bounded run
    stop.store(true);
    for (auto& t : threads) t.join();
    INFO("lookups " << lookups.load() << ", foreign " << foreign.load() << ", unknown " << unknown.load());
    CHECK(lookups.load() > 0);
    CHECK(foreign.load() == 0);
    // Identity + the server's view leave no legitimate ambiguity: every lookup finds its socket.
    CHECK(unknown.load() == 0);
}
