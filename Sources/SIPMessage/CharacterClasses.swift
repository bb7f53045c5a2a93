// Byte classes of RFC 3261 section 25.1, used by the parsers and by escaping.

@usableFromInline
enum ASCII {
    static let cr: UInt8 = 13
    static let lf: UInt8 = 10
    static let space: UInt8 = 32
    static let tab: UInt8 = 9
    static let colon: UInt8 = 58
    static let semicolon: UInt8 = 59
    static let comma: UInt8 = 44
    static let quote: UInt8 = 34
    static let backslash: UInt8 = 92
    static let lessThan: UInt8 = 60
    static let greaterThan: UInt8 = 62
    static let equals: UInt8 = 61
    static let at: UInt8 = 64
    static let question: UInt8 = 63
    static let ampersand: UInt8 = 38
    static let percent: UInt8 = 37
    static let slash: UInt8 = 47
    static let leftBracket: UInt8 = 91
    static let rightBracket: UInt8 = 93

    @inline(__always) static func isWhitespace(_ b: UInt8) -> Bool { b == space || b == tab }
    /// Space, tab, CR or LF: what header values are trimmed of.
    @inline(__always) static func isSIPBlank(_ b: UInt8) -> Bool { b == space || b == tab || b == 13 || b == 10 }
    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
    @inline(__always) static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= 97 && (b | 0x20) <= 122 }
    @inline(__always) static func isAlphaNumeric(_ b: UInt8) -> Bool { isDigit(b) || isAlpha(b) }
    @inline(__always) static func lower(_ b: UInt8) -> UInt8 { (b >= 65 && b <= 90) ? b | 0x20 : b }
    @inline(__always) static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: return b - 48
        case 65...70: return b - 55
        case 97...102: return b - 87
        default: return nil
        }
    }

    /// `mark` of RFC 3261: `- _ . ! ~ * ' ( )`.
    @inline(__always) static func isMark(_ b: UInt8) -> Bool {
        switch b {
        case 45, 95, 46, 33, 126, 42, 39, 40, 41: return true
        default: return false
        }
    }

    @inline(__always) static func isUnreserved(_ b: UInt8) -> Bool { isAlphaNumeric(b) || isMark(b) }

    /// `token` characters: alphanum and `- . ! % * _ + ` ' ~`.
    @inline(__always) static func isTokenChar(_ b: UInt8) -> Bool {
        if isAlphaNumeric(b) { return true }
        switch b {
        case 45, 46, 33, 37, 42, 95, 43, 96, 39, 126: return true
        default: return false
        }
    }

    /// Characters allowed unescaped in the user part (`unreserved / user-unreserved`).
    static func isUserChar(_ b: UInt8) -> Bool {
        if isUnreserved(b) { return true }
        switch b {
        case 38, 61, 43, 36, 44, 59, 63, 47: return true  // & = + $ , ; ? /
        default: return false
        }
    }

    /// Characters allowed unescaped in a password.
    static func isPasswordChar(_ b: UInt8) -> Bool {
        if isUnreserved(b) { return true }
        switch b {
        case 38, 61, 43, 36, 44: return true  // & = + $ ,
        default: return false
        }
    }

    /// `paramchar` of a URI parameter.
    static func isParamChar(_ b: UInt8) -> Bool {
        if isUnreserved(b) { return true }
        switch b {
        case 91, 93, 47, 58, 38, 43, 36: return true  // [ ] / : & + $
        default: return false
        }
    }

    /// Characters of a URI header name or value.
    static func isHeaderChar(_ b: UInt8) -> Bool {
        if isUnreserved(b) { return true }
        switch b {
        case 91, 93, 47, 63, 58, 43, 36: return true  // [ ] / ? : + $
        default: return false
        }
    }

    static func isHostChar(_ b: UInt8) -> Bool { isAlphaNumeric(b) || b == 45 || b == 46 || b == 95 }
}

