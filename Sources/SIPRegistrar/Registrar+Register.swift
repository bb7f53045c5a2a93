import SIPMessage

extension Registrar {
    /// RFC 3261 10.3 steps 1-8 for one REGISTER.
    func register(_ request: SIPRequest, from source: SIPSource) async -> SIPReceiveOutcome {
        // Step 1: the Request-URI must name a domain we serve.
        guard request.uri.isSIP, domains.serves(request.uri.hostName) else {
            return configuration.rejectForeignDomains ? fail(request, .domainNotServed) : .pass
        }
        do {
            let plan = try prepare(request, from: source)
            return await commit(plan, request: request)
        } catch {
            return fail(request, error)
        }
    }

    /// Everything checked and decided before the index is touched.
    struct RegisterPlan {
        enum Action {
            case fetch
            case removeAll
            case update([ContactUpdate])
        }

        var aor: String
        var action: Action
        var callID: String
        var cseq: UInt32
        var path: [String]
        var echoPath: Bool
    }

    struct ContactUpdate {
        var key: ContactKey
        /// The binding it writes, but for its times (set when the index is updated); built
        /// here, outside the registrar's lock, so that the lock only covers the index work.
        /// Nil for a removal (`expires` 0).
        var binding: Binding?
        var expires: Int
    }

    func prepare(_ request: SIPRequest, from source: SIPSource) throws(RegistrarError) -> RegisterPlan {
        let h = request.headers
        // Step 2: extensions we must understand.
        if h.contains(.require) {
            let unsupportedTags = h.require.filter { !supported.contains($0.lowercased()) }
            if !unsupportedTags.isEmpty { throw .unsupportedExtensions(unsupportedTags) }
        }

        // Step 4: the address of record from To.
        let to: NameAddress
        do throws(SIPParseError) {
            guard let t = try h.to else { throw SIPParseError(.missingHeader("To")) }
            to = t
        } catch {
            throw .malformedHeader(error)
        }
        guard to.uri.isSIP, let aor = normalizedAOR(to.uri) else { throw .notSIPAOR }
        guard domains.serves(to.uri.hostName) else { throw .domainNotServed }

        // Contacts (step 6 wildcard rules need the raw list).
        let contactHeader: SIPContactHeader?
        do throws(SIPParseError) {
            contactHeader = try h.contact
        } catch {
            if h.splitValues(.contact).contains("*") { throw .invalidWildcard }
            throw .malformedHeader(error)
        }

        // RFC 3261 26.2 / RFC 5630: SIPS only over TLS.
        var anySIPSContact = false
        if case .contacts(let list) = contactHeader {
            anySIPSContact = list.contains { $0.uri.isSIPS }
        }
        if (request.uri.isSIPS || to.uri.isSIPS || anySIPSContact) && !source.transport.isSecure {
            throw .sipsRequiresTLS
        }

        guard let callID = h.callID else { throw .malformedHeader(SIPParseError(.missingHeader("Call-ID"))) }
        let cseq: SIPCSeq
        do throws(SIPParseError) {
            guard let c = try h.cseq else { throw SIPParseError(.missingHeader("CSeq")) }
            cseq = c
        } catch {
            throw .malformedHeader(error)
        }
        // RFC 3261 20.19: a malformed Expires is treated as absent (the default applies).
        let expiresHeader = (try? h.expires) ?? nil

        // Path matters only when the request carries one (RFC 3327); look at Supported only then.
        let wantsPath = h.contains(.path) && h.splitValues(.supported).contains { $0.lowercased() == "path" }
        let path = wantsPath ? h.splitValues(.path).map { String($0) } : []
        // The contact URI, Call-ID and parameters are packed per contact (apply), so none here.
        let template = Binding(aor: aor, uri: "", scheme: .sip, expiresAt: 0, updatedAt: 0, callID: "",
                               cseq: cseq.sequence, path: path, userAgent: h.userAgent.map { userAgents.intern($0) },
                               transport: source.transport, sourceHost: source.remoteHost,
                               sourcePort: source.remotePort, flowID: source.flowID,
                               tlsIdentity: source.authenticationMethod == .certificate
                                   ? source.authenticatedIdentity : source.tlsPeer?.sipURIs.first)
        var plan = RegisterPlan(aor: aor, action: .fetch, callID: String(callID), cseq: cseq.sequence, path: path,
                                echoPath: wantsPath && !path.isEmpty)

        switch contactHeader {
        case nil:
            plan.action = .fetch
        case .wildcard:
            // Step 6: "*" only with Expires: 0 (and it was the only Contact, or parsing would have failed).
            guard expiresHeader == 0 else { throw .invalidWildcard }
            plan.action = .removeAll
        case .contacts(let list):
            // RFC 5630: binding a sips: contact needs a sips: Request-URI and only sips: contacts.
            if anySIPSContact {
                guard request.uri.isSIPS, list.allSatisfy({ $0.uri.isSIPS }) else { throw .mixedSchemes }
            }
            // Refused before any matching: more contacts than one request may carry, or than the
            // address of record may hold (a 60 KB REGISTER can list thousands).
            let perAOR = configuration.replaceOldestWhenFull ? nil : configuration.maxContactsPerAOR
            let ceiling = min(RegistrarConfiguration.maxContactsPerRequest, perAOR ?? Int.max)
            guard list.count <= ceiling else { throw .tooManyContacts(limit: ceiling) }
            var updates: [ContactUpdate] = []
            updates.reserveCapacity(list.count)
            for c in list {
                // Step 7: expires param, else Expires header, else the default; capped; min checked.
                var expires = c.expires ?? expiresHeader ?? configuration.effectiveDefaultExpires
                if expires > configuration.maxExpires { expires = configuration.maxExpires }
                if expires != 0 && expires < configuration.minExpires {
                    throw .intervalTooBrief(minExpires: configuration.minExpires)
                }
                var params = c.address.parameters
                var other = ""
                if params.count > 0 {
                    for name in ["expires", "q", "+sip.instance", "reg-id"] { params.remove(name) }
                    other = params.serialized
                }
                let uriText = c.uriText.map { String($0) } ?? c.uri.description
                let key = ContactKey(uri: c.uri, uriText: uriText, instance: c.instance.map(InstanceID.init), regID: c.regID)
                var binding: Binding?
                if expires != 0 {
                    var b = template
                    b.pack(uri: uriText, callID: callID, otherParameters: other)
                    b.scheme = ContactScheme(c.uri)
                    b.q = c.hasInvalidQ ? nil : c.qValue
                    b.instanceID = key.instance
                    b.regID = key.regID
                    binding = b
                }
                updates.append(ContactUpdate(key: key, binding: binding, expires: expires))
            }
            plan.action = .update(updates)
        }
        return plan
    }

