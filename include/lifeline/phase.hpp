// lifeline — where in a round trip a failure happened.
//
// The same error number means different things depending on the phase: a 2013
// during the handshake says nothing ran, a 2013 while reading a result says the
// statement may or may not have run.
#ifndef LIFELINE_PHASE_HPP
#define LIFELINE_PHASE_HPP

#include <cstdint>
#include <string_view>

namespace lifeline {

enum class phase : std::uint8_t {
    connect,      // TCP connect, handshake, authentication, session restore
    send,         // before or while the command was written; nothing was read back yet
    read_result,  // waiting for the OK/error/result-set header of a statement
    fetch,        // reading the rows of a result set that the server already produced
    commit,       // the COMMIT statement of a transaction (its own phase: the lost COMMIT)
};

constexpr std::string_view to_string(phase p) noexcept {
    switch (p) {
    case phase::connect: return "connect";
    case phase::send: return "send";
    case phase::read_result: return "read_result";
    case phase::fetch: return "fetch";
    case phase::commit: return "commit";
    }
    return "unknown";
}

}  // namespace lifeline

#endif  // LIFELINE_PHASE_HPP
