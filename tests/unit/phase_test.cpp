#include <lifeline/phase.hpp>

#include <catch2/catch.hpp>

TEST_CASE("phases have stable names", "[unit][classification]") {
    using lifeline::phase;
    CHECK(lifeline::to_string(phase::connect) == "connect");
    CHECK(lifeline::to_string(phase::send) == "send");
    CHECK(lifeline::to_string(phase::read_result) == "read_result");
    CHECK(lifeline::to_string(phase::fetch) == "fetch");
    CHECK(lifeline::to_string(phase::commit) == "commit");
    CHECK(lifeline::to_string(static_cast<phase>(200)) == "unknown");
}
