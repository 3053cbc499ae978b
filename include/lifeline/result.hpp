// lifeline — what lifeline's own query/execute calls return: rows as text, and counts.
//
// Deliberately simple: lifeline's job is deciding what is safe to retry, not decoding types.
// For typed access, use run() and the driver's own API inside it.
#ifndef LIFELINE_RESULT_HPP
#define LIFELINE_RESULT_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lifeline {

struct result {
    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows;  // nullopt: SQL NULL
    std::uint64_t affected_rows = 0;
    std::uint64_t insert_id = 0;
    unsigned attempts = 0;   // how many times lifeline sent it (1 = no retry)
    bool verified = false;   // true: the write's outcome was unknown and the caller's check said applied

    // First column of the first row, or nullopt (no row, or NULL).
    std::optional<std::string> scalar() const {
        if (rows.empty() || rows.front().empty()) return std::nullopt;
        return rows.front().front();
    }
};

}  // namespace lifeline

#endif  // LIFELINE_RESULT_HPP
