//! Escaping values for Typst markup. Every `{{ value }}` in a report template passes
//! through [`markup`] (Tera's autoescape with this function), so data prints as text:
//! a model named `#read("x")` or `*bold*` cannot run code or change the formatting.

/// Escapes a value for Typst markup (including inside `[...]` content blocks).
///
/// Every ASCII punctuation character gets a backslash: in Typst markup `\c` is the
/// character itself for any symbol, which covers code (`#`), markup (`*`, `_`, `=`,
/// `-`, `+`, `/`, `<`, `>`, `@`, `` ` ``, `$`, `[`, `]`), shorthands (`--`, `...`,
/// `~`, `'`, `"`) and automatic links (`https:`). Line breaks and other control
/// characters become spaces (a value never starts a new paragraph or heading);
/// letters, digits, spaces and non-ASCII characters are kept.
pub fn markup(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 4);
    for c in input.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
            out.push(c);
        } else if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// A Typst string literal (for code positions such as `#let name = ...`).
pub fn string_literal(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 2);
    out.push('"');
    for c in input.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_escapes_code_and_formatting() {
        assert_eq!(markup("#read(\"x\")"), "\\#read\\(\\\"x\\\"\\)");
        assert_eq!(markup("*bold* _it_"), "\\*bold\\* \\_it\\_");
        assert_eq!(markup("a\nb\r= c"), "a b \\= c");
        assert_eq!(markup("Llama-3.1 8B"), "Llama\\-3\\.1 8B");
        assert_eq!(markup("Zürich 東京"), "Zürich 東京");
        assert_eq!(markup("\\"), "\\\\");
    }

    #[test]
    fn string_literal_escapes_quotes_and_controls() {
        assert_eq!(
            string_literal("a\"b\\c\nd\u{1}"),
            "\"a\\\"b\\\\c\\nd\\u{1}\""
        );
    }
}