    /// Applies a plan to the index, makes it durable, and answers.
    func commit(_ plan: RegisterPlan, request: SIPRequest) async -> SIPReceiveOutcome {
        let now = clock.nowMilliseconds()
        let wantEvents = hasSubscribers
        let result: Result<Applied, RegistrarError> = state.withLock { s in
            let r = Result { () throws(RegistrarError) -> Applied in try apply(plan, now: now, events: wantEvents, to: &s) }
            if case .success(let a) = r, !a.changes.isEmpty { s.uncommitted[plan.aor, default: 0] += 1 }
            return r
        }
        let applied: Applied
        switch result {
        case .failure(let e): return fail(request, e)
        case .success(let a): applied = a
        }
        if !applied.changes.isEmpty {
            do {
                try await store.apply(applied.changes)
                state.withLock { s in s.markCommitted(plan.aor) }
            } catch {
                // Undo, unless another request changed this AOR meanwhile (its own commit decides then).
                state.withLock { s in
                    s.markCommitted(plan.aor)
                    s.markUnsure(plan.aor, applied.changes, now: now)
                    if (s.records[plan.aor] ?? []) == applied.after {
                        s.setBindings(plan.aor, from: applied.after, to: applied.before)
                        for b in applied.before { s.heap.push(.init(expiresAt: b.expiresAt, aor: b.aor)) }
                    }
                }
                return fail(request, .storeUnavailable(retryAfter: 5))
            }
            emit(applied.events)
            scheduleExpiry()
        }
        return .respond(okResponse(request, plan: plan, bindings: applied.after, now: now))
    }

    struct Applied {
        var before: [Binding]
        var after: [Binding]
        var changes: [BindingChange]
        var events: [BindingEvent]
    }

