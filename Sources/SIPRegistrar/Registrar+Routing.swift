import SIPMessage

extension Registrar {
    // MARK: Requests other than REGISTER (rewrite, redirect)

    /// A request other than REGISTER for a served address: in rewrite mode its Request-URI
    /// becomes the best contact and it goes on; in redirect mode it is answered 302 with the
    /// contacts (404 without any, 480 with Warning 380 when only non-SIPS ones exist for a
    /// `sips:` target). Anything else passes.
    func route(_ request: SIPRequest, from source: SIPSource) -> SIPReceiveOutcome {
        guard configuration.nonRegisterMode != .ignore, configuration.nonRegisterMode != .proxy, request.method != .ack, request.method != .cancel,
              request.uri.isSIP, domains.serves(request.uri.hostName), let aor = normalizedAOR(request.uri) else {
            return .pass
        }
        let targets = lookup(request.uri)
        switch configuration.nonRegisterMode {
        case .ignore, .proxy:
            return .pass
        case .rewrite:
            guard let first = targets.first, let uri = SIPURI(first.uri) else { return .pass }
            var rewritten = request
            rewritten.uri = uri
            return .forward(rewritten, source)
        case .redirect:
            if targets.isEmpty {
                // RFC 5630 3.1.3: the user exists but cannot be reached over SIPS.
                if request.uri.isSIPS, !bindings(ofAOR: aor).isEmpty {
                    let warning = SIPWarning(code: 380, agent: request.uri.hostName, text: "SIPS Not Allowed")
                    return .respond(.answering(request, 480, headers: [(.warning, warning.description)],
                                               server: configuration.serverHeader))
                }
                return .respond(.answering(request, 404, server: configuration.serverHeader))
            }
            var r = SIPResponse.answering(request, 302, server: configuration.serverHeader)
            for b in targets {
                var value = "<" + b.uri + ">"
                if let q = b.q { value += ";q=" + SIPContact.formatQ(q) }
                r.headers.add(.contact, value)
            }
            return .respond(r)
        }
    }
}
