// ServiceNotifier: sd_notify(3) messages from libsystemd.
#include "proxy/server/service_notifier.h"

#include <systemd/sd-daemon.h>

#include <cstring>
#include <string>

#include "base/clock.h"
#include "proxy/telemetry/log.h"

namespace scepproxy::proxy {

void ServiceNotifier::ready() { send("READY=1\nSTATUS=serving"); }

void ServiceNotifier::reloading() {
    const int64_t usec = monotonic_ns() / 1000;  // systemd compares it with its own CLOCK_MONOTONIC
    send(("RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=" + std::to_string(usec)).c_str());
}

void ServiceNotifier::stopping() { send("STOPPING=1\nSTATUS=draining"); }

void ServiceNotifier::send(const char* state) {
    const int result = sd_notify(0, state);
    if (result < 0) LogLine(LogLevel::warn, "sd_notify_failed").field("detail", std::strerror(-result)).emit();
}

}  // namespace scepproxy::proxy
