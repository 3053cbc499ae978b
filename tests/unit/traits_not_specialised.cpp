// Compile-fail test (ctest unit.traits_not_specialised, EXCLUDE_FROM_ALL): a driver tag with no
// driver_traits specialisation at all must stop the build with check_driver_traits()'s
// "is not specialised for this driver tag" static_assert. This file must NOT compile.
#include <lifeline/connection.hpp>
#include <lifeline/options.hpp>

namespace traits_test {
struct unknown_driver;  // a tag nobody specialised driver_traits for
}  // namespace traits_test

int main() {
    // What a user writes: build a connection and use it.
    lifeline::connect_options o;
    o.user = "app";
    lifeline::connection<traits_test::unknown_driver> db{o};
    db.query("SELECT 1", lifeline::idempotent);
    return 0;
}
