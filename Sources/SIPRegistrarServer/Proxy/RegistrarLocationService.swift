import SIPMessage
import SIPProxy
import SIPRegistrar

/// The registrar as the proxy's location service (RFC 3261 16.5): the scheme-filtered
/// lookup (RFC 5630: a `sips:` Request-URI gets only `sips:` contacts), each binding with
/// the connection and source address its REGISTER came from.
struct RegistrarLocationService: ProxyLocationService {
    let registrar: Registrar

    func targets(for requestURI: SIPURI) -> ProxyLookupResult {
        guard requestURI.isSIP, registrar.servesDomain(requestURI.hostName) else { return .notOurDomain }
        guard let aor = normalizedAOR(requestURI) else { return .unknownUser }
        let bindings = registrar.lookup(requestURI)
        if bindings.isEmpty {
            // RFC 5630 3.1.3: the user is there, but not reachable over SIPS.
            if requestURI.isSIPS, !registrar.bindings(ofAOR: aor).isEmpty { return .noSecureContacts }
            return .unknownUser
        }
        let targets = bindings.compactMap { b -> ProxyTarget? in
            guard let uri = SIPURI(b.uri) else { return nil }
            return ProxyTarget(uri: uri, q: b.q, instance: b.instance, regID: b.regID, flowID: b.flowID, transport: b.transport,
                               sourceHost: b.sourceHost, sourcePort: b.sourcePort, path: b.path)
        }
        return .targets(targets)
    }
}