/// RFC 3261 25.1 escaping.
enum Escaping {
    /// Decodes `%HH` sequences. Returns nil on a malformed escape or a result that is not UTF-8.
    static func unescape<S: StringProtocol>(_ text: S) -> String? {
        let u = text.utf8
        let needs = u.withContiguousStorageIfAvailable { $0.contains(ASCII.percent) } ?? u.contains(ASCII.percent)
        if !needs { return String(text) }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var it = text.utf8.makeIterator()
        while let b = it.next() {
            if b == ASCII.percent {
                guard let h = it.next(), let l = it.next(), let hv = ASCII.hexValue(h), let lv = ASCII.hexValue(l) else {
                    return nil
                }
                out.append(hv << 4 | lv)
            } else {
                out.append(b)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// Percent-escapes every byte that `allowed` rejects.
    static func escape(_ text: String, allowed: (UInt8) -> Bool) -> String {
        var clean = true
        for b in text.utf8 where !allowed(b) { clean = false; break }
        if clean { return text }
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 8)
        for b in text.utf8 {
            if allowed(b) {
                out.append(b)
            } else {
                out.append(ASCII.percent)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lowercases ASCII letters after unescaping; nil when the escape is malformed.
    static func normalizedCaseInsensitive<S: StringProtocol>(_ text: S) -> String? {
        unescape(text).map { asciiLowercased($0) }
    }
}

/// Lowercases ASCII letters only (header names, hosts and tokens are ASCII-case-insensitive).
@inlinable
func asciiLowercased<S: StringProtocol>(_ s: S) -> String {
    @inline(__always) func upper(_ b: UInt8) -> Bool { b >= 65 && b <= 90 }
    let needs = s.utf8.withContiguousStorageIfAvailable { $0.contains(where: upper) } ?? s.utf8.contains(where: upper)
    if !needs { return String(s) }
    return String(decoding: s.utf8.map { ($0 >= 65 && $0 <= 90) ? $0 | 0x20 : $0 }, as: UTF8.self)
}

/// ASCII-case-insensitive equality without allocating. Compares the contiguous bytes when
/// both sides have them (the parser's strings always do), else byte by byte through the views.
@inlinable
func asciiCaseInsensitiveEquals<A: StringProtocol, B: StringProtocol>(_ a: A, _ b: B) -> Bool {
    let ua = a.utf8, ub = b.utf8
    let fast: Bool?? = ua.withContiguousStorageIfAvailable { pa in
        ub.withContiguousStorageIfAvailable { pb in asciiCaseInsensitiveEquals(pa, pb) }
    }
    if case .some(.some(let equal)) = fast { return equal }
    guard ua.count == ub.count else { return false }
    var ia = ua.makeIterator(), ib = ub.makeIterator()
    while let x = ia.next(), let y = ib.next() {
        if x != y {
            let lx = (x >= 65 && x <= 90) ? x | 0x20 : x
            let ly = (y >= 65 && y <= 90) ? y | 0x20 : y
            if lx != ly { return false }
        }
    }
    return true
}

/// ASCII-case-insensitive equality of two byte buffers.
@inlinable
func asciiCaseInsensitiveEquals(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    for i in 0..<a.count {
        let x = a[i], y = b[i]
        if x != y {
            let lx = (x >= 65 && x <= 90) ? x | 0x20 : x
            let ly = (y >= 65 && y <= 90) ? y | 0x20 : y
            if lx != ly { return false }
        }
    }
    return true
}

extension Substring.UTF8View {
    /// `firstIndex(of:)` over the contiguous bytes when there are (a substring of a native
    /// string always has them): one tight loop instead of an index call into the standard
    /// library per byte, which was the parser's largest single cost.
    @inlinable
    func firstIndexOfByte(_ byte: UInt8) -> Index? {
        let found: Int?? = withContiguousStorageIfAvailable { $0.firstIndex(of: byte) }
        switch found {
        case .some(.some(let offset)): return index(startIndex, offsetBy: offset)
        case .some(.none): return nil
        case .none: return firstIndex(of: byte)
        }
    }
}

extension Substring.UTF8View {
    /// Runs `body` over the bytes as one contiguous buffer: the text's own storage (always there
    /// for native strings), a copy otherwise. Scanning a buffer by integer offsets avoids a call
    /// into the standard library per byte that indexing the view costs.
    @inline(__always)
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        if let result = try withContiguousStorageIfAvailable(body) { return result }
        return try Array(self).withUnsafeBufferPointer(body)
    }

    /// The text at byte offsets `range` (offsets into the buffer `withBytes` gives).
    @inline(__always)
    func substring(_ range: Range<Int>) -> Substring {
        let lower = index(startIndex, offsetBy: range.lowerBound)
        return Substring(self[lower..<index(lower, offsetBy: range.count)])
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// The bytes `lo..<hi` as a string; callers cut at ASCII bytes of valid UTF-8 text.
    @inline(__always)
    func string(_ lo: Int, _ hi: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: self[lo..<hi]), as: UTF8.self)
    }

    /// Whether every byte of `lo..<hi` passes `allowed`.
    @inline(__always)
    func all(_ lo: Int, _ hi: Int, _ allowed: (UInt8) -> Bool) -> Bool {
        var k = lo
        while k < hi {
            guard allowed(self[k]) else { return false }
            k += 1
        }
        return true
    }

    /// `lo..<hi` without leading and trailing spaces, tabs, CR and LF; nil when nothing is left.
    @inline(__always)
    func trimmedRange(_ lo: Int, _ hi: Int) -> Range<Int>? {
        var s = lo, e = hi
        while s < e, ASCII.isSIPBlank(self[s]) { s += 1 }
        while e > s, ASCII.isSIPBlank(self[e - 1]) { e -= 1 }
        return s < e ? s..<e : nil
    }
}

extension Substring {
    /// The text without leading and trailing spaces, tabs, CR and LF.
    @inline(__always)
    func trimmingSIPWhitespace() -> Substring {
        let u = utf8
        let (trimmed, n) = u.withBytes { b in (b.trimmedRange(0, b.count) ?? 0..<0, b.count) }
        return trimmed == 0..<n ? self : u.substring(trimmed)
    }
}
