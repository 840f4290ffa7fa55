// ServiceNotifier: sd_notify(3) messages from libsystemd.
#include "proxy/server/service_notifier.h"

#include <systemd/sd-daemon.h>

#include <cstring>
#include <ctime>
#include <string>

#include "proxy/telemetry/log.h"

namespace scepproxy::proxy {

void ServiceNotifier::ready() { send("READY=1\nSTATUS=serving"); }

void ServiceNotifier::reloading() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const unsigned long long usec =
        static_cast<unsigned long long>(now.tv_sec) * 1000000ULL + static_cast<unsigned long long>(now.tv_nsec) / 1000;
    send(("RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=" + std::to_string(usec)).c_str());
}

void ServiceNotifier::stopping() { send("STOPPING=1\nSTATUS=draining"); }

void ServiceNotifier::send(const char* state) {
    const int result = sd_notify(0, state);
    if (result < 0)
        LogLine(LogLevel::warn, "sd_notify_failed").field("detail", std::strerror(-result)).emit();
}

}  // namespace scepproxy::proxy
