import SIPTestSupport

/// Messages from RFC 3261 and from real clients (../shared/CLIENTS.md), with CRLF line ends.
enum Fixtures {
    /// RFC 3261 24.1 / 10.2: Bob's registration.
    static let rfcRegister = SIPText.crlf("""
    REGISTER sip:registrar.biloxi.com SIP/2.0
    Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7
    Max-Forwards: 70
    To: Bob <sip:bob@biloxi.com>
    From: Bob <sip:bob@biloxi.com>;tag=456248
    Call-ID: 843817637684230@998sdasdh09
    CSeq: 1826 REGISTER
    Contact: <sip:bob@192.0.2.4>
    Expires: 7200
    Content-Length: 0


    """)

    /// RFC 3261 24.1: the registrar's answer.
    static let rfcRegisterOK = SIPText.crlf("""
    SIP/2.0 200 OK
    Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7;received=192.0.2.4
    To: Bob <sip:bob@biloxi.com>;tag=2493k59kd
    From: Bob <sip:bob@biloxi.com>;tag=456248
    Call-ID: 843817637684230@998sdasdh09
    CSeq: 1826 REGISTER
    Contact: <sip:bob@192.0.2.4>
    Expires: 7200
    Content-Length: 0


    """)

    /// RFC 3261 24.2: Alice's INVITE with an SDP body.
    static let rfcInvite = SIPText.crlf("""
    INVITE sip:bob@biloxi.com SIP/2.0
    Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8
    Max-Forwards: 70
    To: Bob <sip:bob@biloxi.com>
    From: Alice <sip:alice@atlanta.com>;tag=1928301774
    Call-ID: a84b4c76e66710
    CSeq: 314159 INVITE
    Contact: <sip:alice@pc33.atlanta.com>
    Content-Type: application/sdp
    Content-Length: 144

    v=0
    o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.com
    s=-
    c=IN IP4 pc33.atlanta.com
    t=0 0
    m=audio 49172 RTP/AVP 0
    a=rtpmap:0 PCMU/8000
    """)

    static let baresipTLS = SIPText.crlf("""
    REGISTER sip:example.com;transport=tls SIP/2.0
    Via: SIP/2.0/TLS 127.0.0.1:35161;branch=z9hG4bKaa8332ea7e4356b2;rport
    Contact: <sip:alice-0x5586d74020a0@127.0.0.1:35161;transport=tls>;expires=600;+sip.instance="<urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11f>";reg-id=1
    Max-Forwards: 70
    Route: <sip:127.0.0.1:35061;transport=tls;lr>
    To: <sip:alice@example.com>
    From: <sip:alice@example.com>;tag=c932b6af12c6a5aa
    Call-ID: c7d6fcc281d15b30
    CSeq: 40208 REGISTER
    User-Agent: baresip v1.0.0 (x86_64/linux)
    Supported: gruu, outbound, path
    Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,REFER
    Content-Length: 0


    """)

    static let linphoneSIPS = SIPText.crlf("""
    REGISTER sips:example.com SIP/2.0
    Via: SIP/2.0/TLS 127.0.0.1:35252;branch=z9hG4bK.wSUDnwcfM;rport
    From: "alice" <sips:alice@example.com>;tag=d-RiZW22d
    To: "alice" <sips:alice@example.com>
    CSeq: 20 REGISTER
    Call-ID: XKXxe0gQoA
    Max-Forwards: 70
    Supported: replaces, outbound, gruu
    Accept: application/sdp
    Accept: text/plain
    Contact: "alice" <sips:alice@127.0.0.1:35252>;+sip.instance="<urn:uuid:5372db77-f45b-0015-9b9c-bcfd29b10d5a>"
    Expires: 600
    User-Agent: Linphonec/5.1.65
    Content-Length: 0


    """)

    static let netSIP = SIPText.crlf("""
    REGISTER sip:example.com SIP/2.0
    Via: SIP/2.0/UDP 127.0.0.1:35400;branch=z9hG4bK844998de9a591753c97e3dbde696fa832889b51b7d611a2bd0427726b3c5a8
    Call-id: b43f2c55c61a3ed41b139fb7f6835f20
    Contact: <sip:alice@127.0.0.1:35400>
    Cseq: 1 REGISTER
    Expires: 600
    From: sip:alice@example.com;tag=14976d10ec03504ac7e58eac75f148a5
    Max-forwards: 70
    To: sip:alice@example.com
    Content-length: 0


    """)

    /// Net::SIP with a parameterised registrar URI puts angle brackets in the request line.
    static let netSIPBracketed = SIPText.crlf("""
    REGISTER <sip:example.com;transport=tcp> SIP/2.0
    Via: SIP/2.0/TCP 127.0.0.1:35400;branch=z9hG4bK1
    Call-id: b43f
    Contact: <sip:alice@127.0.0.1:35400;transport=tcp>
    Cseq: 1 REGISTER
    From: sip:alice@example.com;tag=14
    To: sip:alice@example.com
    Content-length: 0


    """)
}
