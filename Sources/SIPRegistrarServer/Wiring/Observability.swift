import Logging
import NIOCore
import SIPMessage
import SIPRegistrar
import SIPTLS
import SIPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Observability: metrics and log lines for the registrar's, the authenticator's and the
/// dispatcher's events.
extension RegistrarServer {
    /// Metrics for every authentication event; a log line for each limit a source meets (once per block).
    func authenticationObserver(metrics: ServerMetrics) -> @Sendable (AuthenticationEvent) -> Void {
        let logger = self.logger
        return { event in
            switch event {
            case .challenged(_, let stale):
                metrics.count("sip_auth_challenges_total", [("stale", stale ? "true" : "false")])
            case .authenticated(let identity, let method, let source):
                metrics.count("sip_auth_success_total", [("method", method.rawValue)])
                logger.debug("authenticated", metadata: ["sip.identity": "\(identity.logSafe)", "auth.method": "\(method.rawValue)",
                                                         "net.peer": "\(source)"])
            case .failed(let reason, let user, let realm, let source):
                metrics.count("sip_auth_failures_total", [("reason", reason.rawValue)])
                logger.debug("authentication failed", metadata: ["auth.reason": "\(reason.rawValue)", "sip.user": "\(user.logSafe)",
                                                                 "sip.realm": "\(realm.logSafe)", "net.peer": "\(source)"])
            case .limited(let limit, let key, let until, let first):
                metrics.count("sip_limit_refusals_total", [("limit", limit.rawValue)])
                if first {
                    let seconds = max(0, (until - SystemRegistrarClock().nowMilliseconds() + 999) / 1000)
                    logger.warning("limit reached: requests refused", metadata: ["limit": "\(limit.rawValue)", "key": "\(key.logSafe)",
                                                                                 "seconds": "\(seconds)"])
                }
            }
        }
    }

    func observe(registrar: Registrar, dispatcher: Dispatcher, metrics: ServerMetrics) {
        let logger = self.logger
        // Synchronous: a stream would wake another thread for every REGISTER (measured: about a
        // fifth of the CPU at 8,000 REGISTERs/s went to those wake-ups).
        registrar.observe { e in
            metrics.bindingEvent(e)
            // Created, removed and expired at info; a refresh (most REGISTERs of a fleet) only at
            // debug: a million phones refreshing every 10 minutes would be 1,700 lines a second.
            // The line is built on the log queue, not here (this runs once per REGISTER that
            // creates a binding; building it here was about 3 % of the CPU at 8,000/s).
            let level: Logger.Level = if case .refreshed = e { .debug } else { .info }
            logger.log(level: level) { f in
                let b = e.binding
                // Values from the request are escaped: a percent-decoded AOR may hold a line break.
                f.add("net.peer", b.source)
                f.add("net.transport", b.transport.rawValue)
                f.add("sip.aor", escaping: b.aor)
                f.add("sip.contact", escaping: b.uri)
                f.add("sip.expires", b.remainingSeconds(at: b.updatedAt))
                f.add("sip.user_agent", escaping: b.userAgent ?? "-")
                return "binding \(e.kind)"
            }
        }
        dispatcher.observe { event in
            switch event {
            case .requestReceived(let m, let t): metrics.requestReceived(m, t)
            case .responseSent(let code, let t): metrics.responseSent(code, t)
            case .tlsHandshake(let ok, let remote, let detail):
                metrics.tlsHandshake(succeeded: ok)
                if !ok { logger.notice("TLS handshake failed", metadata: ["net.peer": "\(remote)", "tls.error": "\(detail.logSafe)"]) }
            case .connectionRefused(let t, let remote, let reason):
                // The dispatcher reports a refusal once per reason and source per minute (all are counted).
                logger.warning("connection refused", metadata: ["net.transport": "\(t)", "net.peer": "\(remote)", "reason": "\(reason.logSafe)"])
            case .dropped(let reason, let remote):
                logger.notice("message dropped", metadata: ["net.peer": "\(remote)", "reason": "\(reason.logSafe)"])
            case .connectionOpened, .connectionClosed:
                break
            }
        }
    }
}
