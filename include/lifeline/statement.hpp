// lifeline — prepared statements that survive reconnects.
//
//   auto ins = db.prepare("INSERT INTO ledger (ref, amount) VALUES (?, ?)");
//   db.execute(ins, {"A-7", "100"});                       // parameters as text; std::nullopt is NULL
//
// A prepared statement lives in one server session; a reconnect loses it. lifeline keeps the SQL
// text and prepares it again, lazily, on the new session before its next use, so callers hold a
// handle that stays valid for the connection's lifetime.
#ifndef LIFELINE_STATEMENT_HPP
#define LIFELINE_STATEMENT_HPP

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace lifeline {

using param = std::optional<std::string>;  // std::nullopt binds SQL NULL
using params = std::vector<param>;

// A handle to a statement prepared through a lifeline connection; cheap to copy.
class prepared_statement {
public:
    prepared_statement() = default;
    std::size_t id() const noexcept { return id_; }
    bool valid() const noexcept { return id_ != 0; }

    // Made by a connection's prepare(); a 1-based index into its registry.
    explicit prepared_statement(std::size_t id) noexcept : id_(id) {}

private:
    std::size_t id_ = 0;  // 1-based index into the connection's registry
};

}  // namespace lifeline

#endif  // LIFELINE_STATEMENT_HPP
