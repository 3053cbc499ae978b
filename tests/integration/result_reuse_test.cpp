// A result kept across calls (connection::query(sql, into, ...)): each statement writes over the
// previous one exactly (rows, widths, NULLs, counts, result sets), a failure leaves no rows, and a
// warm call makes no C++ allocation of lifeline's own — the claim the round-trip benchmark rests on.
// This file replaces operator new/delete with malloc/free; GCC then sees them inlined as a mismatch.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "capi_support.hpp"
#include "lifeline_support.hpp"

#include <lifeline/driver/capi.hpp>
#include <lifeline/pool.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

// Counts operator new on threads that asked for it (the test's own thread): the driver's C
// allocations (malloc) are not C++ allocations, and other threads (the watchdog) are not counted.
namespace {
thread_local bool counting = false;
std::atomic<long> allocations{0};

struct count_scope {
    count_scope() {
        allocations = 0;
        counting = true;
    }
    ~count_scope() { counting = false; }
    long taken() const { return allocations.load(); }
};
}  // namespace

// The whole unaligned family, so no block crosses between these and the runtime's (or ASan's)
// own operators; the aligned ones stay the runtime's, in pairs.
namespace {
void* counted(std::size_t n) noexcept {
    if (counting) ++allocations;
    return std::malloc(n ? n : 1);
}
}  // namespace
void* operator new(std::size_t n) {
    if (void* p = counted(n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    if (void* p = counted(n)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

using namespace lifeline;
using namespace lifeline::test;

namespace {
using db_type = connection<capi>;
using cell = std::optional<std::string>;
using row = std::vector<cell>;
}  // namespace

TEST_CASE("result reuse: each statement writes over the last one exactly", "[result][capi]") {
    auto srv = server::attach();
    db_type db{options_for(srv.where())};
    db.execute("CREATE TABLE reuse_t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100))");
    db.execute("CREATE PROCEDURE two_sets() BEGIN SELECT 1 AS a; SELECT 'x' AS b, NULL AS c; END");
    const std::string longer(300, 'q');  // beyond any small-string buffer

    result r;
    db.query("SELECT 'a' AS one, NULL AS two UNION ALL SELECT '" + longer + "', 'b' UNION ALL SELECT NULL, NULL", r,
             idempotent);
    CHECK(r.columns == std::vector<std::string>{"one", "two"});
    REQUIRE(r.rows.size() == 3);
    CHECK(r.rows[0] == row{std::string("a"), std::nullopt});
    CHECK(r.rows[1] == row{longer, std::string("b")});
    CHECK(r.rows[2] == row{std::nullopt, std::nullopt});
    CHECK(r.attempts == 1);

    // Fewer rows, one column, NULL and value swapped: nothing of the last statement is left.
    db.query("SELECT NULL AS x UNION ALL SELECT 'z'", r, idempotent);
    CHECK(r.columns == std::vector<std::string>{"x"});
    REQUIRE(r.rows.size() == 2);
    CHECK(r.rows[0] == row{std::nullopt});
    CHECK(r.rows[1] == row{std::string("z")});

    // A write: no rows, no columns, its counts.
    db.execute("INSERT INTO reuse_t (v) VALUES ('w')", r);
    CHECK(r.rows.empty());
    CHECK(r.columns.empty());
    CHECK(r.affected_rows == 1);
    CHECK(r.insert_id == 1);

    // An empty set: its columns, no rows; the write's counts are gone.
    db.query("SELECT v FROM reuse_t WHERE id = 99", r, idempotent);
    CHECK(r.columns == std::vector<std::string>{"v"});
    CHECK(r.rows.empty());
    CHECK(r.affected_rows == 0);
    CHECK(r.insert_id == 0);

    // Two result sets: rows of both, in order, each its own width; the last set's columns.
    db.query("CALL two_sets()", r);
    REQUIRE(r.rows.size() == 2);
    CHECK(r.rows[0] == row{std::string("1")});
    CHECK(r.rows[1] == row{std::string("x"), std::nullopt});
    CHECK(r.columns == std::vector<std::string>{"b", "c"});

    // A failure: the error, and no rows from before.
    db.query("SELECT 'keep' AS k", r, idempotent);
    REQUIRE(r.rows.size() == 1);
    std::error_code ec;
    diagnostics d;
    CHECK_FALSE(db.query("SELECT * FROM no_such_table", r, idempotent, {}, ec, d));
    CHECK(ec);
    CHECK(d.code == 1146);
    CHECK(r.rows.empty());
    CHECK(r.columns.empty());
    CHECK_THROWS_AS(db.query("SELEKT 1", r, idempotent), lifeline::error);
    CHECK(r.rows.empty());

    // Prepared statements write over it the same way.
    auto st = db.prepare("SELECT ? AS p, NULL AS q");
    db.execute(st, {std::string("one")}, r, idempotent);
    CHECK(r.columns == std::vector<std::string>{"p", "q"});
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0] == row{std::string("one"), std::nullopt});
    db.execute(st, {longer}, r, idempotent);
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0] == row{longer, std::nullopt});
    auto ins = db.prepare("INSERT INTO reuse_t (v) VALUES (?)");
    db.execute(ins, {std::nullopt}, r);
    CHECK(r.rows.empty());
    CHECK(r.columns.empty());
    CHECK(r.affected_rows == 1);
    CHECK(r.insert_id == 2);
}

TEST_CASE("result reuse: a warm query into a kept result allocates nothing of lifeline's own", "[result][capi]") {
    auto srv = server::attach();
    db_type db{options_for(srv.where())};
    const std::string wide = "SELECT REPEAT('v', 200) AS a, NULL AS b UNION ALL SELECT 'w', 'x'";
    result r;
    for (int i = 0; i < 3; ++i) {
        db.query("SELECT 1", r, idempotent);
        db.query(wide, r, idempotent);
    }
    long into = 0, into_wide = 0, fresh = 0, pooled = 0;
    {
        count_scope c;
        for (int i = 0; i < 50; ++i) db.query("SELECT 1", r, idempotent);
        into = c.taken();
    }
    CHECK(r.scalar() == std::string("1"));
    db.query(wide, r, idempotent);  // rows a shorter result dropped are made again once
    {
        count_scope c;
        for (int i = 0; i < 50; ++i) db.query(wide, r, idempotent);
        into_wide = c.taken();
    }
    REQUIRE(r.rows.size() == 2);
    CHECK(r.rows[0][0] == std::string(200, 'v'));
    {
        count_scope c;
        for (int i = 0; i < 50; ++i) (void)db.query("SELECT 1", idempotent);
        fresh = c.taken();
    }

    pool_options po;
    po.min_size = po.max_size = 1;
    pool<capi> pl{options_for(srv.where()), po};
    for (int i = 0; i < 3; ++i) pl.borrow()->query("SELECT 1", r, idempotent);
    {
        count_scope c;
        for (int i = 0; i < 50; ++i) pl.borrow()->query("SELECT 1", r, idempotent);
        pooled = c.taken();
    }
    INFO("allocations: into " << into << ", wide into " << into_wide << ", returning a fresh result " << fresh << ", pool " << pooled);
    CHECK(into == 0);
    CHECK(into_wide == 0);
    CHECK(pooled == 0);
    // The counter sees lifeline's allocations: the returning form allocates its result each call.
    CHECK(fresh >= 50);
}
