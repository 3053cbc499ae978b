// Consumer of lifeline::lifeline alone: the core compiles with no driver headers at all.
#include <lifeline.hpp>

#include <cstdio>
#include <string>

#if __has_include(<mysql.h>) && defined(LIFELINE_EXPECT_NO_DRIVER)
#error "the core target leaked a driver include path"
#endif

int main() {
    std::printf("lifeline core consumer: %s\n", std::string(lifeline::to_string(lifeline::phase::connect)).c_str());
    return 0;
}
