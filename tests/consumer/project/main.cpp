// Consumer of lifeline::capi: the umbrella header, the C API adapter and the driver itself link.
#include <lifeline.hpp>

#include <mysql.h>

#include <cstdio>
#include <string>

int main() {
    MYSQL* m = mysql_init(nullptr);
    if (!m) return 1;
    std::printf("lifeline consumer: client %s, phase %s\n", mysql_get_client_info(),
                std::string(lifeline::to_string(lifeline::phase::commit)).c_str());
    mysql_close(m);
    return 0;
}
