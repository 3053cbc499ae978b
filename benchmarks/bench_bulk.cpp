// (g) bulk load: rows/s through lifeline::bulk_insert over rows/s of a plain multi-row INSERT loop
// on the raw driver, the same rows, the same table, the same run.
//   raw:      mysql_real_escape_string for the text, INSERT ... VALUES (...),(...) statements of up
//             to 4 MiB (bulk_insert's default chunk size) in autocommit, mysql_real_query each;
//   lifeline: bulk_insert(db, table, columns, rows) with its defaults: 4 MiB chunks, each in its own
//             transaction with the load's marker row and lock, commit resolution on.
// 200 000 rows of (BIGINT id, VARCHAR note of ~90 bytes, DOUBLE or NULL), ~20 MB a load, into an
// InnoDB table emptied (TRUNCATE) before each load. 8 rounds, interleaved raw, lifeline, lifeline,
// raw, ... to cancel drift. The figure is the median over rounds of (lifeline rows/s) / (raw rows/s
// of the same round).
#include "bench_common.hpp"

#include <lifeline/bulk_insert.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

using namespace lifeline;
using namespace lifeline::bench;

namespace {

constexpr std::size_t rows_per_load = 200000;
constexpr int rounds = 8;
constexpr std::size_t chunk_bytes = 4u << 20;

using row_t = std::tuple<long long, std::string, std::optional<double>>;

std::vector<row_t> make_rows() {
    std::vector<row_t> rows;
    rows.reserve(rows_per_load);
    for (std::size_t i = 0; i < rows_per_load; ++i)
        rows.emplace_back(static_cast<long long>(i),
                          "order " + std::to_string(i) + " for customer " + std::to_string(i * 7919 % 100000) +
                              ", it's shipped by ground freight from the north-east warehouse",
                          i % 10 ? std::optional<double>(static_cast<double>(i) * 0.01) : std::nullopt);
    return rows;
}

void exec(MYSQL* m, const std::string& sql) {
    if (mysql_real_query(m, sql.data(), static_cast<unsigned long>(sql.size())) != 0)
        throw test::server_error(std::string("raw: ") + mysql_error(m));
    if (MYSQL_RES* r = mysql_store_result(m)) mysql_free_result(r);
}

// The plain loop a careful application writes: escape, append, send when the next row would not fit.
double raw_load(MYSQL* m, const std::vector<row_t>& rows) {
    const std::string head = "INSERT INTO bench_bulk (id, note, amount) VALUES ";
    std::string sql = head, escaped;
    char num[32];
    const auto t0 = steady::now();
    std::size_t in_statement = 0;
    for (const auto& [id, note, amount] : rows) {
        escaped.resize(note.size() * 2 + 1);
        escaped.resize(mysql_real_escape_string(m, escaped.data(), note.data(), static_cast<unsigned long>(note.size())));
        const std::size_t need = escaped.size() + 64;
        if (in_statement > 0 && sql.size() + need > chunk_bytes) {
            exec(m, sql);
            sql.resize(head.size());
            in_statement = 0;
        }
        if (in_statement++) sql += ',';
        sql += '(';
        sql.append(num, static_cast<std::size_t>(std::snprintf(num, sizeof num, "%lld", id)));
        sql += ",'";
        sql += escaped;
        sql += "',";
        if (amount) sql.append(num, static_cast<std::size_t>(std::snprintf(num, sizeof num, "%.17g", *amount)));
        else sql += "NULL";
        sql += ')';
    }
    if (in_statement) exec(m, sql);
    return static_cast<double>(rows.size()) / std::chrono::duration<double>(steady::now() - t0).count();
}

double lifeline_load(connection<capi>& db, const std::vector<row_t>& rows, int round) {
    bulk_options o;
    o.load_id = "bench-" + std::to_string(round);
    const auto t0 = steady::now();
    const bulk_result r = bulk_insert(db, "bench_bulk", {"id", "note", "amount"}, rows, o);
    const double secs = std::chrono::duration<double>(steady::now() - t0).count();
    if (r.rows_done != rows.size()) throw test::server_error("bulk_insert loaded " + std::to_string(r.rows_done) + " rows");
    if (round == 0)
        info("lifeline: " + std::to_string(r.chunks_done) + " chunks of up to 4 MiB, " + std::to_string(r.bytes_done) +
             " bytes of SQL");
    return static_cast<double>(rows.size()) / secs;
}

}  // namespace

int main() {
    return guarded("bench_bulk", [] {
        auto srv = test::server::attach();
        const auto& e = srv.where();
        auto admin = test::capi_connect(e);
        test::capi_exec(admin.get(), "CREATE TABLE bench_bulk (id BIGINT PRIMARY KEY, note VARCHAR(120), amount DOUBLE) "
                                     "ENGINE=InnoDB");
        const auto rows = make_rows();
        auto raw = test::capi_connect(e);
        connection<capi> db{lifeline_options(e)};
        db.connect();
        std::vector<double> raw_rates, lifeline_rates, ratios;
        for (int round = 0; round < rounds; ++round) {
            double r = 0, l = 0;
            auto fresh = [&] { test::capi_exec(admin.get(), "TRUNCATE TABLE bench_bulk"); };
            if (round % 2 == 0) {
                fresh();
                r = raw_load(raw.get(), rows);
                fresh();
                l = lifeline_load(db, rows, round);
            } else {
                fresh();
                l = lifeline_load(db, rows, round);
                fresh();
                r = raw_load(raw.get(), rows);
            }
            const std::string loaded = test::capi_scalar(admin.get(), "SELECT COUNT(*) FROM bench_bulk");
            if (loaded != std::to_string(rows_per_load)) throw test::server_error("a load left " + loaded + " rows");
            raw_rates.push_back(r);
            lifeline_rates.push_back(l);
            ratios.push_back(l / r);
            char line[160];
            std::snprintf(line, sizeof line, "round %d: raw %.0f rows/s, bulk_insert %.0f rows/s, ratio %.3f", round, r, l,
                          l / r);
            info(line);
        }
        char line[160];
        std::snprintf(line, sizeof line, "medians: raw %.0f rows/s, bulk_insert %.0f rows/s (%zu rows, ~%zu MB a load)",
                      median(raw_rates), median(lifeline_rates), rows_per_load,
                      rows_per_load * 100 / (1u << 20));
        info(line);
        figure("bulk_insert_over_raw_multirow_insert_rows_per_s_median", median(ratios), "ratio", ">=", 0.95);
        return 0;
    });
}
