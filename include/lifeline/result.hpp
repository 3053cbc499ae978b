// lifeline — what lifeline's own query/execute calls return: rows as text, and counts.
//
// Deliberately simple: lifeline's job is deciding what is safe to retry, not decoding types.
// For typed access, use run() and the driver's own API inside it.
//
// A result can be kept and passed again (connection::query(sql, into, ...)): each statement
// writes over the previous one's columns, rows and cells, so once a result has held one as large,
// reading into it allocates nothing — what a raw loop reusing its buffers does.
#ifndef LIFELINE_RESULT_HPP
#define LIFELINE_RESULT_HPP

#include <cstddef>
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

    // Back to "no statement": no columns, rows or counts; the vectors keep their capacity.
    void clear() noexcept {
        columns.clear();
        rows.clear();
        affected_rows = insert_id = 0;
        attempts = 0;
        verified = false;
    }

    // First column of the first row, or nullopt (no row, or NULL).
    std::optional<std::string> scalar() const {
        if (rows.empty() || rows.front().empty()) return std::nullopt;
        return rows.front().front();
    }
};

// For driver adapters (driver_traits execute / execute_prepared): writes one statement's columns,
// rows and counts over what the result held before, keeping its storage. A null target discards
// everything. When it goes out of scope the result holds exactly this statement's rows (the
// previous statement's extra rows are dropped; no row-returning set: no columns).
class result_writer {
public:
    explicit result_writer(result* r) noexcept : r_(r) {
        if (r_) r_->affected_rows = r_->insert_id = 0;
    }
    result_writer(const result_writer&) = delete;
    result_writer& operator=(const result_writer&) = delete;
    ~result_writer() {
        if (!r_) return;
        if (r_->rows.size() > rows_) r_->rows.erase(r_->rows.begin() + static_cast<std::ptrdiff_t>(rows_), r_->rows.end());
        if (!saw_set_) r_->columns.clear();
    }
    explicit operator bool() const noexcept { return r_ != nullptr; }

    // A row-returning set of n columns starts (the result's columns are the last such set's;
    // rows of every set are kept, in order).
    void begin_set(std::size_t n) {
        saw_set_ = true;
        width_ = n;
        r_->columns.resize(n);
    }
    void column(std::size_t i, const char* name, std::size_t len) { r_->columns[i].assign(name, len); }
    void reserve_rows(std::size_t more) { r_->rows.reserve(rows_ + more); }
    void begin_row() {
        if (rows_ == r_->rows.size()) r_->rows.emplace_back();
        row_ = &r_->rows[rows_++];
        row_->resize(width_);
    }
    // Cell i of the current row: a value (copied into the cell's own string), or NULL.
    void cell(std::size_t i, const char* p, std::size_t len) {
        auto& c = (*row_)[i];
        if (c) c->assign(p, len);
        else c.emplace(p, len);
    }
    // Cell i as len bytes the adapter fills in place (e.g. a prepared statement's fetch).
    char* cell_buffer(std::size_t i, std::size_t len) {
        auto& c = (*row_)[i];
        if (!c) c.emplace();
        c->resize(len);
        return c->data();
    }
    void null(std::size_t i) noexcept { (*row_)[i].reset(); }
    // A set without rows (an update): its counts; the last one wins.
    void counts(std::uint64_t affected, std::uint64_t insert_id) noexcept {
        r_->affected_rows = affected;
        r_->insert_id = insert_id;
    }

private:
    result* r_;
    std::vector<std::optional<std::string>>* row_ = nullptr;
    std::size_t rows_ = 0;
    std::size_t width_ = 0;
    bool saw_set_ = false;
};

}  // namespace lifeline

#endif  // LIFELINE_RESULT_HPP
