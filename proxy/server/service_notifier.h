// ServiceNotifier: tells the service manager (systemd Type=notify, sd_notify) when the proxy is ready, reloading, stopping.
#pragma once

namespace scepproxy::proxy {

// Each call is one datagram to $NOTIFY_SOCKET; without it (not run by systemd) nothing happens.
// Failures to notify are logged, never fatal: the proxy serves either way.
class ServiceNotifier {
public:
    void ready();      // READY=1: every listener accepts
    void reloading();  // RELOADING=1 with MONOTONIC_USEC (what Type=notify-reload expects); ready() ends it
    void stopping();   // STOPPING=1: draining, no new connections

private:
    void send(const char* state);
};

}  // namespace scepproxy::proxy
