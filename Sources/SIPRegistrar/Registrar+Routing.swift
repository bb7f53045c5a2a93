public import SIPMessage

extension Registrar {
    // MARK: Requests other than REGISTER (rewrite, redirect)

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
                    var r = SIPResponse(to: request, statusCode: 480, toTag: SIPResponse.randomTag(),
                                        server: configuration.serverHeader)
                    r.headers.add(.warning, SIPWarning(code: 380, agent: request.uri.hostName, text: "SIPS Not Allowed").description)
                    return .respond(r)
                }
                return .respond(SIPResponse(to: request, statusCode: 404, toTag: SIPResponse.randomTag(),
                                            server: configuration.serverHeader))
            }
            var r = SIPResponse(to: request, statusCode: 302, toTag: SIPResponse.randomTag(), server: configuration.serverHeader)
            for b in targets {
                var value = "<" + b.uri + ">"
                if let q = b.q { value += ";q=" + SIPContact.formatQ(q) }
                r.headers.add(.contact, value)
            }
            return .respond(r)
        }
    }
}
