// lifeline — which server process a session lives on, and what that means for fencing.
//
// Fencing (KILL the session that may still run a statement whose answer was lost, then wait until
// it has left the server) needs more than a CONNECTION_ID: after a server restart the ids start
// again from 1, so `KILL CONNECTION <old id>` could hit an innocent session, and "wait until gone"
// would wait on it. lifeline therefore records, at connect, the server's identity: @@server_id,
// @@hostname, @@port and the instant the server process started (UNIX_TIMESTAMP() - Uptime, taken
// in one statement so both read the same query start: exact to the second), plus the session's id.
//
// Judging an old session from a new one on the current server:
//   other server_id / hostname / port        -> different_server (failover, a proxy's other backend)
//   other start instant, or id not increasing -> restarted: the old session died with the old
//                                               process (ids only grow within one process)
//   otherwise                                 -> same_process
// A restart within the same second (a crash and an immediate restart) can still pass as
// same_process. So each session also takes a user-level lock with a random name at connect
// (GET_LOCK('lifeline-<128 random bits>', 0)): only that session can hold it, and it is released
// only when the session ends. Fencing asks who holds the old session's lock (IS_USED_LOCK): the
// old id -> it is alive and certainly ours, KILL it; nobody -> it has ended, whatever session now
// carries its id. The lock is trusted only while lifeline knows it is held (`lock_certain`):
// after a run() callable or a statement that may release user locks, fencing falls back to the
// identity above and, when that cannot decide, reports an unknown outcome instead of guessing.
// Pure and allocation-free: a POD the engines copy freely (the host name is kept as a hash).
#ifndef LIFELINE_DETAIL_SERVER_IDENTITY_HPP
#define LIFELINE_DETAIL_SERVER_IDENTITY_HPP

#include <cstdint>
#include <string_view>

namespace lifeline::detail {

struct server_identity {
    std::uint64_t server_id = 0;
    std::uint64_t host_hash = 0;     // FNV-1a of @@hostname
    std::uint32_t port = 0;          // @@port
    std::int64_t started_at = 0;     // unix seconds the server process started; 0: unknown
    bool known = false;              // false: the identity query failed (e.g. an exotic server)

    friend bool operator==(const server_identity& a, const server_identity& b) noexcept {
        return a.known == b.known && a.server_id == b.server_id && a.host_hash == b.host_hash && a.port == b.port &&
               a.started_at == b.started_at;
    }
    friend bool operator!=(const server_identity& a, const server_identity& b) noexcept { return !(a == b); }
};

// One session on one server process.
struct session_ref {
    std::uint64_t id = 0;  // CONNECTION_ID(); 0: none
    server_identity server;
    std::uint64_t lock_hi = 0, lock_lo = 0;  // the session's lock name (0, 0: it holds none)
    bool lock_certain = false;              // lifeline knows the session still holds it

    bool has_lock() const noexcept { return (lock_hi | lock_lo) != 0; }
};

enum class process_verdict : std::uint8_t {
    same_process,      // the old session may still exist here: look it up (its lock decides)
    restarted,         // same server, new process: the old session is certainly gone
    same_server,       // same server, but whether it restarted is unknown (no start instant)
    different_server,  // cannot see the old session from here: its fate is unknown
    unknown,           // an identity is missing: nothing can be concluded
};

constexpr process_verdict judge(const session_ref& old_session, const session_ref& current) noexcept {
    const server_identity& a = old_session.server;
    const server_identity& b = current.server;
    if (!a.known || !b.known || old_session.id == 0 || current.id == 0) return process_verdict::unknown;
    if (a.server_id != b.server_id || a.host_hash != b.host_hash || a.port != b.port)
        return process_verdict::different_server;
    if (a.started_at != 0 && b.started_at != 0 && a.started_at != b.started_at) return process_verdict::restarted;
    // Within one process ids only grow; a restart inside the same second shows as a smaller id.
    if (current.id <= old_session.id) return process_verdict::restarted;
    if (a.started_at == 0 || b.started_at == 0) return process_verdict::same_server;
    return process_verdict::same_process;
}

constexpr std::uint64_t fnv1a(std::string_view s) noexcept {
    std::uint64_t h = 1469598103934665603ull;
    for (char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
    }
    return h;
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_SERVER_IDENTITY_HPP
