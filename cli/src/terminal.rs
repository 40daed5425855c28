//! Guest output shown on a terminal: characters that would move the cursor, recolour,
//! retitle or reorder what the user sees are printed as escapes instead.

use std::borrow::Cow;

/// `text` with every terminal-controlling character written as `\xNN` or `\u{NNNN}`;
/// newlines and tabs pass. Unchanged when nothing needs escaping.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// C0 and C1 controls (ESC, CR, BEL, backspace, CSI...) and the bidirectional overrides
/// that can make text read differently from what it is.
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn escapes_what_controls_the_terminal() {
        assert_eq!(escape_controls("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(escape_controls("\x1b[2Jcleared"), "\\x1b[2Jcleared");
        assert_eq!(escape_controls("a\rb\x07\x08"), "a\\x0db\\x07\\x08");
        assert_eq!(escape_controls("\u{9b}31m"), "\\x9b31m");
        assert_eq!(escape_controls("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape_controls("héllo 🐍"), "héllo 🐍");
    }
}
