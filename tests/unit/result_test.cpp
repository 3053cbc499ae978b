// result_writer: what a driver adapter's every way out leaves in a result kept across calls.
#include <lifeline/result.hpp>

#include <catch2/catch.hpp>

using lifeline::result;
using lifeline::result_writer;
using row = std::vector<std::optional<std::string>>;

namespace {
result full() {
    result r;
    r.columns = {"a", "b"};
    r.rows = {{std::string("x"), std::nullopt}, {std::string(100, 'y'), std::string("z")}};
    r.affected_rows = 7;
    r.insert_id = 9;
    return r;
}
}  // namespace

TEST_CASE("result_writer: an adapter that gives up at once leaves no stale rows, columns or counts", "[unit][result]") {
    result r = full();
    { result_writer w(&r); }  // e.g. the send failed
    CHECK(r.rows.empty());
    CHECK(r.columns.empty());
    CHECK(r.affected_rows == 0);
    CHECK(r.insert_id == 0);
}

TEST_CASE("result_writer: a statement writes over the last one exactly, reusing its storage", "[unit][result]") {
    result r = full();
    const char* kept_storage = r.rows[1][0]->data();  // beyond the small-string buffer
    {
        result_writer w(&r);
        w.begin_set(1);
        w.column(0, "n", 1);
        w.begin_row();
        w.null(0);
        w.begin_row();
        w.cell(0, "short", 5);
    }
    CHECK(r.columns == std::vector<std::string>{"n"});
    REQUIRE(r.rows.size() == 2);
    CHECK(r.rows[0] == row{std::nullopt});
    CHECK(r.rows[1] == row{std::string("short")});
    CHECK(r.rows[1][0]->data() == kept_storage);  // written over, not made anew
    CHECK(r.affected_rows == 0);

    {  // fewer rows: the rest go; an update's counts
        result_writer w(&r);
        w.counts(3, 4);
    }
    CHECK(r.rows.empty());
    CHECK(r.columns.empty());
    CHECK(r.affected_rows == 3);
    CHECK(r.insert_id == 4);

    {  // two sets: rows of both, each its width; the last set's columns
        result_writer w(&r);
        w.begin_set(1);
        w.column(0, "a", 1);
        w.begin_row();
        w.cell(0, "1", 1);
        w.begin_set(2);
        w.column(0, "b", 1);
        w.column(1, "c", 1);
        w.begin_row();
        char* p = w.cell_buffer(0, 3);
        p[0] = 'x', p[1] = 'y', p[2] = 'z';
        w.null(1);
    }
    CHECK(r.columns == std::vector<std::string>{"b", "c"});
    REQUIRE(r.rows.size() == 2);
    CHECK(r.rows[0] == row{std::string("1")});
    CHECK(r.rows[1] == row{std::string("xyz"), std::nullopt});
}

TEST_CASE("result_writer: a null target discards", "[unit][result]") {
    result_writer w(nullptr);
    CHECK_FALSE(static_cast<bool>(w));
}
