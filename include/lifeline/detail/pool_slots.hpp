// lifeline: what the blocking pool (pool.hpp) and the async pool (async_pool.hpp) do alike with
// their slots.
#ifndef LIFELINE_DETAIL_POOL_SLOTS_HPP
#define LIFELINE_DETAIL_POOL_SLOTS_HPP

#include <cstdint>

namespace lifeline::detail {

// The retries a slot's connection made since the pool last counted them: a connection's stats are
// cumulative over its life, the pool's count each retry once. Slot: `conn` (a pointer-like
// connection, may be empty) and `retries_seen`.
template <class Slot>
std::uint64_t take_new_retries(Slot& s) noexcept {
    if (!s.conn) return 0;
    const auto r = s.conn->stats().retries;
    const auto d = r - s.retries_seen;
    s.retries_seen = r;
    return d;
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_POOL_SLOTS_HPP
