extension TLSHandler {
    /// The handler's life, with no OpenSSL and no channel in it: each event returns
    /// the action the handler must carry out. Tested on its own.
    struct StateMachine: Equatable {
        enum State: Equatable {
            /// Created, channel not active yet.
            case idle
            /// Handshake under way; writes are buffered.
            case handshaking
            /// Application data flows.
            case active
            /// Our close_notify is out; waiting for the peer's (or the close timeout).
            case closing
            /// Done; nothing more is processed.
            case closed
        }

        private(set) var state: State = .idle
        /// A close was asked for during the handshake: it is carried out (close_notify) once the
        /// handshake ends, or the connection just closes if the handshake fails or times out.
        private(set) var closeDeferred = false

        enum StartAction: Equatable {
            case startHandshake
            case none
        }

        mutating func channelActive() -> StartAction {
            switch state {
            case .idle:
                state = .handshaking
                return .startHandshake
            case .handshaking, .active, .closing, .closed:
                return .none
            }
        }

        enum HandshakeAction: Equatable {
            /// Fire the completion events, then encrypt what was buffered.
            case becomeActive
            /// The handshake completed after a close was requested: send close_notify now.
            case closeAfterHandshake
            case none
        }

        mutating func handshakeCompleted() -> HandshakeAction {
            switch state {
            case .handshaking:
                if closeDeferred {
                    state = .closing
                    return .closeAfterHandshake
                }
                state = .active
                return .becomeActive
            case .idle, .active, .closing, .closed:
                return .none
            }
        }

        enum WriteAction: Equatable {
            case buffer
            case encrypt
            case fail
        }

        func write() -> WriteAction {
            switch state {
            case .idle: return .buffer
            case .handshaking: return closeDeferred ? .fail : .buffer
            case .active: return .encrypt
            case .closing, .closed: return .fail
            }
        }

        enum CloseAction: Equatable {
            /// Nothing encrypted yet: close the transport at once.
            case closeTransport
            /// The handshake is under way: close once it ends (``handshakeCompleted()`` then
            /// answers ``HandshakeAction/closeAfterHandshake``).
            case deferUntilHandshakeEnds
            /// Send close_notify and wait for the peer's, with a timer.
            case sendCloseNotify
            /// A close is already under way: chain the promise.
            case alreadyClosing
            case alreadyClosed
        }

        /// - Parameter pendingWrites: whether plaintext written before the close waits for the handshake.
        mutating func closeRequested(pendingWrites: Bool = true) -> CloseAction {
            switch state {
            case .idle:
                state = .closed
                return .closeTransport
            case .handshaking:
                if closeDeferred { return .alreadyClosing }
                // Nothing written waits for the handshake: nothing is lost by closing now, and a
                // connection refused by a limit must go at once, not after the handshake timeout.
                guard pendingWrites else {
                    state = .closed
                    return .closeTransport
                }
                closeDeferred = true
                return .deferUntilHandshakeEnds
            case .active:
                state = .closing
                return .sendCloseNotify
            case .closing:
                return .alreadyClosing
            case .closed:
                return .alreadyClosed
            }
        }

        enum CloseNotifyAction: Equatable {
            /// The peer closed first: answer with our close_notify, then close the transport.
            case replyAndClose
            /// The peer answered our close_notify.
            case closeTransport
            case none
        }

        mutating func closeNotifyReceived() -> CloseNotifyAction {
            switch state {
            case .active, .handshaking:
                state = .closed
                return .replyAndClose
            case .closing:
                state = .closed
                return .closeTransport
            case .idle, .closed:
                return .none
            }
        }

        enum InactiveAction: Equatable {
            case failHandshake
            case uncleanShutdown
            case completeClose
            case none
        }

        mutating func channelInactive() -> InactiveAction {
            let previous = state
            state = .closed
            switch previous {
            case .handshaking: return .failHandshake
            case .active: return .uncleanShutdown
            case .closing: return .completeClose
            case .idle, .closed: return .none
            }
        }

        enum TimeoutAction: Equatable {
            case failAndClose
            case none
        }

        mutating func handshakeTimedOut() -> TimeoutAction {
            guard state == .handshaking else { return .none }
            state = .closed
            return .failAndClose
        }

        mutating func closeTimedOut() -> TimeoutAction {
            guard state == .closing else { return .none }
            state = .closed
            return .failAndClose
        }

        /// A fatal TLS error: nothing more may be sent except what OpenSSL queued (the alert).
        mutating func fatalError() {
            state = .closed
        }
    }
}
