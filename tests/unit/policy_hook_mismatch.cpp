// Compile-fail tests (ctest unit.policy_hook_*, EXCLUDE_FROM_ALL): a policy hook that does not
// match what lifeline calls must stop the build with check_policy()'s static_assert naming it and
// the expected signature — never silently keep the default. This file must NOT compile with
// LIFELINE_TEST_POLICY_CASE set to 1 (decide takes its input by value) or 2 (declares it
// customises classify, but the member is misspelt). With 0 (the positive control, part of every
// build) it is a correct custom policy and must compile.
#include <lifeline/policy.hpp>

#ifndef LIFELINE_TEST_POLICY_CASE
#define LIFELINE_TEST_POLICY_CASE 0
#endif

namespace {

#if LIFELINE_TEST_POLICY_CASE == 1
struct my_policy : lifeline::default_policy {
    // "Slightly different": by value instead of const&. Would otherwise compile and be ignored.
    lifeline::decision decide(lifeline::classification c, lifeline::decision_input in) const noexcept {
        return lifeline::decide(c, in);
    }
};
#elif LIFELINE_TEST_POLICY_CASE == 2
struct my_policy : lifeline::default_policy {
    static constexpr lifeline::hook customizes = lifeline::hook::classify;
    lifeline::classification classfy(const lifeline::failure& f) const noexcept { return lifeline::classify(f); }
};
#else
struct my_policy : lifeline::default_policy {
    static constexpr lifeline::hook customizes = lifeline::hook::classify | lifeline::hook::decide;
    lifeline::classification classify(const lifeline::failure& f) const noexcept { return lifeline::classify(f); }
    lifeline::decision decide(const lifeline::classification& c, const lifeline::decision_input& in) const noexcept {
        return lifeline::decide(c, in);
    }
};
#endif

static_assert(lifeline::check_policy<my_policy>());
static_assert(lifeline::check_policy<lifeline::default_policy>());

}  // namespace

int policy_hook_probe() { return 0; }
