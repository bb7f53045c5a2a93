extension String {
    /// The value as it may go into a log line: control characters (C0, DEL, C1), the line and
    /// paragraph separators and the bidirectional overrides are written as `\n`, `\r`, `\t` or
    /// `\u{1B}`, and a backslash as `\\`, so that a value taken from a request (a
    /// percent-decoded AOR, a User-Agent) can neither start a fake log line nor move the
    /// terminal's cursor. Printable text comes out unchanged.
    var logSafe: String {
        // Printable ASCII without a backslash, what nearly every value is: one byte scan.
        if utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x5C }) { return self }
        guard unicodeScalars.contains(where: Self.needsEscape) else { return self }
        var out = ""
        out.reserveCapacity(utf8.count + 8)
        for u in unicodeScalars {
            guard Self.needsEscape(u) else {
                out.unicodeScalars.append(u)
                continue
            }
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            default: out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
            }
        }
        return out
    }

    private static func needsEscape(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x00...0x1F, 0x5C, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}

extension Optional where Wrapped == String {
    /// ``Swift/String/logSafe`` of the value, or `-`.
    var logSafe: String { self?.logSafe ?? "-" }
}
