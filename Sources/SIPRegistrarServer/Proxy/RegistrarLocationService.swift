import SIPMessage
import SIPProxy
import SIPRegistrar

/// The registrar as the proxy's location service (RFC 3261 16.5): the scheme-filtered
/// lookup (RFC 5630: a `sips:` Request-URI gets only `sips:` contacts), each binding with
/// the connection and source address its REGISTER came from.
///
/// With a shared store, a binding another node wrote is reached through that node: its
/// target gets that node's `node_address` as a Path (RFC 3327) whose user part is a flow
/// token naming the binding's connection there, signed with the key the nodes share. The
/// other node's proxy finds the token in the Route and sends the request over its flow. A
/// node that is gone (no heartbeat) makes the binding a failed flow (430/480).
struct RegistrarLocationService: ProxyLocationService {
    let registrar: Registrar
    var localNode: String?
    var directory: NodeDirectory?
    var codec: FlowTokenCodec?

    /// A connection id no connection has (the dispatcher numbers them from 1): a target with it
    /// fails as a closed flow.
    static let goneFlow: UInt64 = 0

    init(registrar: Registrar, localNode: String? = nil, directory: NodeDirectory? = nil, codec: FlowTokenCodec? = nil) {
        self.registrar = registrar
        self.localNode = localNode
        self.directory = directory
        self.codec = codec
    }

    func targets(for requestURI: SIPURI) -> ProxyLookupResult {
        guard requestURI.isSIP, registrar.servesDomain(requestURI.hostName) else { return .notOurDomain }
        guard let aor = normalizedAOR(requestURI) else { return .unknownUser }
        let bindings = registrar.lookup(requestURI)
        if bindings.isEmpty {
            // RFC 5630 3.1.3: the user is there, but not reachable over SIPS.
            if requestURI.isSIPS, !registrar.bindings(ofAOR: aor).isEmpty { return .noSecureContacts }
            return .unknownUser
        }
        return .targets(bindings.compactMap(target))
    }

    func target(_ b: Binding) -> ProxyTarget? {
        guard let uri = SIPURI(b.uri) else { return nil }
        var t = ProxyTarget(uri: uri, q: b.q, instance: b.instance, regID: b.regID, flowID: b.flowID, transport: b.transport,
                            sourceHost: b.sourceHost, sourcePort: b.sourcePort, path: b.path)
        guard let node = b.node, node != localNode, let directory, let codec else { return t }
        // Another node's binding: its connection (or NAT binding) is there.
        guard let address = directory.address(of: node),
              let token = codec.encode(FlowToken(flowID: b.remoteFlowID, transport: b.transport, host: b.sourceHost,
                                                 port: b.sourcePort)) else {
            t.flowID = Self.goneFlow
            t.path = []
            return t
        }
        var hop = address
        hop.user = token
        hop.parameters.set("lr", nil)
        t.flowID = nil
        t.path = ["<\(hop)>"] + b.path
        return t
    }
}
