//! What the tool writes to a terminal: input bytes escaped so that a captured request
//! cannot carry escape sequences to the screen.

/// `bytes` made safe to write to a terminal: printable ASCII (`0x20`-`0x7E`) as is, every
/// other byte (control bytes such as ESC, DEL, bytes that are not ASCII) as `\xHH`.
pub fn escape_for_terminal(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    push_escaped(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `bytes` to `out` escaped as [`escape_for_terminal`] does.
pub fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
    for &b in bytes {
        if (0x20..=0x7e).contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(b"\\x");
            out.push(digit(b >> 4));
            out.push(digit(b & 15));
        }
    }
}

/// Appends `text` escaped as [`push_escaped`] does, with each newline made visible: `\n`
/// then a line break (the form of a string-to-sign to paste into a support ticket).
pub fn push_visible_newlines(out: &mut Vec<u8>, text: &[u8]) {
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\\n\n");
        }
        push_escaped(out, line);
    }
}
