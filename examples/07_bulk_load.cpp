// 07 — a bulk load that survives 2013: chunks under max_allowed_packet, each committed with a
// marker, progress reported, and a rerun with the same load id that resumes where the first run
// stopped — no row twice, none missing.
#include <lifeline/bulk_insert.hpp>
#include <lifeline/driver/capi.hpp>

#include "example_env.hpp"

#include <cstdio>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

int main() {
    lifeline::connection<lifeline::capi> db{example_options()};
    db.execute("CREATE TABLE IF NOT EXISTS bulk_orders (id BIGINT PRIMARY KEY, ref VARCHAR(40), amount DOUBLE)");

    std::vector<std::tuple<long long, std::string, std::optional<double>>> rows;
    for (long long i = 0; i < 100000; ++i)
        rows.emplace_back(i, "order-" + std::to_string(i), i % 10 ? std::optional<double>(i * 0.01) : std::nullopt);

    lifeline::bulk_options o;
    o.load_id = "orders-import-1";  // a rerun with this id resumes the load
    o.chunk_bytes = 512 * 1024;
    o.on_progress = [](const lifeline::bulk_progress& p) {
        if (p.chunks_done % 4 == 0)
            std::printf("07 bulk load: %llu of %llu rows, %.1f MB\n", static_cast<unsigned long long>(p.rows_done + p.rows_skipped),
                        static_cast<unsigned long long>(p.rows_total), static_cast<double>(p.bytes_done) / 1e6);
    };

    // The first run stops halfway (as if the process had died at a 2013 it could not survive).
    struct stopped {};
    auto first = o;
    first.on_progress = [&](const lifeline::bulk_progress& p) {
        o.on_progress(p);
        if (p.rows_done >= 40000) throw stopped{};
    };
    try {
        lifeline::bulk_insert(db, "bulk_orders", {"id", "ref", "amount"}, rows, first);
    } catch (const stopped&) {
        std::printf("07 bulk load: the first run stopped; %s rows are in\n",
                    db.query("SELECT COUNT(*) FROM bulk_orders", lifeline::idempotent).scalar().value_or("?").c_str());
    }

    // The rerun finds the committed chunks by their markers and sends only the rest.
    const lifeline::bulk_result r = lifeline::bulk_insert(db, "bulk_orders", {"id", "ref", "amount"}, rows, o);
    std::printf("07 bulk load: rerun skipped %llu rows, inserted %llu in %llu chunks; the table has %s rows\n",
                static_cast<unsigned long long>(r.rows_skipped), static_cast<unsigned long long>(r.rows_done),
                static_cast<unsigned long long>(r.chunks_done),
                db.query("SELECT COUNT(*) FROM bulk_orders", lifeline::idempotent).scalar().value_or("?").c_str());
    return r.rows_skipped + r.rows_done == rows.size() ? 0 : 1;
}