    /// The index update, under the lock: all contacts or none.
    func apply(_ plan: RegisterPlan, now: Int64, events wantEvents: Bool, to s: inout State) throws(RegistrarError) -> Applied {
        let stored = s.records[plan.aor] ?? []
        // Expired bindings are gone as far as this request is concerned.
        let current = stored.filter { $0.isActive(at: now) }
        var next = current
        var changes: [BindingChange] = []
        var events: [BindingEvent] = []
        func note(_ e: @autoclosure () -> BindingEvent) { if wantEvents { events.append(e()) } }
        for b in stored where !b.isActive(at: now) {
            changes.append(.expired(aor: b.aor, uri: b.uri, at: b.expiresAt))
            note(.expired(b))
        }

        switch plan.action {
        case .fetch:
            break
        case .removeAll:
            // Step 6 applied to "*": a binding from the same Call-ID needs a higher CSeq.
            for b in current where b.callIDText == plan.callID && plan.cseq <= b.cseq { throw .invalidCSeq }
            for b in current {
                changes.append(.remove(aor: b.aor, uri: b.uri))
                note(.removed(b))
            }
            // After a failed commit the store may hold what memory does not: remove that too.
            let held = Set(current.map(\.uri))
            for b in s.unsureBindings(plan.aor, now: now) where !held.contains(b.uri) {
                changes.append(.remove(aor: b.aor, uri: b.uri))
            }
            next = []
        case .update(let updates):
            var addedNew = false
            // Every contact is found by lookup; a stored URI is parsed only if a lookup needs it.
            var before = ContactIndex(current)
            var index = before
            var unsure = ContactIndex(s.unsureBindings(plan.aor, now: now))
            for u in updates {
                // The CSeq rule compares with what was stored before this request.
                let wasStored = before.find(u.key)
                if let w = wasStored, let old = before[w], old.callIDText == plan.callID, plan.cseq <= old.cseq {
                    throw .invalidCSeq
                }
                let existing = index.find(u.key)
                if u.expires == 0 {
                    if let i = existing, let gone = index.remove(at: i) {
                        changes.append(.remove(aor: gone.aor, uri: gone.uri))
                        note(.removed(gone))
                    } else if unsure.count > 0, let j = unsure.find(u.key), let maybe = unsure[j] {
                        // Not in memory, but a failed commit may have stored it: remove it from the store.
                        changes.append(.remove(aor: maybe.aor, uri: maybe.uri))
                    }
                    continue
                }
                guard var b = u.binding else { continue }  // always set when expires is not 0
                b.expiresAt = now + Int64(u.expires) * 1000
                b.updatedAt = now
                if let i = existing, let old = index[i] {
                    if old.uriText != b.uriText { changes.append(.remove(aor: old.aor, uri: old.uri)) }
                    index.replace(at: i, with: b, parsed: u.key.uri)
                    note(wasStored != nil ? .refreshed(b) : .created(b))
                } else {
                    index.append(b, parsed: u.key.uri)
                    addedNew = true
                    note(.created(b))
                }
                changes.append(.upsert(b))
            }
            next = index.bindings
            if let limit = configuration.maxContactsPerAOR, next.count > limit {
                guard addedNew else { break }
                guard configuration.replaceOldestWhenFull else { throw .tooManyContacts(limit: limit) }
                let touched = Set(updates.map { $0.key.uriText })
                // Drop the least recently refreshed bindings this request did not touch (one sort).
                let candidates = next.indices.filter { !touched.contains(next[$0].uri) }
                    .sorted { next[$0].updatedAt < next[$1].updatedAt }
                let excess = next.count - limit
                guard candidates.count >= excess else { throw .tooManyContacts(limit: limit) }
                let drop = Set(candidates.prefix(excess))
                for i in drop.sorted() {
                    let gone = next[i]
                    changes.append(.remove(aor: gone.aor, uri: gone.uri))
                    note(.removed(gone))
                }
                next = next.indices.filter { !drop.contains($0) }.map { next[$0] }
            }
            // The whole location service is bounded (RFC 3261 10.3 leaves this to the operator):
            // new bindings and new addresses of record beyond the limits are refused with 503;
            // refreshing what is stored always works.
            let growth = next.count - stored.count
            if growth > 0, let max = configuration.maxBindings, s.bindingCount + growth > max {
                throw .locationServiceFull(retryAfter: 60)
            }
            if stored.isEmpty, !next.isEmpty, let max = configuration.maxAORs, s.records.count >= max {
                throw .locationServiceFull(retryAfter: 60)
            }
        }

        if changes.isEmpty {
            return Applied(before: stored, after: next, changes: [], events: [])
        }
        s.setBindings(plan.aor, from: stored, to: next)
        for case .upsert(let b) in changes {
            s.heap.push(.init(expiresAt: b.expiresAt, aor: b.aor))
        }
        return Applied(before: stored, after: next, changes: changes, events: events)
    }

    /// Step 8: 200 OK listing every current binding with its remaining expiry, plus Date.
    func okResponse(_ request: SIPRequest, plan: RegisterPlan, bindings: [Binding], now: Int64) -> SIPResponse {
        var response = SIPResponse.answering(request, 200, server: configuration.serverHeader)
        for b in bindings where b.isActive(at: now) {
            response.headers.add(.contact, b.contactHeaderValue(at: now))
        }
        if plan.echoPath {
            for p in plan.path { response.headers.add(.path, p) }
            response.headers.add(.supported, "path")
        }
        response.headers.add(.date, SIPDate.format(secondsSince1970: now / 1000))
        return response
    }

    /// The one place a ``RegistrarError`` becomes the answer to the REGISTER.
    func fail(_ request: SIPRequest, _ error: RegistrarError) -> SIPReceiveOutcome {
        .respond(.answering(request, error, server: configuration.serverHeader))
    }
}
