import Atomics
import CoreMetrics
import Logging
import NIOCore
import SIPMessage
import SIPProxy
import SIPRegistrar
import SIPTLS
import SIPTransport

extension RegistrarServer {
    /// The proxy of `registrar.non_register: proxy`, on the bound legs: who we are (our
    /// names, every local interface address, the listening ports), the registrar as location
    /// service, flow tokens signed with a key derived from the node secret, metrics and the
    /// log line per failed call set-up.
    func makeProxy(dispatcher: Dispatcher, registrar: Registrar, secret: [UInt8], metrics: ServerMetrics,
                   localNode: String? = nil, directory: NodeDirectory? = nil) -> ProxyHost {
        var hosts: Set<String> = ["localhost", "127.0.0.1", "::1"]
        for name in dispatcher.configuration.localNames { hosts.insert(name) }
        for (_, address) in dispatcher.listeners {
            if let ip = address.ipAddress, ip != "0.0.0.0", ip != "::" { hosts.insert(ip) }
        }
        for ip in dispatcher.interfaceAddresses { hosts.insert(ip) }
        let ports = Set(dispatcher.listeners.compactMap { $0.address.port })
        let identity = ProxyIdentity(hosts: hosts, ports: ports) { registrar.servesDomain($0) }
        // A key of its own for the flow tokens, derived from the node secret (shared by the nodes
        // that share auth.secret_file, random per start otherwise).
        let key = OpenSSLHashing.hmacSHA256(key: secret, Array("sip-registrar flow token key".utf8))
        // Every INVITE signs two tokens and every in-dialog request verifies its own: one keyed
        // context, copied per MAC (the one-shot HMAC only if OpenSSL cannot make the context).
        let keyed = try? HMACSHA256Key(key: key)
        let codec = FlowTokenCodec(key: key) { k, m in
            if let keyed, k == key { return keyed.mac(m) }
            return OpenSSLHashing.hmacSHA256(key: k, m)
        }
        let inFlight = ManagedAtomic(0)
        let gauge = metrics.gauge("sip_proxy_transactions")
        var proxyLogger = logger
        proxyLogger[metadataKey: "component"] = "proxy"
        let callLogger = proxyLogger
        let observer = ProxyObserver(
            forwarded: { method in metrics.proxyForwarded(method) },
            branchEnded: { outcome in metrics.proxyBranchEnded(outcome) },
            finished: { request, completion in
                metrics.proxyFinished(request.method, code: completion.statusCode)
                // One line per call set-up that failed, with the reason.
                guard request.method == .invite, completion.statusCode >= 300 else { return }
                let from = (try? request.headers.from)??.uri.description ?? "?"
                callLogger.info("call set-up failed", metadata: [
                    "sip.status": "\(completion.statusCode)", "reason": "\(completion.reason.logSafe)",
                    "sip.from": "\(from.logSafe)", "sip.to": "\(request.uri.description.logSafe)",
                    "sip.call_id": "\(String(request.headers.callID ?? "").logSafe)"])
            },
            inFlight: { delta in
                gauge.record(inFlight.wrappingIncrementThenLoad(by: delta, ordering: .relaxed))
            })
        let location = RegistrarLocationService(registrar: registrar, localNode: localNode, directory: directory, codec: codec)
        return ProxyHost(dispatcher: dispatcher, location: location, identity: identity,
                         codec: codec, server: "sip-registrar/\(SIPRegistrarVersion.current)", observer: observer,
                         logger: proxyLogger)
    }
}

extension BranchOutcome {
    /// The `outcome` label of `sip_proxy_branches_total`.
    var metricLabel: String {
        switch self {
        case .answered(let code): return "\(code / 100)xx"
        case .timedOut: return "timeout"
        case .transportError: return "transport_error"
        case .flowFailed: return "flow_failed"
        }
    }
}
